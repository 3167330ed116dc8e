"""Device and seed policy: one place decides where tensors live and how runs repeat.

``--device auto`` picks the first CUDA GPU when there is one and the CPU otherwise. One integer
seed makes a run repeatable: attacks draw their randomness from a :class:`torch.Generator`
seeded from it, never from the global RNG. On a CPU a rerun is bitwise the same; on a GPU,
kernels that add with atomics (cuDNN's gradient convolutions, ``index_add_``: HopSkipJump's probe
sums) can differ in the last bits from run to run, and a trajectory near the boundary with them.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from .checks import is_whole_number
from .errors import InputError, RobustkitError
from .naming import PYTHON, Naming

#: The devices :func:`resolve_device` takes, as its messages and ``--device --help`` name them.
_DEVICES = "auto, cpu, cuda, cuda:N or mps"
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps|mps:0)$")


def resolve_device(
    spec: str | int | torch.device | None = "auto", named: Naming = PYTHON
) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` (or a GPU's index N, as torch takes it) into a
    :class:`torch.device` that exists on this machine. ``mps:0``, as torch names the device of
    a tensor on Apple's GPU, is ``mps``. ``named``: how an error names the CPU to use instead,
    ``device='cpu'`` as load_model and RunConfig take it (the default), or the CLI's
    ``--device cpu`` (:data:`~robustkit.naming.COMMAND_LINE`)."""
    given = spec
    if isinstance(spec, torch.device):
        spec = str(spec)
    elif is_whole_number(spec):  # torch's convention: device 0 is cuda:0 (it was taken as auto)
        spec = f"cuda:{spec}"
    elif spec is None:
        spec = "auto"
    if not isinstance(spec, str):  # (a float or a list failed with an AttributeError)
        raise RobustkitError(f"unknown device {given!r}; use {_DEVICES}")
    spec = (spec or "auto").strip().lower()
    if not _DEVICE_RE.match(spec):
        raise RobustkitError(f"unknown device {spec!r}; use {_DEVICES}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RobustkitError(
                f"device {spec!r} is not available: no CUDA GPU is visible; use device cpu or auto "
                f"({named.setting('device', 'cpu')})"
            )
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise RobustkitError(
                f"device {spec!r} is not available: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s); use cuda:0..cuda:"
                f"{torch.cuda.device_count() - 1}"
            )
    if spec.startswith("mps") and not (
        hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    ):
        raise RobustkitError(
            f"device {spec!r} is not available on this machine; use device cpu "
            f"({named.setting('device', 'cpu')})"
        )
    return torch.device(spec)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global generators (for code outside robustkit's control)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``: the source of an attack's randomness."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(seed) % 2**63)
    return gen


def derive_seed(seed: int, *parts: object) -> int:
    """A seed for a sub-task (a shard, an attack) that depends only on ``seed`` and ``parts``.

    Resumed runs must draw the same numbers for the same shard, whatever ran before it, so each
    shard's seed is derived rather than taken from a running generator.
    """
    import hashlib

    digest = hashlib.sha256(repr((int(seed),) + parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (CPU for a model with neither).
    Raises :class:`~robustkit.errors.InputError` for a model that is not an ``nn.Module``, and
    for one whose weights are on the meta device (shapes without values: never loaded)."""
    if not isinstance(model, torch.nn.Module):
        raise InputError(
            f"the model must be a torch.nn.Module, got {type(model).__name__}; wrap a function "
            "in a module whose forward calls it"
        )
    device = next(itertools.chain(model.parameters(), model.buffers()), None)
    device = torch.device("cpu") if device is None else device.device
    if device.type == "meta":  # (every attack ended in aten::equal's NotImplementedError)
        raise InputError(
            "the model's weights are on the meta device (shapes without values: they were "
            "never loaded); load them, e.g. model.load_state_dict(state, assign=True), or "
            "model.to_empty(device='cpu') and then load_state_dict"
        )
    return device


def accelerator_memory(device: torch.device | str) -> int | None:
    """Total memory of an accelerator in bytes (CUDA's device properties), or None where it
    cannot be read (a CPU, another kind of device)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(device).total_memory)


def float_dtypes(model: torch.nn.Module) -> list[torch.dtype]:
    """The floating-point dtypes of a model's parameters and buffers, in order of first use."""
    dtypes: list[torch.dtype] = []
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.is_floating_point() and tensor.dtype not in dtypes:
            dtypes.append(tensor.dtype)
    return dtypes


@contextmanager
def full_float32() -> Iterator[None]:
    """Run CUDA convolutions and matrix products in full IEEE float32 inside the block.

    PyTorch lets cuDNN run float32 convolutions as TF32 by default, which rounds their inputs to
    a 10-bit mantissa: about 5e-4 at a pixel of 0.5. A decision-based attack steers by probes
    far smaller than that (CGBA's σ = 2e-4, bisection to 1e-4), so under TF32 the label it
    reads is partly rounding noise, and a point labelled adversarial in one batch can be
    labelled clean in another. Measured on an H200 on cifar10/resnet20's first 100 images:
    under TF32 only 86% of CGBA's final examples passed the fresh re-check and the median L2 at
    1,000 queries was 0.532; in full float32 100% passed and it was 0.506 (CPU: 0.498).
    HopSkipJump (20 images, 1,000 queries): 1.469 under TF32, 0.648 in float32. Autocast is
    off inside too: under a caller's ``torch.autocast`` (mixed precision) the passes ran in
    float16 or bfloat16 whatever the TF32 settings said. The previous settings come back on
    exit; on a CPU outside autocast this changes nothing.
    """
    with torch.autocast("cuda", enabled=False), torch.autocast("cpu", enabled=False):
        with _no_tf32():
            yield


@contextmanager
def _no_tf32() -> Iterator[None]:
    """TF32 off for CUDA's float32 convolutions and matrix products inside the block (see
    :func:`full_float32`); the previous settings, through whichever API made them, after."""
    backends = torch.backends
    if hasattr(backends.cuda.matmul, "fp32_precision"):
        # PyTorch ≥ 2.9: once TF32 is set through fp32_precision, reading the legacy allow_tf32
        # flags raises (every decision attack crashed so); the new settings restore exactly
        # whichever API made them. (Inside the block the legacy flags are not to be read.)
        modules = (backends.cuda.matmul, backends.cudnn.conv, backends.cudnn.rnn)
        saved = [(module, module.fp32_precision) for module in modules]
        for module in modules:
            module.fp32_precision = "ieee"
        try:
            yield
        finally:
            for module, value in saved:
                module.fp32_precision = value
        return
    cudnn, matmul = backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32
    backends.cudnn.allow_tf32 = backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32 = cudnn, matmul
