"""The one defense interface: :class:`Defense`.

An inference-time defense wraps a classifier into another classifier (``defense.apply(model)``);
the wrapped model is an ordinary ``nn.Module`` (its own layers in eval mode; the model it wraps
left as it was) that takes inputs in [0, 1], so every attack runs on it unchanged. Each defense names the adaptive attack it must be evaluated with
(``adaptive_attack``): a defense that randomizes needs EOT, one that breaks gradients needs a
straight-through (BPDA) gradient. Defenses are pure: a model in, a model out.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, ClassVar

from torch import nn

from .errors import InputError
from .registry import constructor_parameters


class Defense:
    """Base class of every defense; subclasses keep each constructor parameter as an attribute."""

    name: ClassVar[str] = ""
    #: "inference" (wraps a model) or "training" (produces new weights).
    kind: ClassVar[str] = "inference"
    #: The attack specification that evaluates this defense adaptively.
    adaptive_attack: ClassVar[str] = "pgd"

    @property
    def params(self) -> dict[str, Any]:
        """Constructor parameters and their values (recorded with results)."""
        names = constructor_parameters(type(self))
        return {n: getattr(self, n) for n in names if hasattr(self, n)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def apply(self, model: nn.Module) -> nn.Module:
        """The defended classifier built around ``model`` (same device): the defense's own
        layers in eval mode, ``model``'s left in the mode they were (evaluate a model in eval
        mode: the attacks refuse BatchNorm layers in training mode and warn of live Dropout).
        ``model`` must be an ``nn.Module``, as attacks require: a plain function has no device
        or modes to read (wrap it in a module whose forward calls it)."""
        if not isinstance(model, nn.Module):
            if isinstance(model, str):
                hint = f"pass robustkit.load_model({model!r})"
            elif callable(model) and not isinstance(model, (bytes, PurePath)):
                hint = "wrap it in an nn.Module whose forward calls it"
            else:
                hint = "pass a model"
            raise InputError(
                f"{self.name}.apply() takes a model (an nn.Module), got "
                f"{type(model).__name__} {model!r:.60}; {hint}"
            )
        wrapped = self._wrap(model)
        # The defense's own layers in eval mode, not ``model``'s: eval() recurses, and it turned
        # the caller's model (one still training, say) to eval mode behind their back.
        theirs = {id(m) for m in model.modules()}
        if isinstance(wrapped, nn.Module):
            for module in wrapped.modules():
                if id(module) not in theirs:
                    module.training = False
        return wrapped

    def _wrap(self, model: nn.Module) -> nn.Module:
        """The defended classifier around ``model`` (checked to be a model by :meth:`apply`).
        Subclasses implement it (a defense written before 2026-11-28 overrides :meth:`apply`
        itself instead, which still works, without the check)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _wrap(model)")
