"""Logit-averaging ensemble of several classifiers (a deterministic inference-time defense)."""

from __future__ import annotations

import torch
from torch import nn

from robustkit.defense import Defense
from robustkit.errors import InputError
from robustkit.registry import DEFENSES


class AverageLogits(nn.Module):
    """Mean of the members' logits; all members take the same [0, 1] input."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


@DEFENSES.register(
    "ensemble",
    kind="inference",
    adaptive_attack="pgd (gradients through the whole ensemble)",
    summary="Average the logits of the model and other zoo models",
    reference="Tramèr et al., ICLR 2018 (ensembles are not robust to attacks on the whole)",
)
class Ensemble(Defense):
    """Average the defended model with the zoo models named in ``members`` (``a|b|c``)."""

    name = "ensemble"
    adaptive_attack = "pgd (gradients through the whole ensemble)"

    def __init__(self, members: str | list[str] = ""):
        names = members.split("|") if isinstance(members, str) else list(members)
        self.members = [m for m in (n.strip() for n in names) if m]
        if not self.members:
            raise InputError("ensemble needs members, e.g. ensemble:members=cifar10/resnet32")

    def apply(self, model: nn.Module) -> nn.Module:
        from robustkit.device import model_device
        from robustkit.zoo import load_model

        device = model_device(model)
        others = [load_model(name, device=device) for name in self.members]
        return AverageLogits([model, *others]).eval()
