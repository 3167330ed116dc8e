"""robustkit: adversarial-robustness evaluation for PyTorch image classifiers.

The notebook API::

    import robustkit
    model = robustkit.load_model("cifar10/resnet20")
    x, y = robustkit.load_dataset("cifar10", n=100)
    attack = robustkit.get_attack("pgd", norm="linf", eps=8/255, steps=10)
    result = attack(model, x, y)
    result.robust_accuracy, result.to_frame()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Importing the package loads almost nothing: the command line starts without PyTorch and
# `robustkit --help` answers at once, and the console script (robustkit.__main__) imports the
# package before it can catch a Ctrl-C, so the registries, importlib.metadata (the version) and
# the rest of the API load on first use (see __getattr__), inside its guard.
from .errors import RobustkitError

if TYPE_CHECKING:
    import os

    import torch

    from .attack import Attack, AttackContext, AttackResult, RobustkitWarning
    from .data import load_dataset
    from .defense import Defense
    from .device import resolve_device
    from .evaluation import Evaluation, evaluate
    from .registry import ATTACKS, DEFENSES, MODELS, Registry
    from .threat import ThreatModel, parse_eps

    __version__: str

#: Names of the API that load their module on first use.
_LAZY = {
    "ATTACKS": "registry",
    "DEFENSES": "registry",
    "MODELS": "registry",
    "Registry": "registry",
    "Attack": "attack",
    "AttackContext": "attack",
    "AttackResult": "attack",
    "RobustkitWarning": "attack",
    "load_dataset": "data",
    "Defense": "defense",
    "resolve_device": "device",
    "Evaluation": "evaluation",
    "evaluate": "evaluation",
    "ThreatModel": "threat",
    "parse_eps": "threat",
}


def _installed_version() -> str:
    """The installed distribution's version ("0+unknown" in a source tree not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("robustkit")
    except PackageNotFoundError:
        return "0+unknown"


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching a glob pattern, e.g. ``"cifar10/*"``."""
    from .registry import MODELS

    return MODELS.names(pattern)


def list_attacks(pattern: str = "*") -> list[str]:
    """Names of registered attacks matching a glob pattern."""
    from .registry import ATTACKS

    return ATTACKS.names(pattern)


def list_defenses(pattern: str = "*") -> list[str]:
    """Names of registered defenses matching a glob pattern."""
    from .registry import DEFENSES

    return DEFENSES.names(pattern)


def get_attack(name: str, **params: Any) -> Attack:
    """The attack registered as ``name``, configured with ``params``.

    Example: ``get_attack("pgd", norm="linf", eps=8/255, steps=10, step_size=2/255)``.
    Names match in any case. An unknown name raises
    :class:`~robustkit.errors.UnknownNameError` (suggesting close ones), an unknown or invalid
    parameter :class:`~robustkit.errors.InputError` naming the valid ones; ``help()`` of the
    attack's class (``type(get_attack(name))``) describes its parameters.
    """
    from .registry import ATTACKS
    from .specs import instantiate

    return instantiate(ATTACKS, name, params)


def get_defense(name: str, **params: Any) -> Defense:
    """The defense registered as ``name``, configured with ``params``; ``.apply(model)`` wraps a
    model with it. Errors as in :func:`get_attack`."""
    from .registry import DEFENSES
    from .specs import instantiate

    return instantiate(DEFENSES, name, params)


def load_model(
    name: str,
    device: str | int | torch.device = "auto",
    weights: str | os.PathLike[str] | None = None,
    allow_download: bool = True,
    allow_unsafe: bool = False,
) -> torch.nn.Module:
    """A zoo model, ``torchvision/<arch>`` or ``path/to/file.py:factory``, in eval mode on
    ``device``, taking [0, 1] images (its normalization inside).

    ``weights``: a checkpoint to load instead of the zoo's (its sha256 is recorded);
    ``allow_download=False`` never touches the network; ``allow_unsafe=True`` loads checkpoints
    that need full unpickling (only files you trust: unpickling can run code). See
    :func:`robustkit.zoo.load_model`."""
    from .zoo import load_model as _load

    return _load(
        name,
        device=device,
        weights=weights,
        allow_download=allow_download,
        allow_unsafe=allow_unsafe,
    )


def __getattr__(name: str):
    """The API's classes and functions, and submodules used from notebooks
    (``robustkit.results.open(db)``), load on first use."""
    import importlib.util

    if name == "__version__":
        globals()[name] = value = _installed_version()
        return value
    if name.startswith("_"):  # dunder lookups (__path__ checks, copy, pickle) are not ours
        raise AttributeError(f"module 'robustkit' has no attribute {name!r}")
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # once
        return value
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # robustkit.data, ...
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'robustkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API and the submodules (what tab completion in a notebook offers), not the
    names this module itself imports."""
    import pkgutil

    submodules = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return sorted(set(__all__) | submodules | {"attacks", "defenses"})


__all__ = [
    "ATTACKS",
    "Attack",
    "AttackContext",
    "AttackResult",
    "DEFENSES",
    "Defense",
    "MODELS",
    "Registry",
    "RobustkitError",
    "RobustkitWarning",
    "ThreatModel",
    "__version__",
    "Evaluation",
    "evaluate",
    "get_attack",
    "get_defense",
    "list_attacks",
    "list_defenses",
    "list_models",
    "load_dataset",
    "load_model",
    "parse_eps",
    "resolve_device",
]
