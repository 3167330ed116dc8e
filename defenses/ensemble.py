"""Logit-averaging ensemble of several classifiers (a deterministic inference-time defense)."""

from __future__ import annotations

import torch
from torch import nn

from robustkit.defense import Defense
from robustkit.errors import InputError
from robustkit.modelcheck import require_tensor
from robustkit.registry import DEFENSES


class AverageLogits(nn.Module):
    """Mean of the members' logits; all members take the same [0, 1] input. ``names``: what
    to call each member in an error (default: member 0, 1, ...).

    A member that returns probabilities beside members that return logits is refused on the
    first call (InputError naming it): its outputs in [0, 1] would count for almost nothing in
    the mean, so the ensemble would not be the one asked for. Members that all return
    probabilities average to probabilities, which the attacks warn about and the sanity checks
    flag (``probability_outputs``)."""

    def __init__(self, members: list[nn.Module], names: list[str] | None = None):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.names = (
            list(names) if names is not None else [f"member {i}" for i in range(len(members))]
        )
        # whether the members' outputs were looked at for probabilities (once: a member
        # returns probabilities on every input or on none)
        self._outputs_checked = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [
            require_tensor(m(x), name) for m, name in zip(self.members, self.names, strict=True)
        ]
        # members of other classes (a 100-class model with 10-class members) cannot be
        # averaged: say so, rather than let stack's error read as the images' fault
        widths = [o.shape[-1] if o.dim() else None for o in outs]
        for name, width in zip(self.names[1:], widths[1:], strict=True):
            if widths[0] is not None and width is not None and width != widths[0]:
                raise InputError(
                    f"ensemble members must share their classes: {self.names[0]} has "
                    f"{widths[0]} classes but {name} has {width}; pick members trained on the "
                    "same classes as the defended model"
                )
        if not self._outputs_checked and all(o.numel() for o in outs):
            self._refuse_probabilities(outs)
            self._outputs_checked = True
        return torch.stack(outs).mean(dim=0)

    def _refuse_probabilities(self, outs: list[torch.Tensor]) -> None:
        """Raise InputError for a member whose outputs look like probabilities beside one whose
        outputs look like logits."""
        from robustkit.attack import looks_like_probabilities

        with torch.no_grad():
            probabilities = [looks_like_probabilities(o.detach()) for o in outs]
        if all(probabilities) or not any(probabilities):
            return
        name = self.names[probabilities.index(True)]
        other = self.names[probabilities.index(False)]
        raise InputError(
            f"ensemble member {name} returns probabilities (non-negative rows summing to 1), not "
            f"logits: the ensemble averages logits, where they count for almost nothing beside "
            f"those of {other}; make {name} return its logits (before the softmax)"
        )


@DEFENSES.register(
    "ensemble",
    kind="inference",
    adaptive_attack="pgd (gradients through the whole ensemble)",
    summary="Average the logits of the model and other zoo models",
    reference="Tramèr et al., ICLR 2018 (ensembles are not robust to attacks on the whole)",
)
class Ensemble(Defense):
    """Average the logits of the defended model and of the models named in ``members``: zoo
    names, ``torchvision/<arch>`` or ``path/to/file.py:factory``, joined by ``|`` or as a list.
    Each member is named once; their order does not matter (they are stored sorted). Members
    are loaded on the defended model's device and dtype and must share its classes."""

    name = "ensemble"
    adaptive_attack = "pgd (gradients through the whole ensemble)"

    def __init__(self, members: str | list[str] = ""):
        from robustkit.registry import MODELS

        if isinstance(members, str):
            names = members.split("|")
        elif isinstance(members, (list, tuple)) and all(isinstance(n, str) for n in members):
            names = list(members)
        else:
            raise InputError(
                f"ensemble members must be model names (a list, or joined by |), got "
                f"{members!r}; e.g. ensemble:members=cifar10/resnet32|cifar10/resnet44"
            )
        names = [n.strip() for n in names if n.strip()]
        # zoo names in their registered spelling and in sorted order: one configuration, one
        # run (a|b and b|a average the same logits, in the same order, to the same bits)
        self.members = sorted(getattr(MODELS.find(n), "name", n) for n in names)
        if not self.members:
            raise InputError("ensemble needs members, e.g. ensemble:members=cifar10/resnet32")
        twice = sorted({n for n in self.members if self.members.count(n) > 1})
        if twice:  # (each copy would add that member's logits once more to the mean)
            raise InputError(
                f"ensemble member {twice[0]} is named more than once; name each member once"
            )

    def _wrap(self, model: nn.Module) -> nn.Module:
        from robustkit.device import float_dtypes, model_device
        from robustkit.zoo import load_model, weights_sha256

        # the defended model named as a member: its logits would count twice in the mean (as a
        # member named twice did); the same name with its own checkpoint is another model
        itself, sha = getattr(model, "robustkit_name", None), weights_sha256(model)
        if itself in self.members and sha is not None and sha == weights_sha256(itself):
            raise InputError(
                f"ensemble member {itself} is the defended model itself (its logits would count "
                "twice in the mean); name the other models only"
            )
        ours = _dataset_of(_zoo_name_of(model))
        for name in self.members:
            theirs = _dataset_of(name)
            if ours is not None and theirs is not None and theirs != ours:
                raise InputError(
                    f"ensemble member {name} is {_article(theirs)} {theirs} model but the "
                    f"defended model is {_article(ours)} {ours} one; pick members trained on {ours}"
                )
        device, dtype = model_device(model), (float_dtypes(model) or [None])[0]
        others = [load_model(name, device=device) for name in self.members]
        if dtype is not None:  # a model in float64 (or half) takes inputs of its own dtype
            others = [m.to(dtype=dtype) for m in others]
        return AverageLogits([model, *others], ["the defended model", *self.members])


def _zoo_name_of(model: nn.Module) -> str | None:
    """The name :func:`robustkit.load_model` gave ``model`` (or the first model it wraps)."""
    for module in model.modules():
        name = getattr(module, "robustkit_name", None)
        if isinstance(name, str):
            return name
    return None


def _dataset_of(name: str | None) -> str | None:
    """The data set a registered model was trained on, if its metadata says so."""
    from robustkit.registry import MODELS

    entry = MODELS.find(name) if name is not None else None
    if entry is None:
        return None
    dataset = entry.metadata.get("dataset")
    return dataset if isinstance(dataset, str) else None


def _article(word: str) -> str:
    """'a' or 'an' before ``word`` (an imagenet model, a cifar10 one)."""
    return "an" if word[:1].lower() in "aeiou" else "a"
