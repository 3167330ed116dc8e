"""Small synthetic models and a minimal attack for tests of the core (no real data needed), and
a stand-in for a file without read permission."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import robustkit.weights
from robustkit.attack import Attack


class Linear(nn.Module):
    """A linear classifier on flattened images: its exact adversarial geometry is known."""

    def __init__(self, in_shape=(3, 8, 8), classes=10, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        d = int(torch.tensor(in_shape).prod())
        self.fc = nn.Linear(d, classes)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(classes, d, generator=gen) / d**0.5)
            self.fc.bias.copy_(torch.randn(classes, generator=gen) * 0.1)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Softmaxed(nn.Module):
    """Returns probabilities instead of logits (a mistake the tools must warn about)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).softmax(dim=1)


class RandomSign(Attack):
    """One random ±ε step (L∞) or a random direction of norm ε (L2): enough to test the base."""

    name = "random-sign"

    def __init__(self, norm="linf", eps=8 / 255, targeted=False, seed=0, overshoot=1.0):
        super().__init__(norm=norm, eps=eps, targeted=targeted, seed=seed)
        self.overshoot = overshoot

    def _attack(self, ctx, x, y, target):
        noise = torch.randn(x.shape, generator=ctx.generator, device=x.device)
        ctx.logits(x)  # one counted forward per sample
        if self.norm == "linf":
            return x + self.overshoot * self.eps * noise.sign()
        noise = noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        return x + self.overshoot * self.eps * noise


def unreadable(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make ``path`` unreadable to robustkit.weights, as ``chmod 000`` does for a user other
    than root (the tests may run as root, whom permissions do not stop)."""
    real_open = open

    def refusing_open(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(robustkit.weights, "open", refusing_open, raising=False)
