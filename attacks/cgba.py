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
tensors, in pipelined query rounds (:meth:`_CGBABase._iterate`): each round every image asks for
what it needs next (one noise, search or bisection candidate, or the probes of its normal
estimate, :class:`~robustkit.attacks._normals.NormalEstimates`), and the round fills its forward
passes to whole batches of the oracle with pending probes, oldest first. Images in different
phases so share full forward passes and no image waits for the slowest one. By default the
images share their probe directions through a pool (``shared_probes``).
"""

from __future__ import annotations

import math

import torch

from robustkit.errors import InputError
from robustkit.oracle import BestTracker, DecisionAttack, LabelOracle, StepCounter
from robustkit.registry import ATTACKS
from robustkit.threat import flat_norm

from ._boundary import bisect_segment, closer_targeted_start, start_targeted, view
from ._normals import NormalEstimates
from .dct import LowFrequencySampler, auto_factor

# Phases of an image in CGBA's pipelined query rounds (see _CGBABase._iterate): looking for a
# first adversarial point with noise, bisecting toward x0 from it, due to order its normal's
# probes, waiting for their labels, searching the semicircle, bisecting; done.
_NOISE, _START, _ESTIMATE, _PROBING, _SEARCH, _BISECT, _DONE = range(7)


def _positive(name: str, value, kind=float):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    if kind is int and int(value) != value:
        raise InputError(f"{name} must be a positive whole number, got {value!r}")
    return kind(value)


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
        if target is None:
            # Noise of growing size until adversarial, then bisection: both in the rounds.
            phase = torch.full((n,), _NOISE, dtype=torch.long, device=x0.device)
            self._iterate(oracle, tracker, steps, sampler, rng, x0, phase, x0)
            return
        if self.start_candidates == 1:
            # The nearest target-class image of the batch here; where it is not labelled as
            # the target, uniform noise images in the rounds.
            start, found = start_targeted(oracle, tracker, steps, x0, y, target, rng, 0)
            phase = torch.where(found, _START, _NOISE)
            self._iterate(oracle, tracker, steps, sampler, rng, x0, phase, start)
            return
        start, found = start_targeted(oracle, tracker, steps, x0, y, target, rng, self.init_tries)
        # The optional closer-start search: bisect the first start and more target-class images
        # of the batch toward x0, keep the closest boundary point found (the tracker's best).
        idx = found.nonzero().flatten()
        bisect_segment(
            oracle, tracker, steps, idx, x0[idx], start[idx], self.tol, self.max_bisection_steps
        )
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
        phase = torch.where(found, _ESTIMATE, _DONE)
        self._iterate(oracle, tracker, steps, sampler, rng, x0, phase, tracker.best.clone())

    def _iterate(
        self,
        oracle: LabelOracle,
        tracker: BestTracker,
        steps: StepCounter,
        sampler: LowFrequencySampler,
        generator: torch.Generator,
        x0: torch.Tensor,
        phase: torch.Tensor,
        start: torch.Tensor,
    ) -> None:
        """Every image's attack from its start on, in pipelined query rounds.

        ``phase`` is each image's first phase: ``_NOISE`` (look for an adversarial point with
        noise: Gaussian around x0, growing, or uniform noise images when targeted), ``_START`` (bisect from the adversarial ``start`` toward x0), ``_ESTIMATE``
        (``start`` is its first boundary point) or ``_DONE``. In each round an image asks for
        one candidate (noise, search or bisection step) or orders the ``n_t`` probes of its
        normal estimate; the round labels every candidate and fills its forward passes to whole
        batches of the oracle with pending probes, oldest first (the rest wait for the next
        round). Images in different phases so share each forward pass, none waits for the
        slowest image of the batch and the passes run at the efficient batch size; each image
        takes exactly the steps it would take alone (only its random draws differ)."""
        n, shape = x0.shape[0], x0.shape[1:]
        dev, dt = x0.device, x0.dtype
        batch = oracle.batch_size
        xb = start.clone()  # boundary point of each image's current iteration
        new = start.clone()  # closest adversarial point of the current iteration so far
        t = torch.ones(n, dtype=torch.long, device=dev)  # iteration of each image
        tries = torch.zeros(n, dtype=torch.long, device=dev)  # noise / search candidates so far
        halvings = torch.zeros(n, dtype=torch.long, device=dev)  # bisection steps so far
        radius = torch.zeros(n, device=dev, dtype=dt)  # ‖x_b − x0‖, or the segment's length
        theta = torch.zeros(n, device=dev, dtype=dt)  # angle between η and v
        # The bisection's adversarial and clean ends: angles on the semicircle (CGBA) or
        # fractions of the segment v from x0 (the start's bisection, CGBA-H's bisection).
        adv_at = torch.zeros(n, device=dev, dtype=dt)
        clean_at = torch.zeros(n, device=dev, dtype=dt)
        v = torch.zeros_like(x0)  # (x_b − x0)/R; for a segment bisection: the segment
        u = torch.zeros_like(x0)  # unit vector of the plane orthogonal to v, η's side
        estimates = NormalEstimates(
            xb, sampler, generator, self.sigma, self.baseline, self.shared_probes
        )

        def begin_segment(pos: torch.Tensor) -> None:
            """Bisect the segment from x0 to the adversarial point ``new`` (all ``pos``)."""
            seg = new.index_select(0, pos).sub_(x0.index_select(0, pos))
            v.index_copy_(0, pos, seg)
            radius[pos] = flat_norm(seg, "l2")
            adv_at[pos] = 1
            clean_at[pos] = 0
            halvings[pos] = 0

        begin_segment((phase == _START).nonzero().flatten())
        while True:
            left = oracle.remaining()
            phase[(left <= 0) & (phase != _PROBING)] = _DONE
            fresh = (phase == _ESTIMATE).nonzero().flatten()
            if fresh.numel():
                n_t = (self.n0 * t[fresh].double().sqrt()).floor().long()
                m = torch.minimum(n_t, left[fresh])
                estimates.order(fresh, m)
                steps.add(fresh, m)
                phase[fresh] = _PROBING
            one = ((phase <= _START) | (phase == _SEARCH) | (phase == _BISECT)).nonzero()
            one = one.flatten()
            c = one.numel()
            if c == 0 and estimates.pending == 0:
                break
            # One candidate per image that asks for one: x0 + a·v + b·u.
            ph = phase[one]
            searching, noise = ph == _SEARCH, ph == _NOISE
            tries[one] += (searching | noise).long()
            segment = ph == _START  # candidates on a segment from x0, else on the semicircle
            if self.curved:
                segment |= ph == _BISECT
            phi = torch.where(
                searching,
                self._search_angle(tries[one], theta[one]),
                (adv_at[one] + clean_at[one]) / 2,
            )
            r_cos = radius[one] * torch.cos(phi)
            a = torch.where(segment, phi, r_cos * torch.cos(phi))
            b = torch.where(segment, 0.0, r_cos * torch.sin(phi))
            # (index_select and index_copy_ move rows several times faster than indexing.)
            cand = x0.index_select(0, one)
            cand.addcmul_(view(a, x0), v.index_select(0, one))
            cand.addcmul_(view(b, x0), u.index_select(0, one)).clamp_(0, 1)
            if noise.any():
                at = noise.nonzero().flatten()
                pos, size = one[at], (at.numel(),) + shape
                if oracle.target is not None:  # uniform noise images
                    z = torch.rand(size, generator=generator, device=dev, dtype=dt)
                else:  # x0 + k·init_noise·N(0, I) at the k-th try
                    z = torch.randn(size, generator=generator, device=dev, dtype=dt)
                    z.mul_(view(tries[pos].to(dt) * self.init_noise, z))
                    z.add_(x0.index_select(0, pos)).clamp_(0, 1)
                cand.index_copy_(0, at, z)
            hit = self._label(oracle, estimates, cand, one, batch)
            steps.add(one)
            done, eta = estimates.completed()
            if done.numel():
                phase[done] = _ESTIMATE
                self._start_search(done, eta, x0, xb, v, u, radius, theta, phase, t)
                tries[done] = 0
                halvings[done] = 0
                adv_at[done] = 0
            if c == 0:
                continue
            tracker.update(one, cand, hit)
            got = hit.nonzero().flatten()
            new.index_copy_(0, one[got], cand.index_select(0, got))
            # Noise: an adversarial point starts the bisection toward x0; out of tries: done.
            begin_segment(one[noise & hit])
            phase[one[noise & hit]] = _START
            phase[one[noise & ~hit & (tries[one] >= self.init_tries)]] = _DONE
            # Bisection steps: move the end the verdict says.
            bisecting = (ph == _START) | (ph == _BISECT)
            adv_at[one[bisecting & hit]] = phi[bisecting & hit]
            clean_at[one[bisecting & ~hit]] = phi[bisecting & ~hit]
            halvings[one[bisecting]] += 1
            # Search steps.
            s_hit, s_miss = searching & hit, searching & ~hit
            if self.curved:
                # Found an adversarial angle: bisect the segment from x0 to that point.
                begin_segment(one[s_hit])
                phase[one[s_hit]] = _BISECT
                stop = one[s_miss & (tries[one] >= self.max_search_steps)]
            else:
                # Found a clean angle: bisect the arc between it and the last adversarial one.
                adv_at[one[s_hit]] = phi[s_hit]
                clean_at[one[s_miss]] = phi[s_miss]
                phase[one[s_miss]] = _BISECT
                stop = one[s_hit & (tries[one] >= self.max_search_steps)]
            # Finished bisections end the start (first boundary point) or the iteration.
            now = phase[one]
            width = (adv_at[one] - clean_at[one]).abs()
            on_segment = (now == _START) | ((now == _BISECT) & self.curved)
            gap = radius[one] * torch.where(on_segment, width, torch.sin(width))
            finished = ((now == _START) | (now == _BISECT)) & (
                (gap < self.tol) | (halvings[one] >= self.max_bisection_steps)
            )
            end = torch.cat([stop, one[finished]])
            xb.index_copy_(0, end, new.index_select(0, end))
            t[end] += (phase[end] != _START).long()
            phase[end] = _ESTIMATE

    @staticmethod
    def _label(
        oracle: LabelOracle,
        estimates: NormalEstimates,
        cand: torch.Tensor,
        one: torch.Tensor,
        batch: int,
    ) -> torch.Tensor:
        """Label one round: the candidates ``cand`` of the images ``one`` and as many pending
        probes as fill the forward passes to whole batches (all of them when the round fits one
        pass). Returns the candidates' verdicts; the probes' go to ``estimates``."""
        c, pending = one.numel(), estimates.pending
        total = c + pending
        k = pending if total <= batch else max(0, total // batch * batch - c)
        total = c + k
        hit = torch.zeros(c, dtype=torch.bool, device=cand.device)
        chunk = -(-total // max(1, -(-total // batch)))  # equal chunks of at most batch rows
        for lo in range(0, total, chunk):
            hi = min(lo + chunk, total)
            kp = max(0, min(hi, k) - lo)  # probes in this chunk, then candidates
            c_lo, c_hi = max(lo, k) - k, hi - k
            if kp == 0:
                rows, owners = cand[c_lo:c_hi], one[c_lo:c_hi]
            else:
                rows = cand.new_empty((hi - lo,) + cand.shape[1:])
                owners = estimates.take(rows[:kp])
                if hi > k:
                    rows[kp:] = cand[c_lo:c_hi]
                    owners = torch.cat([owners, one[c_lo:c_hi]])
            adv = oracle.is_adversarial(rows, owners)
            if kp:
                estimates.record(adv[:kp])
            if hi > k:
                hit[c_lo:c_hi] = adv[kp:]
        return hit

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
        diff = xb.index_select(0, est).sub_(x0.index_select(0, est))
        r = flat_norm(diff, "l2")
        direction = diff / view(r.clamp_min(1e-20), diff)
        along = (eta * direction).flatten(1).sum(1)
        perp = eta - view(along, eta) * direction
        perp_norm = flat_norm(perp, "l2")
        ok = (perp_norm > 1e-12 * flat_norm(eta, "l2")) & (r > 0)
        v.index_copy_(0, est, direction)
        u.index_copy_(0, est, perp.div_(view(perp_norm.clamp_min(1e-30), perp)))
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
    draws every probe direction of every image independently instead of reading them from a
    pool the images of the batch share (each image's attack follows the same distribution
    either way; independent draws cost about 10 µs per 32×32 probe on a CPU)."""

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
