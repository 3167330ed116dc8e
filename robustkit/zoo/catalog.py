"""The zoo's checkpoints: one registration per name, with the facts a user needs to trust it.

Each entry's object is a :class:`ZooSpec` (how to build the architecture and read the
checkpoint); its metadata (data set, training, threat model, source, licence, sha256, clean
accuracies) is what ``robustkit models --format json`` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..registry import MODELS
from . import architectures as arch

CIFAR_RESNET_URL = (
    "https://github.com/akamaster/pytorch_resnet_cifar10/raw/"
    "d5489e8995e81e91ce6b1d69dcc98ad579b0b153/pretrained_models/"
)
CROWN_URL = (
    "https://github.com/Verified-Intelligence/alpha-beta-CROWN/raw/"
    "8250d5fbd530c76e5e3243db28b3cad5fbaef740/complete_verifier/models/"
)
ADVERTORCH_URL = (
    "https://github.com/BorealisAI/advertorch/raw/e063e341c87d9a621ae1a8f72c3507d5ea5bd327/"
    "advertorch_examples/trained_models/"
)
CONVEX_URL = (
    "https://github.com/locuslab/convex_adversarial/raw/"
    "2cd8149249b9e90383af10fc7e9b9fe90166813e/models/"
)

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CIFAR_STATS = ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616))
CNN_A_STATS = (
    (125.3 / 255, 123.0 / 255, 113.9 / 255),
    (63.0 / 255, 62.1 / 255, 66.7 / 255),
)


@dataclass(frozen=True)
class ZooSpec:
    """How to build a zoo model and read its checkpoint into it."""

    build: Callable[[], nn.Module]
    #: Maps the loaded checkpoint object to the network's state dict.
    read_state: Callable[[Any], dict[str, Any]]
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None


class CheckpointFormatError(ValueError):
    """A checkpoint whose structure is not its zoo model's; the message says what it holds
    instead (``no 'state_dict'``, ``its 'state_dict' is a list, not a dict``)."""


def _a(obj: Any) -> str:
    kind = type(obj).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _dict(ckpt: Any) -> Mapping[str, Any]:
    """``ckpt`` itself, the dict every zoo checkpoint is at its top."""
    if not isinstance(ckpt, Mapping):
        raise CheckpointFormatError(f"it holds {_a(ckpt)}, not a dict")
    return ckpt


def _under_state_dict(ckpt: Any) -> Any:
    ckpt = _dict(ckpt)
    if "state_dict" not in ckpt:
        raise CheckpointFormatError("no 'state_dict'")
    return ckpt["state_dict"]


def _state_dict_key(ckpt: Any) -> dict[str, Any]:
    inner = _under_state_dict(ckpt)
    if not isinstance(inner, Mapping):
        raise CheckpointFormatError(f"its 'state_dict' is {_a(inner)}, not a dict")
    return dict(inner)


def _strip_module(ckpt: Any) -> dict[str, Any]:
    return {k.removeprefix("module."): v for k, v in _state_dict_key(ckpt).items()}


def _plain(ckpt: Any) -> dict[str, Any]:
    return dict(_dict(ckpt))


def _plain_without_masks(ckpt: Any) -> dict[str, Any]:
    """cifar_wide_adv carries all-zero ``linear_masked_relu*`` buffers the network has not."""
    return {k: v for k, v in _dict(ckpt).items() if not str(k).startswith("linear_masked_relu")}


def _first_of_list(ckpt: Any) -> dict[str, Any]:
    inner = _under_state_dict(ckpt)
    if not isinstance(inner, (list, tuple)):
        raise CheckpointFormatError(
            f"its 'state_dict' is {_a(inner)}, not a list holding the state dict"
        )
    if not inner or not isinstance(inner[0], Mapping):
        raise CheckpointFormatError("its 'state_dict' is a list without a state dict first")
    return dict(inner[0])


def _register(name: str, spec: ZooSpec, **metadata: Any) -> None:
    metadata.setdefault(
        "normalization",
        None if spec.mean is None else {"mean": list(spec.mean), "std": list(spec.std or ())},
    )
    MODELS.add(name, spec, **metadata)


_RESNET_PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018}

# -- CIFAR-10, standard training ----------------------------------------------------------------
for _depth, _file, _sha, _acc in (
    (
        20,
        "resnet20-12fca82f.th",
        "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8",
        91.73,
    ),
    (
        32,
        "resnet32-d509ac18.th",
        "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850",
        92.63,
    ),
    (
        44,
        "resnet44-014dd654.th",
        "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4",
        93.10,
    ),
    (
        56,
        "resnet56-4bfd9763.th",
        "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367",
        93.39,
    ),
):
    _register(
        f"cifar10/resnet{_depth}",
        ZooSpec(lambda d=_depth: arch.CifarResNet(d), _strip_module, *IMAGENET_STATS),
        dataset="cifar10",
        architecture=f"ResNet-{_depth} (CIFAR, option-A shortcuts)",
        training="standard",
        threat_model=None,
        file=_file,
        url=CIFAR_RESNET_URL + _file,
        sha256=_sha,
        licence="BSD-2-Clause (c) 2018 Yerlan Idelbayev",
        source="github.com/akamaster/pytorch_resnet_cifar10",
        clean_accuracy_published=_acc,
        clean_accuracy_measured=_acc,
        input_shape=[3, 32, 32],
        num_classes=10,
        params=_RESNET_PARAMS[_depth],
    )

# -- CIFAR-10, adversarially trained (alpha-beta-CROWN's model collection) -----------------------
_CROWN = dict(
    dataset="cifar10",
    licence="BSD-3-Clause",
    source="github.com/Verified-Intelligence/alpha-beta-CROWN",
    input_shape=[3, 32, 32],
    num_classes=10,
)
_register(
    "cifar10/resnet4b-at",
    ZooSpec(arch.resnet4b, _state_dict_key, *CIFAR_STATS),
    architecture="ResNet-4B (alpha-beta-CROWN; no BatchNorm)",
    training="PGD-AT",
    threat_model="linf 2/255",
    file="resnet4b.pth",
    url=CROWN_URL + "cifar10_resnet/resnet4b.pth",
    sha256="6158f9668935890e832d4e0fdc3b6cece2386ec826319eac36f329490b7729e7",
    clean_accuracy_published=None,
    clean_accuracy_measured=77.20,
    params=123_734,
    notes="published PGD (2/255) accuracy 61.41%",
    **_CROWN,
)
_register(
    "cifar10/resnet2b-at",
    ZooSpec(arch.resnet2b, _state_dict_key, *CIFAR_STATS),
    architecture="ResNet-2B (alpha-beta-CROWN; no BatchNorm)",
    training="PGD-AT",
    threat_model="linf 2/255",
    file="resnet2b.pth",
    url=CROWN_URL + "cifar10_resnet/resnet2b.pth",
    sha256="ef824b47175668e924d7fd409b5ef7e239012b8f0c31fefa66c643efda1eb05b",
    clean_accuracy_published=None,
    clean_accuracy_measured=69.25,
    params=112_006,
    notes="published PGD (2/255) accuracy 54.82%",
    **_CROWN,
)
_register(
    "cifar10/cnn-wide-at",
    ZooSpec(
        lambda: arch.TwoConv(3, 16, 32, 4, 2, 1, 2048, 100),
        _plain_without_masks,
        (0.49137, 0.48235, 0.44667),
        (0.24706, 0.24353, 0.26157),
    ),
    architecture="CNN, 2 conv + 2 linear ('wide')",
    training="adversarial training",
    threat_model="linf 2/255",
    file="cifar_wide_adv.pth",
    url=CROWN_URL + "custom_op/cifar_wide_adv.pth",
    sha256="bfec0af9f38d56f69e95fbf1b9611de163d92966af8e83cd271285a35202177b",
    clean_accuracy_published=None,
    clean_accuracy_measured=73.38,
    params=214_918,
    **_CROWN,
)
for _name, _file, _sha, _training, _acc in (
    (
        "cifar10/cnn-a-at",
        "cifar_cnn_a_adv.model",
        "e45d79e68342395f4ada6f89852ae41feba14b430a3b2462a04d7f5e02c65657",
        "adversarial training (CNN-A-Adv)",
        65.65,
    ),
    (
        "cifar10/cnn-a-mix",
        "cifar_cnn_a_mix.model",
        "5a1370f41961766db169ad9f945e9cc3157c9afd7986eac73bf2786c35dc3773",
        "mixed adversarial/certified training (CNN-A-Mix)",
        74.18,
    ),
):
    _register(
        _name,
        ZooSpec(
            lambda: arch.two_conv_sequential(3, 16, 32, 4, 2, 1, 2048, 100), _plain, *CNN_A_STATS
        ),
        architecture="CNN-A, 2 conv + 2 linear",
        training=_training,
        threat_model=None,
        file=_file,
        url=CROWN_URL + "sdp/" + _file,
        sha256=_sha,
        clean_accuracy_published=None,
        clean_accuracy_measured=_acc,
        params=214_918,
        **_CROWN,
    )
_register(
    "cifar10/convsmall-at",
    ZooSpec(
        lambda: arch.two_conv_sequential(3, 16, 32, 4, 2, 0, 1152, 100),
        _first_of_list,
        (0.4914, 0.4822, 0.4465),
        (0.2023, 0.1994, 0.201),
    ),
    architecture="ConvSmall (ERAN), 2 conv + 2 linear",
    training="PGD training",
    threat_model=None,
    file="cifar_conv_small_pgd.pth",
    url=CROWN_URL + "eran/cifar_conv_small_pgd.pth",
    sha256="01adb410a8f561aa19e53a2168ca5c71a795a72a2be18c80eb400cf2e54cdd50",
    clean_accuracy_published=None,
    clean_accuracy_measured=62.92,
    params=125_318,
    notes="630 of the first 1,000 test images correct (published)",
    **_CROWN,
)

# -- MNIST ----------------------------------------------------------------------------------------
_MNIST = dict(dataset="mnist", input_shape=[1, 28, 28], num_classes=10)
for _name, _file, _sha, _training, _tm, _acc in (
    (
        "mnist/lenet5",
        "mnist_lenet5_clntrained.pt",
        "551a11267982991fb0c9f74e9094de19e54b51455eff9bd1c19c77a69d85156a",
        "standard",
        None,
        98.89,
    ),
    (
        "mnist/lenet5-at",
        "mnist_lenet5_advtrained.pt",
        "b89abfcfe8b33235fe8f8e964188d82a97c56a12ffe25132eaba197e40ac7658",
        "PGD-AT (40 steps of 0.01)",
        "linf 0.3",
        98.64,
    ),
):
    _register(
        _name,
        ZooSpec(arch.LeNet5, _plain, None, None),
        architecture="LeNet-5 (advertorch)",
        training=_training,
        threat_model=_tm,
        file=_file,
        url=ADVERTORCH_URL + _file,
        sha256=_sha,
        licence="LGPL-3.0",
        source="github.com/BorealisAI/advertorch",
        clean_accuracy_published=None,
        clean_accuracy_measured=_acc,
        params=648_226,
        **_MNIST,
    )
_register(
    "mnist/cnn-certified",
    ZooSpec(lambda: arch.two_conv_sequential(1, 16, 32, 4, 2, 1, 1568, 100), _plain, None, None),
    architecture="CNN, 2 conv + 2 linear (Wong & Kolter)",
    training="provably robust training (Wong & Kolter 2018)",
    threat_model="linf 0.1",
    file="mnist.pth",
    url=CONVEX_URL + "mnist.pth",
    sha256="95014ab0c04c73f48b3be0cb7acc42aff60ce4420c6c43bec25e9a1447279e08",
    licence="MIT",
    source="github.com/locuslab/convex_adversarial",
    clean_accuracy_published=98.20,
    clean_accuracy_measured=98.20,
    params=166_406,
    notes="published: PGD error 4.1%, certified error 5.8% at linf 0.1",
    **_MNIST,
)
_register(
    "mnist/cnn-a-at",
    ZooSpec(lambda: arch.two_conv_sequential(1, 16, 32, 4, 2, 1, 1568, 100), _plain, None, None),
    architecture="CNN-A, 2 conv + 2 linear",
    training="adversarial training",
    threat_model=None,
    file="mnist_cnn_a_adv.model",
    url=CROWN_URL + "sdp/mnist_cnn_a_adv.model",
    sha256="3a1dbfc656e45be2cf6e8ae709c43da0fa0f3b71762c8a0842df72868f2b3459",
    licence="BSD-3-Clause",
    source="github.com/Verified-Intelligence/alpha-beta-CROWN",
    clean_accuracy_published=None,
    clean_accuracy_measured=96.33,
    params=166_406,
    **_MNIST,
)
_register(
    "mnist/cnn-tiny-at",
    ZooSpec(lambda: arch.two_conv_sequential(1, 4, 8, 5, 2, 2, 392, 128), _plain, None, None),
    architecture="Madry CNN without max-pooling, tiny (2 conv + 2 linear)",
    training="adversarial training",
    threat_model="linf 0.3",
    file="MadryCNN_no_maxpool_tiny.pt",
    url=CROWN_URL + "bab_attack/MadryCNN_no_maxpool_tiny.pt",
    sha256="171ffe80d82dcc80f28d22d5bafccf570e8d456836a6c02c2c8eaaee51547779",
    licence="BSD-3-Clause",
    source="github.com/Verified-Intelligence/alpha-beta-CROWN",
    clean_accuracy_published=None,
    clean_accuracy_measured=97.94,
    params=52_506,
    **_MNIST,
)
