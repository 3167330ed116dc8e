"""Inference-time defenses wrap a model and keep the [0, 1] input contract."""

from __future__ import annotations

import pytest
import torch

import robustkit
from robustkit.attack import AttackContext
from robustkit.errors import InputError
from robustkit.threat import ThreatModel

from .helpers import Linear


def test_input_noise_is_random_and_bit_depth_masks_gradients():
    model = Linear()
    x = torch.rand(16, 3, 8, 8)
    noisy = robustkit.get_defense("input-noise", sigma=0.2).apply(model)
    assert not torch.equal(noisy(x), noisy(x))

    def grad_of(m):
        ctx = AttackContext(m, 16, torch.device("cpu"), 0, ThreatModel())
        y = model(x).argmax(1)
        _, _, g = ctx.value_and_grad(
            x, lambda z: torch.nn.functional.cross_entropy(z, y, reduction="none")
        )
        return g

    masked = robustkit.get_defense("bit-depth", bits=3).apply(model)
    assert grad_of(masked).abs().max() == 0  # rounding: zero gradient
    bpda = robustkit.get_defense("bit-depth", bits=3, bpda=True).apply(model)
    assert grad_of(bpda).abs().max() > 0
    assert torch.equal(masked(x), bpda(x))  # same forward pass
    q = torch.round(x * 7) / 7
    assert torch.allclose(masked(x), model(q))


def test_ensemble_averages_logits(monkeypatch):
    a, b = Linear(seed=1), Linear(seed=2)
    monkeypatch.setattr("robustkit.zoo.load_model", lambda name, device=None: b, raising=False)
    ens = robustkit.get_defense("ensemble", members="other").apply(a)
    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(ens(x), (a(x) + b(x)) / 2)


@pytest.mark.parametrize("spec", ["bit-depth", "input-noise", "ensemble:members=mnist/lenet5"])
def test_apply_takes_a_model_not_its_name(spec):
    """bit-depth.apply("mnist/lenet5") was accepted; attacking the result then blamed the
    images ("cannot classify images shaped ... 'str' object is not callable")."""
    name, _, rest = spec.partition(":")
    params = dict([rest.split("=")]) if rest else {}
    defense = robustkit.get_defense(name, **params)
    with pytest.raises(
        InputError, match=r"apply\(\) takes a model.*robustkit.load_model\('mnist/lenet5'\)"
    ):
        defense.apply("mnist/lenet5")
    with pytest.raises(InputError, match=r"apply\(\) takes a model"):
        defense.apply(None)
    # a plain function was wrapped, its device guessed as the CPU; attacks refuse one
    with pytest.raises(
        InputError, match=r"apply\(\) takes a model.*got function.*wrap it in an nn\.Module"
    ):
        defense.apply(lambda x: x.flatten(1)[:, :10])


def test_a_defense_that_overrides_apply_still_works():
    """Defenses written before _wrap (overriding apply, as plug-ins did) could no longer be
    created ("Can't instantiate abstract class ... with abstract method _wrap")."""

    class ClipInput(robustkit.Defense):
        name = "clip-input"

        def apply(self, model):
            return torch.nn.Sequential(torch.nn.Hardtanh(0, 1), model).eval()

    wrapped = ClipInput().apply(torch.nn.Identity())
    assert torch.equal(wrapped(torch.tensor([2.0, 0.5])), torch.tensor([1.0, 0.5]))

    class Nothing(robustkit.Defense):
        name = "nothing"

    with pytest.raises(NotImplementedError, match="Nothing must implement _wrap"):
        Nothing().apply(torch.nn.Identity())


@pytest.mark.parametrize("spec", ["bit-depth", "input-noise", "ensemble:members=other"])
def test_apply_leaves_the_callers_model_in_its_mode(spec, monkeypatch):
    """apply() called eval() on the whole wrapper, which recursed into the caller's model: a
    model still training came back in eval mode. The defense's own layers are in eval mode;
    the caller's model (and a member it loads) keeps its mode."""
    monkeypatch.setattr(
        "robustkit.zoo.load_model", lambda name, device=None: Linear(seed=2).eval(), raising=False
    )
    name, _, rest = spec.partition(":")
    params = dict([rest.split("=")]) if rest else {}
    for training in (True, False):
        model = Linear().train(training)
        wrapped = robustkit.get_defense(name, **params).apply(model)
        assert model.training is training and all(m.training is training for m in model.modules())
        assert wrapped.training is False
        assert all(not m.training for m in wrapped.modules() if m not in set(model.modules()))
