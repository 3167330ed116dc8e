"""Hand-made results stores for tests of the views on them (frames, plots, leaderboards): runs
written through the Store API with chosen per-sample outcomes, no model evaluated."""

from __future__ import annotations

import json

from robustkit.store import Store, dumps

LINF = {"norm": "linf"}
CGBA = {"norm": "l2", "max_queries": 60, "targeted": False}


def add_run(
    store: Store,
    rid: str,
    attacks: dict[str, tuple[dict, list[tuple]]],
    *,
    model: str = "m",
    dataset: str = "mnist",
    command: str | None = None,
    training: str = "standard",
    norm: str = "linf",
    eps: float = 0.3,
    defenses: dict | None = None,
    finished: bool = True,
    n: int = 4,
    checks: bool = True,
    split: str = "test",
    config: dict | None = None,
    weights_sha256: str | None = None,
    stages: dict[str, list[int]] | None = None,
) -> None:
    """One run of ``n`` samples (all correctly classified). ``attacks``: label -> (params,
    per-sample ``(success, robust, norm)`` or ``(success, robust, norm, trajectory)``);
    ``stages``: label -> per-sample stage that fooled it (an ensemble's; None elsewhere)."""
    specs = {}
    for label, (params, _) in attacks.items():
        p = dict(params)
        p.setdefault("eps", eps if "max_queries" not in p else None)
        specs[label] = {"name": label.split(":")[0], "params": p}
    store.start_run(
        rid,
        {
            "config": json.dumps(config or {}),
            "model": model,
            "weights_sha256": weights_sha256,
            "dataset": dataset,
            "split": split,
            "indices": json.dumps(list(range(n))),
            "norm": norm,
            "eps": eps,
            "attacks": dumps(specs),
            "defenses": dumps(defenses or {}),
            "seed": 0,
            "device": "cpu",
            "versions": "{}",
            "training": training,
            "command": command if command is not None else f"robustkit evaluate --model {model}",
        },
    )
    rows = []
    for label, (_, per_sample) in attacks.items():
        stage = (stages or {}).get(label, [None] * len(per_sample))
        for i, s in enumerate(per_sample):
            success, robust, dist = s[:3]
            traj = json.dumps(s[3]) if len(s) > 3 else None
            rows.append(
                (label, i, 1, int(success), int(robust), 1 if success else 0, dist, dist, dist)
                + (10, 0, traj, stage[i])
            )
    store.write_shard(
        rid, 0, 0, n, 0.1, {k: 0.1 for k in attacks}, [(i, 0, 0) for i in range(n)], rows
    )
    if checks:
        store.write_checks(rid, [("gradient_masking", False, "ok")])
    if finished:
        store.finish_run(rid)


def robust(pattern: str, dist: float = 0.1) -> list[tuple]:
    """Per sample from a string: 'r' robust, 'f' fooled."""
    return [(c == "f", c == "r", dist if c == "f" else 0.0) for c in pattern]
