"""The model zoo: registered classifiers by name, user models from files, torchvision's ImageNet
architectures.

``load_model(name)`` returns an ``nn.Module`` in eval mode on the requested device that takes NCHW
inputs in [0, 1] (normalization is inside the model). Names are resolved as:

- a zoo name (``cifar10/resnet20``; ``robustkit models`` lists them): the weights resolve through
  :func:`robustkit.weights.resolve_weights` and load with ``torch.load(weights_only=True)``;
- ``path/to/file.py:factory``: the file is imported and ``factory()`` builds the model; an optional
  ``weights`` file loads into it (``weights_only=True`` unless ``allow_unsafe``);
- ``torchvision/<arch>`` (e.g. ``torchvision/resnet50``): torchvision's ImageNet model with its
  default weights, downloaded the torchvision way, ImageNet normalization inside.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..device import resolve_device
from ..errors import RobustkitError, UnknownNameError, WeightsError
from ..registry import MODELS
from ..weights import resolve_weights, sha256_file
from . import catalog  # noqa: F401  (registers the zoo)
from .architectures import Normalized
from .catalog import IMAGENET_STATS, ZooSpec

TORCHVISION_PREFIX = "torchvision/"


def _safe_load(path: Path, allow_unsafe: bool) -> Any:
    """``torch.load`` with ``weights_only=True``; a file that needs full unpickling is refused
    unless the user opted in (it can run arbitrary code)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not allow_unsafe:
            raise WeightsError(
                f"{path} needs full unpickling, which can run code from the file; refused. "
                "If you trust it, pass allow_unsafe=True (CLI: --unsafe-load)"
            ) from None
        del exc
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError) as exc:
        raise WeightsError(f"cannot read checkpoint {path} ({exc}); is it a torch file?") from None


def _finish(model: nn.Module, device: torch.device, name: str, sha256: str | None) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.robustkit_name = name  # type: ignore[attr-defined]
    model.robustkit_weights_sha256 = sha256  # type: ignore[attr-defined]
    return model.to(device)


def _load_zoo(
    name: str, spec: ZooSpec, meta: dict[str, Any], weights, allow_download, allow_unsafe
):
    path = resolve_weights(meta["file"], meta["url"], meta["sha256"], weights, allow_download)
    net = spec.build()
    state = spec.read_state(_safe_load(path, allow_unsafe))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise WeightsError(f"{path} does not fit {name}: {first}") from None
    sha = meta["sha256"] if weights is None else sha256_file(path)
    return Normalized(net, spec.mean, spec.std), sha


def _load_user_file(name: str, weights, allow_unsafe):
    file, _, factory = name.rpartition(":")
    path = Path(file).expanduser()
    if not path.is_file():
        raise RobustkitError(f"model file {path} does not exist; use path/to/file.py:factory")
    module_name = (
        "robustkit_user_model_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    )
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RobustkitError(f"cannot import {path}; is it a Python file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    build = getattr(module, factory, None)
    if not callable(build):
        raise RobustkitError(
            f"{path} has no callable {factory!r}; name a function that returns the model"
        )
    model = build()
    if not isinstance(model, nn.Module):
        raise RobustkitError(f"{name} returned {type(model).__name__}, not a torch.nn.Module")
    sha = None
    if weights is not None:
        wpath = resolve_weights(Path(weights).name, None, None, weights)
        state = _safe_load(wpath, allow_unsafe)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if isinstance(state, nn.Module):
            state = state.state_dict()
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsError(f"{wpath} does not fit {name}: {str(exc).splitlines()[0]}") from None
        sha = sha256_file(wpath)
    return model, sha


def _load_torchvision(name: str):
    import torchvision

    arch = name[len(TORCHVISION_PREFIX) :]
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise UnknownNameError(
            f"unknown torchvision model {arch!r}; see torchvision.models.list_models()"
        )
    try:
        net = torchvision.models.get_model(arch, weights="DEFAULT")
    except Exception as exc:  # URLError, RuntimeError ... from the download
        raise WeightsError(
            f"cannot get torchvision weights for {arch} ({str(exc).splitlines()[0]}); "
            "put them in torch's hub cache ($TORCH_HOME/hub/checkpoints) or use a machine with internet"
        ) from None
    return Normalized(net, *IMAGENET_STATS), None


def load_model(
    name: str,
    device: str | torch.device = "auto",
    weights: str | os.PathLike[str] | None = None,
    allow_download: bool = True,
    allow_unsafe: bool = False,
) -> nn.Module:
    """Load a classifier by name (see the module docstring) in eval mode on ``device``."""
    dev = resolve_device(device)
    if name.startswith(TORCHVISION_PREFIX):
        model, sha = _load_torchvision(name)
    elif ":" in name and name.split(":")[0].endswith(".py"):
        model, sha = _load_user_file(name, weights, allow_unsafe)
    else:
        entry = MODELS.entry(name)
        if not isinstance(entry.obj, ZooSpec):  # a plug-in's factory
            model, sha = entry.obj(weights) if weights is not None else entry.obj(), None
        else:
            model, sha = _load_zoo(
                name, entry.obj, entry.metadata, weights, allow_download, allow_unsafe
            )
    return _finish(model, dev, name, sha)


def model_info(name: str) -> dict[str, Any]:
    """A zoo model's metadata with its name (``{}`` fields for torchvision models)."""
    if name.startswith(TORCHVISION_PREFIX):
        return {
            "name": name,
            "dataset": "imagenet",
            "architecture": name[len(TORCHVISION_PREFIX) :],
        }
    entry = MODELS.entry(name)
    return {"name": name, **entry.metadata}


def weights_sha256(model: nn.Module) -> str | None:
    """The sha256 of the weights a model returned by :func:`load_model` was loaded from."""
    return getattr(model, "robustkit_weights_sha256", None)


__all__ = ["load_model", "model_info", "weights_sha256", "TORCHVISION_PREFIX"]
