"""HopSkipJump (Chen, Jordan & Wainwright, IEEE S&P 2020), L2, batched in lockstep.

From a boundary point each iteration estimates the gradient direction of the decision function
from ``100·√t`` random unit probes at radius ``δ`` (with the mean decision subtracted as a
baseline), steps along it with a geometrically shrinking step size until the point is adversarial,
and bisects back toward the clean image. Same oracle, budgets and trajectories as CGBA.
"""

from __future__ import annotations

import math

import torch

from robustkit.checks import positive_float, positive_int
from robustkit.oracle import DecisionAttack, probe_count
from robustkit.registry import ATTACKS
from robustkit.threat import flat_norm

from ._boundary import start_targeted, view


@ATTACKS.register(
    "hsja",
    family="decision",
    norms="l2",
    summary="HopSkipJump (Chen et al., 2020): label-only gradient estimation, L2",
)
class HopSkipJump(DecisionAttack):
    """HopSkipJump (L2) with the paper's defaults: ``init_num_evals·√t`` probes (100·√t) per
    gradient estimate of iteration ``t``, at most ``max_num_evals`` (10,000); ``gamma``
    (``γ = 1``) sets the bisection threshold ``θ = γ/d^{3/2}`` and the probe radius
    ``δ = √d·θ·dist`` (``δ = 0.1`` at the first iteration); the step size ``dist/√t`` is halved
    until the step is adversarial, at most ``max_step_halvings`` times (25); each bisection
    toward the clean image stops at ``θ`` or after ``max_bisection_steps`` steps (100).
    Untargeted starts from uniform noise (at most ``init_tries`` images, 100); targeted from the
    closest batch image of the target class (else up to ``init_tries`` uniform noise images,
    the first the model labels as the target). ``max_queries``, ``eps`` and ``batch_size`` are
    :class:`~robustkit.oracle.DecisionAttack`'s."""

    name = "hsja"

    def __init__(
        self,
        max_queries: int = 1000,
        init_num_evals: int = 100,
        max_num_evals: int = 10000,
        gamma: float = 1.0,
        max_step_halvings: int = 25,
        init_tries: int = 100,
        max_bisection_steps: int = 100,
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
        self.init_num_evals = probe_count("init_num_evals", init_num_evals)
        self.max_num_evals = probe_count("max_num_evals", max_num_evals)
        self.gamma = positive_float("gamma", gamma)
        self.max_step_halvings = positive_int("max_step_halvings", max_step_halvings)
        self.init_tries = positive_int("init_tries", init_tries)
        self.max_bisection_steps = positive_int("max_bisection_steps", max_bisection_steps)

    # -- pieces ---------------------------------------------------------------------------------
    def _bisect(self, oracle, tracker, steps, idx, x0, adv, theta):
        """HopSkipJump's binary search on the blend ``(1−λ)·x0 + λ·adv`` down to ``θ`` in λ.

        A sample also stops where the images' precision cannot tell the midpoint from an end
        (``θ = γ/d^1.5`` is below float32's spacing of λ from about 65,000 pixel values on,
        ImageNet sizes): its next query would repeat one already made."""
        lo = torch.zeros(idx.numel(), device=x0.device, dtype=x0.dtype)
        hi = torch.ones_like(lo)
        for _ in range(self.max_bisection_steps if idx.numel() else 0):
            mid = (lo + hi) / 2
            splittable = (mid != lo) & (mid != hi)
            live = (hi - lo > theta) & splittable & (oracle.remaining(idx) > 0)
            pos = live.nonzero().flatten()
            if pos.numel() == 0:
                break
            lam = mid[pos]
            cand = x0[pos] + view(lam, x0) * (adv[pos] - x0[pos])
            hit = oracle.is_adversarial(cand, idx[pos])
            steps.add(idx[pos])
            tracker.update(idx[pos], cand, hit)
            hi[pos[hit]] = lam[hit]
            lo[pos[~hit]] = lam[~hit]
        return x0 + view(hi, x0) * (adv - x0)

    def _start(self, rng, oracle, tracker, steps, x0, y, target):
        if target is not None:
            return start_targeted(oracle, tracker, steps, x0, y, target, rng, self.init_tries)
        start, found = x0.clone(), torch.zeros(x0.shape[0], dtype=torch.bool, device=x0.device)
        for _ in range(self.init_tries):
            todo = (~found & (oracle.remaining() > 0)).nonzero().flatten()
            if todo.numel() == 0:
                break
            cand = torch.rand(x0[todo].shape, generator=rng, device=x0.device, dtype=x0.dtype)
            hit = oracle.is_adversarial(cand, todo)
            steps.add(todo)
            tracker.update(todo, cand, hit)
            start[todo[hit]] = cand[hit]
            found[todo[hit]] = True
        return start, found

    def _gradient(self, rng, oracle, steps, xb, act, n_evals, delta):
        """Baseline-corrected Monte-Carlo estimate of the gradient direction at ``xb[act]``.

        ``Σ (f − f̄)·u = Σ f·u − f̄·Σ u``: the sums are taken one oracle batch of probes at a time,
        so memory holds two images per sample and one batch of probes, not every probe of the
        estimate (10,000 probes of a 224×224 image are 6 GB).

        Every image of ``act`` draws ``n_evals`` directions from the batch's one stream, and one
        with fewer queries left (none: an image out of budget, drawing only) labels just its
        first ones: so the directions an image reads do not depend on the budget the images
        before it have left. (Drawn as many as labelled, an image cut short by its budget moved
        every later image's directions, and a run with a smaller budget took other paths than
        the trajectories of a larger run said it would.)"""
        m = oracle.remaining(act).clamp(max=n_evals)
        sum_fu = torch.zeros((act.numel(),) + tuple(xb.shape[1:]), device=xb.device, dtype=xb.dtype)
        sum_u = torch.zeros_like(sum_fu)
        sum_f = torch.zeros(act.numel(), device=xb.device, dtype=xb.dtype)
        cut = bool((m < n_evals).any())  # some image labels fewer than it draws
        total = act.numel() * n_evals
        for lo in range(0, total, oracle.batch_size):
            # probe i is image i // n_evals's (i % n_evals)-th
            i = torch.arange(lo, min(lo + oracle.batch_size, total), device=act.device)
            p = i // n_evals
            rv = torch.randn(
                (p.numel(),) + tuple(xb.shape[1:]),
                generator=rng,
                device=xb.device,
                dtype=xb.dtype,
            )
            if cut:  # probes beyond an image's budget: drawn, not labelled
                keep = (i % n_evals < m[p]).nonzero().flatten()
                if keep.numel() == 0:
                    continue
                p, rv = p[keep], rv[keep]
            owner = act[p]
            rv = rv / view(flat_norm(rv, "l2"), rv)
            base = xb[owner]
            probes = (base + view(delta[p], rv) * rv).clamp(0, 1)
            u = (probes - base) / view(delta[p], rv)  # the probe's direction after the box clip
            f = oracle.is_adversarial(probes, owner).to(xb.dtype) * 2 - 1
            sum_fu.index_add_(0, p, view(f, u) * u)
            sum_u.index_add_(0, p, u)
            sum_f.index_add_(0, p, f)
        steps.add(act, m)
        mean = sum_f / m.clamp_min(1)
        # all probes on one side: no baseline (the paper's rule), the plain mean direction
        baseline = torch.where(mean.abs() == 1, torch.zeros_like(mean), mean)
        grad = sum_fu - view(baseline, sum_u) * sum_u
        return grad / view(flat_norm(grad, "l2").clamp_min(1e-20), grad)

    # -- main loop ------------------------------------------------------------------------------
    def _run(self, oracle, tracker, steps, rng, extras, x0, y, target):
        d = x0[0].numel()
        theta = self.gamma / (d * math.sqrt(d))
        start, found = self._start(rng, oracle, tracker, steps, x0, y, target)
        xb = x0.clone()
        idx = found.nonzero().flatten()
        xb[idx] = self._bisect(oracle, tracker, steps, idx, x0[idx], start[idx], theta)
        dist = flat_norm(xb - x0, "l2")
        t = 0
        # Every image with a start draws its probe directions each iteration, budget left or
        # not (see _gradient): the directions of the others do not depend on its budget.
        live = found.nonzero().flatten()
        while True:
            t += 1
            has_budget = oracle.remaining(live) > 0
            act = live[has_budget]
            if act.numel() == 0:
                break
            if t == 1:
                delta = torch.full((live.numel(),), 0.1, device=x0.device, dtype=x0.dtype)
            else:
                delta = math.sqrt(d) * theta * dist[live]
            n_evals = int(min(self.init_num_evals * math.sqrt(t), self.max_num_evals))
            grad = self._gradient(rng, oracle, steps, xb, live, n_evals, delta)[has_budget]
            # Geometric step-size search: halve until the step lands on the adversarial side.
            eps = dist[act] / math.sqrt(t)
            cand_all = xb[act].clone()
            stepping = torch.ones(act.numel(), dtype=torch.bool, device=x0.device)
            ok = torch.zeros_like(stepping)
            for _ in range(self.max_step_halvings):
                pos = (stepping & (oracle.remaining(act) > 0)).nonzero().flatten()
                if pos.numel() == 0:
                    break
                cand = (xb[act[pos]] + view(eps[pos], grad) * grad[pos]).clamp(0, 1)
                hit = oracle.is_adversarial(cand, act[pos])
                steps.add(act[pos])
                tracker.update(act[pos], cand, hit)
                cand_all[pos[hit]] = cand[hit]
                ok[pos[hit]] = True
                stepping[pos[hit]] = False
                eps[pos[~hit]] /= 2
            good = ok.nonzero().flatten()
            if good.numel():
                sel = act[good]
                xb[sel] = self._bisect(oracle, tracker, steps, sel, x0[sel], cand_all[good], theta)
                dist[sel] = flat_norm(xb[sel] - x0[sel], "l2")
