"""The model check turns any usual failure of a probe forward pass into one line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustkit.errors import InputError
from robustkit.modelcheck import check_classifier, largest_activation_bytes


class Raises(nn.Module):
    def __init__(self, exc: BaseException):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.exc = exc

    def forward(self, x):
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [
        TypeError("forward() got an unexpected tensor"),
        AssertionError("expected 3 channels"),
        IndexError("index 3 is out of bounds for dimension 1 with size 3"),
        ValueError("bad input"),
        AssertionError(),
    ],
)
def test_usual_forward_errors_are_one_line(exc):
    with pytest.raises(InputError, match=r"cannot classify images shaped \(3, 8, 8\)") as info:
        check_classifier(Raises(exc).eval(), torch.rand(1, 3, 8, 8))
    assert "\n" not in str(info.value) and type(exc).__name__ in str(info.value)


def test_batchnorm1d_on_images_is_one_line():
    model = nn.Sequential(nn.BatchNorm1d(3), nn.Flatten(), nn.LazyLinear(10)).eval()
    with pytest.raises(InputError, match=r"shaped \(3, 8, 8\) \(ValueError: expected 2D or 3D"):
        check_classifier(model, torch.rand(1, 3, 8, 8))  # BatchNorm1d raises ValueError
    assert largest_activation_bytes(model, torch.rand(1, 3, 8, 8)) is None


def test_interrupts_are_not_swallowed():
    with pytest.raises(KeyboardInterrupt):
        check_classifier(Raises(KeyboardInterrupt()).eval(), torch.rand(1, 3, 8, 8))


def test_mixed_dtype_weights_are_named():
    """A model half in float64 fails on any input dtype: say so, not "images shaped"."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.Linear(16, 10).double()).eval()
    with pytest.raises(InputError, match="weights mix dtypes") as info:
        check_classifier(model, torch.rand(1, 3, 8, 8))
    assert "shaped" not in str(info.value)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.parametrize("wrapped", [False, True])
def test_a_scripted_model_is_attacked_as_the_model_itself(wrapped):
    """TorchScript modules take no forward hooks: the check's activation probe made every
    attack refuse one ("cannot classify images shaped (3, 8, 8) (register_forward_hook is not
    supported on ScriptModules)"), alone or inside a defense."""
    import robustkit

    from .helpers import Linear

    model = Linear().eval()
    scripted = torch.jit.script(Linear().eval())
    if wrapped:
        model = robustkit.get_defense("bit-depth").apply(model)
        scripted = robustkit.get_defense("bit-depth").apply(scripted)
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1)
    for name, params in [("fgsm", {}), ("pgd", {"steps": 2}), ("cgba", {"max_queries": 50})]:
        attack = robustkit.get_attack(name, **params)
        assert torch.equal(attack(scripted, x, y).x_adv, attack(model, x, y).x_adv)
    assert largest_activation_bytes(scripted, x) is None


class _ScoresElsewhere(nn.Module):
    """Scores on another device than the images (a GPU model ending in ``.cpu()``; here the
    meta device stands in for the other one)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(192, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)).to("meta")


@pytest.mark.parametrize("name", ["fgsm", "cgba"])
def test_scores_on_another_device_than_the_images_are_one_line(name):
    # every attack failed with a raw RuntimeError from deep inside it
    import robustkit

    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(InputError, match="returns its scores on meta for images on cpu") as info:
        robustkit.get_attack(name)(_ScoresElsewhere().eval(), x, torch.tensor([0, 1]))
    assert "\n" not in str(info.value)


def test_a_model_of_another_dtype_than_the_images_is_told_both_ways_to_convert():
    """The images can be converted in Python only: ``robustkit evaluate`` loads float32 data,
    so a float64 model file must convert the model; the error said "convert the images"."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 10)).double().eval()
    with pytest.raises(InputError, match=r"x.to\(torch.float64\)\) or the model \(model.to\("):
        check_classifier(model, torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize("name", ["fgsm", "cgba", None])
def test_a_model_whose_weights_were_never_loaded_off_the_meta_device_is_one_line(name):
    """A model built on the meta device (its weights never loaded, e.g. built under
    torch.device("meta") and load_state_dict without assign=True) ended every attack and
    evaluate() in a raw NotImplementedError from aten::equal on meta tensors."""
    import robustkit

    with torch.device("meta"):
        model = nn.Sequential(nn.Flatten(), nn.Linear(192, 10)).eval()
    x, y = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    with pytest.raises(InputError, match=r"weights are on the meta device.*assign=True") as info:
        if name is None:
            robustkit.evaluate(model, None, x, y)
        else:
            robustkit.get_attack(name)(model, x, y)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="meta device"):
        robustkit.get_defense("ensemble", members="cifar10/resnet20").apply(model)
