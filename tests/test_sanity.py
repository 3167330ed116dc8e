"""Sanity checks catch randomized, gradient-masking and softmax-output models."""

from __future__ import annotations

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
