"""Sanity checks catch randomized, gradient-masking and softmax-output models."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import robustkit
from robustkit.runner import RunConfig, run_evaluation
from robustkit.sanity import (
    check_gradients,
    check_more_steps,
    check_probabilities,
    check_randomized,
    run_checks,
    was_checked,
)

from .helpers import Linear, Softmaxed


class Noisy(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x + 0.05 * torch.randn_like(x))


class Rounding(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 4) / 4)


def test_checks_on_synthetic_models():
    base = Linear()
    x = torch.rand(32, 3, 8, 8)
    y = base(x).argmax(1)
    pgd = robustkit.get_attack("pgd")
    assert not check_randomized(base, x, [pgd])[1] and check_randomized(Noisy(base), x, [pgd])[1]
    assert "EOT" in check_randomized(Noisy(base), x, [pgd])[2]
    assert not check_probabilities(base, x)[1] and check_probabilities(Softmaxed(base), x)[1]
    assert not check_gradients(base, x, y)[1]
    flagged, detail = check_gradients(Rounding(base), x, y)[1:]
    assert flagged and "gradient masking" in detail


def _model_file(tmp_path, body: str) -> str:
    src = tmp_path / "wrapped.py"
    src.write_text(
        "import torch\nimport robustkit\n"
        "def build():\n"
        "    base = robustkit.load_model('mnist/cnn-tiny-at', device='cpu')\n"
        f"{body}\n"
    )
    return f"{src}:build"


def test_runs_are_flagged_in_the_store_and_leaderboard(tmp_path):
    from robustkit.leaderboard import build
    from robustkit.store import Store

    db = tmp_path / "s.db"
    cases = {
        "noise": "    class M(torch.nn.Module):\n        def forward(self, x):\n"
        "            return base(x + 0.1 * torch.randn_like(x))\n    return M()",
        "round": "    class M(torch.nn.Module):\n        def forward(self, x):\n"
        "            return base(torch.round(x * 3) / 3)\n    return M()",
        "softmax": "    class M(torch.nn.Module):\n        def forward(self, x):\n"
        "            return base(x).softmax(1)\n    return M()",
    }
    expected = {
        "noise": "randomized_outputs",
        "round": "gradient_masking",
        "softmax": "probability_outputs",
    }
    for name, body in cases.items():
        (tmp_path / name).mkdir()
        model = _model_file(tmp_path / name, body)
        report = run_evaluation(
            RunConfig(
                model=model, dataset="mnist", n=40, batch_size=40, attacks=("pgd",), device="cpu"
            ),
            db=db,
            progress=False,
        )
        flagged = {c["name"] for c in report["checks"] if c["flagged"]}
        assert expected[name] in flagged, (name, report["checks"])
    clean = run_evaluation(
        RunConfig(model="mnist/cnn-tiny-at", n=40, batch_size=40, attacks=("fgsm",), device="cpu"),
        db=db,
        progress=False,
    )
    assert not any(c["flagged"] for c in clean["checks"])
    with Store.open(db) as store:
        board = build(store)
    rows = board["tables"][0]["rows"]
    assert sum(bool(r["flags"]) for r in rows) == 3
    assert all(r["reasons"] for r in rows if r["flags"])
    # the CSV says why too, not only which check (the README promises the reason everywhere)
    from robustkit.leaderboard import to_csv

    lines = to_csv(board).splitlines()
    reasons = lines[0].split(",").index("reasons")
    flagged_lines = [line for line in lines[1:] if "randomized_outputs" in line]
    assert flagged_lines and all("EOT" in line for line in flagged_lines)
    assert reasons > 0
    assert robustkit.list_models("mnist/cnn-tiny-at")


def test_convergence_check_flags_a_weak_pgd_but_not_one_a_stronger_attack_corrects():
    from types import SimpleNamespace

    from robustkit.sanity import check_more_steps

    model = Linear()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(64, 3, 8, 8, generator=gen) * 0.5 + 0.25
    y = model(x).argmax(1)
    eps = 0.02
    # two tiny steps reach a tenth of the ε-ball: doubling them fools more samples
    weak = robustkit.get_attack("pgd", eps=eps, steps=2, step_size=eps / 20, random_start=False)
    run = SimpleNamespace(attacks={"pgd": weak}, model=model)
    flagged, detail = check_more_steps(run, x, y)[1:]
    assert flagged and "survived 2 steps" in detail
    # the samples a strong PGD leaves robust are robust in the whole ε-ball of a linear model,
    # so the worst case of a run that also holds the strong attack is converged
    strong = robustkit.get_attack("pgd", eps=eps, steps=50, step_size=eps / 4)
    survivors = strong(model, x, y).robust
    assert 10 <= int(survivors.sum()) < 64
    flagged, detail = check_more_steps(run, x, y, survivors=survivors)[1:]
    assert not flagged and "every attack of the run" in detail
    # a targeted PGD is checked toward the run's targets (it needs them: without, an error)
    weak_t = robustkit.get_attack("pgd", eps=4 * eps, steps=2, step_size=eps / 5, targeted=True)
    run_t = SimpleNamespace(attacks={"pgd": weak_t}, model=model)
    target = (y + 1) % 10
    flagged, detail = check_more_steps(run_t, x, y, target=target)[1:]
    assert "survived 2 steps" in detail
    with pytest.raises(ValueError, match="needs the run's targets"):
        check_more_steps(run_t, x, y)


def test_label_only_beating_white_box_is_judged_within_one_threat_model():
    """Gradient masking shows as a label-only attack fooling more than every white-box attack of
    the same threat model; other norms, ε or targeted attacks are no comparison."""
    from robustkit.sanity import check_decision_beats_whitebox

    def attack(family, norm, eps, robust, targeted=False):
        params = {"norm": norm, "eps": eps, "targeted": targeted}
        if family == "decision":
            params["max_queries"] = 1000
        return {"family": family, "params": params, "robust_accuracy": robust}

    cgba = attack("decision", "l2", 0.5, 0.2)
    cases = [
        ({"pgd": attack("gradient", "l2", 0.5, 0.5), "cgba": cgba}, True),
        ({"pgd": attack("gradient", "l2", 0.5, 0.2), "cgba": cgba}, False),
        ({"pgd": attack("gradient", "linf", 8 / 255, 0.5), "cgba": cgba}, False),
        ({"pgd": attack("gradient", "l2", 0.5, 0.9, targeted=True), "cgba": cgba}, False),
        ({"pgd": attack("gradient", "l2", 0.25, 0.5), "cgba": cgba}, False),
    ]
    for attacks, flagged in cases:
        name, got, detail = check_decision_beats_whitebox({"attacks": attacks})
        assert got is flagged, (attacks, detail)
    assert "same threat model" in check_decision_beats_whitebox({"attacks": cases[2][0]})[2]


def test_label_only_one_point_below_white_box_is_not_flagged_whatever_the_rounding():
    """The check flags a label-only attack more than one point below the white-box ones: at 6%
    against 7% (one sample of 100) it flagged, as 0.07 - 0.01 rounds to 0.06000000000000001,
    while 9% against 10% was let pass."""
    from robustkit.sanity import check_decision_beats_whitebox

    for white, black in ((7, 6), (10, 9), (13, 12)):
        params = {"norm": "l2", "eps": 0.5, "targeted": False}
        attacks = {
            "pgd": {"family": "gradient", "params": params, "robust_accuracy": white / 100},
            "cgba": {
                "family": "decision",
                "params": {**params, "max_queries": 1000},
                "robust_accuracy": black / 100,
            },
        }
        _, flagged, detail = check_decision_beats_whitebox({"attacks": attacks})
        assert not flagged, (white, black, detail)


def test_a_randomized_model_is_flagged_only_when_no_gradient_attack_uses_eot():
    """EOT is the fix the check advises: a run whose gradient attack averages over draws (eot > 1,
    also as a stage of auto) is not flagged, and its detail says the model is randomized and
    with which EOT it was evaluated; without one (plain PGD, FGSM, PGD beside a label-only
    attack) it is flagged. With no gradient attack at all (only label-only attacks, none) EOT
    does not apply: not checked (a CGBA-only run was told to use EOT)."""
    noisy = Noisy(Linear())
    x = torch.rand(32, 3, 8, 8)
    pgd, eot_pgd = robustkit.get_attack("pgd"), robustkit.get_attack("pgd", eot=10)
    auto_eot = robustkit.get_attack("auto", stages="pgd:steps=5;eot=4")
    cgba = robustkit.get_attack("cgba", max_queries=100)
    for attacks in ([pgd], [robustkit.get_attack("fgsm")], [pgd, cgba], {"pgd": pgd}):
        name, flagged, detail = check_randomized(noisy, x, attacks)
        assert name == "randomized_outputs" and flagged and "EOT" in detail, attacks
    for attacks, eot in (([eot_pgd], 10), ({"auto": auto_eot, "cgba": cgba}, 4)):
        flagged, detail = check_randomized(noisy, x, attacks)[1:]
        assert not flagged and f"randomized; evaluated with EOT={eot}" in detail, attacks
    for attacks in ([cgba], []):
        flagged, detail = check_randomized(noisy, x, attacks)[1:]
        assert not flagged and not was_checked(detail) and "no gradient attack" in detail
    flagged, detail = check_randomized(Linear(), x, [pgd])[1:]
    assert not flagged and detail == "outputs are deterministic"
    # EOT on a deterministic model averages identical passes: said, not flagged (found by
    # review: pgd:eot=10 cost 10 times the gradients of eot=1 for the same answers, unsaid)
    flagged, detail = check_randomized(Linear(), x, {"pgd:eot=10": eot_pgd, "auto": auto_eot})[1:]
    assert not flagged and detail == (
        "outputs are deterministic: EOT averages identical passes there (pgd:eot=10, auto "
        "(its stage pgd)), the gradients of eot=1 at several times the cost; use eot=1"
    ), detail
    # without a random start the restarts repeat too (and eot=1 alone is refused with them):
    # the note says to set restarts=1 as well (found by review)
    again = robustkit.get_attack("pgd", random_start=False, restarts=3, eot=2)
    detail = check_randomized(Linear(), x, [again])[2]
    assert detail.endswith(
        "use eot=1, and restarts=1 where there is no random start (each restart repeats the first)"
    ), detail
    assert robustkit.get_attack("pgd", random_start=False, restarts=1, eot=1)  # (what it says)


def test_a_gradient_attack_without_eot_is_named_beside_one_with_it():
    """One gradient attack with EOT cleared the whole run: with fgsm:eot=4 beside plain PGD on a
    randomized model, PGD's figure (not adaptive) and the worst case it enters were shown as
    reliable. The check flags the run and names the attacks without EOT by their labels (an
    auto stage too), and those with it."""
    noisy = Noisy(Linear())
    x = torch.rand(32, 3, 8, 8)
    attacks = {
        "fgsm:eot=4": robustkit.get_attack("fgsm", eot=4),
        "pgd": robustkit.get_attack("pgd"),
        "cgba": robustkit.get_attack("cgba", max_queries=100),
    }
    name, flagged, detail = check_randomized(noisy, x, attacks)
    assert name == "randomized_outputs" and flagged, detail
    assert "pgd did not average over" in detail and "only fgsm:eot=4 did" in detail, detail
    assert "cgba" not in detail and "pgd:eot=10" in detail
    mixed = robustkit.get_attack("auto", stages="pgd:steps=5;eot=4+fgsm")
    eot_pgd = robustkit.get_attack("pgd", eot=2)
    flagged, detail = check_randomized(noisy, x, {"auto": mixed, "pgd:eot=2": eot_pgd})[1:]
    assert flagged and "auto (its stage fgsm) did not" in detail, detail
    assert "only pgd:eot=2 did" in detail, detail
    # the same attacks on a deterministic model: nothing to average
    assert not check_randomized(Linear(), x, attacks)[1]


def _linear_robust_in_ball(model: Linear, x: torch.Tensor, y: torch.Tensor, eps: float):
    """Exact L∞ robustness of a linear model (inputs far from the box edges): the margin to
    every other class exceeds ε times the L1 norm of the weight difference."""
    w = model.fc.weight
    with torch.no_grad():
        logits = model(x)
        margins = logits.gather(1, y[:, None]) - logits  # (n, classes)
        reach = eps * (w[y][:, None, :] - w[None, :, :]).abs().sum(-1)  # (n, classes)
        room = margins - reach
        room[torch.arange(len(y)), y] = float("inf")
    return room.amin(1) > 1e-4


def test_convergence_check_covers_auto():
    """auto (no ``steps`` of its own) was never checked: the run said "no iterative gradient
    attack". Now its stages are rebuilt at twice the steps with one more restart: a weak auto is
    flagged, and one whose survivors are robust in the whole ε-ball is not."""
    model = Linear()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(64, 3, 8, 8, generator=gen) * 0.5 + 0.25
    y = model(x).argmax(1)
    eps = 0.02
    weak = robustkit.get_attack(
        "auto", eps=eps, stages=f"pgd:steps=2;step_size={eps / 20};random_start=false"
    )
    run = SimpleNamespace(attacks={"auto": weak}, model=model)
    name, flagged, detail = check_more_steps(run, x, y)
    assert name == "more_steps_help" and flagged and was_checked(detail)
    assert "not converged" in detail
    # the doubled stages are named as what ran, not as counts to double once more
    assert detail.startswith(
        "auto with each stage at twice the steps, that is pgd with 4 steps, fools "
    ), detail  # (no restart: without a random start it would repeat the first)
    assert weak._attacks[0].steps == 2  # the run's own attack is left as it was
    # auto is chosen over a shorter PGD; samples robust in the whole ball cannot be fooled
    survivors = _linear_robust_in_ball(model, x, y, eps)
    assert 10 <= int(survivors.sum()) < 64
    pgd = robustkit.get_attack("pgd", eps=eps, steps=5)
    run = SimpleNamespace(attacks={"pgd": pgd, "auto": robustkit.get_attack("auto", eps=eps)})
    run.model = model
    flagged, detail = check_more_steps(run, x, y, survivors=survivors)[1:]
    assert not flagged and "apgd-ce with 40 steps and 2 restarts" in detail, detail
    assert "fooled none" in detail and was_checked(detail)
    # an auto without an iterative stage is honestly not checked, which is not a pass
    only_fgsm = robustkit.get_attack("auto", eps=eps, stages="fgsm")
    run = SimpleNamespace(attacks={"auto": only_fgsm}, model=model)
    flagged, detail = check_more_steps(run, x, y)[1:]
    assert not flagged and not was_checked(detail)


def test_run_checks_passes_the_runs_attacks_to_the_randomized_check():
    """run_checks gives check_randomized the run's attacks: a noisy model evaluated with
    pgd:eot=4 is not flagged, the same model with plain PGD is."""
    model = Noisy(Linear())
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(16, 3, 8, 8, generator=gen) * 0.5 + 0.25
    y = Linear()(x).argmax(1)
    summary = {"attacks": {}, "clean_accuracy": 1.0}
    for attack, flagged in (("pgd:eot=4", False), ("pgd", True)):
        from robustkit.specs import build_attack

        atk = build_attack(attack, norm="linf", eps=0.02)
        run = SimpleNamespace(
            x=x,
            y=y,
            device="cpu",
            model=model,
            attacks={attack: atk},
            target=None,
            config=SimpleNamespace(seed=0),
        )
        checks = {name: (f, d) for name, f, d in run_checks(run, summary, survivors=None)}
        assert checks["randomized_outputs"][0] is flagged, checks["randomized_outputs"]
        assert not was_checked(checks["blackbox_beats_whitebox"][1])
    assert "evaluated with EOT" not in checks["randomized_outputs"][1]


def test_reports_do_not_count_a_check_that_was_not_made_as_passed(tmp_path):
    """An FGSM-only run has no iterative attack to double and no label-only attack to compare:
    the report once said "6 passed"; it now names the two checks that did not apply. A run
    with auto has its convergence checked (it once said "no iterative gradient attack")."""
    from click.testing import CliRunner

    from robustkit.cli import cli

    args = ["evaluate", "--model", "mnist/cnn-tiny-at", "--n", "20", "--batch-size", "20"]
    args += ["--device", "cpu", "--no-progress", "--db", str(tmp_path / "r.db"), "--eps", "0.1"]
    result = CliRunner().invoke(cli, [*args, "--attack", "fgsm"])
    assert result.exit_code == 0, result.output
    assert (
        "sanity checks: 4 passed, 2 not applicable to this run "
        "(blackbox_beats_whitebox, more_steps_help)" in result.output
    ), result.output
    report = run_evaluation(
        RunConfig(
            model="mnist/cnn-tiny-at",
            n=20,
            batch_size=20,
            eps=0.1,
            attacks=("auto",),
            device="cpu",
        ),
        db=tmp_path / "r.db",
        progress=False,
    )
    (more_steps,) = [c for c in report["checks"] if c["name"] == "more_steps_help"]
    assert was_checked(more_steps["detail"]), more_steps
    assert "apgd-ce with 40 steps" in more_steps["detail"], more_steps


class Detached(nn.Module):
    """Outputs with no autograd path to the input at all (the model detaches it)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.detach())


def test_a_model_that_detaches_its_input_is_flagged_or_refused_in_one_line():
    """check_gradients crashed the run after its shards were stored (autograd.grad raised even
    with allow_unused), and gradient attacks gave a RuntimeError traceback."""
    model = Detached(Linear().requires_grad_(False))
    x = torch.rand(8, 3, 8, 8)
    y = model(x).argmax(1)
    name, flagged, detail = check_gradients(model, x, y)
    assert name == "gradient_masking" and flagged and "does not depend on the input" in detail
    with pytest.raises(robustkit.errors.InputError, match="no gradient path to its input"):
        robustkit.get_attack("pgd", eps=0.1, steps=2)(model, x, y)


def test_the_convergence_check_takes_eot_and_a_usable_step_size():
    """EOT passes count in an attack's effort (the non-EOT PGD was re-run on a randomized
    model); a step size too small to cross the ε-ball in twice the steps is replaced."""
    from robustkit.sanity import _effort, _stronger

    eot = robustkit.get_attack("pgd", eps=0.1, steps=10, eot=10)
    plain = robustkit.get_attack("pgd", eps=0.1, steps=20)
    assert _effort(eot) > _effort(plain)
    tiny = _stronger(robustkit.get_attack("pgd", eps=0.1, steps=2, step_size=0.0005))
    assert tiny.steps == 4 and tiny.step_size is None
    kept = _stronger(robustkit.get_attack("pgd", eps=0.1, steps=2, step_size=0.05))
    assert kept.step_size == 0.05


def test_the_stronger_rerun_of_the_largest_seed_is_a_seed():
    """The sanity check reran an attack with seed + 1: at 2**63-1 that is no seed, and the
    check failed after all the run's work with 'seed must be ...'."""
    from robustkit.attack import next_seed
    from robustkit.sanity import _stronger

    top = 2**63 - 1
    assert next_seed(top) == -(2**63) and next_seed(-1) == 0
    pgd = robustkit.get_attack("pgd", steps=2, seed=top)
    auto = robustkit.get_attack("auto", seed=top)
    assert _stronger(pgd).seed == -(2**63) and _stronger(auto).seed == -(2**63)


def test_convergence_check_on_a_voting_model_counts_only_what_the_attack_fools():
    """The stronger attack re-judged the survivors' clean labels with fresh votes of a
    randomized model: a survivor whose new clean vote flipped counted as fooled, and an attack
    that cannot move a pixel (ε = 1e-9) flagged the run "not converged" (28% of 64 here). The
    survivors are correct by construction now, and the model's noise is seeded from the run's
    seed, so the check repeats."""
    from robustkit.attack import predict

    model = robustkit.get_defense("input-noise", sigma=0.25, votes=25).apply(Linear().eval())
    g = torch.Generator().manual_seed(1)
    x = (0.5 + 0.1 * torch.randn((64, 3, 8, 8), generator=g)).clamp(0, 1)
    torch.manual_seed(0)
    y = predict(model, x)
    run = SimpleNamespace(model=model, attacks={"pgd": robustkit.get_attack("pgd", eps=1e-9)})
    survivors = torch.ones(64, dtype=torch.bool)
    torch.manual_seed(1)
    name, flagged, detail = check_more_steps(run, x, y, survivors=survivors, seed=3)
    assert not flagged and "fooled none of 64" in detail, detail
    # a real attack on the same model: the same answer whatever the global random state
    run.attacks = {"pgd": robustkit.get_attack("pgd", eps=0.01, steps=2)}
    answers = set()
    for state in (1, 2):
        torch.manual_seed(state)
        answers.add(check_more_steps(run, x, y, survivors=survivors, seed=3))
    assert len(answers) == 1, answers


def test_an_ensemble_member_with_masked_gradients_is_flagged_unless_it_uses_bpda():
    """Bit-depth without BPDA under an ensemble (--defense bit-depth --defense ensemble:...)
    masks only the defended model's gradient: the ensemble's came from the other member alone,
    the check said "non-zero (0% zero)" and a PGD blind to the quantized model passed
    unflagged. The member is named; with bpda=true, or with no member masked, nothing is
    flagged, and a fully quantized ensemble is flagged as before."""
    from robustkit.defenses.ensemble import AverageLogits

    x = torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = Linear()(x).argmax(1)

    def ensemble(bpda: bool) -> nn.Module:
        quantized = robustkit.get_defense("bit-depth", bits=2, bpda=bpda).apply(Linear())
        return AverageLogits([quantized, Linear(seed=1)], ["the defended model", "m/other"])

    name, flagged, detail = check_gradients(ensemble(bpda=False), x, y)
    assert name == "gradient_masking" and flagged, detail
    assert "the defended model" in detail and "BPDA" in detail and "m/other" not in detail
    assert not check_gradients(ensemble(bpda=True), x, y)[1]
    assert not check_gradients(AverageLogits([Linear(), Linear(seed=1)]), x, y)[1]
    whole = robustkit.get_defense("bit-depth", bits=2).apply(ensemble(bpda=True))
    assert check_gradients(whole, x, y)[1]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_a_torchscript_ensemble_member_is_checked_without_hooks():
    """The partial-masking check hooks each ensemble member; a TorchScript member (a user's
    model file returning torch.jit.script(...), which attacks take) refuses forward hooks, so
    the run's sanity checks raised "register_forward_hook is not supported on ScriptModules"
    after every attack had finished, leaving the hooks already registered in place."""
    from robustkit.defenses.ensemble import AverageLogits

    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = Linear()(x).argmax(1)
    plain = Linear(seed=1)
    model = AverageLogits([plain, torch.jit.script(Linear())], ["m/plain", "m/scripted"])
    assert not check_gradients(model, x, y)[1]
    assert not plain._forward_hooks  # (none left behind)
    masked = robustkit.get_defense("bit-depth", bits=2).apply(Linear())
    model = AverageLogits([masked, torch.jit.script(Linear(seed=1))], ["m/masked", "m/scripted"])
    name, flagged, detail = check_gradients(model, x, y)
    assert flagged and "m/masked" in detail, detail


def test_a_label_only_run_is_not_judged_by_the_gradient_attack_checks():
    """A CGBA-only run on bit-depth was UNRELIABLE (gradient_masking: "use BPDA or a label-only
    attack", to a label-only attack), one on a noisy model was told to use EOT and one on a
    softmax model to attack the logits: none of it applies to an attack that sees labels only.
    Those checks are "not checked" on such a run; a run with a gradient attack is judged."""
    base = Linear()
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    y = base(x).argmax(1)
    summary = {"attacks": {}, "clean_accuracy": 1.0}
    cgba = robustkit.get_attack("cgba", max_queries=100)
    for model in (Rounding(base), Noisy(base), Softmaxed(base)):
        for attacks, judged in (
            ({"cgba": cgba}, False),
            ({"pgd": robustkit.get_attack("pgd")}, True),
        ):
            run = SimpleNamespace(
                x=x,
                y=y,
                device="cpu",
                model=model,
                attacks=attacks,
                target=None,
                config=SimpleNamespace(seed=0),
            )
            checks = {n: (f, d) for n, f, d in run_checks(run, summary, survivors=None)}
            gradient_checks = ("randomized_outputs", "probability_outputs", "gradient_masking")
            if judged:
                assert any(checks[n][0] for n in gradient_checks), (model, checks)
            else:
                # (its own model check: randomized outputs labelled by one draw)
                assert checks.pop("randomized_labels")[0] is isinstance(model, Noisy)
                assert not any(f for f, _ in checks.values()), (model, checks)
                for n in gradient_checks:
                    assert not was_checked(checks[n][1]), checks[n]
                    assert "no gradient attack" in checks[n][1], checks[n]


def test_a_label_only_run_on_a_randomized_model_without_a_vote_is_flagged():
    """A CGBA-only run was judged by no model check after the gradient checks stopped applying
    to it: on a user's noisy model whose labels take one draw (no votes) its verdicts, and the
    re-check of its examples, are single draws, and nothing said so. A voting model (the
    input-noise defense) and a deterministic one pass; a run without a label-only attack has
    no such check."""
    from robustkit.sanity import check_randomized_labels

    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    y = Linear()(x).argmax(1)
    voting = robustkit.get_defense("input-noise", sigma=0.05, votes=5).apply(Linear())
    expected = {Noisy(Linear()): True, voting: False, Linear(): False}
    cgba = robustkit.get_attack("cgba", max_queries=100)
    for model, flagged in expected.items():
        assert check_randomized_labels(model, x)[1] is flagged
        run = SimpleNamespace(
            x=x,
            y=y,
            device="cpu",
            model=model,
            attacks={"cgba": cgba},
            target=None,
            config=SimpleNamespace(seed=0),
        )
        checks = {n: (f, d) for n, f, d in run_checks(run, {"attacks": {}}, survivors=None)}
        assert checks["randomized_labels"][0] is flagged, checks["randomized_labels"]
    assert "majority vote of 5 draws" in check_randomized_labels(voting, x)[2]
    assert "one draw" in check_randomized_labels(Noisy(Linear()), x)[2]
    run.attacks = {"pgd": robustkit.get_attack("pgd")}
    assert "randomized_labels" not in {n for n, _, _ in run_checks(run, {"attacks": {}})}


def test_the_convergence_check_counts_apgd_t_targets_the_model_has():
    """Found by review: the effort that picks the attack to re-run counted apgd-t's
    n_target_classes (9 by default) on a model of 4 classes, where it runs 3 targets: apgd-t
    with 10 steps (30 gradients) was taken as stronger than pgd with 40 steps, and the check
    re-ran it ("apgd-t with 20 steps") instead of the PGD."""
    from robustkit.sanity import _effort

    model = Linear(classes=4).eval()
    x = torch.rand(12, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    y = model(x).argmax(1)
    apgd_t = robustkit.get_attack("apgd-t", eps=1e-3, steps=10)
    pgd = robustkit.get_attack("pgd", eps=1e-3, steps=40)
    assert _effort(apgd_t, classes=4) == 30 and _effort(apgd_t) == 90
    run = SimpleNamespace(model=model, attacks={"apgd-t": apgd_t, "pgd": pgd})
    survivors = torch.ones(12, dtype=torch.bool)
    detail = check_more_steps(run, x, y, survivors=survivors)[2]
    assert detail.startswith("pgd with 80 steps"), detail
