"""Sanity checks catch randomized, gradient-masking and softmax-output models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import robustkit
from robustkit.runner import RunConfig, run_evaluation
from robustkit.sanity import check_gradients, check_probabilities, check_randomized

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
    assert not check_randomized(base, x)[1] and check_randomized(Noisy(base), x)[1]
    assert "EOT" in check_randomized(Noisy(base), x)[2]
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
