"""Query-budget summaries of decision-based attacks, read from per-sample trajectories.

A trajectory is a ``[k, 2]`` tensor of (queries spent, L2 distance of the best adversarial
example so far), one per sample (:attr:`robustkit.attack.AttackResult.trajectories`). One run
with a large budget therefore answers "median L2 at B queries" and "success rate at ε within B
queries" for every B up to that budget. These functions are pure; the CLI, the store and the
leaderboards use them.

Pass them the result itself: it keeps its attacked samples only, as the stored report does. Its
``.trajectories`` hold an empty one for each sample not attacked (already misclassified), which
a list of trajectories counts as never fooled (``inf``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Union

import numpy as np
import torch

from .checks import is_real_number
from .errors import InputError
from .tables import counted
from .threat import parse_eps

if TYPE_CHECKING:
    from .attack import AttackResult

#: A decision-based attack's result, or its per-sample ``[k, 2]`` (queries, L2) trajectories.
Trajectories = Union["AttackResult", Sequence[torch.Tensor]]


def _trajectories(source) -> list[torch.Tensor]:
    """Trajectories of the attacked samples of a result, or the given list as is."""
    if hasattr(source, "trajectories"):
        if source.trajectories is None:
            raise InputError(
                f"the result of {source.attack!r} has no trajectories; "
                "budget summaries need a decision-based attack"
            )
        return [t for t, a in zip(source.trajectories, source.attacked.tolist(), strict=True) if a]
    if (isinstance(source, torch.Tensor) and source.dim() != 3) or not isinstance(source, Iterable):
        shape = f" shaped {tuple(source.shape)}" if isinstance(source, torch.Tensor) else ""
        raise InputError(
            "expected a decision-based attack's result, a list of [k, 2] trajectories or an "
            f"[n, k, 2] tensor of them, got {type(source).__name__}{shape}"
        )
    out = []
    for i, item in enumerate(source):
        try:  # a NumPy array or nested lists of numbers are trajectories too
            t = item if isinstance(item, torch.Tensor) else torch.as_tensor(item)
        except (TypeError, ValueError, RuntimeError):
            t = None
        if t is not None and t.numel() == 0:
            t = t.reshape(0, 2)
        if t is None or t.dim() != 2 or t.shape[1] != 2 or t.dtype == torch.bool:
            what = f"shaped {tuple(t.shape)}" if t is not None else type(item).__name__
            raise InputError(
                f"trajectory {i} is not a [k, 2] table of (queries, L2) rows: got {what}; pass "
                "the result itself (or [k, 2] tensors like its .trajectories)"
            )
        out.append(t)
    return out


def check_budgets(
    budgets: Sequence[int] | int, max_queries: int | None = None, attack: str = "the attack"
) -> list[int]:
    """The budgets as ints, or a one-line error: one number or a sequence of them, each a whole
    number of queries (``1000``, ``np.int64(1000)``, ``1000.0``), none above ``max_queries``,
    the budget ``attack`` ran with (nothing was measured past it)."""
    if is_real_number(budgets):
        values = [budgets]
    elif isinstance(budgets, (torch.Tensor, np.ndarray)):  # (a 0-d array cannot be iterated)
        values = budgets.flatten().tolist()
    elif isinstance(budgets, (str, bytes)) or not isinstance(budgets, Iterable):
        values = []
    else:
        values = list(budgets)  # a NumPy array gives NumPy scalars, which are numbers
    if not values or not all(
        is_real_number(b) and math.isfinite(b) and int(b) == b and b >= 0 for b in values
    ):
        raise InputError(f"budgets must be non-negative whole numbers of queries, got {budgets!r}")
    if max_queries is not None and max(values) > max_queries:
        raise InputError(
            f"budget {int(max(values))} is above the {counted(max_queries, 'query', 'queries')} "
            f"{attack} ran with "
            f"(nothing was measured past them); use budgets up to {max_queries}"
        )
    return [int(b) for b in values]


def _budgets(budgets: Sequence[int] | int, source: object) -> torch.Tensor:
    """Checked budgets as a float64 tensor; for a result, up to its attack's budget."""
    top = getattr(source, "params", {}).get("max_queries")
    attack = repr(getattr(source, "attack", "the attack"))
    return torch.tensor(check_budgets(budgets, top, attack), dtype=torch.float64)


def l2_at_budgets(trajectories: Trajectories, budgets: Sequence[int] | int) -> torch.Tensor:
    """``[n, len(budgets)]``: per sample, the smallest L2 of an adversarial example found within
    each budget (``inf`` where none was found yet). Accepts a list of trajectories or a result
    (then only its attacked samples, at budgets up to its attack's ``max_queries``)."""
    b = _budgets(budgets, trajectories)
    trajs = _trajectories(trajectories)
    out = torch.full((len(trajs), b.numel()), math.inf, dtype=torch.float64)
    for i, t in enumerate(trajs):
        if t.numel() == 0:
            continue
        t = t.double()
        if (t[1:, 0] < t[:-1, 0]).any():  # the binary search below needs them in order
            raise InputError(
                f"trajectory {i}: its queries go back (rows are (queries spent so far, L2), "
                "the queries never decreasing)"
            )
        if torch.isnan(t).any():  # (a NaN distance spread into every figure as NaN)
            raise InputError(
                f"trajectory {i}: it holds NaN (rows are (queries spent so far, L2), both numbers)"
            )
        # Best so far: running minimum, so the value at B is the last row with queries <= B.
        best = torch.cummin(t[:, 1], dim=0).values
        pos = torch.searchsorted(t[:, 0].contiguous(), b, right=True) - 1
        ok = pos >= 0
        out[i, ok] = best[pos[ok]]
    return out


def _median(values: torch.Tensor) -> torch.Tensor:
    """Column medians (mean of the two middle values for an even count; inf stays inf)."""
    n = values.shape[0]
    if n == 0:
        return torch.full((values.shape[1],), math.nan, dtype=torch.float64)
    s = torch.sort(values, dim=0).values
    lo, hi = s[(n - 1) // 2], s[n // 2]
    both_inf = torch.isinf(lo) & torch.isinf(hi)
    mid = torch.where(torch.isinf(hi), hi, (lo + hi) / 2)
    return torch.where(both_inf, lo, mid)


def median_l2_at(
    result_or_trajectories: Trajectories, budgets: Sequence[int] | int
) -> torch.Tensor:
    """``[len(budgets)]``: median over samples of the best L2 found within each budget; a sample
    with nothing adversarial yet counts as ``inf`` (so the median is ``inf`` unless more than
    half are fooled: with exactly half, it is the mean of a distance and ``inf``). NaN for no
    samples."""
    return _median(l2_at_budgets(result_or_trajectories, budgets))


def success_rate_at(
    result_or_trajectories: Trajectories, eps: float | str, budgets: Sequence[int] | int
) -> torch.Tensor:
    """``[len(budgets)]``: fraction of samples with an adversarial example of L2 <= ``eps``
    found within each budget (NaN for no samples). ``eps`` may be written ``"8/255"``."""
    eps = parse_eps(eps)
    dist = l2_at_budgets(result_or_trajectories, budgets)
    if dist.shape[0] == 0:
        return torch.full((dist.shape[1],), math.nan, dtype=torch.float64)
    return (dist <= eps).double().mean(dim=0)


#: Per-sample outcomes of a decision-based attack, as :func:`outcomes` labels them.
ALREADY_MISCLASSIFIED = "already misclassified"
ADVERSARIAL = "adversarial"
NOT_FOUND = "no adversarial found within the budget"


def outcomes(result: AttackResult) -> list[str]:
    """Per sample of a result: ``"already misclassified"`` (not attacked, zero queries),
    ``"adversarial"`` (fooled; re-checked outside the budget) or ``"no adversarial found within
    the budget"`` (``x_adv`` is the clean image, or for a targeted attack possibly a point
    misclassified into another class than the target)."""
    return [
        (ADVERSARIAL if s else NOT_FOUND) if a else ALREADY_MISCLASSIFIED
        for a, s in zip(result.attacked.tolist(), result.success.tolist(), strict=True)
    ]
