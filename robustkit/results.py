"""Stored results as pandas DataFrames, for notebooks.

import robustkit.results as rr
res = rr.open("results.db")          # default: the store robustkit evaluate writes to
res.runs                             # one row per run
res.results(run_id)                  # one row per (sample, attack)
res.summary(run_id)                  # the report `robustkit evaluate` prints
res.decision_curve(run_id, "cgba")   # median L2 and success at ε against queries

Every frame has its fixed columns, its numbers, booleans and times typed as such, even when it
has no rows (an empty store, a run without checks), so that column access, ``query`` and ``.dt``
work the same on every store. A run id may be given whole or as a unique start of it (4
characters or more, in any case), as ``robustkit runs show`` takes it. A run id or attack label
that the store does not hold, or one that is not text, is an :class:`~robustkit.errors.InputError`
naming the valid ones (as is a start too short or shared by several runs); attack labels match
in any case (they are stored in their registered spelling).
"""

from __future__ import annotations

import builtins
import json
import os
from typing import Any

import pandas as pd

from .checks import given
from .errors import InputError, RobustkitError
from .naming import PYTHON
from .store import Store, defense_names, find_run
from .tables import names_text

#: What ``from robustkit.results import *`` gives. Not ``open``: the store opener is
#: ``robustkit.results.open`` (``rr.open``), and a star import of it replaced Python's built-in
#: ``open`` (a notebook's next ``open("notes.txt")`` opened a store).
__all__ = ["CHECK_COLUMNS", "RESULT_COLUMNS", "RUN_COLUMNS", "SAMPLE_COLUMNS", "Results"]

#: Columns of :attr:`Results.runs`.
RUN_COLUMNS = [
    "run_id",
    "model",
    "dataset",
    "split",
    "norm",
    "eps",
    "targeted",
    "attacks",
    "defenses",
    "n",
    "correct_only",
    "clean_accuracy",
    "robust_accuracy",
    "status",
    "flags",
    "device",
    "seed",
    "started",
    "finished",
]
#: Columns of :meth:`Results.samples`.
SAMPLE_COLUMNS = ["run_id", "idx", "shard", "y", "clean_pred", "clean_correct"]
#: Columns of :meth:`Results.results`.
RESULT_COLUMNS = [
    "run_id",
    "attack",
    "idx",
    "attacked",
    "success",
    "robust",
    "adv_pred",
    "norm",
    "l2",
    "linf",
    "queries",
    "gradients",
    "trajectory",
    "stage",
    "model",
    "defenses",
    "dataset",
    "threat_norm",
    "threat_eps",
    "attack_eps",
    "success_within_eps",
]
#: Columns of :meth:`Results.checks`.
CHECK_COLUMNS = ["run_id", "name", "flagged", "detail"]

#: The number, boolean and time columns of each frame, typed so even when no row sets them
#: (an empty store; ``robust_accuracy`` of minimum-norm runs alone, None in their reports).
_RUN_TYPES = {
    "eps": "float64",
    "targeted": "bool",
    "n": "int64",
    "correct_only": "bool",
    "clean_accuracy": "float64",
    "robust_accuracy": "float64",
    "seed": "int64",
    "started": "datetime64[ns]",
    "finished": "datetime64[ns]",
}
_SAMPLE_TYPES = {
    "idx": "int64",
    "shard": "int64",
    "y": "int64",
    "clean_pred": "int64",
    "clean_correct": "bool",
}
_RESULT_TYPES = {
    "idx": "int64",
    "attacked": "bool",
    "success": "bool",
    "robust": "bool",
    "adv_pred": "int64",
    "norm": "float64",
    "l2": "float64",
    "linf": "float64",
    "queries": "int64",
    "gradients": "int64",
    "threat_eps": "float64",
    "attack_eps": "float64",
    "success_within_eps": "bool",
    # whole numbers, <NA> where an attack has no stages (None beside them made -1.0s, objects)
    "stage": "Int64",
}
_CHECK_TYPES = {"flagged": "bool"}


def _empty(columns: builtins.list[str], types: dict[str, str]) -> pd.DataFrame:
    """A frame of no rows with ``columns``, typed as a frame with rows is (the rest: objects)."""
    return pd.DataFrame({c: pd.Series(dtype=types.get(c, object)) for c in columns})


class Results:
    """Read-only DataFrame views of a results store."""

    def __init__(self, store: Store):
        if not isinstance(store, Store):  # (a path: AttributeError at the first frame)
            raise RobustkitError(
                f"Results takes an open Store, got {given(store)}; open a results store by its "
                "path with robustkit.results.open(db)"
            )
        self._store = store
        self._closed = False

    @property
    def store(self) -> Store:
        """The open store, or a one-line error once it was closed (a read then ended in
        sqlite3.ProgrammingError: a ``with`` block's end closes it, a later cell reads on)."""
        if self._closed:
            raise RobustkitError(
                f"the results store {self._store.path} is closed (a `with` block around "
                "robustkit.results.open ended, or close() was called); open it again: "
                "robustkit.results.open(db)"
            )
        return self._store

    def close(self) -> None:
        """Close the results store (also done on leaving a ``with`` block)."""
        self._store.close()
        self._closed = True

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- identities ---------------------------------------------------------------------------
    def _run(self, run_id: str) -> dict[str, Any]:
        """The stored run ``run_id`` names: the whole id or a unique start of it (4 characters
        or more), as ``robustkit runs show`` takes it. Anything but text (the ``run_id`` column
        where one of its values is meant) is a one-line error."""
        if not isinstance(run_id, str):  # (a Series met `if` in pandas, an array SQLite)
            raise InputError(
                "a run id is text (one value of Results.runs.run_id, such as "
                f"runs.run_id.iloc[0]), got {given(run_id)}"
            )
        run = self.store.get_run(run_id)
        if run is None:  # a start of an id (find_run reads every run's id), or no such run
            run = self.store.get_run(find_run(self.store, run_id, see="Results.runs"))
        if run is None:  # deleted by another process since find_run read the ids
            raise InputError(f"no run {run_id!r} in {self.store.path} (see Results.runs)")
        return run

    def _run_ids(self, run_id: str | None) -> builtins.list[str]:
        if run_id is None:
            return [r["run_id"] for r in self.store.runs()]
        return [self._run(run_id)["run_id"]]

    def _label(self, runs: builtins.list[dict[str, Any]], attack: str, where: str) -> str:
        """The stored spelling of an attack label (matched in any case) among ``runs``."""
        labels: builtins.list[str] = []
        for run in runs:
            labels += [k for k in json.loads(run["attacks"]) if k not in labels]
        if not isinstance(attack, str):  # (a list or a number failed in attack.lower())
            raise InputError(
                f"an attack label is text (the attacks in {where}: {names_text(labels)}), "
                f"got {given(attack)}"
            )
        for label in labels:
            if label.lower() == attack.lower():
                return label
        raise InputError(f"no attack {attack!r} in {where}; its attacks: {names_text(labels)}")

    # -- frames -------------------------------------------------------------------------------
    @property
    def runs(self) -> pd.DataFrame:
        """One row per run: identity, data split, threat model, whether only the correctly
        classified images were taken (``correct_only``: clean accuracy 1 by selection),
        accuracies (worst case; NaN for a run without an attack that has an ε), flags, times
        (``started``, ``finished``: in UTC, as ``robustkit runs list`` shows them, without a
        time zone; NaT while unfinished) (columns :data:`RUN_COLUMNS`; ``defenses`` as text, as :meth:`results` has it,
        ``attacks`` and ``flags`` as lists of labels and check names), from one snapshot of
        the store (a run another process deletes meanwhile is read as it was)."""
        from .runner import summarize

        with self.store.snapshot():
            runs = self.store.runs()
            summaries = [summarize(self.store, run["run_id"]) for run in runs]
        rows = []
        for run, s in zip(runs, summaries, strict=True):
            rows.append(
                {
                    "run_id": run["run_id"],
                    "model": run["model"],
                    "dataset": run["dataset"],
                    "split": run["split"],
                    "norm": run["norm"],
                    "eps": run["eps"],
                    "targeted": s["threat_model"]["targeted"],
                    "attacks": list(s["attacks"]),
                    # as text, as in results(): a list made any groupby or pivot on it fail
                    "defenses": ", ".join(s["defenses"]),
                    "n": s["n"],
                    # its clean accuracy is 1 by selection (the leaderboard's robust tables
                    # leave such runs out, as runs on another split than test)
                    "correct_only": bool(s["correct_only"]),
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
        if not rows:
            return _empty(RUN_COLUMNS, _RUN_TYPES)
        # (robust_accuracy None made an object column; finished NaT alone datetime64[s])
        return pd.DataFrame(rows, columns=RUN_COLUMNS).astype(_RUN_TYPES)

    def samples(self, run_id: str | None = None) -> pd.DataFrame:
        """Per sample: data-set index, label, clean prediction, shard (for one run or all;
        columns :data:`SAMPLE_COLUMNS`)."""
        frames = [pd.DataFrame(self.store.samples(r)) for r in self._run_ids(run_id)]
        frames = [f for f in frames if len(f)]
        if not frames:
            return _empty(SAMPLE_COLUMNS, _SAMPLE_TYPES)
        frame = pd.concat(frames, ignore_index=True)
        frame["clean_correct"] = frame["y"] == frame["clean_pred"]
        return frame[SAMPLE_COLUMNS]

    def results(self, run_id: str | None = None, attack: str | None = None) -> pd.DataFrame:
        """One row per (sample, attack), for one run or all (columns :data:`RESULT_COLUMNS`):

        - ``attacked``: the sample was classified correctly, so the attack ran on it;
        - ``success``: the attack fooled the model (re-predicted at ``x_adv``), at any distance
          for a minimum-norm attack; a sample not attacked (``x_adv`` is its clean image,
          already misclassified) reads True for an untargeted attack, so count successes over
          the ``attacked`` rows, as ``success_within_eps`` below; ``robust``: correct and not fooled within the threat model
          (its mean over an attack's rows is that attack's robust accuracy) - except for a
          minimum-norm attack without an ε (``attack_eps`` NaN), which has no threat model:
          there it is "not fooled at any distance", and its mean is no robust accuracy (the
          report's is NaN; select ``attack_eps.notna()`` before averaging ``robust``);
        - ``norm``: the perturbation's size in the attack's norm (float; ``l2``, ``linf``: both);
        - ``queries``, ``gradients``: forward passes (label queries) and gradients spent;
        - ``trajectory`` (decision attacks: JSON ``[[queries, L2], ...]``), ``stage`` (an
          ensemble such as ``auto``: the index in its ``stages`` of the stage that fooled the
          sample, -1 for none; a whole number, ``<NA>`` for other attacks);
        - ``model``, ``dataset``, ``threat_norm``, ``threat_eps``: the run's model, data set and
          threat model (``linf``/``l2`` and its ε); ``defenses``: the run's defenses as text,
          innermost first (``"input-noise:sigma=0.1,votes=25, bit-depth:bits=4,bpda=false"``;
          ``""`` for none), so that grouping by model does not mix a defended model with itself;
        - ``attack_eps``: the ε the attack's success is judged at (NaN: a minimum-norm attack
          without one, which succeeds at any distance);
        - ``success_within_eps``: attacked and fooled within ``attack_eps`` (a label-only attack
          by a perturbation with ``norm <= attack_eps``; a white-box attack never leaves its ε).
          Its mean over the attacked rows of one attack is the ``success_rate`` that
          ``robustkit evaluate`` (and :meth:`summary`) reports.
        """
        runs = [self._run(run_id)] if run_id is not None else self.store.runs()
        if attack is not None:
            where = f"run {runs[0]['run_id']}" if run_id is not None else str(self.store.path)
            attack = self._label(runs, attack, where)
        frames = []
        for run in runs:
            rows = self.store.results(run["run_id"], attack)
            if not rows:
                continue
            from .runner import fooled_within_eps, is_decision

            frame = pd.DataFrame(rows)
            params = {label: spec["params"] for label, spec in json.loads(run["attacks"]).items()}
            attack_eps = {
                label: p.get("eps") if is_decision(p) else p.get("eps", run["eps"])
                for label, p in params.items()
            }
            for col in ("attacked", "success", "robust"):
                frame[col] = frame[col].astype(bool)
            frame["model"], frame["dataset"] = run["model"], run["dataset"]
            frame["defenses"] = ", ".join(defense_names(run["defenses"]))
            frame["threat_norm"], frame["threat_eps"] = run["norm"], run["eps"]
            # float, NaN for none (None alone made an object column, NaN beside an ε: both)
            eps_of = [attack_eps.get(a) for a in frame["attack"]]
            frame["attack_eps"] = pd.Series(eps_of, index=frame.index, dtype=float)
            # as runner.summarize counts success_rate (AttackResult.success_rate)
            frame["success_within_eps"] = [fooled_within_eps(params[r["attack"]], r) for r in rows]
            frames.append(frame)
        if not frames:
            return _empty(RESULT_COLUMNS, _RESULT_TYPES)
        frame = pd.concat(frames, ignore_index=True)
        return frame[RESULT_COLUMNS].astype({"stage": "Int64"})

    def summary(self, run_id: str) -> dict[str, Any]:
        """The report of one run (what ``robustkit evaluate --format json`` prints)."""
        from .runner import summarize

        return summarize(self.store, self._run(run_id)["run_id"])

    def checks(self, run_id: str | None = None) -> pd.DataFrame:
        """The sanity checks of one run or all runs (columns :data:`CHECK_COLUMNS`; a run
        evaluated with ``sanity=False`` has none)."""
        rows = [
            {**c, "flagged": bool(c["flagged"])}
            for r in self._run_ids(run_id)
            for c in self.store.checks(r)
        ]
        if not rows:
            return _empty(CHECK_COLUMNS, _CHECK_TYPES)
        return pd.DataFrame(rows, columns=CHECK_COLUMNS)

    def decision_curve(
        self,
        run_id: str,
        attack: str,
        budgets: builtins.list[int] | None = None,
        eps: float | str | None = None,
    ) -> pd.DataFrame:
        """Median L2 of the best adversarial within each budget, and success rate at ``eps``, for
        a decision-based (label-only) attack of a run, over the samples it attacked (those the
        model classified correctly; as ``robustkit evaluate`` and the leaderboard count them).

        Default budgets: 20 steps up to the attack's budget (``max_queries``), which is always
        the last. Default ``eps``: the attack's own, else the run's ε when its threat model is
        L2 (as ``robustkit evaluate`` reports it); without either there is no success column.
        The ε used is ``frame.attrs["eps"]`` (None without one).

        An image not yet fooled within a budget counts as infinitely far, so ``median_l2`` is
        ``inf`` where fewer than half are fooled; every figure is NaN where no image was
        attacked (the model misclassified them all).
        """
        from .budgets import check_budgets
        from .runner import decision_eps, decision_figures, is_decision
        from .threat import parse_eps

        run = self._run(run_id)
        run_id = run["run_id"]
        specs = json.loads(run["attacks"])
        label = self._label([run], attack, f"run {run_id}")
        params = specs[label]["params"]
        if not is_decision(params):
            decision = [k for k, v in specs.items() if is_decision(v["params"])]
            raise InputError(
                f"attack {label!r} of run {run_id} is not decision-based (it has no query "
                f"budget or trajectory); the run's decision-based attacks: {names_text(decision)}"
            )
        max_q = int(params["max_queries"])
        if budgets is None:
            budgets = sorted({max(1, round(max_q * k / 20)) for k in range(1, 21)} | {max_q})
        budgets = check_budgets(budgets, max_q, repr(label))
        eps = decision_eps(params, run) if eps is None else parse_eps(eps)
        fig = decision_figures(self.store.results(run_id, label), budgets, eps)
        frame = pd.DataFrame({"queries": budgets, "median_l2": fig["median_l2"]})
        if eps is not None:
            frame["success_rate_at_eps"] = fig["success_rate_at_eps"]
        frame.attrs["eps"] = eps  # (the default one was nowhere in the frame)
        return frame


def open(db: str | os.PathLike[str] | None = None) -> Results:  # noqa: A001  (the documented name)
    """Open a results store for reading (default: the store ``robustkit evaluate`` writes to)."""
    return Results(Store.open(db, create=False, named=PYTHON))
