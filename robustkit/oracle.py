"""Label-only access to a model for decision-based attacks.

A decision-based attack sees the model only through a :class:`LabelOracle`: it returns top-1
labels (or "is this adversarial?"), never scores or gradients, counts every input it labels as one
query of the sample it belongs to (the counts land in the :class:`~robustkit.attack.AttackContext`,
so in the result's ``.queries``) and refuses any request that would take a sample over its budget.
Such a request is a bug in the attack, not a user error, so it raises :class:`BudgetExceeded`.

:class:`BestTracker` keeps, per sample, the closest adversarial example found so far and the
trajectory (queries spent -> L2 distance) that "median L2 at a budget" is read from
(:mod:`robustkit.budgets`). :class:`DecisionAttack` is the shared base of the label-only attacks:
it builds both for each call, hands them to the attack's :meth:`DecisionAttack._run` and returns
the best adversarial examples, their trajectories and the per-step query accounting.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from abc import abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch

from .attack import Attack, AttackContext, AttackResult, RobustkitWarning, one_row_per_image
from .checks import is_real_number, is_whole_number, shown
from .device import accelerator_memory, full_float32
from .errors import InputError
from .modelcheck import largest_activation_bytes
from .tables import counted
from .threat import check_norm, flat_norm, parse_eps

#: Whether a :class:`LabelOracle` left to choose (``pad=None``) pads its passes on a GPU.
#: Benchmarks switch it off to measure what the padding is worth.
PAD_ON_GPU = True


class BudgetExceeded(RuntimeError):
    """An attack asked the oracle for more queries than a sample has left (a bug in the attack)."""


class LabelOracle:
    """Top-1 labels of a model, counted per sample and limited by each sample's budget.

    ``y`` are the true labels of the attacked samples and ``target`` their target labels
    (targeted attacks) or None. ``max_queries`` is the per-sample budget. Inputs are labelled in
    chunks of at most ``batch_size`` rows so that large query rounds fit in memory.

    ``pad``: pad each chunk (with copies of its first row, neither counted nor returned) to a
    power of two of rows, at most ``batch_size``; None pads on a GPU only (see
    :data:`PAD_ON_GPU`). There cuDNN builds its convolution plans once per input shape, and a
    lockstep attack's rounds come in hundreds of different sizes.
    Measured on an H200 (CGBA on cifar10/resnet20, 100 images × 1,000 queries, 245 passes, in
    one process): padded, 2.75 and 2.67 s per run; unpadded, 4.20 s while its pass sizes were
    new to cuDNN and 2.31 s once all were cached. Padding gives up that 15% of a fully warmed
    process so as never to pay the per-shape cost, which a fresh evaluation pays on most
    rounds. On a CPU padding bought nothing (measured), so the rows go as they are.
    """

    def __init__(
        self,
        ctx: AttackContext,
        y: torch.Tensor,
        target: torch.Tensor | None,
        max_queries: int,
        batch_size: int = 1024,
        pad: bool | None = None,
    ):
        self._ctx = ctx
        self.y = y
        self.target = target
        self.n = int(y.shape[0])
        self.max_queries = int(max_queries)
        self.batch_size = int(batch_size)
        self.pad = pad

    @property
    def used(self) -> torch.Tensor:
        """Queries spent so far per sample (a view of the context's counters: do not modify)."""
        return self._ctx.queries

    def remaining(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Queries left per sample (for the samples ``idx``, or all)."""
        left = self.max_queries - self._ctx.queries
        return left if idx is None else left[idx]

    def labels(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Top-1 labels of ``x``; row ``j`` is charged to sample ``idx[j]`` (one query each).

        Raises :class:`BudgetExceeded` (and labels nothing) when any sample would go over its
        budget. A request of more than ``batch_size`` rows runs as passes back to back and is
        checked once (for NaN or infinite outputs) and counted once: after a forward pass the
        caches are cold, so per-pass bookkeeping costs several times its warm price.
        """
        if x.shape[0] != idx.shape[0]:
            raise ValueError(f"{x.shape[0]} inputs but {idx.shape[0]} sample indices")
        if idx.numel() == 0:
            return idx.new_empty(0)
        asked = torch.bincount(idx, minlength=self.n)
        over = asked > self.remaining()
        if over.any():
            bad = over.nonzero().flatten()[:5].tolist()
            raise BudgetExceeded(
                f"query budget of {self.max_queries} exceeded for sample(s) {bad}: "
                "the attack must not ask for queries a sample no longer has"
            )
        # Counted once for the whole request, as the context would per chunk (its counters are
        # the result's .queries); then the passes back to back, and one look at their outputs.
        self._ctx.queries.add_(asked)
        out = []
        # Equal chunks of at most batch_size rows (100 rows at 64: 50 + 50, not 64 + 36).
        chunk = -(-x.shape[0] // -(-x.shape[0] // self.batch_size))
        with torch.no_grad():
            for start in range(0, x.shape[0], chunk):
                rows = x[start : start + chunk]
                real = rows.shape[0]
                if self.pad or (self.pad is None and PAD_ON_GPU and rows.device.type != "cpu"):
                    rows = padded(rows, min(1 << (real - 1).bit_length(), self.batch_size))
                out.append(one_row_per_image(self._ctx.model(rows), rows.shape[0])[:real])
        logits = torch.cat(out) if len(out) != 1 else out[0]
        # The top score of a row is NaN where any score is (max propagates NaN) and +inf where
        # one is: then its label is meaningless. One float64 sum checks them all (half the cost
        # of isfinite on every score, measured right after a forward pass).
        top, label = logits.max(dim=1)
        if top.device.type == "mps":  # (Apple's GPU has no float64)
            finite = bool(torch.isfinite(top).all())
        else:
            finite = math.isfinite(top.sum(dtype=torch.float64).item())
        if not finite:
            raise InputError(
                "the model returned NaN or infinite outputs for some inputs, so their labels "
                "are meaningless; fix the model (or its inputs) before attacking it"
            )
        return label

    def is_adversarial(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Per row: does ``x`` fool the model for sample ``idx`` (label != y, or == target)?"""
        pred = self.labels(x, idx)
        if self.target is not None:
            return pred == self.target[idx]
        return pred != self.y[idx]


def padded(rows: torch.Tensor, size: int) -> torch.Tensor:
    """``rows`` followed by copies of its first row, ``size`` rows in all."""
    if size <= rows.shape[0]:
        return rows
    fill = rows[:1].expand(size - rows.shape[0], *rows.shape[1:])
    return torch.cat([rows, fill])


def _refuted_by_recheck(result: AttackResult, x: torch.Tensor) -> AttackResult:
    """``result`` with the examples the fresh re-check refuted taken back.

    The attack kept each sample's closest point the oracle labelled adversarial; the re-check
    labels it again (by majority vote for a randomized defense, see
    :func:`robustkit.attack.predict`). Where it disagrees (a randomized model, whose single
    draws the oracle sees; or nondeterministic arithmetic), the trajectory would still count a
    success the result denies: it is emptied, and a point the re-check calls correctly
    classified goes back to the clean image, so distances and figures from trajectories agree
    with ``success``. (A targeted attack's point labelled neither its target nor its true class
    stays: it is still misclassified.) Warns with the count."""
    if result.trajectories is None:
        return result
    has_path = torch.tensor([t.shape[0] > 0 for t in result.trajectories], dtype=torch.bool)
    refuted = result.attacked & ~result.success & has_path
    if not refuted.any():
        return result
    warnings.warn(
        f"{int(refuted.sum())} of {counted(int(has_path.sum()), 'example')} {result.attack} found "
        "were not "
        "adversarial on the fresh re-check (a randomized model, or nondeterministic "
        "arithmetic): reported as not found",
        RobustkitWarning,
        stacklevel=3,
    )
    clean = refuted & (result.adv_pred == result.y)
    x_adv, norms, l2, linf = (
        t.clone() for t in (result.x_adv, result.norms, result.l2, result.linf)
    )
    x_adv[clean] = x.detach().cpu().to(x_adv.dtype)[clean]
    for t in (norms, l2, linf):
        t[clean] = 0
    empty = torch.zeros((0, 2), dtype=result.trajectories[0].dtype)
    paths = [empty if r else t for t, r in zip(result.trajectories, refuted.tolist(), strict=True)]
    return dataclasses.replace(
        result, x_adv=x_adv, norms=norms, l2=l2, linf=linf, trajectories=paths
    )


class BestTracker:
    """Per sample, the closest adversarial example found so far and its trajectory.

    Every time an attack finds an adversarial point closer to ``x0`` than the best so far, call
    :meth:`update`; the trajectory then gains a row (queries spent so far, new L2 distance).
    Distances are L2 in the images' own space ([0, 1] pixels).
    """

    def __init__(self, x0: torch.Tensor, oracle: LabelOracle):
        self.x0 = x0
        self.oracle = oracle
        self.best = x0.clone()
        self.dist = torch.full((x0.shape[0],), float("inf"), device=x0.device, dtype=x0.dtype)
        self._log: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    @property
    def found(self) -> torch.Tensor:
        """Per sample: has any adversarial point been found?"""
        return torch.isfinite(self.dist)

    def update(self, idx: torch.Tensor, x: torch.Tensor, adversarial: torch.Tensor) -> None:
        """Offer points ``x`` for samples ``idx`` (distinct); keep those that are adversarial
        (as the oracle said) and closer than the best so far."""
        keep = adversarial.nonzero().flatten()
        if keep.numel():
            self.offer(idx.index_select(0, keep), x.index_select(0, keep))

    def offer(
        self, idx: torch.Tensor, x: torch.Tensor, d: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Offer adversarial points ``x`` (the oracle said so) for samples ``idx`` (distinct);
        keep those closer than the best so far. ``d``: their L2 distances to the clean images,
        if the caller has them (computed here otherwise). Returns the mask of the points kept
        (those rows of ``x`` are now their samples' rows of :attr:`best`)."""
        # (index_select and index_copy_ move rows several times faster than indexing.)
        if d is None:
            d = flat_norm(x - self.x0.index_select(0, idx), "l2")
        kept = d < self.dist.index_select(0, idx)
        better = kept.nonzero().flatten()
        if better.numel() == 0:
            return kept
        if better.numel() < idx.numel():
            idx, x, d = idx.index_select(0, better), x.index_select(0, better), d[better]
        self.best.index_copy_(0, idx, x)
        self.dist.index_copy_(0, idx, d)
        self._log.append((idx, self.oracle.used.index_select(0, idx), d))
        return kept

    def trajectories(self) -> list[torch.Tensor]:
        """Per sample a ``[k, 2]`` float64 tensor of (queries, L2 of the best so far) on the
        CPU, in query order; empty (``[0, 2]``) for samples without an adversarial point.
        Float64 whatever the images' precision: float32 counts queries exactly only up to 2**24
        (16,777,216), and budgets go up to 10**12; a float32 distance is exact in it."""
        n = self.x0.shape[0]
        if not self._log:
            return [torch.zeros((0, 2), dtype=torch.float64) for _ in range(n)]
        idx = torch.cat([e[0] for e in self._log]).cpu()
        q = torch.cat([e[1] for e in self._log]).cpu().double()
        d = torch.cat([e[2] for e in self._log]).cpu().double()
        order = torch.sort(idx, stable=True).indices
        rows = torch.stack([q[order], d[order]], dim=1)
        counts = torch.bincount(idx, minlength=n).tolist()
        return [t.clone() for t in torch.split(rows, counts)]


class StepCounter:
    """Queries each step of an attack says it made, per sample.

    Attacks add what each step computes it spent (probes drawn, candidates tried, bisection
    steps taken); tests check the sum equals the oracle's count, which is where queries are
    actually counted (the reference implementation's own counter drifted from its oracle).
    """

    def __init__(self, n: int, device: torch.device):
        self.total = torch.zeros(n, dtype=torch.long, device=device)

    def add(self, idx: torch.Tensor, k: torch.Tensor | int = 1) -> None:
        if isinstance(k, int):
            k = torch.full_like(idx, k)
        self.total.index_add_(0, idx, k.long())


#: The largest budget an attack takes: 10**12 queries per image (days of a GPU per image; the
#: counters are 64-bit integers, which a budget near 2**63 overflowed, silently).
MAX_QUERIES = 10**12


def probe_count(name: str, value: object) -> int:
    """``value``, a number of probes per estimate (CGBA's ``n0``, HopSkipJump's
    ``init_num_evals``), as an int, or a one-line error: a positive whole number, at most
    :data:`MAX_QUERIES` (no estimate can label more). CGBA's ``n0 = 10**19`` overflowed its
    64-bit count of probes, which stopped the attack early with negative step counts."""
    if not is_whole_number(value) or not 0 < value <= MAX_QUERIES:
        raise InputError(
            f"{name} must be a positive whole number of probes, at most 10**12 (the largest "
            f"budget), got {shown(value)}"
        )
    return int(value)


def probe_step(name: str, value: object) -> float:
    """``value``, the step of the probes of a normal estimate (``sigma``) in [0, 1] pixel
    units, as a float, or a one-line error: positive, at most 1 (beyond it every probe lands in
    a corner of the box; beyond float32's range, 1e39, torch.add failed with a RuntimeError)."""
    if not is_real_number(value) or not 0 < value <= 1:
        raise InputError(
            f"{name} must be a positive number at most 1 (the probes' step in [0, 1] pixel "
            f"units; the papers' is 2e-4), got {shown(value)}"
        )
    return float(value)


#: Bytes the largest activation of one CPU forward pass should fill: about what stays in a
#: core's cache. Larger batches spill and run slower per image, smaller ones pay per-call costs.
CPU_ACTIVATION_BYTES = 4 * 2**20


#: Rows of one forward pass on an accelerator, at most: a GPU's raw loop on CIFAR-10 models
#: peaks at 4,096-8,192 rows (H200).
ACCELERATOR_ROWS = 4096

#: The share of an accelerator's memory the model's largest activation of one pass may fill
#: (the pass holds a few activations at once, the attack its own rows besides).
ACCELERATOR_ACTIVATION_SHARE = 1 / 16


#: Bytes of image rows one labelling request of a lockstep attack may hold on a CPU (or on a
#: device whose memory cannot be read); on an accelerator, its memory's
#: :data:`ACCELERATOR_ACTIVATION_SHARE`.
REQUEST_BYTES = 256 * 2**20


def request_rows(batch_size: int, row_bytes: int, device: torch.device) -> int:
    """Rows one labelling request of a lockstep attack may hold: whole passes of ``batch_size``
    rows, at least one, within :data:`REQUEST_BYTES` (on an accelerator, its memory's
    :data:`ACCELERATOR_ACTIVATION_SHARE`).

    CGBA builds each query round's rows first and labels them in one request of back-to-back
    passes (cheaper per row on a cheap model than a request per pass). Its pending probes can
    outnumber a pass many times over: 250 images of 224×224 with their normal estimates under
    way held up to several GiB in one request before this bound. CIFAR-10 rows (12 KiB) reach
    it only beyond 20,000 rows on a CPU."""
    memory = accelerator_memory(device)  # None on a CPU
    budget = memory * ACCELERATOR_ACTIVATION_SHARE if memory else REQUEST_BYTES
    return max(1, int(budget // (row_bytes * batch_size))) * batch_size


def default_batch_size(device: torch.device, model: torch.nn.Module | None = None, x=None) -> int:
    """Rows per forward pass of the label oracle.

    On an accelerator, 4096, or fewer (a power of two, the oracle pads passes to powers of
    two) where the model's largest activation at 4096 rows would fill more than
    :data:`ACCELERATOR_ACTIVATION_SHARE` of the device's memory: torchvision/efficientnet_b7's
    is 66 MiB per 600×600 image, 264 GiB at 4096 rows.

    On a CPU, as many rows as keep the model's largest activation within
    :data:`CPU_ACTIVATION_BYTES` (a multiple of 16, from 16 to 1024; 64 when it cannot be
    measured). Measured on 2 cores (median images/s): cifar10/resnet20, 64 KiB per image, 64
    rows, 2216/s (best 2216 at 64, 1609 at 256); cifar10/resnet4b-at, 16 KiB, 256 rows,
    31780/s (22915 at 64); mnist/lenet5, 98 KiB, 48 rows, 7130/s (best 7719 at 128, 5420 at
    256)."""
    measurable = model is not None and x is not None
    if torch.device(device).type != "cpu":
        memory = accelerator_memory(device)
        per_image = largest_activation_bytes(model, x) if measurable and memory else None
        if not per_image:
            return ACCELERATOR_ROWS
        fits = int(memory * ACCELERATOR_ACTIVATION_SHARE // per_image)
        return 1 << max(0, min(ACCELERATOR_ROWS, fits).bit_length() - 1)  # floor to 2^k, ≥ 1
    per_image = largest_activation_bytes(model, x) if measurable else None
    if not per_image:
        return 64
    rows = round(CPU_ACTIVATION_BYTES / per_image / 16) * 16
    return int(min(1024, max(16, rows)))


class DecisionAttack(Attack):
    """Base class of the label-only (decision-based) attacks: minimum-L2, budget in queries.

    ``max_queries`` is the per-sample budget; ``eps`` is optional and only recorded (success at
    ε is read off the trajectories with :func:`robustkit.budgets.success_rate_at`; the returned
    examples are not projected onto an ε-ball). ``batch_size`` caps the rows of one forward pass
    (None: :func:`default_batch_size` for the model and its device).
    The result carries ``trajectories`` and, in ``extras["step_queries"]``, the per-sample sum
    of the queries each step reported.
    """

    family: ClassVar[str] = "decision"
    extras_fill: ClassVar[dict[str, int]] = {"step_queries": 0}
    norms: ClassVar[tuple[str, ...]] = ("l2",)
    requires_eps: ClassVar[bool] = False

    def __init__(
        self,
        max_queries: int = 1000,
        norm: str = "l2",
        eps: float | str | None = None,
        targeted: bool = False,
        seed: int = 0,
        batch_size: int | None = None,
    ):
        if check_norm(norm) != "l2":
            raise InputError(f"{self.name} is an L2 attack; use norm='l2'")
        super().__init__(norm="l2", eps=None, targeted=targeted, seed=seed)
        if not is_whole_number(max_queries) or not 0 < max_queries <= MAX_QUERIES:
            raise InputError(
                f"max_queries must be a positive whole number of queries per image, at most "
                f"10**12, got {shown(max_queries)}"
            )
        if batch_size is not None and (not is_whole_number(batch_size) or batch_size <= 0):
            raise InputError(f"batch_size must be a positive whole number, got {shown(batch_size)}")
        self.max_queries = int(max_queries)
        self.batch_size = None if batch_size is None else int(batch_size)
        # Kept outside the threat model so the base class does not clip the result to ε.
        self.eps = parse_eps(eps) if eps is not None else None

    def __call__(
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor | Sequence[int],
        target: torch.Tensor | Sequence[int] | None = None,
        *,
        clean_pred: torch.Tensor | None = None,
    ) -> AttackResult:
        """Attack ``model`` on ``x`` (see :meth:`Attack.__call__`, whose check that the model
        classifies such images at all runs outside every budget). Runs in full float32 on a GPU
        (see :func:`~robustkit.device.full_float32`)."""
        with full_float32():
            result = super().__call__(model, x, y, target, clean_pred=clean_pred)
        return _refuted_by_recheck(result, x)

    def _attack(
        self,
        ctx: AttackContext,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
    ) -> torch.Tensor:
        # Sized from the model check's forward pass in __call__ (no query, no extra pass).
        batch = self.batch_size or default_batch_size(x.device, ctx.model, x)
        oracle = LabelOracle(ctx, y, target, self.max_queries, batch)
        tracker = BestTracker(x, oracle)
        steps = StepCounter(x.shape[0], x.device)
        # The attack gets the oracle, a seeded generator and a place for per-sample outputs:
        # never the model or the context, so it cannot see scores or gradients.
        self._run(oracle, tracker, steps, ctx.generator, ctx.extras, x, y, target)
        ctx.extras["trajectories"] = tracker.trajectories()
        ctx.extras["step_queries"] = steps.total.cpu()
        return tracker.best

    @abstractmethod
    def _run(
        self,
        oracle: LabelOracle,
        tracker: BestTracker,
        steps: StepCounter,
        rng: torch.Generator,
        extras: dict,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
    ) -> None:
        """Spend the budget through ``oracle``; report adversarial points to ``tracker``, each
        step's queries to ``steps``; draw randomness from ``rng``; put per-sample outputs (one
        entry per attacked sample) into ``extras``."""
