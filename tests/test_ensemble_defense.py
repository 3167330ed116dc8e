"""The ensemble defense with real zoo members: members follow the model's device and dtype, and
members of another data set than the defended model's are refused."""

from __future__ import annotations

import pytest
import torch

import robustkit
from robustkit.errors import InputError
from robustkit.modelcheck import check_classifier
from robustkit.specs import build_defense


def test_members_take_the_dtype_of_a_float64_model():
    model = robustkit.load_model("cifar10/resnet20", device="cpu").double()
    defended = build_defense("ensemble:members=cifar10/resnet32").apply(model)
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    out = defended(x)  # raised "expected scalar type Double but found Float" before
    assert out.dtype == torch.float64 and out.shape == (2, 10)
    assert check_classifier(defended, x[:1]).dtype == torch.float64
    member = robustkit.load_model("cifar10/resnet32", device="cpu").double()
    with torch.no_grad():
        assert torch.allclose(out, (model(x) + member(x)) / 2)


def test_members_of_another_data_set_are_refused():
    model = robustkit.load_model("mnist/lenet5", device="cpu")
    with pytest.raises(InputError, match="cifar10/resnet32 is a cifar10 model .* mnist") as info:
        build_defense("ensemble:members=mnist/lenet5-at|cifar10/resnet32").apply(model)
    assert "\n" not in str(info.value)
    # a model of unknown data set (not from the zoo) accepts any member
    anonymous = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    defended = build_defense("ensemble:members=mnist/lenet5-at").apply(anonymous)
    assert defended(torch.rand(1, 1, 28, 28)).shape == (1, 10)


def test_members_of_the_wrong_type_or_spelling():
    """members=5 and a list holding a number gave raw TypeError/AttributeError messages; a
    member in another spelling made another configuration (and run)."""
    for bad in (5, ["cifar10/resnet32", 3]):
        with pytest.raises(InputError, match="ensemble members must be model names"):
            robustkit.get_defense("ensemble", members=bad)
    spelled = robustkit.get_defense("ensemble", members="CIFAR10/RESNET32|cifar10/resnet44")
    assert spelled.members == ["cifar10/resnet32", "cifar10/resnet44"]
    # nor does their order make another one (it made two runs, their sums a few bits apart)
    swapped = robustkit.get_defense("ensemble", members=["cifar10/resnet44", "cifar10/resnet32"])
    assert swapped.params == spelled.params
    # a member named twice (in any spelling) doubled its weight in the mean: refused
    with pytest.raises(InputError, match="cifar10/resnet32 is named more than once"):
        robustkit.get_defense("ensemble", members="cifar10/resnet32|CIFAR10/resnet32")


def test_the_defended_model_itself_is_not_a_member():
    """members=mnist/lenet5 around mnist/lenet5 averaged the model's logits with themselves:
    with a second member it weighed twice in the mean, silently (as a member named twice did).
    The same architecture with other weights (its own checkpoint) is another model."""
    model = robustkit.load_model("mnist/lenet5", device="cpu")
    for members in ("mnist/lenet5", "MNIST/LENET5|mnist/lenet5-at"):
        with pytest.raises(InputError, match="mnist/lenet5 is the defended model itself") as info:
            build_defense(f"ensemble:members={members}").apply(model)
        assert "\n" not in str(info.value)
    model.robustkit_weights_sha256 = "0" * 64  # (as loaded with --weights of its own)
    defended = build_defense("ensemble:members=mnist/lenet5").apply(model)
    assert defended(torch.rand(1, 1, 28, 28)).shape == (1, 10)


def test_members_with_another_number_of_classes_are_named():
    """A model of unknown data set with 100 classes and a 10-class member: the model check
    blamed the images ("cannot classify images shaped (1, 28, 28) (stack expects each tensor
    to be equal size ...); pass images of the size and channels the model expects")."""
    anonymous = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 100))
    defended = build_defense("ensemble:members=mnist/lenet5").apply(anonymous)
    with pytest.raises(
        InputError, match="the defended model has 100 classes but mnist/lenet5 has 10"
    ) as info:
        robustkit.get_attack("fgsm", eps=0.1)(defended, torch.rand(2, 1, 28, 28), [1, 2])
    assert "\n" not in str(info.value) and "images shaped" not in str(info.value)


def test_a_member_for_other_images_than_the_defended_model_is_named():
    """Beside the user's own MNIST model (no known shape), a CIFAR-10 member was blamed on the
    images: "pass images of cifar10 (--data cifar10)", which the user's model cannot take. The
    member is named now; where the defended model is a zoo model of other images too, the
    error is still about the images."""
    from robustkit.modelcheck import check_input_shape

    anonymous = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    defended = build_defense("ensemble:members=cifar10/resnet4b-at").apply(anonymous)
    with pytest.raises(
        InputError, match="ensemble member cifar10/resnet4b-at takes 3×32×32 "
    ) as info:
        check_input_shape(defended, torch.rand(2, 1, 28, 28))
    assert "pick members trained on the same images" in str(info.value)
    zoo = robustkit.load_model("cifar10/resnet4b-at", device="cpu")
    defended = build_defense("ensemble:members=cifar10/resnet20").apply(zoo)
    with pytest.raises(InputError, match=r"^cifar10/resnet4b-at takes .*pass images of cifar10$"):
        check_input_shape(defended, torch.rand(2, 1, 28, 28))
    check_input_shape(defended, torch.rand(2, 3, 32, 32))


def test_a_defended_model_returning_aux_heads_is_told_what_to_return():
    """The user's model returns (logits, aux): alone it was told to return only the logits,
    inside an ensemble the images were blamed ("cannot classify images shaped (1, 28, 28)
    (TypeError: expected Tensor as element 0 ..., but got tuple)")."""

    class AuxHeads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(784, 10)

        def forward(self, x):
            logits = self.fc(x.flatten(1))
            return logits, logits.detach()

    defended = build_defense("ensemble:members=mnist/lenet5").apply(AuxHeads().eval())
    with pytest.raises(
        InputError,
        match=r"^the defended model must return .*got a tuple of 2 outputs.*only the logits",
    ) as info:
        robustkit.get_attack("fgsm", eps=0.1)(defended, torch.rand(2, 1, 28, 28), [1, 2])
    assert "images shaped" not in str(info.value)


def test_a_member_returning_probabilities_beside_logits_is_named():
    """A member that returns probabilities (the user's softmaxed model) added outputs in [0, 1]
    to the mean of logits: it counted for almost nothing, and neither the attack's warning nor
    the probability check saw it (the mean does not look like probabilities). It is named now,
    on the first call; members that all return probabilities average to probabilities, which
    those tools flag already, and are left to them."""
    from robustkit.defenses.ensemble import AverageLogits

    from .helpers import Linear, Softmaxed

    x = torch.rand(4, 3, 8, 8)
    mixed = AverageLogits([Linear(), Softmaxed(Linear())], ["the defended model", "mine.py:net"])
    with pytest.raises(
        InputError, match=r"^ensemble member mine.py:net returns probabilities .*its logits"
    ) as info:
        robustkit.get_attack("fgsm", eps=0.1)(mixed, x, [1, 2, 3, 4])
    assert "\n" not in str(info.value)
    both = AverageLogits([Softmaxed(Linear()), Softmaxed(Linear())])
    assert torch.allclose(both(x).sum(1), torch.ones(4))
    assert AverageLogits([Linear(), Linear()])(x).shape == (4, 10)
