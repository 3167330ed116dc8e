"""Stored results as pandas DataFrames, for notebooks.

import robustkit.results as rr
res = rr.open("results.db")          # default: the store robustkit evaluate writes to
res.runs                             # one row per run
res.results(run_id)                  # one row per (sample, attack)
res.summary(run_id)                  # the report `robustkit evaluate` prints
res.decision_curve(run_id, "cgba")   # median L2 and success at ε against queries
"""

from __future__ import annotations

import builtins
import json
import os
from typing import Any

import pandas as pd

from .store import Store


class Results:
    """Read-only DataFrame views of a results store."""

    def __init__(self, store: Store):
        self.store = store

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def runs(self) -> pd.DataFrame:
        """One row per run: identity, threat model, accuracies (worst case), flags, times."""
        from .runner import summarize

        rows = []
        for run in self.store.runs():
            s = summarize(self.store, run["run_id"])
            rows.append(
                {
                    "run_id": run["run_id"],
                    "model": run["model"],
                    "dataset": run["dataset"],
                    "norm": run["norm"],
                    "eps": run["eps"],
                    "targeted": s["threat_model"]["targeted"],
                    "attacks": list(s["attacks"]),
                    "defenses": s["defenses"],
                    "n": s["n"],
                    "clean_accuracy": s["clean_accuracy"],
                    "robust_accuracy": s["robust_accuracy"],
                    "status": run["status"],
                    "flags": [c["name"] for c in s["checks"] if c["flagged"]],
                    "device": run["device"],
                    "seed": run["seed"],
                    "started": pd.to_datetime(run["started"], unit="s"),
                    "finished": pd.to_datetime(run["finished"], unit="s")
                    if run["finished"]
                    else pd.NaT,
                }
            )
        return pd.DataFrame(rows)

    def _run_ids(self, run_id: str | None) -> builtins.list[str]:
        return [run_id] if run_id else [r["run_id"] for r in self.store.runs()]

    def samples(self, run_id: str | None = None) -> pd.DataFrame:
        """Per sample: data-set index, label, clean prediction, shard (for one run or all)."""
        frames = [pd.DataFrame(self.store.samples(r)) for r in self._run_ids(run_id)]
        frames = [f for f in frames if len(f)]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if len(frame):
            frame["clean_correct"] = frame["y"] == frame["clean_pred"]
        return frame

    def results(self, run_id: str | None = None, attack: str | None = None) -> pd.DataFrame:
        """Per (sample, attack): success, robust, norms, counts, with the run's model and ε."""
        runs = {r["run_id"]: r for r in self.store.runs()}
        frames = []
        for rid in self._run_ids(run_id):
            rows = self.store.results(rid, attack)
            if not rows:
                continue
            frame = pd.DataFrame(rows)
            for col in ("attacked", "success", "robust"):
                frame[col] = frame[col].astype(bool)
            frame["model"], frame["dataset"] = runs[rid]["model"], runs[rid]["dataset"]
            frame["norm"], frame["eps"] = runs[rid]["norm"], runs[rid]["eps"]
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def summary(self, run_id: str) -> dict[str, Any]:
        """The report of one run (what ``robustkit evaluate --format json`` prints)."""
        from .runner import summarize

        return summarize(self.store, run_id)

    def checks(self, run_id: str | None = None) -> pd.DataFrame:
        """The sanity checks of one run or all runs."""
        rows = [
            {**c, "flagged": bool(c["flagged"])}
            for r in self._run_ids(run_id)
            for c in self.store.checks(r)
        ]
        return pd.DataFrame(rows)

    def decision_curve(
        self,
        run_id: str,
        attack: str,
        budgets: builtins.list[int] | None = None,
        eps: float | None = None,
    ) -> pd.DataFrame:
        """Median L2 of the best adversarial within each budget, and success rate at ``eps``."""
        from .runner import decision_figures

        rows = self.store.results(run_id, attack)
        trajs = [json.loads(r["trajectory"]) for r in rows if r["trajectory"]]
        if budgets is None:
            top = max((q for t in trajs for q, _ in t), default=1)
            budgets = sorted({max(1, round(top * k / 20)) for k in range(1, 21)})
        if eps is None:
            eps = self.summary(run_id)["attacks"][attack]["params"].get("eps")
        fig = decision_figures(rows, budgets, eps)
        frame = pd.DataFrame({"queries": budgets, "median_l2": fig["median_l2"]})
        if eps is not None:
            frame["success_rate_at_eps"] = fig["success_rate_at_eps"]
        return frame


def open(db: str | os.PathLike[str] | None = None) -> Results:  # noqa: A001  (the documented name)
    """Open a results store for reading (default: the store ``robustkit evaluate`` writes to)."""
    return Results(Store.open(db, create=False))
