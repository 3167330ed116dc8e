"""CGBA and CGBA-H: curvature-aware geometric decision-based attacks (L2).

Reza, Rahmati, Wu & Dai, "CGBA: Curvature-aware Geometric Black-box Attack", ICCV 2023. From a
boundary point ``x_b`` each iteration estimates the boundary normal ``η`` from label-only probes
drawn in the low-frequency DCT subspace, then searches the 2-D plane through the clean image
``x0`` spanned by ``v = (x_b − x0)/R`` and ``η``. A direction ``ζ`` at angle ``φ`` from ``v``
gives the point ``x0 + R·cos φ·ζ`` on the circle with diameter ``[x0, x_b]`` (Thales), whose
distance ``R·cos φ`` to ``x0`` shrinks as ``φ`` grows.

* CGBA (non-targeted, flat boundaries) tries ``φ_k = (π/2)(1 − 2^−k)`` (45°, 67.5°, …) until a
  point is not adversarial, then bisects the arc between the last adversarial and that clean
  angle. (The reference bisects from angle 0; starting from the last adversarial angle already
  seen is the same search with fewer queries.)
* CGBA-H (targeted, curved boundaries) tries ``φ_k = θ/2^k`` (``θ`` the angle between ``η`` and
  ``v``) until a point is adversarial, then bisects the segment from ``x0`` to it.

All images of a batch advance together, each with its own budget, phase, counters and angles as
tensors. After the start point, the iterations are pipelined: each query round labels what every
image needs next (all the normal probes of the images estimating a normal, one candidate of each
image searching or bisecting) in equal chunks of the oracle's batch size, so images in different
phases share each forward pass and no image waits for the slowest one. By default the images of
a round share their probe directions (``shared_probes``; see :func:`label_round`).
"""

from __future__ import annotations

import math

import torch

from robustkit.errors import InputError
from robustkit.oracle import BestTracker, DecisionAttack, LabelOracle, StepCounter
from robustkit.registry import ATTACKS
from robustkit.threat import flat_norm

from ._boundary import (
    bisect_segment,
    closer_targeted_start,
    start_targeted,
    start_untargeted,
    view,
)
from .dct import LowFrequencySampler, auto_factor

# Phases of an image in CGBA's pipelined iterations (see _CGBABase._iterate).
_ESTIMATE, _SEARCH, _BISECT, _DONE = 0, 1, 2, 3


def _positive(name: str, value, kind=float):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    if kind is int and int(value) != value:
        raise InputError(f"{name} must be a positive whole number, got {value!r}")
    return kind(value)


def label_round(
    oracle: LabelOracle,
    sampler: LowFrequencySampler,
    generator: torch.Generator,
    xb: torch.Tensor,
    est: torch.Tensor,
    m: torch.Tensor,
    sigma: float,
    cand: torch.Tensor | None = None,
    one: torch.Tensor | None = None,
    baseline: bool = False,
    shared: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label one query round: ``m[j]`` probes ``x_b + σ·u`` around ``xb[est[j]]`` for each
    estimating image, then one candidate ``cand[i]`` for each image ``one[i]`` (if any), in equal
    chunks of at most the oracle's batch size. Returns the candidates' verdicts and the estimated
    normals ``η = mean(s_i·u_i)`` (``s_i = ±1`` for adversarial / clean probes; pointing to the
    adversarial side); ``baseline`` subtracts the mean sign first (HopSkipJump's variance
    reduction).

    ``shared=True`` draws ``max(m)`` directions for the round and image ``j`` probes along the
    first ``m[j]`` of them, instead of drawing ``sum(m)``: each image's probes are still
    independent standard normal directions, fresh every round, so each image runs the attack
    exactly as alone; only different images of a batch share directions. Drawing normal values
    is the costliest step after the forward passes on a CPU (10 µs per 32×32×3 probe, a quarter
    of a cifar10/resnet4b-at forward pass), and sharing makes it about a hundredth of that on a
    batch of 100 images."""
    shape, dev, dt = xb.shape[1:], xb.device, xb.dtype
    if one is None:
        one, cand = est.new_empty(0), xb.new_empty((0,) + shape)
    local = torch.repeat_interleave(torch.arange(est.numel(), device=dev), m)
    owner = est[local]
    n_probes, total = owner.numel(), owner.numel() + one.numel()
    eta = torch.zeros((m.numel(),) + shape, device=dev, dtype=dt)
    dirs_sum = torch.zeros_like(eta) if baseline else None
    sign_sum = torch.zeros(m.numel(), device=dev, dtype=dt)
    hit = torch.zeros(one.numel(), dtype=torch.bool, device=dev)
    rows_of = torch.cat([owner, one])
    table = slot = None
    if shared and n_probes:
        table = sampler.sample(int(m.max()), generator)
        first = torch.cumsum(m, 0) - m  # each image's first probe
        slot = torch.arange(n_probes, device=dev) - first[local]
    chunk = -(-total // max(1, -(-total // oracle.batch_size)))
    for lo in range(0, total, chunk):
        hi = min(lo + chunk, total)
        rows = torch.empty((hi - lo,) + shape, device=dev, dtype=dt)
        k = max(0, min(hi, n_probes) - lo)  # probes in this chunk, then candidates
        if k:
            if table is None:
                dirs = sampler.sample(k, generator)
            else:
                dirs = table.index_select(0, slot[lo : lo + k])
            torch.index_select(xb, 0, owner[lo : lo + k], out=rows[:k])
            rows[:k].add_(dirs, alpha=sigma).clamp_(0, 1)
        if hi > n_probes:
            rows[k:] = cand[lo + k - n_probes : hi - n_probes]
        adv = oracle.is_adversarial(rows, rows_of[lo:hi])
        if hi > n_probes:
            hit[lo + k - n_probes : hi - n_probes] = adv[k:]
        if k:
            s = adv[:k].to(dt) * 2 - 1
            at = local[lo : lo + k]
            sign_sum.index_add_(0, at, s)
            if dirs_sum is not None:
                dirs_sum.index_add_(0, at, dirs)
            eta.index_add_(0, at, dirs.mul_(view(s, dirs)))
    count = m.clamp_min(1).to(dt)
    if dirs_sum is not None:
        # Σ(s_i − s̄)·u_i = Σ s_i·u_i − s̄·Σ u_i; all probes on one side: keep the plain mean.
        mean_s = sign_sum / count
        mean_s[mean_s.abs() == 1] = 0
        eta -= view(mean_s, eta) * dirs_sum
    return hit, eta / view(count, eta)


def estimate_normal(
    oracle: LabelOracle,
    steps: StepCounter,
    sampler: LowFrequencySampler,
    generator: torch.Generator,
    xb: torch.Tensor,
    act: torch.Tensor,
    n_probes: int,
    sigma: float,
) -> torch.Tensor:
    """Boundary normal at ``xb[act]`` from up to ``n_probes`` probes per image (fewer when its
    budget is nearly spent), each image's probes drawn independently (see :func:`label_round`)."""
    m = oracle.remaining(act).clamp(max=n_probes)
    _, eta = label_round(oracle, sampler, generator, xb, act, m, sigma)
    steps.add(act, m)
    return eta


class _CGBABase(DecisionAttack):
    """Shared machinery of CGBA and CGBA-H; subclasses pick the search along the semicircle."""

    #: True: halve the angle toward v until adversarial (CGBA-H); False: push toward x0's end
    #: of the semicircle until clean (CGBA).
    curved: bool = False

    def __init__(
        self,
        max_queries: int = 1000,
        dim_reduction_factor: int | None = None,
        n0: int = 30,
        sigma: float = 2e-4,
        tol: float = 1e-4,
        max_search_steps: int = 40,
        max_bisection_steps: int = 100,
        init_noise: float = 0.02,
        init_tries: int = 100,
        start_candidates: int = 1,
        baseline: bool = False,
        shared_probes: bool = True,
        norm: str = "l2",
        eps: float | str | None = None,
        targeted: bool = False,
        seed: int = 0,
        batch_size: int | None = None,
    ):
        super().__init__(
            max_queries=max_queries,
            norm=norm,
            eps=eps,
            targeted=targeted,
            seed=seed,
            batch_size=batch_size,
        )
        if dim_reduction_factor is not None:
            _positive("dim_reduction_factor", dim_reduction_factor, int)
        self.dim_reduction_factor = dim_reduction_factor
        self.n0 = _positive("n0", n0, int)
        self.sigma = _positive("sigma", sigma)
        self.tol = _positive("tol", tol)
        self.max_search_steps = _positive("max_search_steps", max_search_steps, int)
        self.max_bisection_steps = _positive("max_bisection_steps", max_bisection_steps, int)
        self.init_noise = _positive("init_noise", init_noise)
        self.init_tries = _positive("init_tries", init_tries, int)
        self.start_candidates = _positive("start_candidates", start_candidates, int)
        self.baseline = bool(baseline)
        self.shared_probes = bool(shared_probes)

    def _run(self, oracle, tracker, steps, rng, extras, x0, y, target):
        n, (c, h, w) = x0.shape[0], x0.shape[1:]
        f = self.dim_reduction_factor or auto_factor(h, w)
        extras["dim_reduction_factor"] = torch.full((n,), f, dtype=torch.long)
        sampler = LowFrequencySampler((c, h, w), f, x0.device, x0.dtype)
        gen = rng
        if target is not None:
            start, found = start_targeted(
                oracle, tracker, steps, x0, y, target, gen, self.init_tries
            )
        else:
            start, found = start_untargeted(
                oracle, tracker, steps, x0, gen, self.init_noise, self.init_tries
            )
        xb = x0.clone()
        idx = found.nonzero().flatten()
        xb[idx] = bisect_segment(
            oracle, tracker, steps, idx, x0[idx], start[idx], self.tol, self.max_bisection_steps
        )
        if target is not None and self.start_candidates > 1:
            # The optional closer-start search: more target-class images, keep the closest
            # boundary point found (the tracker's best).
            found |= closer_targeted_start(
                oracle,
                tracker,
                steps,
                x0,
                y,
                target,
                self.start_candidates,
                self.tol,
                self.max_bisection_steps,
            )
            xb[found] = tracker.best[found]
        self._iterate(oracle, tracker, steps, sampler, gen, x0, xb, found)

    def _iterate(
        self,
        oracle: LabelOracle,
        tracker: BestTracker,
        steps: StepCounter,
        sampler: LowFrequencySampler,
        generator: torch.Generator,
        x0: torch.Tensor,
        xb: torch.Tensor,
        found: torch.Tensor,
    ) -> None:
        """The iterations of every image from its first boundary point ``xb`` on, pipelined.

        Each image is in one phase: estimating the normal (all its ``n_t`` probes), searching
        the semicircle (one candidate) or bisecting (one candidate). A query round labels what
        every image needs next, in equal chunks of the oracle's batch size, and moves each image
        on by one step. Images in different phases so share each forward pass and none waits
        for the slowest image of the batch, which keeps the passes at the efficient batch size;
        each image takes exactly the steps it would take alone (only its random draws differ)."""
        n, shape = x0.shape[0], x0.shape[1:]
        dev, dt = x0.device, x0.dtype
        phase = torch.where(found, _ESTIMATE, _DONE)
        t = torch.ones(n, dtype=torch.long, device=dev)  # iteration of each image
        tries = torch.zeros(n, dtype=torch.long, device=dev)  # search candidates so far
        halvings = torch.zeros(n, dtype=torch.long, device=dev)  # bisection steps so far
        radius = torch.zeros(n, device=dev, dtype=dt)  # ‖x_b − x0‖
        theta = torch.zeros(n, device=dev, dtype=dt)  # angle between η and v
        # The bisection's adversarial and clean ends: angles on the semicircle (CGBA) or
        # fractions of the segment from x0 to the adversarial point found (CGBA-H).
        adv_at = torch.zeros(n, device=dev, dtype=dt)
        clean_at = torch.zeros(n, device=dev, dtype=dt)
        v = torch.zeros_like(x0)  # (x_b − x0)/R; for CGBA-H's bisection: the segment
        u = torch.zeros_like(x0)  # unit vector of the plane orthogonal to v, η's side
        new = xb.clone()  # adversarial point of the current iteration (closest so far)

        def end_iteration(pos: torch.Tensor) -> None:
            xb[pos] = new[pos]
            t[pos] += 1
            phase[pos] = _ESTIMATE

        def arc_point(pos: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
            r = radius[pos] * torch.cos(phi)
            zeta = view(torch.cos(phi), v) * v[pos] + view(torch.sin(phi), u) * u[pos]
            return (x0[pos] + view(r, zeta) * zeta).clamp(0, 1)

        def gap(pos: torch.Tensor) -> torch.Tensor:
            width = (adv_at[pos] - clean_at[pos]).abs()
            return radius[pos] * (width if self.curved else torch.sin(width))

        while True:
            left = oracle.remaining()
            phase[left <= 0] = _DONE
            est = (phase == _ESTIMATE).nonzero().flatten()
            one = ((phase == _SEARCH) | (phase == _BISECT)).nonzero().flatten()
            if est.numel() == 0 and one.numel() == 0:
                break
            # What each image asks this round: its probes, or one candidate.
            n_t = (self.n0 * t[est].double().sqrt()).floor().long()
            m = torch.minimum(n_t, left[est])
            searching = phase[one] == _SEARCH
            tries[one[searching]] += 1
            phi = torch.where(
                searching,
                self._search_angle(tries[one], theta[one]),
                (adv_at[one] + clean_at[one]) / 2,
            )
            if self.curved:
                # Candidates on the semicircle while searching, on the segment when bisecting.
                cand = torch.empty((one.numel(),) + shape, device=dev, dtype=dt)
                cand[searching] = arc_point(one[searching], phi[searching])
                on_seg = one[~searching]
                cand[~searching] = x0[on_seg] + view(phi[~searching], x0) * v[on_seg]
            else:
                cand = arc_point(one, phi)
            hit, eta = label_round(
                oracle,
                sampler,
                generator,
                xb,
                est,
                m,
                self.sigma,
                cand,
                one,
                self.baseline,
                self.shared_probes,
            )
            steps.add(est, m)
            steps.add(one)
            if est.numel():
                self._start_search(est, eta, x0, xb, v, u, radius, theta, phase, t)
                tries[est] = 0
                halvings[est] = 0
                adv_at[est] = 0
            if one.numel() == 0:
                continue
            tracker.update(one, cand, hit)
            new[one[hit]] = cand[hit]
            bis = one[~searching]
            halvings[bis] += 1
            b_hit = hit[~searching]
            adv_at[bis[b_hit]] = phi[~searching][b_hit]
            clean_at[bis[~b_hit]] = phi[~searching][~b_hit]
            srch, s_hit, s_phi = one[searching], hit[searching], phi[searching]
            if self.curved:
                # Found an adversarial angle: bisect the segment from x0 to that point.
                got = srch[s_hit]
                v[got] = new[got] - x0[got]
                radius[got] = flat_norm(v[got], "l2")
                adv_at[got] = 1
                clean_at[got] = 0
                phase[got] = _BISECT
                stop = srch[~s_hit & (tries[srch] >= self.max_search_steps)]
            else:
                # Found a clean angle: bisect the arc between it and the last adversarial one.
                adv_at[srch[s_hit]] = s_phi[s_hit]
                got = srch[~s_hit]
                clean_at[got] = s_phi[~s_hit]
                phase[got] = _BISECT
                stop = srch[s_hit & (tries[srch] >= self.max_search_steps)]
            done = (phase[one] == _BISECT) & (
                (gap(one) < self.tol) | (halvings[one] >= self.max_bisection_steps)
            )
            end_iteration(torch.cat([stop, one[done]]))

    def _search_angle(self, tries: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Angle from v of the ``tries``-th search candidate: (π/2)(1 − 2^−k) toward x0's end of
        the semicircle (CGBA), θ/2^k toward v (CGBA-H)."""
        half = torch.pow(2.0, -tries.to(theta.dtype))
        return theta * half if self.curved else (math.pi / 2) * (1 - half)

    @staticmethod
    def _start_search(est, eta, x0, xb, v, u, radius, theta, phase, t) -> None:
        """From the normals ``eta`` of the images ``est``: the plane of ``v`` and ``η`` through
        x0 (``v``, ``u``, ``R``, ``θ``), and the search phase; an image whose ``η`` is parallel
        to ``v`` (or whose R is 0) keeps its ``x_b`` and starts its next iteration."""
        diff = xb[est] - x0[est]
        r = flat_norm(diff, "l2")
        direction = diff / view(r.clamp_min(1e-20), diff)
        along = (eta * direction).flatten(1).sum(1)
        perp = eta - view(along, eta) * direction
        perp_norm = flat_norm(perp, "l2")
        ok = (perp_norm > 1e-12 * flat_norm(eta, "l2")) & (r > 0)
        v[est] = direction
        u[est] = perp / view(perp_norm.clamp_min(1e-30), perp)
        radius[est] = r
        theta[est] = torch.atan2(perp_norm, along)
        phase[est[ok]] = _SEARCH
        t[est[~ok]] += 1


@ATTACKS.register(
    "cgba",
    family="decision",
    norms="l2",
    summary="CGBA (Reza et al., ICCV 2023): label-only, semicircular boundary search; untargeted",
)
class CGBA(_CGBABase):
    """CGBA: decision-based L2 attack with the semicircular boundary search for flat boundaries
    (non-targeted use). ``dim_reduction_factor=None`` picks the DCT subspace from the image
    size (1 for 32×32, 4 for 224×224; recorded in ``result.extras``). ``shared_probes=False``
    draws every probe direction of every image independently instead of sharing a round's
    directions between the images of the batch (each image's attack follows the same
    distribution either way; independent draws cost about 10 µs per 32×32 probe on a CPU)."""

    name = "cgba"
    curved = False


@ATTACKS.register(
    "cgba-h",
    family="decision",
    norms="l2",
    summary="CGBA-H (Reza et al., ICCV 2023): label-only, for curved boundaries; targeted",
)
class CGBAH(_CGBABase):
    """CGBA-H: the variant for strongly curved boundaries, meant for targeted attacks (so
    ``targeted=True`` by default; the start point is the closest image of the batch labelled as
    the target, else a random image the model labels so).

    ``start_candidates=k`` (k > 1) turns on the paper's optional closer-start search: the next
    k - 1 nearest images of the batch whose true label is the target are each confirmed with
    one query and bisected toward the clean image (about 15-20 queries each), and the attack
    starts from the closest boundary point of them all. Off by default, as in the authors'
    code. Measured on 2026-11-24, before the iterations were pipelined, on the first 100
    correctly classified CIFAR-10 test images (each targeted at another class of the batch,
    2,000 queries): k = 3 lowers the median L2 at 250 queries from 5.18 to 4.09 on
    cifar10/resnet20 and from 7.24 to 6.55 on cifar10/resnet4b-at, and by 2-3% at 2,000."""

    name = "cgba-h"
    curved = True

    def __init__(self, max_queries: int = 1000, targeted: bool = True, **kwargs):
        super().__init__(max_queries=max_queries, targeted=targeted, **kwargs)
