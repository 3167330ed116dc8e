"""Gaussian input noise: a randomized inference-time defense (Cohen et al.'s base classifier).

Each forward pass adds fresh N(0, σ²) noise to the input (clipped to [0, 1]) before the
classifier, so gradients and even labels change from call to call. Evaluate it with an EOT attack
that averages gradients over many draws, e.g. ``pgd:eot=10``.
"""

from __future__ import annotations

import torch
from torch import nn

from robustkit.defense import Defense
from robustkit.errors import InputError
from robustkit.registry import DEFENSES


class NoisyInput(nn.Module):
    """``model(clip(x + σ·N(0, I)))`` with fresh noise at every call."""

    def __init__(self, model: nn.Module, sigma: float):
        super().__init__()
        self.model = model
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x + self.sigma * torch.randn_like(x)).clamp(0.0, 1.0))


@DEFENSES.register(
    "input-noise",
    kind="inference",
    adaptive_attack="pgd:eot=10",
    summary="Gaussian noise added to every input (randomized; evaluate with EOT)",
    reference="Cohen, Rosenfeld & Kolter, ICML 2019 (base classifier of randomized smoothing)",
)
class InputNoise(Defense):
    """Add Gaussian noise of standard deviation ``sigma`` to every input."""

    name = "input-noise"
    adaptive_attack = "pgd:eot=10"

    def __init__(self, sigma: float = 0.1):
        if not sigma > 0:
            raise InputError(f"sigma must be a positive noise level, got {sigma}")
        self.sigma = float(sigma)

    def apply(self, model: nn.Module) -> nn.Module:
        return NoisyInput(model, self.sigma).eval()
