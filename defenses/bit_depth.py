"""Bit-depth reduction: quantize inputs to ``bits`` bits per channel (Xu et al., feature squeezing).

Rounding has zero gradient almost everywhere, so a plain gradient attack sees no signal and
reports a falsely high robust accuracy (gradient masking). The adaptive evaluation uses BPDA
(Athalye et al., 2018): the same defense built with ``bpda=True`` rounds in the forward pass but
passes gradients straight through, e.g. ``--defense bit-depth:bits=4,bpda=true``.
"""

from __future__ import annotations

import torch
from torch import nn

from robustkit.checks import flag, is_whole_number, shown
from robustkit.defense import Defense
from robustkit.errors import InputError
from robustkit.registry import DEFENSES


class Quantize(nn.Module):
    """Round inputs to ``levels`` evenly spaced values in [0, 1]; optionally straight-through."""

    def __init__(self, model: nn.Module, bits: int, bpda: bool):
        super().__init__()
        self.model = model
        self.levels = 2**bits - 1
        self.bpda = bpda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.round(x * self.levels) / self.levels
        if self.bpda:  # forward: q; backward: identity
            q = x + (q - x).detach()
        return self.model(q)


@DEFENSES.register(
    "bit-depth",
    kind="inference",
    adaptive_attack="pgd (on bit-depth:bpda=true)",
    summary="Quantize inputs to a few bits per channel (masks gradients; evaluate with BPDA)",
    reference="Xu, Evans & Qi, NDSS 2018; BPDA: Athalye, Carlini & Wagner, ICML 2018",
)
class BitDepth(Defense):
    """Reduce every input to ``bits`` bits per channel (1 to 16).

    Rounding has no gradient, so a gradient attack on this defense overstates its robustness;
    ``bpda=True`` is the same defense whose backward pass lets gradients through (BPDA): evaluate
    with it."""

    name = "bit-depth"
    adaptive_attack = "pgd (on bit-depth:bpda=true)"

    def __init__(self, bits: int = 4, bpda: bool = False):
        if not is_whole_number(bits) or not 1 <= bits <= 16:
            raise InputError(f"bits must be a whole number from 1 to 16, got {shown(bits)}")
        self.bits = int(bits)
        self.bpda = flag("bpda", bpda)

    def _wrap(self, model: nn.Module) -> nn.Module:
        return Quantize(model, self.bits, self.bpda)
