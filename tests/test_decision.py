"""Decision-based attacks on synthetic models: the oracle, exact query accounting, budgets,
geometry on a linear model with a known answer, determinism and bad input."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import robustkit
from robustkit.attack import AttackContext
from robustkit.attacks.cgba import CGBA, CGBAH
from robustkit.attacks.dct import LowFrequencySampler, auto_factor, dct_matrix
from robustkit.budgets import l2_at_budgets, median_l2_at, outcomes, success_rate_at
from robustkit.errors import InputError
from robustkit.oracle import BestTracker, BudgetExceeded, DecisionAttack, LabelOracle
from robustkit.registry import constructor_parameters
from robustkit.threat import ThreatModel
from tests.helpers import HalfScores, Linear, one_intra_op_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """This module's many small attacks run faster on one thread; the threads come back after
    it (set at import, one thread held for the whole session: every test file is imported
    before the first test runs)."""
    with one_intra_op_thread():
        yield


DECISION = ["cgba", "cgba-h", "hsja", "geoda"]


class Binary(nn.Module):
    """Two classes split by the hyperplane w·x + b = 0: the minimal L2 distance is known."""

    def __init__(self, shape=(3, 8, 8), seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        d = int(torch.tensor(shape).prod())
        self.w = nn.Parameter(torch.randn(d, generator=gen), requires_grad=False)
        # The boundary passes through the grey image, so the closest boundary point of an
        # image near it lies well inside the box.
        self.b = nn.Parameter(-0.5 * self.w.sum(), requires_grad=False)

    def forward(self, x):
        s = x.flatten(1) @ self.w + self.b
        return torch.stack([torch.zeros_like(s), s], dim=1)

    def distance(self, x):
        return (x.flatten(1) @ self.w + self.b).abs() / self.w.norm()


class Constant(nn.Module):
    """Predicts class 0 whatever the input: nothing is ever adversarial."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, x):
        out = torch.zeros(x.shape[0], 3, device=x.device)
        out[:, 0] = 1
        return out


def images(n=6, shape=(3, 8, 8), seed=1):
    gen = torch.Generator().manual_seed(seed)
    return (0.5 + 0.1 * torch.randn((n,) + shape, generator=gen)).clamp(0, 1)


@pytest.fixture(scope="module")
def linear():
    model = Linear().eval()
    x = images(8)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


# -- oracle ----------------------------------------------------------------------------------
def test_oracle_counts_each_row_and_enforces_budget(linear):
    model, x, y = linear
    ctx = AttackContext(model, 3, torch.device("cpu"), 0, ThreatModel("l2", None))
    oracle = LabelOracle(ctx, y[:3], None, max_queries=4, batch_size=2)
    idx = torch.tensor([0, 0, 2, 0, 1])
    labels = oracle.labels(x[idx], idx)
    assert labels.dtype == torch.long and labels.shape == (5,)
    assert ctx.queries.tolist() == [3, 1, 1]
    assert oracle.remaining().tolist() == [1, 3, 3]
    with pytest.raises(BudgetExceeded):
        oracle.labels(x[[0, 0]], torch.tensor([0, 0]))
    assert ctx.queries.tolist() == [3, 1, 1]  # a refused request labels nothing
    assert not oracle.is_adversarial(x[:3], torch.arange(3)).any()
    assert ctx.queries.tolist() == [4, 2, 2]


def tf32_settings() -> tuple[bool, bool]:
    """Whether cuDNN and cuBLAS may run float32 as TF32 (as far as the test sets them), read
    through PyTorch ≥ 2.9's fp32_precision where it exists: inside full_float32 the legacy
    allow_tf32 flags are not to be read there."""
    b = torch.backends
    if hasattr(b.cuda.matmul, "fp32_precision"):
        return b.cudnn.conv.fp32_precision != "ieee", b.cuda.matmul.fp32_precision != "ieee"
    return b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32


class RowRecorder(nn.Module):
    """Wraps a model and records the rows of each forward pass and the TF32 flags it ran under."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.rows: list[int] = []
        self.tf32: set[tuple[bool, bool]] = set()

    def forward(self, x):
        self.rows.append(x.shape[0])
        self.tf32.add(tf32_settings())
        return self.model(x)


def test_padded_passes_are_powers_of_two_neither_counted_nor_returned(linear):
    model, x, y = linear
    recorder = RowRecorder(model)
    ctx = AttackContext(recorder, 8, torch.device("cpu"), 0, ThreatModel("l2", None))
    oracle = LabelOracle(ctx, y, None, max_queries=100, batch_size=16, pad=True)
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(8, (37,), generator=gen)
    probes = (x[idx] + 0.2 * torch.randn(x[idx].shape, generator=gen)).clamp(0, 1)
    with torch.no_grad():
        expected = model(probes).argmax(1)
    # 37 rows at 16 per pass: chunks of 13, 13, 11, each padded to 16.
    assert torch.equal(oracle.labels(probes, idx), expected)
    assert recorder.rows == [16, 16, 16]
    assert torch.equal(ctx.queries, torch.bincount(idx, minlength=8))
    assert torch.equal(oracle.labels(probes[:5], idx[:5]), expected[:5])
    assert recorder.rows[-1] == 8
    assert oracle.labels(probes[:1], idx[:1]).shape == (1,) and recorder.rows[-1] == 1
    # pad=None pads on a GPU only: on the CPU the rows go as they are.
    plain = LabelOracle(ctx, y, None, max_queries=100, batch_size=16)
    assert torch.equal(plain.labels(probes[:5], idx[:5]), expected[:5])
    assert recorder.rows[-1] == 5


def test_decision_attacks_run_in_full_float32_and_restore_the_settings(linear):
    model, x, y = linear
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        recorder = RowRecorder(model)
        robustkit.get_attack("cgba", max_queries=50)(recorder, x[:2], y[:2])
        assert recorder.tf32 == {(False, False)}
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        with pytest.raises(InputError):  # restored on the way out of a refused call as well
            robustkit.get_attack("cgba", max_queries=50)(recorder, x[:2, :, :4], y[:2])
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


class DtypeRecorder(nn.Module):
    """Wraps a model and records the dtype of each forward pass's scores."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.dtypes: set[torch.dtype] = set()

    def forward(self, x):
        out = self.model(x)
        self.dtypes.add(out.dtype)
        return out


@pytest.mark.parametrize("name", DECISION)
def test_decision_attacks_run_in_full_float32_under_an_enclosing_autocast(linear, name):
    """Called inside a caller's ``torch.autocast`` (mixed precision in a notebook or a training
    loop), the label oracle's passes ran in bfloat16 (float16 on a GPU): far coarser than the
    TF32 full_float32 turns off. Autocast is off inside full_float32, and back after it."""
    model, x, y = linear
    recorder = DtypeRecorder(model)
    targeted = name == "cgba-h"
    target = (y[:2] + 1) % 10 if targeted else None
    attack = robustkit.get_attack(name, max_queries=30, targeted=targeted)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        attack(recorder, x[:2], y[:2], target)
        assert nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.bfloat16  # the caller's, back
    assert recorder.dtypes == {torch.float32}


# -- accounting and the result contract --------------------------------------------------------
@pytest.mark.parametrize("name", DECISION)
@pytest.mark.parametrize("budget", [1, 3, 37, 400])
def test_exact_accounting_and_adversarial_results(linear, name, budget):
    model, x, y = linear
    targeted = name == "cgba-h"
    target = (y + 1) % 10 if targeted else None
    attack = robustkit.get_attack(name, max_queries=budget, targeted=targeted)
    res = attack(model, x, y, target)
    assert res.attacked.all()
    assert (res.queries <= budget).all()
    assert torch.equal(res.extras["step_queries"], res.queries)
    # Every image with a start point spends its whole budget.
    assert (res.queries[res.success] == budget).all()
    assert len(res.trajectories) == x.shape[0]
    l2 = (res.x_adv - x).flatten(1).norm(dim=1)
    for i, traj in enumerate(res.trajectories):
        if not res.success[i]:
            assert traj.shape == (0, 2)
            assert torch.equal(res.x_adv[i], x[i])
            continue
        assert traj.shape[1] == 2 and traj.shape[0] >= 1
        assert (traj[:, 0] <= budget).all() and (traj[:, 0].diff() >= 0).all()
        assert (traj[:, 1].diff() < 0).all()  # each row is a strictly better point
        assert traj[-1, 1].item() == pytest.approx(l2[i].item(), rel=1e-4)
    if budget == 400 and not targeted:
        assert res.success.all()


def test_best_tracker_offer_keeps_and_reports_the_closer_points():
    x0 = torch.zeros(3, 1, 2, 2)
    ctx = AttackContext(nn.Identity(), 3, torch.device("cpu"), 0, ThreatModel("l2", None))
    tracker = BestTracker(x0, LabelOracle(ctx, torch.zeros(3, dtype=torch.long), None, 10))
    far, near = torch.full((2, 1, 2, 2), 0.5), torch.full((2, 1, 2, 2), 0.25)
    assert tracker.offer(torch.tensor([0, 2]), far).tolist() == [True, True]
    kept = tracker.offer(torch.tensor([2, 0]), torch.stack([near[0], far[0] * 2]))
    assert kept.tolist() == [True, False]
    assert torch.equal(tracker.best[2], near[0]) and torch.equal(tracker.best[0], far[0])
    assert tracker.dist.tolist() == [1.0, float("inf"), 0.5]


@pytest.mark.parametrize("name", ["cgba", "cgba-h"])
def test_cgba_follows_its_latest_point_whatever_the_tracker_keeps(linear, name, monkeypatch):
    """CGBA keeps an iteration's latest adversarial point in the tracker's best when it is the
    image's best yet, and in a row of its own otherwise (in practice every hit is an
    improvement, so that branch is rare). With a tracker that declines every other offered point
    as if it were no improvement, the attack must still ask the oracle for exactly the same
    inputs: its path depends on its own points, never on what the tracker kept."""
    model, x, y = linear
    target = (y + 1) % 10 if name == "cgba-h" else None

    def inputs_of_one_run() -> list[float]:
        sums: list[float] = []
        hook = model.register_forward_hook(lambda m, i, o: sums.append(i[0].double().sum().item()))
        try:
            robustkit.get_attack(name, max_queries=300)(model, x, y, target)
        finally:
            hook.remove()
        return sums

    plain = inputs_of_one_run()
    offer, declined = BestTracker.offer, [0]

    def declining_offer(self, idx, rows, d=None):
        keep = torch.arange(idx.numel()) % 2 == 1  # decline the first, third, ... point
        kept = torch.zeros(idx.numel(), dtype=torch.bool)
        if keep.any():
            kept[keep] = offer(self, idx[keep], rows[keep], None if d is None else d[keep])
        declined[0] += int((~keep).sum())
        return kept

    monkeypatch.setattr(BestTracker, "offer", declining_offer)
    declining = inputs_of_one_run()
    # All passes alike but the last: the re-check of the returned (the tracker's best) points.
    assert declining[:-1] == plain[:-1] and declining[-1] != plain[-1]
    assert declined[0] > 50


def test_success_is_rechecked_outside_the_budget(linear):
    model, x, y = linear
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    res = robustkit.get_attack("cgba", max_queries=50)(model, x, y)
    model._forward_hooks.clear()
    # The queries, plus outside the budget: two images to check the model can classify such
    # images, the clean predictions and the re-check of every returned example.
    assert sum(calls) == int(res.queries.sum()) + 2 + 2 * x.shape[0]
    assert (res.adv_pred != y).all() == bool(res.success.all())


# -- geometry: a hyperplane with a known minimal distance -------------------------------------
@pytest.mark.parametrize(
    "name, options",
    [
        ("cgba", {}),
        ("cgba", {"shared_probes": False}),
        ("cgba", {"baseline": True}),
        ("hsja", {}),
        ("geoda", {}),
    ],
)
def test_binary_linear_model_reaches_the_known_distance(name, options):
    # A small image (d = 48) so that a few thousand queries are enough to converge.
    model = Binary(shape=(3, 4, 4)).eval()
    x = images(6, shape=(3, 4, 4), seed=3)
    with torch.no_grad():
        y = model(x).argmax(1)
    best = model.distance(x)
    res = robustkit.get_attack(name, max_queries=3000, **options)(model, x, y)
    assert torch.equal(res.extras["step_queries"], res.queries)
    assert res.success.all()
    ratio = res.l2 / best
    assert (ratio >= 1 - 1e-4).all()  # nothing can beat the true distance
    assert ratio.median() < (1.02 if name == "cgba" else 1.05), ratio
    assert ratio.max() < 1.1, ratio


def _read_probes(estimates, idx, m, sigma):
    """Order probes, take them all and return each probe's image and direction (xb = 0.5)."""
    estimates.order(torch.as_tensor(idx), torch.as_tensor(m))
    out = torch.empty((estimates.pending,) + estimates.xb.shape[1:])
    owners = estimates.take(out)
    estimates.record(torch.zeros(owners.numel(), dtype=torch.bool))
    return owners, ((out - 0.5) / sigma).flatten(1)


def test_shared_probe_pool_is_fresh_per_image_and_shared_between_images():
    """Shared directions: image j reads the pool cyclically from its own offset and moves to a
    newly drawn pool before it would read a row twice, so no image ever probes along the same
    direction twice while both images read the same pool."""
    from robustkit.attacks._normals import NormalEstimates
    from robustkit.attacks.dct import LowFrequencySampler

    sigma, rows = 1e-3, 6
    sampler = LowFrequencySampler((1, 2, 2), 1)
    xb = torch.full((2, 1, 2, 2), 0.5)
    gen = torch.Generator().manual_seed(0)
    est = NormalEstimates(xb, sampler, gen, sigma, shared=True, pool_rows=rows)
    owners, dirs = _read_probes(est, [0, 1], [rows, rows], sigma)
    first, second = dirs[owners == 0], dirs[owners == 1]
    # Both read the whole pool, each from its own offset: one is a cyclic shift of the other.
    assert any(torch.allclose(first, second.roll(k, 0), atol=1e-3) for k in range(rows))
    assert len(est._pools) == 1
    seen = [first]
    for _ in range(8):  # image 0 alone, 4 probes per order: a new pool every order or two
        owners, dirs = _read_probes(est, [0], [4], sigma)
        assert (owners == 0).all()
        seen.append(dirs)
    seen = torch.cat(seen)
    assert len(est._pools) >= 5
    # 38 directions, never the same one twice.
    gaps = torch.cdist(seen, seen) + torch.eye(len(seen)) * 1e9
    assert gaps.min() > 1e-2
    # Orders larger than the pool draw their own directions.
    owners, dirs = _read_probes(est, [1], [rows + 3], sigma)
    assert owners.numel() == rows + 3 and torch.cdist(dirs, dirs).add(torch.eye(9)).min() > 1e-2


def test_normal_estimate_is_the_signed_mean_of_the_probes():
    from robustkit.attacks._normals import NormalEstimates
    from robustkit.attacks.dct import LowFrequencySampler

    sigma = 1e-3
    sampler = LowFrequencySampler((1, 2, 2), 1)
    xb = torch.full((3, 1, 2, 2), 0.5)
    for shared, baseline in [(False, False), (True, False), (False, True)]:
        est = NormalEstimates(
            xb, sampler, torch.Generator().manual_seed(1), sigma, baseline, shared
        )
        est.order(torch.tensor([2, 0]), torch.tensor([5, 3]))
        verdict = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1], dtype=torch.bool)
        out = torch.empty((8, 1, 2, 2))
        owners = est.take(out[:3])  # labelled over two passes
        est.record(verdict[:3])
        assert est.completed()[0].numel() == 0
        owners = torch.cat([owners, est.take(out[3:])])
        est.record(verdict[3:])
        assert owners.tolist() == [2, 2, 2, 2, 2, 0, 0, 0] and est.pending == 0
        done, eta = est.completed()
        assert done.tolist() == [0, 2]
        dirs = ((out - 0.5) / sigma).flatten(1)
        s = verdict.float() * 2 - 1
        for row, j in enumerate(done.tolist()):
            sel = owners == j
            w = s[sel] - s[sel].mean() if baseline else s[sel]
            expected = (w[:, None] * dirs[sel]).mean(0)
            assert torch.allclose(eta[row].flatten(), expected, atol=1e-3), (shared, baseline)
        assert est.completed()[0].numel() == 0  # handed out once


@pytest.mark.parametrize("factor", [1, 2])
def test_normal_from_wrapping_pool_rows_and_dct_subspace(factor):
    """A normal is computed once its image's last probe is labelled, from its rows of the
    table: here rows that wrap around the end of a shared pool (two segments) and, with
    factor 2, directions in the DCT subspace (the signed sum is taken in the subspace and
    mapped once, which the DCT's linearity allows). The probes' verdicts come in three passes
    that split the segments."""
    from robustkit.attacks._normals import NormalEstimates
    from robustkit.attacks.dct import LowFrequencySampler

    sigma, rows = 1e-3, 8
    sampler = LowFrequencySampler((2, 4, 4), factor)
    xb = torch.full((3, 2, 4, 4), 0.5)
    est = NormalEstimates(
        xb, sampler, torch.Generator().manual_seed(3), sigma, shared=True, pool_rows=rows
    )
    est._offset = [6, 1, 3]  # image 0 reads rows 6, 7, 0, 1, 2; image 2 rows 3, 4, 5
    est.order(torch.tensor([0, 2]), torch.tensor([5, 3]))
    out = torch.empty((8, 2, 4, 4))
    verdict = torch.tensor([1, 1, 0, 1, 0, 0, 1, 1], dtype=torch.bool)
    owners = []
    for lo, hi in [(0, 1), (1, 6), (6, 8)]:
        owners.append(est.take(out[lo:hi]))
        est.record(verdict[lo:hi])
    owners = torch.cat(owners)
    assert owners.tolist() == [0] * 5 + [2] * 3
    dirs = ((out - 0.5) / sigma).flatten(1)
    pool = sampler.directions(est._pools[0]).flatten(1)
    assert torch.allclose(dirs, pool[[6, 7, 0, 1, 2, 3, 4, 5]], atol=1e-3)
    done, eta = est.completed()
    assert done.tolist() == [0, 2]
    s = verdict.float() * 2 - 1
    for row, j in enumerate(done.tolist()):
        sel = owners == j
        expected = (s[sel, None] * dirs[sel]).mean(0)
        assert torch.allclose(eta[row].flatten(), expected, atol=1e-3)


def test_oracle_labels_rows_with_some_minus_infinite_scores():
    """A row whose top score is finite has a label even if another score is -inf; NaN or +inf
    anywhere in a row makes its label meaningless (refused)."""

    class Scores(nn.Module):
        def forward(self, x):
            out = torch.zeros(x.shape[0], 3)
            out[:, 1] = 1.0
            out[:, 2] = -torch.inf
            out[x.flatten(1)[:, 0] > 0.5, 0] = torch.nan
            out[x.flatten(1)[:, 0] < -0.5, 0] = torch.inf
            return out

    ctx = AttackContext(Scores(), 2, torch.device("cpu"), 0, ThreatModel("l2", None))
    oracle = LabelOracle(ctx, torch.tensor([0, 0]), None, max_queries=10)
    x = torch.zeros(2, 1, 2, 2)
    assert oracle.labels(x, torch.arange(2)).tolist() == [1, 1]
    for bad in (1.0, -1.0):
        with pytest.raises(InputError, match="NaN or infinite"):
            oracle.labels(x.index_fill(0, torch.tensor([1]), bad), torch.arange(2))
    # A request of several passes is checked whole: here the bad row is in the second pass.
    split = LabelOracle(ctx, torch.tensor([0, 0]), None, max_queries=10, batch_size=1)
    with pytest.raises(InputError, match="NaN or infinite"):
        split.labels(x.index_fill(0, torch.tensor([1]), 1.0), torch.arange(2))


@pytest.mark.parametrize("name", ["cgba", "cgba-h"])
def test_query_rounds_fill_whole_forward_passes(name):
    """CGBA's rounds fill their forward passes with pending probes to whole batches of the
    oracle (the rest wait a round): apart from the rounds smaller than one batch (start, tail),
    the passes are full. (Before, each round was split into equal chunks: 35% of the rows of
    this run went in full passes.) A model hook sees every labelled row."""
    model, x = Linear().eval(), images(32)
    with torch.no_grad():
        y = model(x).argmax(1)
    target = (y + 1) % 10 if name == "cgba-h" else None
    sizes = []
    model.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    res = robustkit.get_attack(name, max_queries=300, batch_size=32)(model, x, y, target)
    sizes = torch.tensor(sizes[2:-1])  # not the model check, clean predictions and re-check
    assert int(sizes.sum()) == int(res.queries.sum())
    assert sizes.max() <= 32
    assert sizes[sizes == 32].sum() / sizes.sum() > 0.9, sizes.tolist()
    assert torch.equal(res.extras["step_queries"], res.queries)


def test_cgba_targeted_on_ten_classes(linear):
    model, x, y = linear
    target = y.roll(1)  # the label of another image of the batch: a start point exists
    keep = target != y
    x, y, target = x[keep], y[keep], target[keep]
    assert keep.sum() >= 4
    res = robustkit.get_attack("cgba-h", max_queries=500)(model, x, y, target)
    assert res.success.all() and (res.adv_pred == target).all()
    assert torch.isfinite(median_l2_at(res, [500])).all()


def test_closer_start_search_keeps_the_closest_boundary_point():
    """The targeted start-point search on a hyperplane: every candidate's boundary point is known
    exactly, so the kept start must be the closest of the k nearest target-class images'."""
    from robustkit.attacks._boundary import bisect_segment, closer_targeted_start, start_targeted
    from robustkit.oracle import BestTracker, StepCounter

    model = Binary()
    x = images(24, seed=3)
    with torch.no_grad():
        y = model(x).argmax(1)
    target = 1 - y
    assert 6 <= int(y.sum()) <= 18
    n, k, tol = x.shape[0], 5, 1e-5
    ctx = AttackContext(model, n, torch.device("cpu"), 0, ThreatModel("l2", None))
    oracle = LabelOracle(ctx, y, target, 10_000)
    tracker, steps = BestTracker(x, oracle), StepCounter(n, torch.device("cpu"))
    start, found = start_targeted(oracle, tracker, steps, x, y, target, ctx.generator)
    idx = found.nonzero().flatten()
    bisect_segment(oracle, tracker, steps, idx, x[idx], start[idx], tol)
    first = tracker.dist.clone()
    closer_targeted_start(oracle, tracker, steps, x, y, target, k, tol)
    # analytic: the boundary point of the segment x0 -> c is at s0 / (s0 - sc) of its length
    s = x.flatten(1) @ model.w + model.b
    dist = torch.cdist(x.flatten(1), x.flatten(1))
    dist[target.unsqueeze(1) != y.unsqueeze(0)] = float("inf")
    near_d, near = dist.topk(k, dim=1, largest=False)
    along = s.unsqueeze(1) / (s.unsqueeze(1) - s[near])
    expected = (along * near_d).min(dim=1).values
    assert torch.allclose(tracker.dist, expected, atol=1e-4)
    assert (tracker.dist <= first).all() and (tracker.dist < first - 1e-3).any()
    assert torch.equal(steps.total, ctx.queries)


def test_cgba_h_with_start_search_keeps_the_budget_and_accounting(linear):
    model, x, y = linear
    target = y.roll(1)
    keep = target != y
    x, y, target = x[keep], y[keep], target[keep]
    res = robustkit.get_attack("cgba-h", max_queries=300, start_candidates=4)(model, x, y, target)
    assert res.success.all() and (res.queries <= 300).all()
    assert torch.equal(res.extras["step_queries"], res.queries)
    with pytest.raises(InputError, match="start_candidates"):
        robustkit.get_attack("cgba-h", start_candidates=0)


def test_start_candidates_is_refused_where_there_is_no_target():
    """The closer-start search looks for images of the target class: an untargeted attack has
    none, and start_candidates=3 on one was silently ignored (a run believed it was on)."""
    from robustkit.specs import build_attack

    for name, options in (("cgba", {}), ("cgba-h", {"targeted": False})):
        with pytest.raises(InputError, match="start_candidates.*targeted"):
            robustkit.get_attack(name, start_candidates=3, **options)
    with pytest.raises(InputError, match="start_candidates.*targeted"):
        build_attack("cgba:start_candidates=3", max_queries=100)
    # targeted (in the spec, or the run's --targeted), and the default of 1: as before
    assert build_attack("cgba:start_candidates=3", targeted=True).start_candidates == 3
    assert robustkit.get_attack("cgba-h", start_candidates=3).start_candidates == 3
    assert robustkit.get_attack("cgba", start_candidates=1).start_candidates == 1


# -- determinism, bad input, clearly labelled results -------------------------------------------
def test_same_seed_same_run(linear):
    model, x, y = linear
    a = robustkit.get_attack("cgba", max_queries=120, seed=5)(model, x, y)
    b = robustkit.get_attack("cgba", max_queries=120, seed=5)(model, x, y)
    c = robustkit.get_attack("cgba", max_queries=120, seed=6)(model, x, y)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.queries, b.queries)
    assert not torch.equal(a.x_adv, c.x_adv)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "100", np.float64(100)])
def test_bad_budget(bad):
    with pytest.raises(InputError, match="max_queries"):
        robustkit.get_attack("cgba", max_queries=bad)


def test_numpy_numbers_are_numbers():
    """NumPy scalars (what a value read from an array is) are taken like Python's, and stored
    as Python's (the parameters go into JSON)."""
    import json

    atk = robustkit.get_attack(
        "cgba", max_queries=np.int64(100), n0=np.int32(20), sigma=np.float32(1e-4),
        dim_reduction_factor=np.int64(2), batch_size=np.int64(8), seed=np.int64(1),
    )  # fmt: skip
    assert (atk.max_queries, atk.n0, atk.dim_reduction_factor, atk.batch_size) == (100, 20, 2, 8)
    json.dumps(atk.params)
    assert robustkit.get_attack("hsja", gamma=np.float32(2.0)).gamma == 2.0
    assert robustkit.get_attack("geoda", init_tries=np.int16(5)).init_tries == 5
    assert robustkit.get_attack("pgd", steps=np.int64(3), step_size=np.float32(0.5)).steps == 3
    assert robustkit.get_attack("apgd-ce", rho=np.float32(0.5)).rho == 0.5
    assert robustkit.get_defense("bit-depth", bits=np.int64(3)).params["bits"] == 3
    assert robustkit.get_defense("input-noise", votes=np.int64(3)).params["votes"] == 3
    for name, bad in (("sigma", np.float64(np.nan)), ("sigma", math.inf), ("n0", np.float32(3))):
        with pytest.raises(InputError, match=name):
            robustkit.get_attack("cgba", **{name: bad})


def test_bad_parameters():
    with pytest.raises(InputError, match="sigma"):
        robustkit.get_attack("cgba", sigma=0)
    with pytest.raises(InputError, match="L2"):
        robustkit.get_attack("hsja", norm="linf")
    with pytest.raises(InputError, match="dim_reduction_factor"):
        robustkit.get_attack("geoda", dim_reduction_factor=0)


@pytest.mark.parametrize("name", DECISION)
def test_help_names_every_parameter(name):
    """``help(type(attack))`` is where the README sends a user for what an attack takes; for
    HopSkipJump and GeoDA it named none of init_num_evals, max_num_evals, gamma,
    max_step_halvings, init_tries, max_bisection_steps (hsja) or dim_reduction_factor, sigma,
    mu, tol, max_jump_steps, init_noise (geoda), so their meaning and defaults were
    guesswork. (CGBA-H's help sends the reader to CGBA's for the parameters they share.)"""
    cls = type(robustkit.get_attack(name))
    docs = " ".join(
        c.__doc__ or "" for c in (cls, CGBA if cls is CGBAH else cls, DecisionAttack, cls.__init__)
    )
    common = {"norm", "targeted", "seed"}  # (every attack's, Attack's own)
    missing = [
        p
        for p in constructor_parameters(cls)
        if p not in common and not re.search(rf"\b{p}\b", docs)
    ]
    assert not missing, missing


def test_parameters_past_their_range_are_refused_not_overflowed(linear):
    """CGBA's n0 of 10**19 overflowed the int64 count of an estimate's probes: the attack spent
    about 20 of its 50 queries and reported step_queries of -9.2e18 per image; a sigma beyond
    float32 (1e39) failed in torch.add with a raw RuntimeError (and any sigma above 1 put every
    probe in a corner of the [0, 1] box); HopSkipJump's init_num_evals or max_num_evals of
    10**400 failed with an OverflowError."""
    model, x, y = linear
    for name, key, value in (
        ("cgba", "n0", 10**19),
        ("cgba-h", "n0", 10**12 + 1),
        ("cgba", "sigma", 1e39),
        ("geoda", "sigma", 1.5),
        ("hsja", "init_num_evals", 10**400),
        ("hsja", "max_num_evals", 10**13),
    ):
        with pytest.raises(InputError, match=rf"^{key} must be .*at most"):
            robustkit.get_attack(name, max_queries=50, **{key: value})
    # the largest n0 taken keeps the accounting exact and spends the budget
    res = robustkit.get_attack("cgba", max_queries=50, n0=10**12)(model, x[:3], y[:3])
    assert torch.equal(res.extras["step_queries"], res.queries) and (res.queries == 50).all()
    assert robustkit.get_attack("geoda", sigma=1).sigma == 1.0


def test_target_equal_to_label_is_an_error(linear):
    model, x, y = linear
    with pytest.raises(InputError, match="target equals the true label"):
        robustkit.get_attack("cgba-h", max_queries=50)(model, x, y, y)


def test_targets_of_the_wrong_dtype_are_named_as_such(linear):
    """Float targets (``(y + 1.0) % 10``) were refused as "shaped like y (8,), got shape
    (8,)": a shape error for a tensor of the right shape, which did not say what was wrong."""
    model, x, y = linear
    for bad, dtype in (((y + 1.0) % 10, "torch.float32"), (y != y, "torch.bool")):
        with pytest.raises(InputError, match=rf"target must be .*integer.* and dtype {dtype}$"):
            robustkit.get_attack("cgba-h", max_queries=50)(model, x, y, bad)


def test_already_misclassified_gets_zero_queries(linear):
    model, x, y = linear
    wrong = y.clone()
    wrong[:2] = (y[:2] + 1) % 10
    res = robustkit.get_attack("cgba", max_queries=60)(model, x, wrong)
    assert res.attacked.tolist() == [False, False] + [True] * (x.shape[0] - 2)
    assert res.queries[:2].tolist() == [0, 0]
    assert res.trajectories[0].shape == (0, 2)
    assert torch.equal(res.x_adv[:2], x[:2])
    assert outcomes(res)[:3] == ["already misclassified", "already misclassified", "adversarial"]


class NaNModel(nn.Module):
    """A linear model that returns NaN for bright inputs (all of them when ``limit`` is 0)."""

    def __init__(self, limit=0.0):
        super().__init__()
        self.inner, self.limit = Linear(), limit

    def forward(self, x):
        out = self.inner(x)
        return torch.where(x.flatten(1)[:, :1] > self.limit, torch.nan, out)


def test_images_the_model_cannot_classify(linear):
    model, x, y = linear
    for attack in ("cgba", "pgd"):  # every attack checks first, white-box ones too
        with pytest.raises(InputError, match="cannot classify images shaped"):
            robustkit.get_attack(attack)(model, x[:, :1], y)
        with pytest.raises(InputError, match=r"labels must lie in 0\.\.9 .* got 10"):
            robustkit.get_attack(attack)(model, x, torch.full_like(y, 10))
    # images that carry an autograd graph: label-only attacks work on them too
    res = robustkit.get_attack("cgba", max_queries=50)(model, x.clone().requires_grad_(), y)
    assert not res.x_adv.requires_grad and res.queries.max() <= 50
    with pytest.raises(InputError, match="NaN"):
        robustkit.get_attack("hsja", max_queries=200)(NaNModel(), x, y)
    # NaN only on some queries: the oracle refuses to turn them into labels.
    model = NaNModel(limit=0.95).eval()
    ctx = AttackContext(model, 2, torch.device("cpu"), 0, ThreatModel("l2", None))
    oracle = LabelOracle(ctx, y[:2], None, max_queries=10)
    oracle.labels(x[:2], torch.arange(2))
    with pytest.raises(InputError, match="NaN"):
        oracle.labels(torch.ones_like(x[:2]), torch.arange(2))


def test_images_on_the_meta_device_are_a_one_line_error(linear):
    """Images made under ``torch.device("meta")`` (shapes without values, as when a model is
    built empty) failed in the input check with a raw "Tensor.item() cannot be called on meta
    tensors"; a model's weights there were already a one-line error."""
    model, x, y = linear
    for attack in ("cgba", "pgd"):
        with pytest.raises(InputError, match=r"^x is on the meta device .*values"):
            robustkit.get_attack(attack)(model, x.to("meta"), y)


class Squeezed(nn.Module):
    """Linear's scores through ``.squeeze()``: one row per image, except for a single image,
    whose scores come back as a vector (a common slip in a model's forward)."""

    def __init__(self):
        super().__init__()
        self.inner = Linear()

    def forward(self, x):
        return self.inner(x).squeeze()


@pytest.mark.parametrize("name", DECISION)
def test_a_model_that_drops_the_batch_dimension_of_one_image_is_a_one_line_error(name):
    """The model check passes two images; the label oracle then labels rounds of one row too
    (one image left searching), where such a model returned a vector and every decision attack
    failed with an IndexError from deep inside the oracle."""
    model = Squeezed().eval()
    x = images(4)
    with torch.no_grad():
        y = model(x).argmax(1)
    target = (y + 1) % 10 if name == "cgba-h" else None
    with pytest.raises(InputError, match="one row of class scores per image"):
        robustkit.get_attack(name, max_queries=100)(model, x, y, target)


@pytest.mark.parametrize("name", DECISION)
def test_no_adversarial_found_is_labelled_not_faked(name):
    model = Constant().eval()
    x = images(3)
    y = torch.zeros(3, dtype=torch.long)
    targeted = name == "cgba-h"
    target = torch.ones(3, dtype=torch.long) if targeted else None
    res = robustkit.get_attack(name, max_queries=30, targeted=targeted)(model, x, y, target)
    assert not res.success.any()
    assert outcomes(res) == ["no adversarial found within the budget"] * 3
    assert torch.equal(res.x_adv, x)
    assert all(t.shape == (0, 2) for t in res.trajectories)
    assert (res.queries <= 30).all()
    assert torch.equal(res.extras["step_queries"], res.queries)
    assert torch.isinf(median_l2_at(res, [30])).all()


def test_decision_attacks_keep_eps_out_of_the_projection(linear):
    model, x, y = linear
    res = robustkit.get_attack("cgba", max_queries=200, eps=1e-6)(model, x, y)
    assert res.success.all()  # not clipped to the ε-ball
    assert res.params["eps"] == 1e-6
    assert success_rate_at(res, 1e-6, [200]).item() == 0.0


# -- budget summaries ----------------------------------------------------------------------------
def test_budget_functions_on_known_trajectories():
    trajs = [
        torch.tensor([[10.0, 3.0], [50.0, 2.0], [300.0, 1.0]]),
        torch.tensor([[120.0, 0.5]]),
        torch.zeros((0, 2)),
        torch.tensor([[5.0, 4.0], [100.0, 0.2]]),
    ]
    table = l2_at_budgets(trajs, [5, 49, 50, 100, 1000])
    inf = math.inf
    expected = [
        [inf, 3.0, 2.0, 2.0, 1.0],
        [inf, inf, inf, inf, 0.5],
        [inf, inf, inf, inf, inf],
        [4.0, 4.0, 4.0, 0.2, 0.2],
    ]
    assert torch.allclose(table, torch.tensor(expected, dtype=table.dtype))
    med = median_l2_at(trajs, [5, 100, 1000])
    assert med.tolist() == [inf, inf, 0.75]  # even count: mean of the two middle values
    assert success_rate_at(trajs, 1.0, [100, 1000]).tolist() == [0.25, 0.75]
    with pytest.raises(InputError):
        success_rate_at(trajs, 0, [100])
    with pytest.raises(InputError):
        l2_at_budgets(trajs, [-1])
    # any kind of number, one or many; an ε as written on the command line
    assert torch.equal(median_l2_at(trajs, 1000.0), med[2:])
    assert torch.equal(median_l2_at(trajs, np.int64(1000)), med[2:])
    assert torch.equal(median_l2_at(trajs, np.array([5, 100, 1000])), med)
    assert torch.equal(median_l2_at(trajs, np.array(1000)), med[2:])  # (0-d: a TypeError)
    assert torch.equal(median_l2_at(trajs, torch.tensor([5, 100, 1000])), med)
    assert success_rate_at(trajs, "1/1", [100, 1000]).tolist() == [0.25, 0.75]
    for bad in ([math.nan], math.inf, "1000", [2.5], [], None):
        with pytest.raises(InputError, match="budgets must be non-negative whole numbers"):
            median_l2_at(trajs, bad)
    for eps in (math.nan, "8/255/2", -1):
        with pytest.raises(InputError, match="eps must be a positive number"):
            success_rate_at(trajs, eps, [100])
    stacked = torch.stack([trajs[0], trajs[0]])  # [n, k, 2]: one trajectory per row
    assert torch.equal(median_l2_at(stacked, [49, 1000]), torch.tensor([3.0, 1.0]).double())
    for source in (None, 5, torch.zeros(3, 2)):  # raw TypeErrors before
        with pytest.raises(InputError, match="a decision-based attack's result, a list of"):
            median_l2_at(source, [10])


def test_stored_decision_figures_read_like_the_api():
    """The store's report reads stored trajectories (JSON rows, not attacked samples and
    samples without any adversarial point among them) with the same figures as the API."""
    import json

    from robustkit.runner import decision_figures

    trajs = [[[10, 3.0], [50, 2.0], [300, 1.0]], [[120, 0.5]], [], [[5, 4.0], [100, 0.2]]]
    rows = [{"attacked": True, "trajectory": json.dumps(t)} for t in trajs]
    rows.append({"attacked": False, "trajectory": None})  # already misclassified: not counted
    fig = decision_figures(rows, [5, 100, 1000], 1.0)
    assert fig["n"] == 4
    assert fig["median_l2"] == [math.inf, math.inf, 0.75]
    assert fig["success_rate_at_eps"] == [0.0, 0.25, 0.75]
    assert "success_rate_at_eps" not in decision_figures(rows, [5], None)
    empty = decision_figures(rows[-1:], [5, 100], 1.0)
    assert empty["n"] == 0
    assert all(math.isnan(v) for v in empty["median_l2"] + empty["success_rate_at_eps"])


def test_budget_functions_refuse_budgets_past_the_attacks(linear):
    """A result knows its attack's budget: a figure past it was never measured (it read as the
    last value, as if the attack had gone on without improving)."""
    model, x, y = linear
    res = robustkit.get_attack("cgba", max_queries=40)(model, x, y)
    assert median_l2_at(res, [10, 40]).shape == (2,)
    for call in (median_l2_at, l2_at_budgets, lambda r, b: success_rate_at(r, 0.5, b)):
        with pytest.raises(InputError, match="budget 41 is above the 40 queries 'cgba' ran"):
            call(res, [10, 41])


# -- DCT subspace ------------------------------------------------------------------------------
def test_dct_matrix_is_orthonormal():
    d = dct_matrix(12, dtype=torch.float64)
    assert torch.allclose(d @ d.T, torch.eye(12, dtype=torch.float64), atol=1e-12)


def test_low_frequency_directions_live_in_the_block():
    sampler = LowFrequencySampler((3, 16, 12), factor=4)
    u = sampler.sample(5, torch.Generator().manual_seed(0)).double()
    dh, dw = dct_matrix(16, dtype=torch.float64), dct_matrix(12, dtype=torch.float64)
    coef = dh @ u @ dw.T  # forward 2-D DCT of each channel
    assert sampler.block == (4, 3) and sampler.dim == 36
    assert coef[..., 4:, :].abs().max() < 1e-5 and coef[..., :, 3:].abs().max() < 1e-5
    assert coef[..., :4, :3].abs().mean() > 0.3  # standard normal coefficients


def test_factor_follows_the_image_size():
    assert [auto_factor(s, s) for s in (28, 32, 64, 128, 224, 512)] == [1, 1, 2, 4, 4, 4]


def test_factor_is_recorded_and_settable(linear):
    model, x, y = linear
    res = robustkit.get_attack("cgba", max_queries=40, dim_reduction_factor=2)(model, x, y)
    assert res.params["dim_reduction_factor"] == 2
    assert (res.extras["dim_reduction_factor"] == 2).all()


def test_geoda_query_schedule():
    from robustkit.attacks.geoda import query_schedule

    for total in (250, 1000, 5000):
        q = query_schedule(total)
        assert abs(sum(q) - total) <= len(q)  # rounding only
        assert all(b > a for a, b in zip(q, q[1:], strict=False))  # later iterations get more
        assert 50 <= q[0] <= 80
    assert query_schedule(20) == [20]
    # the plans of the one-count-at-a-time search it replaced (same on 3,142 (total, μ) cases)
    assert query_schedule(1000) == [60, 85, 119, 168, 236, 332]
    assert query_schedule(250) == [57, 80, 113]
    assert query_schedule(100_000, 1.0) == [80] * 1243


def test_geoda_query_schedule_is_quick_for_large_budgets():
    """μ = 1 plans ``total/80`` equal iterations; counting them up one at a time took about
    20 s for a million queries (and GeoDA plans four times per attack)."""
    import time

    from robustkit.attacks.geoda import query_schedule

    start = time.perf_counter()
    plan = query_schedule(1_000_000, 1.0)
    assert time.perf_counter() - start < 2.0
    assert len(plan) == 12_423 and set(plan) == {80}


def test_targets_of_targeted_decision_runs_come_from_the_shard():
    from robustkit.runner import shard_class_targets

    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (95,), generator=gen)
    y[90:] = 4  # a last shard of one class: random other classes
    target = shard_class_targets(y, 10, seed=3, shard_size=10)
    assert (target != y).all() and ((target >= 0) & (target < 10)).all()
    for start in range(0, 90, 10):
        assert set(target[start : start + 10].tolist()) <= set(y[start : start + 10].tolist())
    # every other class of a shard gets drawn, not only one
    big = shard_class_targets(torch.arange(10).repeat(50), 10, seed=1, shard_size=500)
    assert set(big[torch.arange(10).repeat(50) == 0].tolist()) == set(range(1, 10))
    assert torch.equal(target, shard_class_targets(y, 10, seed=3, shard_size=10))


@pytest.mark.parametrize("name", DECISION)
def test_float64_images_and_models(name):
    """Float64 images once crashed every decision attack (the tracker's distances were float32);
    the trajectory keeps the images' precision, so its last point is the returned distance."""
    model = Linear().double().eval()
    x = images(4).double()
    y = model(x).argmax(1)
    options = {"targeted": False} if name == "cgba-h" else {}
    res = robustkit.get_attack(name, max_queries=120, **options)(model, x, y)
    assert res.x_adv.dtype == torch.float64 and res.success.any()
    for i in res.success.nonzero().flatten().tolist():
        assert res.trajectories[i].dtype == torch.float64
        assert res.trajectories[i][-1, 1].item() == pytest.approx(res.l2[i].item(), rel=1e-12)


@pytest.mark.parametrize("name", ["hsja", "geoda", "cgba-h"])
def test_targeted_start_search_keeps_to_init_tries(name):
    """Nothing is ever the target for a constant model: each image spends exactly its noise tries
    (HSJA and GeoDA once spent 100 whatever init_tries said)."""
    x = images(3)
    y, target = torch.zeros(3, dtype=torch.long), torch.ones(3, dtype=torch.long)
    atk = robustkit.get_attack(name, max_queries=500, init_tries=2, targeted=True)
    assert atk(Constant(), x, y, target).queries.tolist() == [2, 2, 2]


def test_geoda_refuses_a_shrinking_schedule_and_always_plans_one():
    from robustkit.attacks.geoda import query_schedule

    with pytest.raises(InputError, match="mu must lie in"):
        robustkit.get_attack("geoda", mu=1.5)
    assert sum(query_schedule(130, 5.0)) > 0  # once an endless loop
    assert query_schedule(1000, 1.0)[0] <= 80


class CoinAtRecheck(nn.Module):
    """Linear's labels while the attack queries, then (votes > 1, as a randomized defense asks)
    always the true class when the base class re-checks: every example found is refuted."""

    def __init__(self, base, y):
        super().__init__()
        self.base, self.y, self.votes, self.rechecking = base, y, 3, False

    def forward(self, x):
        out = self.base(x)
        if self.rechecking and x.shape[0] == self.y.shape[0]:
            return torch.nn.functional.one_hot(self.y, out.shape[1]).to(out.dtype)
        return out


def test_examples_refuted_by_the_recheck_are_taken_back(linear, monkeypatch):
    """A randomized model's single draws can call a point adversarial that its majority vote
    does not: such examples once kept their trajectories (figures from them counted successes
    the result denied) and their distances."""
    import robustkit.attack as attack_module

    model, x, y = linear
    wrapped = CoinAtRecheck(model, y)
    original = attack_module.predict

    def predict(m, xs, first=None):
        wrapped.rechecking = first is None  # the clean labels come with their logits
        return original(m, xs, first)

    monkeypatch.setattr(attack_module, "predict", predict)
    with pytest.warns(robustkit.RobustkitWarning, match="not adversarial on the fresh re-check"):
        res = robustkit.get_attack("cgba", max_queries=60)(wrapped, x, y)
    assert not res.success.any() and res.attacked.all()
    assert all(t.shape[0] == 0 for t in res.trajectories)
    assert torch.equal(res.x_adv, x) and (res.l2 == 0).all()
    assert outcomes(res) == ["no adversarial found within the budget"] * x.shape[0]


def test_hsja_bisection_stops_where_float32_cannot_split_the_interval():
    """θ = γ/d^1.5 falls below float32's spacing of λ on ImageNet-sized images; the bisection
    used to repeat its last query until max_bisection_steps. Here θ is made that small on a
    small image: each sample stops after about 30 halvings (float32's precision), not 100."""
    from robustkit.attacks.hsja import HopSkipJump
    from robustkit.oracle import StepCounter

    model = Binary().eval()
    x = images(2)
    with torch.no_grad():
        y = model(x).argmax(1)
    far = torch.where(model.w.view_as(x[0]) > 0, 1.0, 0.0)  # deep on class 1's side
    adv = torch.where(y.view(-1, 1, 1, 1) == 1, 1.0 - far, far)
    ctx = AttackContext(model, 2, torch.device("cpu"), 0, ThreatModel("l2", None))
    oracle = LabelOracle(ctx, y, None, max_queries=1000)
    assert oracle.is_adversarial(adv, torch.arange(2)).all()
    before = ctx.queries.clone()
    attack = HopSkipJump(max_bisection_steps=100)
    tracker, steps = BestTracker(x, oracle), StepCounter(2, torch.device("cpu"))
    out = attack._bisect(oracle, tracker, steps, torch.arange(2), x, adv, theta=1e-30)
    spent = ctx.queries - before
    assert (spent <= 40).all(), spent  # 100 before: its last query, repeated
    assert oracle.is_adversarial(out, torch.arange(2)).all()


@pytest.mark.parametrize("name", ["cgba", "geoda"])
def test_a_dim_reduction_factor_beyond_the_image_is_a_one_line_error(linear, name):
    model, x, y = linear
    for factor in (9, 10**19):
        with pytest.raises(InputError, match="dim_reduction_factor .* at most 8"):
            robustkit.get_attack(name, max_queries=20, dim_reduction_factor=factor)(model, x, y)


def test_the_shared_pool_keeps_only_generations_still_read():
    from robustkit.attacks._normals import NormalEstimates

    sampler = LowFrequencySampler((1, 2, 2), 1)
    est = NormalEstimates(
        torch.full((2, 1, 2, 2), 0.5),
        sampler,
        torch.Generator().manual_seed(0),
        1e-3,
        shared=True,
        pool_rows=6,
    )
    _read_probes(est, [0, 1], [6, 6], 1e-3)
    for _ in range(20):  # both images move on, generation after generation
        _read_probes(est, [0, 1], [4, 4], 1e-3)
    assert len(est._pools) > 10
    assert sum(p is not None for p in est._pools) <= 2


def test_hsja_gradient_estimate_is_the_baseline_corrected_mean_of_its_probes():
    """The estimate, summed one batch of probes at a time, equals ``Σ (f − f̄)·u`` over every
    probe (``f = ±1`` the decision, ``f̄`` its mean, ``u`` the probe's direction after the box
    clip), normalised; with every probe on one side, no baseline is subtracted."""
    from robustkit.attacks.hsja import HopSkipJump
    from robustkit.oracle import StepCounter

    model = Binary().eval()
    x = images(3)
    with torch.no_grad():
        y = model(x).argmax(1)
    # two samples projected onto the boundary; the third stays deep on its own side (all f = −1)
    s = x.flatten(1) @ model.w + model.b
    on = x.clone()
    on[:2] = x[:2] - (s[:2] / model.w.norm() ** 2).view(2, 1, 1, 1) * model.w.view_as(x[0])
    delta = torch.tensor([0.05, 0.3, 1e-3])
    ctx = AttackContext(model, 3, torch.device("cpu"), 0, ThreatModel("l2", None))
    oracle = LabelOracle(ctx, y, None, max_queries=10_000, batch_size=7)
    act = torch.arange(3)
    got = HopSkipJump()._gradient(
        torch.Generator().manual_seed(5),
        oracle,
        StepCounter(3, torch.device("cpu")),
        on,
        act,
        40,
        delta,
    )
    # the reference, with every probe at once (the same random draws, batch by batch)
    gen = torch.Generator().manual_seed(5)
    owner = torch.arange(3).repeat_interleave(40)
    rv = torch.cat(
        [
            torch.randn((len(owner[i : i + 7]),) + x.shape[1:], generator=gen)
            for i in range(0, len(owner), 7)
        ]
    )
    rv = rv / rv.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    probes = (on[owner] + delta[owner].view(-1, 1, 1, 1) * rv).clamp(0, 1)
    u = (probes - on[owner]) / delta[owner].view(-1, 1, 1, 1)
    with torch.no_grad():
        f = (model(probes).argmax(1) != y[owner]).double() * 2 - 1
    want = []
    for i in range(3):
        fi, ui = f[owner == i], u[owner == i].double()
        mean = fi.mean()
        c = fi if mean.abs() == 1 else fi - mean
        g = (c.view(-1, 1, 1, 1) * ui).sum(0)
        want.append(g / g.norm())
    assert f[owner == 2].eq(-1).all() and f[owner == 0].unique().numel() == 2
    torch.testing.assert_close(got.double(), torch.stack(want), rtol=1e-4, atol=1e-5)
    assert ctx.queries.tolist() == [40, 40, 40]


def test_hsja_trajectory_at_a_budget_is_a_run_with_that_budget():
    """Median L2 at a budget is read from one run's trajectories: each image's points within B
    queries must be those a run with budget B finds. HopSkipJump drew the probe directions of
    a batch in one stream, as many per image as it had queries left, so where one image's
    estimate was cut short by its budget (or it had none left), the images after it read
    other directions: here, on a 3-class model with targets, images whose start took fewer
    queries went on with other probes in a run of 115 queries than in one of 600."""
    model = Linear(classes=3).eval()
    x = images(8)
    with torch.no_grad():
        y = model(x).argmax(1)
    target = (y + torch.randint(1, 3, y.shape, generator=torch.Generator().manual_seed(0))) % 3
    full = robustkit.get_attack("hsja", max_queries=600, targeted=True)(model, x, y, target)
    assert full.success.all() and full.queries.unique().tolist() == [600]
    for budget in (60, 115, 230, 400):
        run = robustkit.get_attack("hsja", max_queries=budget, targeted=True)(model, x, y, target)
        assert torch.equal(l2_at_budgets(full, [budget]), l2_at_budgets(run, [budget])), budget


def test_hsja_gradient_estimate_does_not_hold_every_probe_in_memory():
    """10,000 probes of a 224×224 image are 6 GB: the estimate once kept every probe of an
    iteration. Here 4,000 probes of a 3×128×128 image (786 MB) are summed in batches of 64
    (the peak grew by 1.6 GB before, by about 150 MB whatever the number of probes after)."""
    import subprocess
    import sys

    code = """
import resource, torch
from torch import nn
import robustkit
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 128 * 128, 10)).eval()
x = torch.rand(1, 3, 128, 128)
y = model(x).argmax(1)
def run(evals, queries):
    atk = robustkit.get_attack("hsja", max_queries=queries, init_num_evals=evals,
                               max_num_evals=evals, batch_size=64)
    return atk(model, x, y)
run(20, 200)  # warm: the allocator's pools for batches of 64
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = run(4000, 4400)
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(int(res.queries[0]), grew // 1024)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    queries, grew_mb = map(int, done.stdout.split())
    assert queries > 4000  # one whole estimate of 4,000 probes ran
    assert grew_mb < 400, f"peak memory grew by {grew_mb} MB"


TF32_STATE = """
import torch
from robustkit.device import full_float32

B = torch.backends


def read(get):
    try:
        return repr(get())
    except RuntimeError:
        return "refused"


def state():
    return [
        read(lambda: B.cuda.matmul.allow_tf32),
        read(lambda: B.cudnn.allow_tf32),
        B.cuda.matmul.fp32_precision,
        B.cudnn.conv.fp32_precision,
        B.cudnn.rnn.fp32_precision,
    ]


def precise():  # inside: every float32 kernel in IEEE float32
    modules = (B.cuda.matmul, B.cudnn.conv, B.cudnn.rnn)
    return all(module.fp32_precision == "ieee" for module in modules)


exec(SETUP)
before = state()
with full_float32():
    inside = precise()
print(inside, state() == before)
"""


@pytest.mark.parametrize(
    "setup",
    [
        "pass",
        "B.cuda.matmul.allow_tf32 = True",
        "B.cuda.matmul.fp32_precision = 'tf32'",
        "B.fp32_precision = 'tf32'",
    ],
)
def test_full_float32_keeps_to_the_tf32_api_the_user_chose(setup):
    """PyTorch ≥ 2.9 sets TF32 through ``fp32_precision`` too; once a setting is made so,
    reading the legacy ``allow_tf32`` raises, and every decision attack crashed on entering its
    full-float32 block. (A process each: the two APIs' state cannot be reset.)"""
    import subprocess
    import sys

    if not hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        pytest.skip("this PyTorch has only the legacy TF32 flags")
    code = TF32_STATE.replace("exec(SETUP)", setup)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]  # TF32 off inside, the settings back after


def test_gpu_passes_shrink_to_fit_the_device_memory(monkeypatch):
    """A GPU pass was always 4096 rows: 264 GiB for torchvision/efficientnet_b7's largest
    activation. Now the largest activation of a pass fills at most 1/16 of the device's memory
    (rows a power of two, at most 4096); where the memory cannot be read, 4096 as before."""
    import robustkit.oracle as oracle_module

    model = nn.Sequential(  # largest activation: 64 × 64 × 64 float32 = 1 MiB per image
        nn.Conv2d(3, 64, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)
    ).eval()
    x = torch.rand(2, 3, 64, 64)
    gpu = torch.device("cuda")
    for gib, rows in [(1, 64), (8, 512), (10, 512), (80, 4096), (1 / 1024, 1)]:
        monkeypatch.setattr(oracle_module, "accelerator_memory", lambda d, m=gib: int(m * 2**30))
        assert oracle_module.default_batch_size(gpu, model, x) == rows, gib
    monkeypatch.setattr(oracle_module, "accelerator_memory", lambda d: None)
    assert oracle_module.default_batch_size(gpu, model, x) == 4096
    assert oracle_module.default_batch_size(torch.device("cpu"), model, x) == 16  # as before


def test_request_rows_bound_the_rows_held_at_once(monkeypatch):
    """Whole passes within REQUEST_BYTES on a CPU (one pass at least), within 1/16 of the
    memory on an accelerator (REQUEST_BYTES where it cannot be read)."""
    import robustkit.oracle as oracle_module

    cpu, gpu, row = torch.device("cpu"), torch.device("cuda"), 3 * 224 * 224 * 4
    assert oracle_module.request_rows(16, row, cpu) == 16 * (256 * 2**20 // (16 * row))
    assert oracle_module.request_rows(256, 3 * 32 * 32 * 4, cpu) == 21760
    assert oracle_module.request_rows(1024, row, cpu) == 1024  # one pass, whatever its size
    monkeypatch.setattr(oracle_module, "accelerator_memory", lambda d: 80 * 2**30)
    assert oracle_module.request_rows(4096, row, gpu) == 4096 * 2
    monkeypatch.setattr(oracle_module, "accelerator_memory", lambda d: None)
    assert oracle_module.request_rows(16, row, gpu) == oracle_module.request_rows(16, row, cpu)


@pytest.mark.parametrize("name", ["cgba", "cgba-h"])
def test_cgba_rounds_hold_bounded_rows_and_label_the_same(monkeypatch, name):
    """A CGBA round labelled all its pending probes in one request: 250 images of 224×224 held
    up to 3,136 rows (1.8 GiB) at once. Now a round of more rows than request_rows labels its
    probes first in requests of that many rows: the same rows in the same round, so the attack
    is the same to the bit."""
    import robustkit.oracle as oracle_module

    model, x = Linear().eval(), images(32)
    with torch.no_grad():
        y = model(x).argmax(1)
    target = (y + 1) % 10 if name == "cgba-h" else None
    attack = robustkit.get_attack(name, max_queries=300, batch_size=8)
    free = attack(model, x, y, target)
    requests = []
    labels = LabelOracle.labels

    def recorded(oracle, rows, idx):
        requests.append(rows.shape[0])
        return labels(oracle, rows, idx)

    monkeypatch.setattr(LabelOracle, "labels", recorded)
    attack(model, x, y, target)
    assert max(requests) > 32  # unbounded, rounds take more than 32 rows at once here
    row_bytes = x[0].numel() * x.element_size()
    monkeypatch.setattr(oracle_module, "REQUEST_BYTES", 16 * row_bytes, raising=False)  # 2 passes
    requests.clear()
    bound = attack(model, x, y, target)
    assert max(requests) <= 32  # the candidates (up to 32 images) the most
    assert sum(r > 16 for r in requests) < len(requests) / 4
    assert torch.equal(bound.x_adv, free.x_adv) and torch.equal(bound.queries, free.queries)
    for a, b in zip(bound.trajectories, free.trajectories, strict=True):
        assert torch.equal(a, b)


def test_geoda_draws_its_probe_directions_in_bounded_groups(monkeypatch):
    """GeoDA drew every image's probe directions of an iteration at once: 1.8 GiB for 100
    CIFAR-10 images at 5,000 queries (1,493 probes each in the last iteration). Now images go
    in groups of at most request_rows directions (one image at least), each labelled and
    summed before the next is drawn; the accounting stays exact and every image gets its
    normal."""
    import robustkit.oracle as oracle_module
    from robustkit.attacks._normals import estimate_normal
    from robustkit.attacks.dct import LowFrequencySampler
    from robustkit.oracle import StepCounter

    model, x = Linear().eval(), images(12)
    with torch.no_grad():
        y = model(x).argmax(1)
    drawn = []
    coefficients = LowFrequencySampler.coefficients

    def recorded(sampler, m, generator=None):
        drawn.append(m)
        return coefficients(sampler, m, generator)

    monkeypatch.setattr(LowFrequencySampler, "coefficients", recorded)
    row_bytes = x[0].numel() * x.element_size()
    monkeypatch.setattr(oracle_module, "REQUEST_BYTES", 100 * row_bytes, raising=False)
    ctx = AttackContext(model, 12, torch.device("cpu"), 0, ThreatModel("l2", None))
    oracle = LabelOracle(ctx, y, None, max_queries=1000, batch_size=50)
    steps = StepCounter(12, torch.device("cpu"))
    sampler = LowFrequencySampler(x.shape[1:], 1, x.device, x.dtype)
    # The points the probes are taken at: on the linear model's boundary with the next class.
    xb = x.clone()
    act = torch.arange(12)
    eta = estimate_normal(oracle, steps, sampler, ctx.generator, xb, act, 30, 0.1)
    assert drawn == [90, 90, 90, 90]  # 3 images of 30 per group of at most 100 rows
    assert torch.equal(ctx.queries, torch.full((12,), 30)) and torch.equal(steps.total, ctx.queries)
    assert eta.shape == x.shape and (eta.flatten(1).norm(dim=1) > 0).all()
    drawn.clear()
    estimate_normal(oracle, steps, sampler, ctx.generator, xb, act[:2], 150, 0.1)
    assert drawn == [150, 150]  # one image at least, even beyond the bound
    assert ctx.queries[:2].tolist() == [180, 180] and torch.equal(steps.total, ctx.queries)


def test_trajectories_count_queries_exactly_past_float32s_range():
    """The (queries, L2) table took the images' dtype: with float32 images queries past 2**24
    were rounded (16,777,217 read 16,777,216, so a point was credited to a budget before it
    was found, and 16,777,219 read above a budget of 16,777,219)."""
    x0 = torch.full((1, 1, 1, 3), 0.5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3, 2))
    budget = 2**24 + 3
    ctx = AttackContext(model, 1, torch.device("cpu"), 0, ThreatModel(norm="l2", eps=None))
    tracker = BestTracker(x0, LabelOracle(ctx, torch.tensor([0]), None, budget))
    ctx.queries[0] = 2**24 + 1
    tracker.offer(torch.tensor([0]), x0 + 0.3)
    ctx.queries[0] = 2**24 + 3
    tracker.offer(torch.tensor([0]), x0 + 0.1)
    (t,) = tracker.trajectories()
    assert t.dtype == torch.float64
    assert t[:, 0].tolist() == [2**24 + 1, 2**24 + 3]
    expected = [float(torch.linalg.vector_norm(torch.full((3,), v))) for v in (0.3, 0.1)]
    assert t[:, 1].tolist() == pytest.approx(expected, rel=1e-6)
    assert math.isinf(l2_at_budgets([t], [2**24]).item())


@pytest.mark.parametrize(
    "bad, what",
    [
        ([torch.ones(3)], r"shaped \(3,\)"),
        ([torch.ones(2, 3)], r"shaped \(2, 3\)"),
        ([object()], "object"),
        ([torch.ones(2, 2, dtype=torch.bool)], r"shaped \(2, 2\)"),
    ],
)
def test_budget_summaries_check_each_trajectory(bad, what):
    """A list whose items were not [k, 2] tables got into the loop: an AttributeError or
    IndexError, or (a [k, 3] table) a silent answer. NumPy arrays and nested lists are read as
    the tables they are."""
    with pytest.raises(InputError, match=f"trajectory 0 is not a \\[k, 2\\] table.*{what}"):
        median_l2_at(bad, [20])
    table = [[10, 0.9], [20, 0.5]]
    expected = median_l2_at([torch.tensor(table)], [20]).tolist()
    assert median_l2_at([np.array(table)], [20]).tolist() == expected == [0.5]
    assert median_l2_at([table, []], [20]).tolist() == [math.inf]  # none found for one of two


def test_label_only_attacks_do_not_warn_of_probabilities():
    """The warning that probabilities weaken gradient attacks came with label-only attacks too,
    whose labels softmax does not change."""
    import warnings

    from tests.helpers import Softmaxed

    model = Softmaxed(Linear().eval())
    x = images(4)
    y = model(x).argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        robustkit.get_attack("cgba", max_queries=20)(model, x, y)


def test_an_infinite_median_at_a_budget_is_explained_as_half_or_fewer_fooled(tmp_path):
    """With exactly half of the attacked samples fooled the median L2 is inf (the mean of a
    distance and inf), which the report explained as 'fewer than half fooled'."""
    from robustkit.cli_evaluate import render_report
    from robustkit.runner import summarize
    from robustkit.store import Store

    from .fake_store import CGBA, add_run

    hit, miss = (True, False, 1.0, [[4, 1.0]]), (False, True, 0.0, [])
    with Store.open(tmp_path / "x.db") as store:
        add_run(store, "r", {"cgba": (CGBA, [hit, hit, miss, miss])}, norm="l2", n=4)
        report = summarize(store, "r")
    assert report["attacks"]["cgba"]["decision"]["median_l2"] == [math.inf]
    assert "(inf: half of them or fewer fooled within it)" in render_report(report)


def test_a_label_only_result_given_an_eps_describes_it_as_the_stored_report_does(linear):
    """A label-only attack given an ε judges its robust accuracy and success rate at it, and
    the stored report says "l2 0.5"; the result's summary and repr said "l2 min-norm" beside
    that robust accuracy."""
    model, x, y = linear
    result = robustkit.get_attack("cgba", max_queries=20, eps=0.5)(model, x, y)
    assert result.summary()["threat"] == "l2 0.5"
    assert "threat='l2 0.5'" in repr(result)
    alone = robustkit.get_attack("cgba", max_queries=20)(model, x, y)
    assert alone.summary()["threat"] == "l2 min-norm"


def test_geoda_jump_does_not_label_a_saturated_point_again(monkeypatch):
    """Targeted GeoDA doubles its jump along the direction until adversarial; once the clamp to
    [0, 1] saturates every pixel the direction moves, each longer jump is the same clean image,
    labelled again and again (22 repeated queries on these 6 images; 24 of 3,700 on 10
    cifar10/resnet20 images). Now no sample has any image labelled twice."""
    from robustkit.oracle import LabelOracle

    seen, repeats = set(), []
    labels = LabelOracle.labels

    def recording(self, x, idx):
        for row, i in zip(x, idx.tolist(), strict=True):
            key = (i, row.numpy().tobytes())
            if key in seen:
                repeats.append(i)
            seen.add(key)
        return labels(self, x, idx)

    monkeypatch.setattr(LabelOracle, "labels", recording)
    torch.manual_seed(1)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 4))
    net.eval()
    x = torch.rand(6, 3, 8, 8)
    with torch.no_grad():
        y = net(x).argmax(1)
    attack = robustkit.get_attack("geoda", max_queries=300, targeted=True, batch_size=64)
    result = attack(net, x, y, (y + 1) % 4)
    assert int(result.queries.sum()) > 0 and repeats == []


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_label_only_attacks_warn_of_half_precision_scores(dtype):
    """A model returning float16/bfloat16 scores for float32 images was attacked without a
    word: labels of rounded scores tie between classes, and the distances drifted a few
    percent from the float32 model's. One warning per call, from the model check's scores."""
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    model = HalfScores(dtype)
    y = model(x).argmax(1)
    with pytest.warns(robustkit.RobustkitWarning, match=f"returns {dtype} scores") as record:
        robustkit.get_attack("cgba", max_queries=60)(model, x, y)
    assert len([w for w in record if "scores" in str(w.message)]) == 1
    with warnings.catch_warnings():  # float32 scores: quiet
        warnings.simplefilter("error")
        robustkit.get_attack("cgba", max_queries=60)(Linear(), x, Linear()(x).argmax(1))


def test_success_at_an_eps_equal_to_a_float32_distance_agrees_everywhere(linear):
    """A distance is a float32; an ε is a float. Where the ε lies just below a distance but
    rounds to it in float32 (0.1 does), the result compared them in float32 (fooled within ε,
    not robust) while the stored report and the trajectories compare them exactly (not within
    ε): one run, two success rates and a robust accuracy at odds with them."""
    import dataclasses

    from robustkit.runner import fooled_within_eps

    model, x, y = linear
    res = robustkit.get_attack("cgba", max_queries=50)(model, x, y)
    assert res.success.all()
    d = float(res.norms[0])
    eps = float(np.nextafter(d, 0.0))  # below the distance, yet the same float32
    assert eps < d and np.float32(eps) == res.norms[0].numpy()
    res = dataclasses.replace(res, params={**res.params, "eps": eps})
    rows = [
        {"attacked": a, "success": s, "norm": float(n)}
        for a, s, n in zip(res.attacked.tolist(), res.success.tolist(), res.norms, strict=True)
    ]
    stored = sum(fooled_within_eps(res.params, r) for r in rows) / len(rows)
    assert res.success_rate == stored == success_rate_at(res, eps, [50]).item()
    assert bool(res.robust[0])  # fooled only beyond ε


def test_budget_summaries_refuse_trajectories_whose_queries_go_back():
    """Rows are read by a binary search over the queries, which must not decrease: given
    [(10, 2.0), (5, 3.0)], "the best within 7 queries" was 2.0, found only at 10."""
    with pytest.raises(InputError, match="trajectory 1"):
        l2_at_budgets([torch.tensor([[1.0, 4.0]]), torch.tensor([[10.0, 2.0], [5.0, 3.0]])], [7])
    repeated = torch.tensor([[5.0, 3.0], [5.0, 2.0], [9.0, 1.0]])  # a step of no new queries
    assert l2_at_budgets([repeated], [5, 9]).tolist() == [[2.0, 1.0]]
    # a NaN distance (or query count) spread into every figure as NaN
    for bad in ([[5.0, math.nan]], [[math.nan, 2.0]]):
        with pytest.raises(InputError, match="trajectory 0: it holds NaN"):
            l2_at_budgets([torch.tensor(bad)], [7])


def test_budget_summaries_steer_to_the_result_not_its_trajectories():
    """A result's .trajectories hold an empty one for each sample it did not attack (already
    misclassified), which a list of trajectories counts as never fooled: the median and success
    rate then differ from the result's and the stored report's. The error and the docs said to
    pass .trajectories."""
    import robustkit.budgets as budgets

    with pytest.raises(InputError) as err:
        l2_at_budgets([torch.zeros(3)], [1])
    assert "pass the result itself" in str(err.value)
    assert "not attacked" in budgets.__doc__


def test_a_label_only_attack_in_another_norm_than_l2_is_refused_where_it_is_defined():
    """Found by review: every report of a label-only attack (the trajectories BestTracker keeps,
    :mod:`robustkit.budgets`, the run's "median L2" and "success at L2 <= ε", the leaderboard's
    decision table) takes its distances as L2. A user's label-only attack declaring L∞ ran in
    an L∞ run and was reported as "success at L2 <= 0.3" of its L∞ ε (or, a DecisionAttack
    subclass, failed there with "use norm='l2'", a norm the user never gave). Such a class is
    now refused where it is defined, in one line naming the fix; the built-ins are L2."""
    from robustkit.attack import Attack
    from robustkit.registry import ATTACKS

    def define(base, **body):
        return type("Mine", (base,), {"__doc__": "A user's attack.", **body})

    for base, body in [
        (DecisionAttack, {"norms": ("linf", "l2")}),
        (DecisionAttack, {"norms": ("linf",)}),
        (Attack, {"family": "decision"}),  # (Attack's norms: linf and l2)
        (Attack, {"family": "decision", "norms": ("linf",)}),
        (Attack, {"family": "decision", "norms": "l2"}),  # (a text, not a tuple of norms)
    ]:
        with pytest.raises(InputError) as info:
            define(base, **body)
        message = str(info.value)
        assert "\n" not in message and "L2 distances" in message, message
        assert f"with norms = {body.get('norms', Attack.norms)!r}" in message, message
        assert message.endswith("set norms = ('l2',)"), message
    assert define(DecisionAttack).norms == ("l2",)
    assert define(Attack, family="decision", norms=("l2",)).family == "decision"
    assert define(Attack, norms=("linf",)).family == "gradient"
    for name in DECISION:
        assert ATTACKS.get(name).norms == ("l2",), name
