"""torchvision's ImageNet classifiers as ``torchvision/<arch>`` zoo names.

The names are registered from a fixed list (torchvision 0.29's classification models), so that
listing them does not import torchvision (a few seconds); torchvision is imported only to load a
model or describe it in detail. Weights are torchvision's default ones, in torchvision's place
(``$TORCH_HOME/hub/checkpoints``), held to the sha256 prefix their names carry and read with
``weights_only=True`` (:func:`load`); the ImageNet normalization of those weights is applied
inside the returned model's forward pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import UnknownNameError, WeightsError
from ..naming import Naming
from ..registry import MODELS
from ..weights import download, offline, refuse_a_directory, sha256_of_weights
from .architectures import Normalized
from .catalog import IMAGENET_STATS

PREFIX = "torchvision/"
#: Default weights whose preprocessing is not the usual ImageNet mean/std.
_OTHER_STATS = {"efficientnet_v2_l": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))}

#: torchvision 0.29's ImageNet classification architectures (``torchvision.models.list_models``).
ARCHS: tuple[str, ...] = (
    *("alexnet", "googlenet", "inception_v3", "maxvit_t"),
    *(f"convnext_{s}" for s in ("tiny", "small", "base", "large")),
    *(f"densenet{d}" for d in (121, 161, 169, 201)),
    *(f"efficientnet_b{i}" for i in range(8)),
    *(f"efficientnet_v2_{s}" for s in ("s", "m", "l")),
    *(f"mnasnet{w}" for w in ("0_5", "0_75", "1_0", "1_3")),
    *("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"),
    *(f"regnet_x_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")),
    *(
        f"regnet_y_{s}"
        for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf")
    ),
    *(f"resnet{d}" for d in (18, 34, 50, 101, 152)),
    *("resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d"),
    *(f"shufflenet_v2_x{w}" for w in ("0_5", "1_0", "1_5", "2_0")),
    *("squeezenet1_0", "squeezenet1_1"),
    *(f"swin_{s}" for s in ("t", "s", "b")),
    *(f"swin_v2_{s}" for s in ("t", "s", "b")),
    *(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
    *(f"vit_{s}" for s in ("b_16", "b_32", "l_16", "l_32", "h_14")),
    *("wide_resnet50_2", "wide_resnet101_2"),
)


@dataclass(frozen=True)
class TorchvisionSpec:
    """A torchvision architecture with its default ImageNet weights."""

    arch: str


def _stats(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return _OTHER_STATS.get(arch, IMAGENET_STATS)


_LICENCE = "BSD-3-Clause (code); weights: torchvision docs"


def metadata(arch: str) -> dict[str, Any]:
    """The registry metadata of ``torchvision/<arch>`` (known without importing torchvision)."""
    mean, std = _stats(arch)
    return {
        "dataset": "imagenet",
        "architecture": arch,
        "training": "standard (torchvision default weights)",
        "threat_model": None,
        "file": None,
        "url": None,
        "sha256": None,
        "licence": _LICENCE,
        "source": "github.com/pytorch/vision (torchvision.models)",
        "clean_accuracy_published": None,
        "clean_accuracy_measured": None,
        "input_shape": None,
        "num_classes": 1000,
        "normalization": {"mean": list(mean), "std": list(std)},
        "params": None,
    }


def register_all() -> None:
    """Register every name of :data:`ARCHS` under ``torchvision/`` (no torchvision import)."""
    for arch in ARCHS:
        MODELS.add(PREFIX + arch, TorchvisionSpec(arch), **metadata(arch))


def _weights(arch: str):
    """torchvision's default weights enum member for ``arch`` (imports torchvision)."""
    import torchvision

    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise UnknownNameError(
            f"unknown torchvision model {arch!r}; see torchvision.models.list_models() "
            "or `robustkit models 'torchvision/*'`"
        )
    return torchvision.models.get_model_weights(arch).DEFAULT


def describe(arch: str) -> dict[str, Any]:
    """Facts torchvision knows of ``arch``'s default weights (url, size, published top-1)."""
    weights = _weights(arch)
    meta, transforms = weights.meta, weights.transforms()
    crop = transforms.crop_size[0]
    return {
        "training": f"standard ({weights})",
        "file": Path(weights.url).name,
        "url": weights.url,
        "licence": meta.get("license", _LICENCE),
        "clean_accuracy_published": meta["_metrics"]["ImageNet-1K"]["acc@1"],
        "input_shape": [3, crop, crop],
        "normalization": {"mean": list(transforms.mean), "std": list(transforms.std)},
        "params": meta.get("num_params"),
    }


def cached_checkpoint(arch: str) -> Path:
    """Where torchvision keeps ``arch``'s default weights once downloaded."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(_weights(arch).url).name


def build(arch: str) -> nn.Module:
    """``arch`` without pretrained weights and without normalization (for a user's checkpoint)."""
    import torchvision

    _weights(arch)  # unknown names raise
    return torchvision.models.get_model(arch, weights=None)


def normalized(arch: str, net: nn.Module) -> nn.Module:
    """``net`` preceded by the normalization of ``arch``'s default weights."""
    transforms = _weights(arch).transforms()
    return Normalized(net, tuple(transforms.mean), tuple(transforms.std))


def hash_prefix(filename: str) -> str:
    """The leading hex digits of the sha256 that a torchvision weights file's name carries
    (``resnet18-f37072fd.pth``: ``f37072fd``; torch.hub's convention), or ``""``."""
    match = re.search(r"-([a-f0-9]{6,})\.", filename)
    return match.group(1) if match else ""


def load(
    arch: str, allow_download: bool = True, allow_unsafe: bool = False, named: Naming | None = None
) -> tuple[nn.Module, str | None]:
    """``arch`` with its default weights and normalization inside, and the weights' sha256.

    The weights file is torchvision's (``$TORCH_HOME/hub/checkpoints``, downloaded from its URL
    when missing), held to the sha256 prefix in its name whether cached or downloaded, and read
    as every checkpoint is (``torch.load(weights_only=True)``, :func:`robustkit.zoo.safe_load`):
    torch.hub would unpickle it in full, so a file put in the cache could run code. The model is
    still built by torchvision's own builder, which may set options from the weights.
    ``named``: how errors name the settings, as for :func:`robustkit.zoo.load_model`."""
    import torchvision
    import torchvision.models._api as torchvision_api

    from .loading import safe_load

    weights = _weights(arch)
    path = cached_checkpoint(arch)
    prefix = hash_prefix(path.name)
    fix = "delete it (robustkit downloads it again) or replace it with torchvision's file"
    where = f"put {path.name} in {path.parent} ($TORCH_HOME) or run where it can be downloaded"
    refuse_a_directory(path, f"remove it, then {where}")
    if not path.is_file():
        if offline():
            raise WeightsError(
                f"torchvision's weights for {arch} ({path.name}) are not in {path.parent} and "
                "ROBUSTKIT_OFFLINE is set, so they are not downloaded; put the file there "
                "($TORCH_HOME/hub/checkpoints) or unset ROBUSTKIT_OFFLINE"
            )
        if not allow_download:
            raise WeightsError(
                f"torchvision's weights for {arch} are not in {path.parent}; {where}"
            )
        try:
            download(
                weights.url,
                path,
                prefix,
                prefix=True,
                fix=where,
                unwritable=f"set TORCH_HOME to a directory you can write (torchvision's weights "
                f"go to its hub/checkpoints), or put {path.name} in {path.parent}",
            )
        except WeightsError as exc:
            raise WeightsError(f"cannot get torchvision's weights for {arch}: {exc}") from None
    sha = sha256_of_weights(path)
    if not sha.startswith(prefix):
        raise WeightsError(
            f"{path} is not torchvision's weights for {arch}: its sha256 {sha[:12]}… does not "
            f"start with {prefix}, as its name says it must; {fix}"
        )
    state = safe_load(path, allow_unsafe, named)

    def from_the_checked_file(url: str, *args, **kwargs):
        if url != weights.url:
            raise WeightsError(f"torchvision's {arch} asked for other weights ({url})")
        return state

    # every builder fetches its weights through this one name (WeightsEnum.get_state_dict)
    fetch = torchvision_api.load_state_dict_from_url
    torchvision_api.load_state_dict_from_url = from_the_checked_file
    try:
        net = torchvision.models.get_model(arch, weights=weights)
    except WeightsError:
        raise
    except Exception as exc:  # a state dict of other keys or shapes
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise WeightsError(f"cannot load {path} into {arch} ({first}); {fix}") from None
    finally:
        torchvision_api.load_state_dict_from_url = fetch
    return normalized(arch, net), sha
