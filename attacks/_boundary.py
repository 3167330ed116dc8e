"""Batched building blocks shared by the decision-based attacks: finding a first adversarial
point and bisecting to the decision boundary.

Every function works on a whole batch at once: each round is one labelled batch of the samples
still working, each sample keeps its own state, and no sample is queried beyond its budget.
Positions ``idx`` index the attacked samples (``0 .. n-1``) of the oracle.
"""

from __future__ import annotations

import torch

from robustkit.oracle import BestTracker, LabelOracle, StepCounter
from robustkit.threat import flat_norm


def view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample vector to broadcast against a batch shaped like ``like``."""
    return v.reshape((-1,) + (1,) * (like.dim() - 1))


def start_untargeted(
    oracle: LabelOracle,
    tracker: BestTracker,
    steps: StepCounter,
    x0: torch.Tensor,
    generator: torch.Generator,
    scale: float = 0.02,
    max_tries: int = 100,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian noise of growing size, ``x0 + k·scale·N(0, I)`` clipped, ``k = 1, 2, ...``, until
    the label changes. Returns the points and a mask of the samples for which one was found."""
    n = x0.shape[0]
    start = x0.clone()
    found = torch.zeros(n, dtype=torch.bool, device=x0.device)
    for k in range(1, max_tries + 1):
        todo = (~found & (oracle.remaining() > 0)).nonzero().flatten()
        if todo.numel() == 0:
            break
        noise = torch.randn(x0[todo].shape, generator=generator, device=x0.device, dtype=x0.dtype)
        cand = (x0[todo] + k * scale * noise).clamp(0, 1)
        adv = oracle.is_adversarial(cand, todo)
        steps.add(todo)
        tracker.update(todo, cand, adv)
        hit = todo[adv]
        start[hit] = cand[adv]
        found[hit] = True
    return start, found


def target_class_neighbours(
    x0: torch.Tensor, y: torch.Tensor, target: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample, the L2 distances to and positions of the ``k`` nearest images of the batch
    whose true label is that sample's target (distance inf where there are fewer)."""
    n = x0.shape[0]
    flat = x0.reshape(n, -1)
    dist = torch.cdist(flat, flat)
    dist[target.unsqueeze(1) != y.unsqueeze(0)] = float("inf")
    return dist.topk(min(k, n), dim=1, largest=False)


def start_targeted(
    oracle: LabelOracle,
    tracker: BestTracker,
    steps: StepCounter,
    x0: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor,
    generator: torch.Generator,
    max_tries: int = 100,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A first point the model labels as the target. Candidates: the closest image of the batch
    whose true label is the target (the model classifies every attacked image correctly, so it
    is likely one; one query confirms it), then uniform noise images."""
    n = x0.shape[0]
    start = x0.clone()
    found = torch.zeros(n, dtype=torch.bool, device=x0.device)
    near_d, near = target_class_neighbours(x0, y, target, 1)
    todo = (torch.isfinite(near_d[:, 0]) & (oracle.remaining() > 0)).nonzero().flatten()
    if todo.numel():
        cand = x0[near[todo, 0]]
        adv = oracle.is_adversarial(cand, todo)
        steps.add(todo)
        tracker.update(todo, cand, adv)
        start[todo[adv]] = cand[adv]
        found[todo[adv]] = True
    for _ in range(max_tries):
        todo = (~found & (oracle.remaining() > 0)).nonzero().flatten()
        if todo.numel() == 0:
            break
        cand = torch.rand(x0[todo].shape, generator=generator, device=x0.device, dtype=x0.dtype)
        adv = oracle.is_adversarial(cand, todo)
        steps.add(todo)
        tracker.update(todo, cand, adv)
        start[todo[adv]] = cand[adv]
        found[todo[adv]] = True
    return start, found


def bisect_segment(
    oracle: LabelOracle,
    tracker: BestTracker,
    steps: StepCounter,
    idx: torch.Tensor,
    clean: torch.Tensor,
    adv: torch.Tensor,
    tol: float,
    max_steps: int = 100,
) -> torch.Tensor:
    """Bisect each segment from a clean point to an adversarial one until the two ends are closer
    than ``tol`` (L2), the step limit is reached or the sample's budget runs out; return the
    adversarial ends (adversarial by construction: each was labelled so, or is ``adv``)."""
    clean, adv = clean.clone(), adv.clone()
    for _ in range(max_steps if idx.numel() else 0):
        gap = flat_norm(adv - clean, "l2")
        live = (gap >= tol) & (oracle.remaining(idx) > 0)
        pos = live.nonzero().flatten()
        if pos.numel() == 0:
            break
        mid = (clean[pos] + adv[pos]) / 2
        sel = idx[pos]
        hit = oracle.is_adversarial(mid, sel)
        steps.add(sel)
        tracker.update(sel, mid, hit)
        adv[pos[hit]] = mid[hit]
        clean[pos[~hit]] = mid[~hit]
    return adv


def closer_targeted_start(
    oracle: LabelOracle,
    tracker: BestTracker,
    steps: StepCounter,
    x0: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor,
    candidates: int,
    tol: float,
    max_steps: int = 100,
) -> torch.Tensor:
    """The optional start-point search of targeted attacks: beyond the nearest image of the batch
    whose true label is the target (tried by :func:`start_targeted`), try the next
    ``candidates - 1`` nearest such images, each confirmed with one query and bisected toward
    ``x0``; the closest boundary point over all of them is the tracker's best. Returns the mask
    of samples that gained a start this way. Each round takes one candidate per sample, so the
    samples of a round are distinct."""
    n = x0.shape[0]
    gained = torch.zeros(n, dtype=torch.bool, device=x0.device)
    if candidates <= 1:
        return gained
    near_d, near = target_class_neighbours(x0, y, target, candidates)
    for j in range(1, near.shape[1]):
        todo = (torch.isfinite(near_d[:, j]) & (oracle.remaining() > 0)).nonzero().flatten()
        if todo.numel() == 0:
            break
        cand = x0[near[todo, j]]
        adv = oracle.is_adversarial(cand, todo)
        steps.add(todo)
        had = tracker.found[todo]
        tracker.update(todo, cand, adv)
        todo, cand = todo[adv], cand[adv]
        gained[todo[~had[adv]]] = True
        bisect_segment(oracle, tracker, steps, todo, x0[todo], cand, tol, max_steps)
    return gained
