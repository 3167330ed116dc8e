"""Per-sample losses the gradient attacks maximise (higher = closer to a successful attack).

Untargeted losses push the true class ``y`` down; targeted ones (``target`` given) push the
target class up. All return one value per sample, so attacks can track each sample's progress.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from robustkit.errors import InputError

LOSSES = ("ce", "margin", "dlr")


def _other_max(logits: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """Largest logit among the classes other than ``cls``."""
    masked = logits.scatter(1, cls[:, None], float("-inf"))
    return masked.amax(dim=1)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None):
    if target is None:
        return F.cross_entropy(logits, y, reduction="none")
    return -F.cross_entropy(logits, target, reduction="none")


def margin(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None):
    """Carlini & Wagner's margin: ``max_{j≠y} z_j − z_y`` (targeted: ``z_t − max_{j≠t} z_j``)."""
    if target is None:
        return _other_max(logits, y) - logits.gather(1, y[:, None]).squeeze(1)
    return logits.gather(1, target[:, None]).squeeze(1) - _other_max(logits, target)


def dlr(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None):
    """Difference-of-logits ratio of Croce & Hein (2020): the margin divided by the spread of the
    top logits, so it is invariant to shifting and scaling the logits. It needs 3 classes (4
    when targeted): the spread is taken down to the third (fourth) largest logit."""
    check_dlr_classes(logits.shape[1], target is not None)
    top = logits.sort(dim=1, descending=True).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    if target is None:
        return (_other_max(logits, y) - z_y) / (top[:, 0] - top[:, 2] + 1e-12)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    return (z_t - z_y) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


def check_dlr_classes(classes: int, targeted: bool) -> None:
    """Raise a one-line error where a model of ``classes`` classes is too small for the DLR
    loss (3 classes; 4 targeted)."""
    need = 4 if targeted else 3
    if classes < need:
        raise InputError(
            f"the{' targeted' if targeted else ''} DLR loss needs at least {need} "
            f"classes and the model has {classes}: use apgd-ce instead of apgd-dlr or "
            "apgd-t, loss=ce or loss=margin with pgd or fgsm, stages=apgd-ce with auto"
        )


_BY_NAME = {"ce": cross_entropy, "margin": margin, "cw": margin, "dlr": dlr}


def get_loss(
    name: str,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]:
    """The loss function named ``ce``, ``margin`` (alias ``cw``) or ``dlr``."""
    try:
        return _BY_NAME[str(name).lower()]
    except KeyError:
        raise InputError(f"unknown loss {name!r}; use one of {', '.join(LOSSES)}") from None


def fooled(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Per sample: misclassified (untargeted) or classified as the target (targeted)."""
    pred = logits.argmax(dim=1)
    return pred == target if target is not None else pred != y


def final_verdict(ctx, x, idx, y, target, x0=None) -> torch.Tensor:
    """Per sample: is ``x`` adversarial, judged as success will be (one counted pass; on a
    model judged by majority vote, the vote, each draw counted). Given the clean images
    ``x0``, a sample whose ``x`` is its clean image is not, as the attack base class keeps an
    unchanged example's clean label (a fresh vote on it near a tie could say otherwise)."""
    return final_outcome(ctx, x, idx, y, target, x0)[0]


def final_outcome(ctx, x, idx, y, target, x0=None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`final_verdict`, and from the same pass whether ``x`` is misclassified (for a
    targeted attack a miss of the target may still be misclassified; untargeted the two
    agree)."""
    if ctx.votes == 1:
        pred = ctx.logits(x, idx).argmax(dim=1)
    else:
        pred = ctx.verdict(x, idx)
    hit = pred == target if target is not None else pred != y
    wrong = pred != y
    if x0 is not None:
        changed = (x != x0).flatten(1).any(1)
        hit, wrong = hit & changed, wrong & changed
    return hit, wrong
