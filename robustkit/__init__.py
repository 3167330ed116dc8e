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

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING

# Only light modules load with the package: the command line starts without PyTorch (a Ctrl-C
# while it loads is the command's to handle) and `robustkit --help` answers at once. The rest of
# the API loads on first use (see __getattr__).
from .errors import RobustkitError
from .registry import ATTACKS, DEFENSES, MODELS, Registry

if TYPE_CHECKING:
    import os

    import torch

    from .attack import Attack, AttackContext, AttackResult, RobustkitWarning
    from .data import load_dataset
    from .defense import Defense
    from .device import resolve_device
    from .evaluation import Evaluation, evaluate
    from .threat import ThreatModel, parse_eps

#: Names of the API that load their module on first use.
_LAZY = {
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

try:
    __version__ = _version("robustkit")
except _PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching a glob pattern, e.g. ``"cifar10/*"``."""
    return MODELS.names(pattern)


def list_attacks(pattern: str = "*") -> list[str]:
    """Names of registered attacks matching a glob pattern."""
    return ATTACKS.names(pattern)


def list_defenses(pattern: str = "*") -> list[str]:
    """Names of registered defenses matching a glob pattern."""
    return DEFENSES.names(pattern)


def get_attack(name: str, **params) -> Attack:
    """The attack registered as ``name``, configured with ``params``.

    Example: ``get_attack("pgd", norm="linf", eps=8/255, steps=10, step_size=2/255)``.
    """
    from .specs import instantiate

    return instantiate(ATTACKS, name, params)


def get_defense(name: str, **params) -> Defense:
    """The defense registered as ``name``, configured with ``params``; ``.apply(model)`` wraps a
    model with it."""
    from .specs import instantiate

    return instantiate(DEFENSES, name, params)


def load_model(
    name: str,
    device: str = "auto",
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
