"""Gaussian input noise: a randomized inference-time defense (Cohen et al.'s base classifier,
judged by majority vote).

Each forward pass adds fresh N(0, σ²) noise to the input (clipped to [0, 1]) before the
classifier, so gradients and even labels change from call to call. Evaluate it with an EOT attack
that averages gradients over many draws, e.g. ``pgd:eot=10``.

A label of the defended model, for the clean input and for an attack's answer alike, is the most
frequent top class over ``votes`` draws (:func:`robustkit.attack.predict`; Cohen et al.'s
prediction without abstention): with one draw per label, a sample near a tie flips between the
clean check and the success check, and a perturbation of 1e-6 "fools" a fifth of the samples.

The noise comes from torch's global generator: :func:`robustkit.evaluate` seeds it per shard
and attack; a direct ``attack(model, x, y)`` call repeats once it is seeded (``torch.manual_seed``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robustkit.checks import is_real_number, is_whole_number
from robustkit.defense import Defense
from robustkit.errors import InputError
from robustkit.registry import DEFENSES


class NoisyInput(nn.Module):
    """``model(clip(x + σ·N(0, I)))`` with fresh noise at every call; its labels are majority
    votes over ``votes`` calls (the ``votes`` attribute :func:`robustkit.attack.predict` reads)."""

    def __init__(self, model: nn.Module, sigma: float, votes: int = 1):
        super().__init__()
        self.model = model
        self.sigma = sigma
        self.votes = int(votes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x + self.sigma * torch.randn_like(x)).clamp(0.0, 1.0))


#: The most draws a label may take: Cohen et al. certify with 100,000; a million forward passes
#: per label is beyond any evaluation, and a larger count is a typo, not a setting.
MAX_VOTES = 10**6


@DEFENSES.register(
    "input-noise",
    kind="inference",
    adaptive_attack="pgd:eot=10",
    summary="Gaussian noise added to every input (randomized; labels by majority vote; evaluate "
    "with EOT)",
    reference="Cohen, Rosenfeld & Kolter, ICML 2019 (base classifier of randomized smoothing)",
)
class InputNoise(Defense):
    """Add Gaussian noise of standard deviation ``sigma`` to every input; label by the majority
    of ``votes`` draws (1: a single draw)."""

    name = "input-noise"
    adaptive_attack = "pgd:eot=10"

    def __init__(self, sigma: float = 0.1, votes: int = 25):
        if not is_real_number(sigma):
            raise InputError(f"sigma must be a positive noise level, got {sigma!r}")
        if not (sigma > 0 and math.isfinite(sigma)):
            raise InputError(f"sigma must be a positive, finite noise level, got {sigma!r}")
        if not is_whole_number(votes) or not 1 <= votes <= MAX_VOTES:
            # (10**20 was taken: every label then ran that many forward passes, never ending)
            raise InputError(
                f"votes must be a whole number of draws from 1 to {MAX_VOTES:,} (each label "
                f"costs that many forward passes), got {votes!r}"
            )
        self.sigma = float(sigma)
        self.votes = int(votes)

    def _wrap(self, model: nn.Module) -> nn.Module:
        return NoisyInput(model, self.sigma, self.votes)
