"""Properties every white-box attack must have, on small synthetic models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import robustkit
from robustkit.attacks.apgd import checkpoints
from robustkit.attacks.auto import stage_robust_accuracy
from robustkit.attacks.dct import LowFrequencySampler
from robustkit.attacks.losses import dlr, margin
from robustkit.errors import InputError
from robustkit.evaluation import iter_shards
from robustkit.runner import RunConfig, check_config
from robustkit.specs import build_attack

from .helpers import Linear, Softmaxed


class SmallCNN(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)
        )

    def forward(self, x):
        return self.net(x)


def batch(seed=0, n=24):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 8, 8, generator=gen)
    return x


MODES = [
    ("fgsm", {}),
    ("fgsm", {"random_start": True}),
    ("pgd", {"steps": 5}),
    ("pgd", {"steps": 5, "early_stop": False}),
    ("pgd", {"steps": 3, "restarts": 2, "loss": "margin"}),
    ("pgd", {"steps": 3, "loss": "dlr"}),
    ("pgd", {"steps": 3, "eot": 2}),
    ("apgd-ce", {"steps": 8}),
    ("apgd-ce", {"steps": 4, "restarts": 2}),
    ("apgd-dlr", {"steps": 8}),
    ("apgd-t", {"steps": 5, "n_target_classes": 2}),
    ("auto", {"stages": ["apgd-ce:steps=4", "apgd-t:steps=4,n_target_classes=2"]}),
]


class BallWatch(nn.Module):
    """Wraps a model and records, over every row it is asked to classify, the largest distance
    to the closest of the clean images ``x`` and how many rows lay outside the [0, 1] box. The
    clean images of :func:`batch` are far apart (L∞ about 0.9, L2 about 5), so a row within ε
    of the closest one is within ε of its own."""

    def __init__(self, model, x, norm):
        super().__init__()
        self.model, self.x, self.norm = model, x, norm
        self.farthest, self.outside_box, self.rows = 0.0, 0, 0

    def forward(self, xs):
        with torch.no_grad():
            d = (xs.detach()[:, None] - self.x[None]).flatten(2)
            dist = d.abs().amax(2) if self.norm == "linf" else d.norm(dim=2)
            self.farthest = max(self.farthest, dist.min(1).values.max().item())
            self.outside_box += int(((xs < 0) | (xs > 1)).flatten(1).any(1).sum())
            self.rows += xs.shape[0]
        return self.model(xs)


@pytest.mark.parametrize("name, params", MODES)
@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_ball_box_and_success(name, params, norm, eps):
    x = batch()
    model = BallWatch(SmallCNN(), x, norm)
    y = model(x).argmax(1)
    y[:3] = (y[:3] + 1) % 10
    res = robustkit.get_attack(name, norm=norm, eps=eps, **params)(model, x, y)
    assert (res.norms <= eps + 1e-6).all()
    # Every point the attack evaluated, not only the one it returned (which the base class
    # projects again): an iterate stepping out of the ball was once only caught by accident.
    assert model.rows > 2 * x.shape[0] and model.outside_box == 0
    assert model.farthest <= eps + 1e-6, model.farthest
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    assert torch.equal(res.success, model(res.x_adv).argmax(1) != y)
    assert not res.attacked[:3].any() and (res.gradients[:3] == 0).all()
    assert (res.queries[:3] == 0).all() and torch.equal(res.x_adv[:3], x[:3])
    assert (res.gradients[3:] >= 1).all() and (res.queries >= res.gradients).all()
    assert res.success[3:].any()  # a small untrained CNN is easy to fool at these budgets


@pytest.mark.parametrize("norm, eps", [("linf", 4 / 255), ("l2", 0.3)])
def test_targeted_pgd_reaches_targets(norm, eps):
    model = SmallCNN()
    x = batch()
    y = model(x).argmax(1)
    target = (y + 1) % 10
    res = robustkit.get_attack("pgd", norm=norm, eps=eps * 16, steps=30, targeted=True)(
        model, x, y, target
    )
    assert torch.equal(res.success, model(res.x_adv).argmax(1) == target)
    assert res.success.float().mean() > 0.5
    with pytest.raises(InputError, match="needs target labels"):
        robustkit.get_attack("pgd", targeted=True)(model, x, y)
    with pytest.raises(InputError, match="target equals the true label"):
        robustkit.get_attack("fgsm", targeted=True)(model, x, y, y)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), norm=st.sampled_from(["linf", "l2"]))
def test_robust_accuracy_does_not_increase_with_eps(seed, norm):
    model = SmallCNN(seed % 7)
    x = batch(seed)
    y = model(x).argmax(1)
    scale = 1 / 255 if norm == "linf" else 0.05
    accs = [
        robustkit.get_attack(
            "pgd",
            norm=norm,
            eps=k * scale,
            steps=10,
            step_size=k * scale / 4,
            random_start=False,
            early_stop=False,
        )(model, x, y).robust_accuracy
        for k in (1, 2, 4, 8)
    ]
    assert all(a >= b for a, b in zip(accs, accs[1:], strict=False))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.floats(0.001, 0.05))
def test_fgsm_on_a_linear_classifier_is_the_analytic_optimum(seed, eps):
    """For logits Wx + b and an image away from the box edges, L∞ FGSM on CE moves each pixel
    by ε against the gradient of the true class's log-probability; for two classes that is
    sign(w_other − w_y), which maximises the margin over the ε-ball exactly."""
    model = Linear(in_shape=(1, 4, 4), classes=2, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    x = 0.25 + 0.5 * torch.rand(6, 1, 4, 4, generator=gen)
    y = model(x).argmax(1)
    res = robustkit.get_attack("fgsm", eps=eps)(model, x, y)
    w = model.fc.weight.detach()
    direction = (w[1 - y] - w[y]).sign().view(-1, 1, 4, 4)
    expected = x + eps * direction
    assert torch.allclose(res.x_adv, expected, atol=1e-6)
    # and it is the margin-maximising point: no corner of the ball does better
    gain = ((w[1 - y] - w[y]) * (res.x_adv - x).flatten(1)).sum(1)
    assert torch.allclose(gain, eps * (w[1 - y] - w[y]).abs().sum(1), rtol=1e-4)


def test_l2_fgsm_is_the_normalised_gradient_step():
    model = Linear(in_shape=(1, 4, 4), classes=2, seed=3)
    x = 0.5 * torch.ones(4, 1, 4, 4)
    y = model(x).argmax(1)
    res = robustkit.get_attack("fgsm", norm="l2", eps=0.1)(model, x, y)
    w = model.fc.weight.detach()
    d = (w[1 - y] - w[y]) / (w[1 - y] - w[y]).norm(dim=1, keepdim=True)
    assert torch.allclose(res.x_adv.flatten(1), x.flatten(1) + 0.1 * d, atol=1e-6)
    assert torch.allclose(res.norms, torch.full((4,), 0.1), atol=1e-6)


def test_early_stop_saves_gradients_and_restarts_only_retry_survivors():
    model = SmallCNN()
    x = batch(n=48)
    y = model(x).argmax(1)
    fixed = robustkit.get_attack("pgd", eps=8 / 255, steps=10, early_stop=False)(model, x, y)
    early = robustkit.get_attack("pgd", eps=8 / 255, steps=10)(model, x, y)
    assert int(fixed.gradients.sum()) == 10 * int(fixed.attacked.sum())
    assert int(early.gradients.sum()) < int(fixed.gradients.sum())
    assert early.robust_accuracy <= fixed.robust_accuracy + 0.05
    # restarts: samples fooled in the first restart are not attacked again
    r2 = robustkit.get_attack("pgd", eps=1 / 255, steps=2, restarts=3)(model, x, y)
    r1 = robustkit.get_attack("pgd", eps=1 / 255, steps=2, restarts=1)(model, x, y)
    assert r2.robust_accuracy <= r1.robust_accuracy
    assert (r2.gradients[r2.attacked] <= 6).all()


def test_eot_counts_every_pass():
    model = SmallCNN()
    x = batch(n=8)
    y = model(x).argmax(1)
    res = robustkit.get_attack("pgd", steps=3, eot=4, early_stop=False, eps=1 / 255)(model, x, y)
    assert (res.gradients[res.attacked] == 12).all()


def test_auto_reports_stages():
    model = SmallCNN()
    x = batch(n=32)
    y = model(x).argmax(1)
    res = robustkit.get_attack("auto", eps=2 / 255)(model, x, y)
    per_stage = stage_robust_accuracy(res)
    assert len(per_stage) == 2 and per_stage[0] >= per_stage[1] == pytest.approx(
        res.robust_accuracy
    )
    with pytest.raises(InputError, match="untargeted gradient attacks"):
        robustkit.get_attack("auto", stages=["cgba"])
    # the notebook view has what the stored report has (review: no stage column or figures)
    stages = res.summary()["stages"]
    assert [s["stage"] for s in stages] == list(res.params["stages"])
    assert [s["robust_accuracy"] for s in stages] == per_stage
    frame = robustkit.evaluate(model, [robustkit.get_attack("auto", eps=2 / 255)], x, y).to_frame()
    assert frame["fooled_by"].tolist() == res.extras["fooled_by"].tolist()
    assert "stages" not in robustkit.get_attack("fgsm", eps=2 / 255)(model, x, y).summary()


def test_results_print_short():
    """A result left as a notebook cell's last line printed every tensor (3.6k characters for
    20 images); it prints its headline numbers."""
    model = SmallCNN()
    x = batch(n=64)
    y = model(x).argmax(1)
    ev = robustkit.evaluate(model, [robustkit.get_attack("fgsm", eps=2 / 255)], x, y)
    for text in (repr(ev), repr(ev.results["fgsm"])):
        assert len(text) < 300 and "tensor" not in text
    assert repr(ev).startswith("Evaluation(n=64, clean_accuracy=1,") and "['fgsm']" in repr(ev)
    assert "threat='linf 2/255'" in repr(ev.results["fgsm"])


def test_losses():
    z = torch.tensor([[3.0, 1.0, 0.0, -1.0], [0.0, 2.0, 1.0, 0.5]])
    y = torch.tensor([0, 0])
    assert torch.allclose(margin(z, y, None), torch.tensor([-2.0, 2.0]))
    assert torch.allclose(dlr(z, y, None), torch.tensor([-2.0 / 3.0, 2.0 / 1.5]))
    assert torch.allclose(dlr(3 * z + 5, y, None), dlr(z, y, None), atol=1e-6)  # scale-invariant
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"eps": 0}, "eps must be a positive"),
        ({"eps": "x"}, "eps must be a positive"),
        ({"norm": "l1"}, "unknown norm"),
        ({"steps": 0}, "steps must be a positive"),
        ({"loss": "hinge"}, "unknown loss"),
        ({"step_size": -1}, "step_size must be a positive"),
        # a Python int too large for a float raised a raw OverflowError
        (
            {"eps": 10**400},
            r"eps must be a positive number such as 0\.03 or 8/255, got 1\.00e\+400$",
        ),
        ({"eps": 10**5000}, r"got 1\.00e\+5000$"),
        ({"step_size": 10**400}, r"step_size must be a positive number, got 1\.00e\+400$"),
        # just below 2**1024 it still overflows float(): not 309 digits either
        ({"step_size": 2**1024 - 1}, r"step_size must be a positive number, got 1\.80e\+308$"),
        # a whole-number parameter's error showed the repr: thousands of digits, and past
        # 4,300 digits repr itself raised ValueError instead of the one-line error
        ({"steps": -(10**400)}, r"steps must be a positive whole number, got -1\.00e\+400$"),
        ({"steps": -(10**5000)}, r"steps must be a positive whole number, got -1\.00e\+5000$"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(InputError, match=message):
        robustkit.get_attack("pgd", **params)


HUGE = 10**5000  # its repr raises ValueError (over 4,300 digits)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: robustkit.get_attack("pgd", seed=-HUGE), "seed must be a whole number"),
        (lambda: robustkit.get_attack("cgba", max_queries=HUGE), "max_queries must be"),
        (lambda: robustkit.get_attack("cgba", batch_size=-HUGE), "batch_size must be"),
        (lambda: LowFrequencySampler((3, 8, 8), -HUGE), "dim_reduction_factor must be"),
        (lambda: robustkit.get_defense("bit-depth", bits=HUGE), "bits must be"),
        (lambda: list(iter_shards(10, -HUGE)), "batch size must be"),
        (lambda: check_config(RunConfig(model="m", n=-HUGE)), r"n \(--n\) must be"),
        # APGD's rho and alpha: "bad parameters for attack 'apgd-ce': Exceeds the limit (4300
        # digits) for integer string conversion", and 401 digits at 10**400
        (lambda: robustkit.get_attack("apgd-ce", rho=HUGE), r"rho must be a number in \(0, 1\]"),
        (lambda: robustkit.get_attack("apgd-t", alpha=-HUGE), r"alpha must be a number in"),
    ],
)
def test_a_huge_whole_number_is_named_in_three_digits(make, message):
    """Found by review: these errors showed the value's repr, which fails past 4,300 digits
    (ValueError instead of the one-line error) and is hundreds of digits before that."""
    with pytest.raises(InputError, match=message + r".*got -?1\.00e\+5000$"):
        make()


@pytest.mark.parametrize("name", ["apgd-ce", "apgd-dlr", "apgd-t"])
def test_apgd_of_one_step_is_refused(name):
    """Found by review: steps counts APGD's gradients, the first at the random start, so
    steps=1 returned a random point of the ball and called it the attack (0 fooled)."""
    with pytest.raises(InputError, match="APGD needs steps >= 2, got 1"):
        robustkit.get_attack(name, steps=1)
    assert robustkit.get_attack(name, steps=2).steps == 2


def test_probability_model_warns_and_layouts_work():
    model = SmallCNN()
    x = batch(n=8)
    y = model(x).argmax(1)
    with pytest.warns(robustkit.RobustkitWarning, match="probabilities"):
        robustkit.get_attack("fgsm")(Softmaxed(model), x, y)
    a = robustkit.get_attack("pgd", steps=3)(model, x, y)
    b = robustkit.get_attack("pgd", steps=3)(model, x.to(memory_format=torch.channels_last), y)
    c = robustkit.get_attack("pgd", steps=3)(
        model, x.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2), y
    )
    assert torch.allclose(a.x_adv, b.x_adv, atol=1e-6) and torch.equal(a.x_adv, c.x_adv)


def test_apgd_keeps_every_adversarial_iterate_it_evaluated(monkeypatch):
    """A sample whose iterate was judged adversarial ends adversarial, also when that iterate
    fell on a checkpoint that sent the state back to the best point (the answer kept was once
    the best point, not the adversarial iterate: sample 30 here)."""
    from robustkit.attack import AttackContext

    torch.manual_seed(12)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 100)).eval()
    x = torch.rand((50, 3, 4, 4), generator=torch.Generator().manual_seed(12))
    y = model(x).argmax(1).detach()
    seen = set()
    original = AttackContext.value_and_grad

    def spy(self, xs, loss_fn, idx=None):
        logits, loss, grad = original(self, xs, loss_fn, idx)
        seen.update(idx[logits.argmax(1) != y[idx]].tolist())
        return logits, loss, grad

    monkeypatch.setattr(AttackContext, "value_and_grad", spy)
    for name in ("apgd-ce", "apgd-t"):
        seen.clear()
        res = robustkit.get_attack(name, eps=0.1, steps=30, seed=12)(model, x, y)
        assert seen and seen == set(res.success.nonzero().flatten().tolist()), name


def test_apgd_t_counts_any_misclassification_and_more_targets_never_help_the_model():
    """The target only shapes the loss (AutoAttack): a sample the first target's run pushed to
    another wrong class is done; a second target once re-attacked it and kept a clean answer."""
    lin = nn.Linear(16, 5)
    s = torch.tensor([0.0, 1.0, -0.1, 2.0, 0.0])
    with torch.no_grad():
        lin.weight.copy_(s[:, None].expand(5, 16) / 16)
        lin.bias.copy_(torch.tensor([1.0, 0.1, 0.35, -0.6, -5.0]))
    model = nn.Sequential(nn.Flatten(), lin).eval()
    x, y = torch.full((1, 1, 4, 4), 0.3), torch.tensor([0])
    for k in (1, 2, 4):
        res = robustkit.get_attack("apgd-t", eps=0.7, steps=20, n_target_classes=k)(model, x, y)
        assert res.success.item() and res.adv_pred.item() != 0, k


@pytest.mark.parametrize("name, classes", [("apgd-dlr", 2), ("apgd-t", 3), ("auto", 3)])
def test_dlr_with_too_few_classes_is_a_clear_error(name, classes):
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, classes)).eval()
    x = batch(n=4)[:, :, :4, :4]
    y = model(x).argmax(1)
    with pytest.raises(
        InputError, match=f"needs at least {3 if name == 'apgd-dlr' else 4} classes"
    ):
        params = {} if name == "auto" else {"steps": 3}
        robustkit.get_attack(name, eps=0.1, **params)(model, x, y)


def test_auto_marks_samples_it_did_not_attack_as_fooled_by_no_stage():
    model = SmallCNN()
    x = batch(n=8)
    y = model(x).argmax(1)
    y[0] = (y[0] + 1) % 10  # already misclassified: not attacked
    res = robustkit.get_attack("auto", eps=2 / 255)(model, x, y)
    assert not res.attacked[0] and res.extras["fooled_by"][0] == -1


class NonFiniteGradient(nn.Module):
    """A linear model whose input gradient has one NaN (``0 · sqrt'(0)``) or infinite
    (``sqrt'(0)``) entry per image, as square roots of a zero in a preprocessing step give."""

    def __init__(self, kind):
        super().__init__()
        self.model, self.kind = Linear(), kind

    def forward(self, x):
        corner = x[:, :, :1, :1]
        extra = (corner * 0).sqrt() if self.kind == "nan" else (corner - corner.detach()).sqrt()
        return self.model(x + extra)


@pytest.mark.parametrize("kind", ["nan", "inf"])
@pytest.mark.parametrize("name", ["fgsm", "pgd", "apgd-ce"])
def test_l2_attacks_step_on_a_gradient_with_non_finite_entries(name, kind):
    # The L∞ step (the sign) takes a NaN entry as 0 and an infinite one as ±1; the L2 step
    # divided by a NaN or infinite norm and made every pixel NaN, which then failed as "the
    # model returns NaN outputs ... fix the model".
    model = NonFiniteGradient(kind).eval()
    x = batch(n=8)
    y = model(x).argmax(1)
    res = robustkit.get_attack(name, norm="l2", eps=0.5)(model, x, y)
    assert torch.isfinite(res.x_adv).all()
    assert (res.l2 <= 0.5 + 1e-6).all() and (res.l2 > 0).all()


def test_an_l2_step_on_a_confident_model_is_a_full_step():
    # Logits 150 times a linear model's: the cross-entropy gradient at a sample with a large
    # margin is ~1e-20 per pixel, whose L2 norm underflowed in float32, so FGSM left many
    # samples where they were (the L∞ sign step moved them all).
    model = nn.Sequential(Linear(), nn.Identity())
    with torch.no_grad():
        model[0].fc.weight.mul_(150)
        model[0].fc.bias.mul_(150)
    x = 0.25 + 0.5 * batch(n=32)  # away from the box: a step of 0.5 is not clamped
    y = model(x).argmax(1)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(nn.functional.cross_entropy(model(xg), y, reduction="sum"), xg)
    moving = grad.flatten(1).abs().amax(1) > 0
    assert moving.sum() >= 16  # (some gradients are exactly 0: nothing to step along)
    res = robustkit.get_attack("fgsm", norm="l2", eps=0.5)(model.eval(), x, y)
    assert torch.allclose(res.l2[moving], torch.full((int(moving.sum()),), 0.5), atol=1e-4)


@pytest.mark.parametrize("name", ["apgd-ce", "apgd-t", "auto"])
def test_targets_given_to_an_attack_without_a_targeted_mode_are_refused_with_a_possible_fix(name):
    """Targets given to APGD or auto were refused with "create it with targeted=True", which
    these attacks refuse in turn ("has no parameter 'targeted'"): the advice led nowhere."""
    model = SmallCNN()
    x = batch(n=4)
    y = model(x).argmax(1)
    with pytest.raises(InputError, match=f"{name} has no targeted mode") as err:
        robustkit.get_attack(name, eps=2 / 255)(model, x, y, (y + 1) % 10)
    assert "create it with" not in str(err.value) and "pgd" in str(err.value)
    # an attack that has one is still told how to turn it on
    with pytest.raises(InputError, match="create it with targeted=True"):
        robustkit.get_attack("pgd", eps=2 / 255)(model, x, y, (y + 1) % 10)


def test_an_attack_that_fixes_targeted_itself_takes_targets():
    """The refusal of targets for attacks without a targeted mode read the constructor's
    parameters only: an attack of one's own that is always targeted (calling the base class with
    targeted=True, no such parameter of its own) was refused its targets."""
    from robustkit.attack import Attack

    class AlwaysTargeted(Attack):
        name = "always-targeted"

        def __init__(self, eps: float = 2 / 255):
            super().__init__(norm="linf", eps=eps, targeted=True)

        def _attack(self, ctx, x, y, target):
            return x

    model = SmallCNN()
    x = batch(n=4)
    y = model(x).argmax(1)
    result = AlwaysTargeted()(model, x, y, (y + 1) % 10)
    assert not result.success.any()


@pytest.mark.parametrize("seed, eps", [(4, 4 / 255), (7, 8 / 255), (10, 8 / 255)])
def test_more_targeted_restarts_never_help_the_model(seed, eps):
    """A targeted restart's answer that missed the target but was misclassified was replaced by
    the next restart's, which could be classified correctly again: robust accuracy rose with
    restarts (here 0.771/0.792/0.771, 0.583/0.563/0.583 and 0.896/0.917/0.917 for 1/2/3)
    while the success rate stayed put. A sample robust after more restarts was robust after
    fewer, and a sample fooled stays fooled."""
    model = SmallCNN(seed % 7)
    x = batch(seed, n=48)
    y = model(x).argmax(1)
    target = (y + 1 + seed % 3) % 10
    runs = [
        robustkit.get_attack("pgd", eps=eps, steps=3, restarts=r, targeted=True, seed=seed)(
            model, x, y, target
        )
        for r in (1, 2, 3)
    ]
    for fewer, more in zip(runs, runs[1:], strict=False):
        assert not (more.robust & ~fewer.robust).any()
        assert not (fewer.success & ~more.success).any()
        assert more.robust_accuracy <= fewer.robust_accuracy


@pytest.mark.parametrize("name", ["pgd", "fgsm", "apgd-ce", "auto"])
@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_every_result_is_inside_the_ball_as_a_user_measures_it(name, norm, eps):
    """Pixels of k/255 one ε away rounded to 3e-8 beyond ε in float32: every L∞ result
    reported a norm above its ε, and ``(x_adv - x).abs().max() <= eps`` failed."""
    x = (
        torch.randint(0, 256, (8, 3, 8, 8), generator=torch.Generator().manual_seed(0)) / 255
    ).float()
    model = Linear()
    y = model(x).argmax(1)
    params = {"steps": 4} if name == "apgd-ce" else {}
    res = robustkit.get_attack(name, norm=norm, eps=eps, **params)(model, x, y)
    assert res.norms.double().max().item() <= eps
    assert flat_norm_of(res.x_adv - x, norm) <= eps


@pytest.mark.parametrize("name", ["fgsm", "pgd", "apgd-ce"])
def test_every_l2_result_on_cifar_sized_images_is_inside_the_ball_as_measured(name):
    """On 3×32×32 images away from the box, L2 results of 0.5 measured 6e-8 beyond ε (1 to 6
    samples of 32): the final projection's correction moved no pixel at that size."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 32 * 32, 10)
    ).eval()
    x = 0.25 + 0.5 * torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1)
    params = {"steps": 5} if name != "fgsm" else {}
    res = robustkit.get_attack(name, norm="l2", eps=0.5, **params)(model, x, y)
    assert res.norms.double().max().item() <= 0.5
    assert flat_norm_of(res.x_adv - x, "l2") <= 0.5
    assert res.norms.double().max().item() > 0.5 - 1e-5  # (full steps: the ball's edge)


def flat_norm_of(delta, norm):
    flat = delta.flatten(1)
    return (flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)).double().max().item()


@pytest.mark.parametrize(
    "steps, expected",
    [
        (100, [22, 41, 57, 70, 80, 87, 93, 99]),  # ceil(p_j * 100) for p = .22, .41, .57, ...
        (20, [5, 9, 12, 14, 16, 18, 19]),  # 0.70 * 20 = 14 exactly
        (10, [3, 5, 6, 7, 8, 9]),
        (1000, [220, 410, 570, 700, 800, 870, 930, 990]),
    ],
)
def test_apgd_checkpoints_are_the_paper_s_exactly(steps, expected):
    """w_j = ceil(p_j N) with p = 0.22, 0.41, 0.57, 0.70, ... (Croce & Hein 2020); summed in
    floats, p_3 was 0.5700000000000001 and p_4 0.7000000000000001, so at round step counts
    (10, 20, 100, 1000) a checkpoint came one iteration late (58 for 57 at 100 steps)."""
    assert checkpoints(steps) == expected


@pytest.mark.parametrize("name", ["apgd-dlr", "apgd-t"])
def test_dlr_with_too_few_classes_names_a_fix_the_attack_takes(name):
    """apgd-dlr and apgd-t take no loss parameter: "use loss=ce or loss=margin" sent the user to
    an unknown-parameter error; the fix for them is apgd-ce."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 3 if name == "apgd-t" else 2)).eval()
    x = batch(n=4)[:, :, :4, :4]
    with pytest.raises(InputError) as info:
        robustkit.get_attack(name, eps=0.1, steps=3)(model, x, model(x).argmax(1))
    assert "use apgd-ce instead of apgd-dlr or apgd-t" in str(info.value)
    with pytest.raises(InputError):  # (what the old message advised)
        robustkit.get_attack(name, eps=0.1, loss="ce")


@pytest.mark.parametrize("eps", [0.1, 0.5])
def test_auto_on_too_few_classes_for_its_stages_is_refused_whatever_the_first_stage_did(eps):
    """auto's APGD-T stage needs 4 classes; it ran only on samples APGD-CE left, so on one
    3-class model auto succeeded at ε = 0.5 (nothing left) and failed at ε = 0.1 after spending
    the first stage (a sharded run failed on some shards only). Refused up front, before any
    gradient."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 3)).eval()
    x = batch(n=4)[:, :, :4, :4]
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    y = model(x).argmax(1)
    calls.clear()
    with pytest.raises(InputError, match="needs at least 4 classes and the model has 3"):
        robustkit.get_attack("auto", eps=eps)(model, x, y)
    assert len(calls) <= 1  # the model check's pass, no attack step


# --------------------------------------------------------------------------------------------
# Exact cases on linear models, counts against the model's own passes, and orderings that the
# algorithms guarantee (more ε, restarts, targets or stages; early stop)
# --------------------------------------------------------------------------------------------
def binary_linear(seed, in_shape=(1, 4, 4)):
    """A two-class linear model, its weights in float64, and for images ``x`` their labels,
    each label's margin ``z_y − z_other`` and the weight difference ``w_other − w_y``."""
    model = Linear(in_shape=in_shape, classes=2, seed=seed)
    w = model.fc.weight.detach().double()
    b = model.fc.bias.detach().double()

    def geometry(x):
        y = model(x).argmax(1)
        dw = w[1 - y] - w[y]
        margin = b[y] - b[1 - y] - (dw * x.flatten(1).double()).sum(1)
        return y, margin, dw

    return model, geometry


LINF_OPTIMAL = [
    ("fgsm", {}),
    ("pgd", {}),
    ("pgd", {"random_start": False}),
    ("pgd", {"early_stop": False}),
    ("apgd-ce", {"steps": 3}),
    ("auto", {"stages": "apgd-ce:steps=3"}),
]


@pytest.mark.parametrize("name, params", LINF_OPTIMAL)
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_linf_attacks_on_a_binary_linear_model_succeed_exactly_where_the_optimum_does(
    name, params, seed
):
    """On logits Wx + b with two classes the best point of the L∞ ball and the box moves each
    pixel by ε toward sign(w_other − w_y), clamped at the box: a sample can be fooled exactly
    where that gain exceeds its margin. FGSM takes that point; PGD (any start: its steps add
    up to 2.5·ε) and APGD (its first step of 2·ε) reach it; so success is known in closed form
    at every ε, box edges included, and grows with ε on the same seed."""
    model, geometry = binary_linear(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(12, 1, 4, 4, generator=gen)
    x[:4] = (x[:4] > 0.5).float()  # pixels on the box's edges
    y, margin, dw = geometry(x)
    before = torch.zeros_like(y, dtype=torch.bool)
    for eps in (0.01, 0.03, 0.1):
        xf = x.flatten(1).double()
        gain = (dw * ((xf + eps * dw.sign()).clamp(0, 1) - xf)).sum(1)
        clear = (gain - margin).abs() > 1e-4  # (not a tie to float32 rounding)
        res = robustkit.get_attack(name, eps=eps, seed=seed, **params)(model, x, y)
        assert torch.equal(res.success[clear], (gain > margin)[clear]), eps
        assert not (before & ~res.success).any()  # never weaker with a larger ε
        before = res.success


@pytest.mark.parametrize(
    "name, params, complete",
    [
        ("fgsm", {}, 1.0),
        ("pgd", {"random_start": False}, 1.0),
        # (from a random start: its steps of 2·ε projected onto the ball come within 1e-5)
        ("apgd-ce", {"steps": 10}, 0.999),
        # from any start in the ball, 10 steps of ε/4 projected onto the ball reach at least
        # 0.953 of the optimal gain (worst start: opposite the optimum, off its axis)
        ("pgd", {}, 0.95),
        ("fgsm", {"random_start": True}, 0.0),  # (FGSM-RS: only sound, not complete)
    ],
)
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_l2_attacks_on_a_binary_linear_model_reach_the_analytic_minimal_distance(
    name, params, complete, seed
):
    """Away from the box, the smallest L2 perturbation that fools a two-class linear model is
    margin / ‖w_y − w_other‖₂: no attack may succeed where that exceeds ε (soundness), and
    FGSM and PGD from the clean image step straight to it, so they succeed wherever it is
    below ε (APGD wherever it is below 0.999·ε, PGD from a random start below 0.95·ε)."""
    model, geometry = binary_linear(seed)
    gen = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.4 * torch.rand(12, 1, 4, 4, generator=gen)  # x ± 0.2 stays in the box
    y, margin, dw = geometry(x)
    distance = margin / dw.norm(dim=1)
    for eps in (0.05, 0.1, 0.2):
        res = robustkit.get_attack(name, norm="l2", eps=eps, seed=seed, **params)(model, x, y)
        assert not (res.success & (distance > eps * (1 + 1e-4))).any(), eps
        assert res.success[distance < complete * eps * (1 - 1e-4)].all(), eps


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fgsm_on_a_multiclass_linear_model_steps_along_the_closest_class(norm):
    """With the margin loss, FGSM on a linear model of 10 classes steps by exactly ε along
    w_j − w_y (its sign for L∞), j the runner-up class: the gradient of z_j − z_y. Targeted,
    along w_t − w_y (the true class is the runner-up of the target)."""
    model = Linear(in_shape=(1, 4, 4), classes=10, seed=5)
    x = 0.25 + 0.5 * torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    logits = model(x).detach()
    y = logits.argmax(1)
    runner_up = logits.scatter(1, y[:, None], float("-inf")).argmax(1)
    target = (y + 3) % 10
    w = model.fc.weight.detach().double()
    eps = 0.05
    for other, tgt in ((runner_up, None), (target, target)):
        d = w[other] - w[y]
        d = d.sign() if norm == "linf" else d / d.norm(dim=1, keepdim=True)
        atk = robustkit.get_attack(
            "fgsm", norm=norm, eps=eps, loss="margin", targeted=tgt is not None
        )
        res = atk(model, x, y, tgt)
        assert torch.allclose(res.x_adv.flatten(1).double(), x.flatten(1) + eps * d, atol=1e-6)
        pred = model(res.x_adv).argmax(1)
        assert torch.equal(res.success, pred == tgt if tgt is not None else pred != y)


class PassCounter(nn.Module):
    """Counts, per clean image of ``x`` (the nearest: :func:`batch`'s images are far apart),
    the rows the model is given while ``active`` and those of them that need a gradient."""

    def __init__(self, model, x):
        super().__init__()
        self.model, self.x, self.active = model, x, False
        self.rows = torch.zeros(x.shape[0], dtype=torch.long)
        self.grad_rows = torch.zeros_like(self.rows)

    def forward(self, xs):
        if self.active:
            with torch.no_grad():
                who = (xs.detach()[:, None] - self.x[None]).flatten(2).abs().amax(2).argmin(1)
            self.rows.index_add_(0, who, torch.ones_like(who))
            if xs.requires_grad:
                self.grad_rows.index_add_(0, who, torch.ones_like(who))
        return self.model(xs)


COUNTED = MODES + [
    ("pgd", {"steps": 3, "restarts": 3}),
    ("fgsm", {"targeted": True}),
    ("pgd", {"steps": 3, "restarts": 3, "targeted": True}),
]


@pytest.mark.parametrize("name, params", COUNTED)
@pytest.mark.parametrize("norm, eps", [("linf", 4 / 255), ("l2", 0.25)])
def test_counts_are_the_passes_the_model_made_for_each_sample(name, params, norm, eps):
    """``queries`` and ``gradients`` per sample are the rows of that sample the model was given
    during the attack (with a gradient, for ``gradients``), counted by the model itself: the
    clean pass and the re-check aside, except that FGSM's and PGD's first gradient is taken in
    the clean pass and counted. Samples the model gets wrong cost nothing and keep x."""
    x = batch()
    model = PassCounter(SmallCNN(), x)
    y = model(x).argmax(1)
    y[:3] = (y[:3] + 1) % 10
    target = (y + 1 + torch.arange(len(y)) % 3) % 10 if params.get("targeted") else None
    attack = robustkit.get_attack(name, norm=norm, eps=eps, **params)
    run = attack._attack

    def counted_run(*args):
        model.active = True
        try:
            return run(*args)
        finally:
            model.active = False

    attack._attack = counted_run
    res = attack(model, x, y, target)
    in_clean_pass = int(attack.clean_gradient_loss(y, target) is not None) * res.attacked.long()
    assert torch.equal(res.queries, model.rows + in_clean_pass)
    assert torch.equal(res.gradients, model.grad_rows + in_clean_pass)
    assert (res.gradients[3:] >= 1).all() and (res.queries[:3] == 0).all()
    assert torch.equal(res.x_adv[:3], x[:3])


@pytest.mark.parametrize(
    "name, params",
    [
        ("fgsm", {}),
        ("fgsm", {"random_start": True}),
        ("pgd", {"steps": 5}),
        ("pgd", {"steps": 5, "early_stop": False}),
        ("pgd", {"steps": 3, "restarts": 3, "loss": "margin"}),
        ("pgd", {"steps": 3, "loss": "dlr"}),
        ("pgd", {"steps": 3, "eot": 2}),
    ],
)
@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_targeted_ball_box_and_success(name, params, norm, eps):
    """Targeted: every point evaluated is in the ball and the box, success is re-prediction as
    the target, robust is re-prediction as the true label, and samples the model gets wrong
    are not attacked."""
    x = batch()
    model = BallWatch(SmallCNN(), x, norm)
    y = model(x).argmax(1)
    y[:3] = (y[:3] + 1) % 10
    target = (y + 1 + torch.arange(len(y)) % 4) % 10
    res = robustkit.get_attack(name, norm=norm, eps=eps, targeted=True, **params)(
        model, x, y, target
    )
    assert model.outside_box == 0 and model.farthest <= eps + 1e-6, model.farthest
    assert flat_norm_of(res.x_adv - x, norm) <= eps
    pred = model(res.x_adv).argmax(1)
    assert torch.equal(res.adv_pred, pred) and torch.equal(res.success, pred == target)
    assert torch.equal(res.robust, res.attacked & (pred == y))
    assert not res.attacked[:3].any() and torch.equal(res.x_adv[:3], x[:3])
    assert (res.gradients[:3] == 0).all() and (res.queries[:3] == 0).all()
    assert res.success[3:].any()


@pytest.mark.parametrize(
    "name, params, targeted",
    [
        ("pgd", {"steps": 4}, False),
        ("pgd", {"steps": 4, "restarts": 2}, False),
        ("pgd", {"steps": 4, "restarts": 2, "loss": "margin"}, True),
        ("pgd", {"steps": 3, "eot": 2}, False),
        ("apgd-ce", {"steps": 6}, False),
        ("apgd-dlr", {"steps": 6, "restarts": 2}, False),
        ("apgd-t", {"steps": 6, "n_target_classes": 3}, False),
    ],
)
@pytest.mark.parametrize("norm, eps", [("linf", 3 / 255), ("l2", 0.15)])
def test_early_stop_changes_the_cost_not_the_answer(name, params, targeted, norm, eps):
    """A sample's answer is its first adversarial iterate either way, and its iterates up to
    then do not depend on the others: stopping early saves gradients and returns the same
    examples as running every step."""
    model = SmallCNN(1)
    x = batch(1, n=32)
    y = model(x).argmax(1)
    target = (y + 1) % 10 if targeted else None
    runs = [
        robustkit.get_attack(
            name, norm=norm, eps=eps, targeted=targeted, early_stop=stop, seed=1, **params
        )(model, x, y, target)
        if targeted
        else robustkit.get_attack(name, norm=norm, eps=eps, early_stop=stop, seed=1, **params)(
            model, x, y
        )
        for stop in (True, False)
    ]
    early, full = runs
    assert torch.equal(early.success, full.success)
    assert torch.allclose(early.x_adv, full.x_adv, atol=1e-6)
    assert (early.gradients <= full.gradients).all()
    if name == "pgd":  # every step of each restart it takes, one gradient per EOT pass
        per_restart = params["steps"] * params.get("eot", 1)
        restarts = params.get("restarts", 1)
        assert set(full.gradients.tolist()) <= {per_restart * r for r in range(1, restarts + 1)}
        assert (full.gradients[full.robust] == per_restart * restarts).all()


@pytest.mark.parametrize("norm, eps", [("linf", 3 / 255), ("l2", 0.15)])
def test_more_restarts_targets_or_stages_never_help_any_sample(norm, eps):
    """The first restart (target, stage) of a longer run is the shorter run itself (same seed,
    same draws), and later ones attack only the samples still standing: a sample fooled by the
    shorter run is fooled by the longer one. (The aggregate was checked; a sample could have
    traded places with another.)"""
    from robustkit.device import derive_seed

    model = SmallCNN(2)
    x = batch(2, n=32)
    y = model(x).argmax(1)
    chains = [
        [robustkit.get_attack("pgd", norm=norm, eps=eps, steps=3, restarts=r) for r in (1, 2, 3)],
        # (one step: a restart's answer is its last iterate, judged only after its steps)
        [robustkit.get_attack("pgd", norm=norm, eps=eps, steps=1, restarts=r) for r in (1, 2, 4)],
        [robustkit.get_attack("apgd-ce", norm=norm, eps=eps, steps=4, restarts=r) for r in (1, 3)],
        [
            robustkit.get_attack("apgd-t", norm=norm, eps=eps, steps=4, n_target_classes=k)
            for k in (1, 2, 4)
        ],
        [
            robustkit.get_attack("apgd-ce", norm=norm, eps=eps, steps=4, seed=derive_seed(0, 0)),
            robustkit.get_attack(
                "auto", norm=norm, eps=eps, stages="apgd-ce:steps=4+apgd-t:steps=4"
            ),
        ],
    ]
    for chain in chains:
        results = [attack(model, x, y) for attack in chain]
        for fewer, more in zip(results, results[1:], strict=False):
            assert not (fewer.success & ~more.success).any(), chain
            # a sample the shorter run fooled was not attacked again
            done = fewer.success
            assert torch.equal(more.gradients[done], fewer.gradients[done]), chain
        assert results[0].success.any() and not results[-1].success.all()
    # auto's first stage fooled exactly what that attack alone fools
    first, auto = results
    assert torch.equal(auto.extras["fooled_by"] == 0, first.success)


@pytest.mark.parametrize(
    "name, params",
    [
        ("fgsm", {}),
        ("fgsm", {"random_start": True}),
        ("pgd", {"steps": 5}),
        ("apgd-ce", {"steps": 6}),
        ("apgd-t", {"steps": 6, "n_target_classes": 2}),
        ("auto", {"stages": "apgd-ce:steps=5+apgd-t:steps=5;n_target_classes=2"}),
    ],
)
@pytest.mark.parametrize("norm, scale", [("linf", 1 / 255), ("l2", 0.05)])
def test_robust_accuracy_falls_as_eps_doubles_for_every_white_box_attack(name, params, norm, scale):
    """No guarantee on a nonlinear model (it is exact on linear ones, above), but a larger ε on
    the same seed must not leave more samples standing: here each doubling of ε fools more
    of 32 (measured: 2 to 11 more), for every attack."""
    model = SmallCNN(0)
    x = batch(0, n=32)
    y = model(x).argmax(1)
    accs = [
        robustkit.get_attack(name, norm=norm, eps=k * scale, **params)(model, x, y).robust_accuracy
        for k in (1, 2, 4)
    ]
    assert all(a > b for a, b in zip(accs, accs[1:], strict=False)), accs


@pytest.mark.parametrize(
    "spec", ["pgd:random_start=false,restarts=3", "pgd:restarts=2,random_start=false,eot=1"]
)
def test_pgd_restarts_without_a_random_start_are_refused(spec):
    """Found by review: every restart of PGD without a random start starts at the clean image,
    so with one pass per gradient it repeated the first restart on the samples it left (on a
    SmallCNN, 32 images: the same examples and robust accuracy as restarts=1, 91 gradients
    grown to 247). Refused with the fix; a randomized model attacked with eot > 1 draws anew in
    every restart, so there the restarts differ and run."""
    from robustkit.specs import build_attack

    with pytest.raises(InputError, match=r"restarts=\d without a random start repeat") as err:
        build_attack(spec)
    assert "set random_start=true or restarts=1" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="restarts=3 without a random start"):
        robustkit.get_attack("auto", stages="apgd-ce:steps=2+pgd:random_start=false;restarts=3")
    # what still runs: one restart, random starts, or EOT on a randomized model
    model = SmallCNN(0)
    x = batch(0, n=8)
    y = model(x).argmax(1)
    for params in (
        {"random_start": False},
        {"random_start": True, "restarts": 2},
        {"random_start": False, "restarts": 2, "eot": 2},
    ):
        robustkit.get_attack("pgd", eps=1 / 255, steps=2, **params)(model, x, y)


@pytest.mark.parametrize(
    "stages, repeated",
    [
        ("fgsm+fgsm", "fgsm"),
        # the same attack written otherwise (a default spelled out) is the same stage
        ("fgsm+fgsm:loss=ce", "fgsm:loss=ce"),
        ("pgd:random_start=false+apgd-ce:steps=2+pgd:random_start=False", "pgd:random_start=false"),
    ],
)
def test_auto_refuses_a_stage_that_repeats_an_earlier_one_without_drawing(stages, repeated):
    """Found by review: a stage that draws nothing at random (FGSM, PGD without a random start,
    one pass per gradient) given twice ran again on the samples the first left and repeated
    its steps exactly: the same answers, more gradients. Refused with the fix; a stage that
    draws (APGD, a random start, EOT) gets its own seed, so repeating it is a fresh attack."""
    with pytest.raises(InputError, match=f"auto stage '{repeated}' repeats") as err:
        robustkit.get_attack("auto", stages=stages)
    assert "\n" not in str(err.value) and "drop it or set random_start=true" in str(err.value)
    for fine in ("apgd-ce:steps=2+apgd-ce:steps=2", "fgsm+fgsm:random_start=true", "pgd+pgd"):
        robustkit.get_attack("auto", stages=fine)
    model = SmallCNN(0)
    x = batch(0, n=16)
    y = model(x).argmax(1)
    once = robustkit.get_attack("auto", eps=1 / 255, stages="fgsm")(model, x, y)
    twice = robustkit.get_attack("auto", eps=1 / 255, stages="fgsm+pgd:steps=2")(model, x, y)
    assert (twice.success >= once.success).all()


def test_documented_limits_of_step_size_and_n_target_classes():
    """Found by review, now documented (README, docstrings): in L∞ every PGD step above 2·ε
    (the ball's width) acts as 2·ε, so step_size=1 with ε=1/255 is no larger step than
    2/255; and APGD-T attacks each wrong class once where the model has fewer than
    n_target_classes + 1 classes (the default 9 on a 5-class model is 4 targets)."""
    model = Linear(classes=5)
    x = batch(1, n=16)
    y = model(x).argmax(1)
    eps = 1 / 255
    runs = [
        robustkit.get_attack("pgd", eps=eps, steps=3, step_size=s)(model, x, y)
        for s in (2 * eps, 5 * eps, 1.0)
    ]
    assert all(torch.equal(runs[0].x_adv, r.x_adv) for r in runs[1:])
    nine, four = (
        robustkit.get_attack("apgd-t", eps=eps, steps=4, n_target_classes=k)(model, x, y)
        for k in (9, 4)
    )
    assert torch.equal(nine.x_adv, four.x_adv) and torch.equal(nine.gradients, four.gradients)
    assert nine.gradients.max() == 4 * 4  # steps × the 4 wrong classes


@pytest.mark.parametrize("name", ["pgd", "fgsm"])
def test_a_step_size_is_written_as_eps_is(name):
    """Found by review: get_attack("pgd", eps="8/255") was accepted but step_size="2/255"
    refused ("must be a positive number"), though the CLI spec pgd:step_size=2/255 works: a
    step size in pixel units now takes what ε takes, parsed the same way."""
    for text, value in (("2/255", 2 / 255), ("2 / 255", 2 / 255), ("0.01", 0.01)):
        atk = robustkit.get_attack(name, eps="8/255", step_size=text)
        assert atk.step_size == value and atk.params["step_size"] == value
        assert atk.step_size == build_attack(f"{name}:step_size={text}").step_size
    for bad in ("x", "0", "-2/255", "2/0", "8/255/2", "inf"):
        with pytest.raises(
            InputError, match=r"^step_size must be a positive number such as 0\.03 or 8/255, got"
        ):
            robustkit.get_attack(name, step_size=bad)
    # a number stays exactly what it was (a NumPy float32 is not rounded through its text)
    assert robustkit.get_attack(name, step_size=np.float32(0.1)).step_size == float(np.float32(0.1))
