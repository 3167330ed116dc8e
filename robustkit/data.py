"""Data sets as tensors ready for the zoo's models: float32 NCHW in [0, 1] and int64 labels.

Known sets: ``cifar10`` (splits ``test`` and ``train``) and ``mnist`` (``test``). They are read
from ``$ROBUSTKIT_DATA`` (default ``<user data dir>/robustkit/data``) as ``<name>_<split>.npz``
files (arrays ``x`` uint8 NHWC or NHW and ``y`` int64), or in torchvision's own format in the same
directory, which torchvision downloads where there is internet. Any other ``.npz`` path with ``x``
and ``y`` arrays is a generic data set. Subsets are deterministic: ``n`` samples from ``offset``.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import torch

from .checks import is_whole_number
from .errors import DataError, first_line
from .naming import PYTHON, Naming
from .tables import counted


@dataclass(frozen=True)
class DatasetInfo:
    """What robustkit knows of a named data set."""

    name: str
    splits: tuple[str, ...]
    shape: tuple[int, int, int]
    num_classes: int
    classes: tuple[str, ...]
    citation: str


DATASETS: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo(
        "cifar10",
        ("test", "train"),
        (3, 32, 32),
        10,
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        "Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
    ),
    "mnist": DatasetInfo(
        "mnist",
        ("test",),
        (1, 28, 28),
        10,
        tuple(str(i) for i in range(10)),
        "LeCun, Cortes, Burges, The MNIST database of handwritten digits (CC BY-SA 3.0)",
    ),
}


def data_dir() -> Path:
    """The data directory: ``$ROBUSTKIT_DATA`` or the user's data directory."""
    env = os.environ.get("ROBUSTKIT_DATA")
    if env:  # absolute, so that a message says where it looked
        return Path(env).expanduser().absolute()
    return Path(platformdirs.user_data_dir("robustkit")) / "data"


def _to_tensors(x: np.ndarray, y: np.ndarray, source: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 NCHW in [0, 1] and labels as int64, or a one-line error that names
    ``source`` (the data set or file)."""
    if x.ndim == 3:  # N x H x W grey images
        x = x[:, None, :, :]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):  # NHWC
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4:
        raise DataError(f"{source}: images must be NCHW, NHWC or NHW arrays, got shape {x.shape}")
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise DataError(
            f"{source}: images must be uint8 (0-255) or floating-point in [0, 1], got {x.dtype}; "
            "convert them (x.astype(numpy.uint8) for 0-255 values)"
        )
    xt = torch.from_numpy(np.ascontiguousarray(x))
    if xt.dtype == torch.uint8:
        xt = xt.float().div_(255.0)
    else:
        xt = xt.float()
        if not torch.isfinite(xt).all():
            bad = int((~torch.isfinite(xt.flatten(1))).any(1).nonzero()[0])
            raise DataError(
                f"{source}: images contain NaN or infinite values (the first: image {bad} of "
                "those loaded); clean them before evaluating"
            )
        if xt.numel() and (xt.min() < 0 or xt.max() > 1):
            raise DataError(
                f"{source}: float images must lie in [0, 1]; rescale them (x / 255 for 0-255 "
                "values)"
            )
    return xt.contiguous(), torch.from_numpy(np.asarray(y).astype(np.int64))


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    not_npz = DataError(
        f"cannot read {path} as an .npz file (it is not a complete zip archive of arrays); "
        "check the file, or write it with numpy.savez(path, x=images, y=labels)"
    )
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise not_npz  # a plain .npy array
        with archive:
            if "x" not in archive or "y" not in archive:
                raise DataError(f"{path} must hold arrays 'x' and 'y'; it has {archive.files}")
            x, y = archive["x"], archive["y"]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if "pickled" in str(exc) or isinstance(exc, (EOFError, zipfile.BadZipFile)):
            raise not_npz from None  # not numpy's advice to unpickle: it is not an .npz
        raise DataError(f"cannot read {path} as an .npz file ({exc}); check the file") from None
    if x.ndim not in (3, 4):  # a 0-d x has no len(): checked before anything counts images
        raise DataError(
            f"{path}: 'x' must be images, an NCHW, NHWC or NHW array, got shape {x.shape}; "
            "write it with numpy.savez(path, x=images, y=labels)"
        )
    if len(x) == 0:
        raise DataError(f"{path} holds no images; give a file with at least one")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or len(x) != len(y):
        raise DataError(
            f"{path}: 'y' must be one whole-number label per image of 'x' ({counted(len(x), 'image')}), "
            f"got {y.dtype} labels shaped {y.shape}"
        )
    return x, y


def _download_failure(exc: BaseException) -> str:
    """One line of why torchvision's download failed: its message's first line, and, where
    that line only introduces the others ("Error downloading train-images-idx3-ubyte.gz:"),
    the last one too, which holds the cause."""
    first = first_line(exc)
    if first.endswith(":"):
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        if len(lines) > 1:
            return f"{first} {lines[-1]}"
    return first


def _read_torchvision(name: str, split: str, root: Path, download: bool):
    import torchvision  # imported here: only this path needs it

    cls = {"cifar10": torchvision.datasets.CIFAR10, "mnist": torchvision.datasets.MNIST}[name]
    try:
        ds = cls(str(root), train=(split == "train"), download=download)
    except Exception as exc:  # torchvision raises RuntimeError or URLError variants
        why = f"download failed: {_download_failure(exc)}" if download else "downloads are off"
        raise DataError(
            f"data set {name}/{split} not found in {root} (expected {name}_{split}.npz or "
            f"torchvision's files; {why}); set ROBUSTKIT_DATA to a directory that has it"
        ) from None
    x = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
    return x, np.asarray(ds.targets)


def is_data_file(name: str) -> bool:
    """Whether a data-set name is a path to an ``.npz`` file rather than a named set."""
    return name.endswith(".npz") or os.sep in name


def _locate(name: str, split: str) -> Path | None:
    """The ``.npz`` file ``name``/``split`` is read from, or None for torchvision's files in
    the data directory; a name that does not resolve is a :class:`DataError`."""
    if is_data_file(name):
        path = Path(name).expanduser()
        if path.is_dir():
            raise DataError(f"data file {path} is a directory; give a path to an .npz with x and y")
        if not path.is_file():
            raise DataError(f"data file {path} does not exist; give a path to an .npz with x and y")
        return path
    info = DATASETS.get(name)
    if info is None:
        raise DataError(
            f"unknown data set {name!r}; use one of {', '.join(DATASETS)} or a path to an .npz"
        )
    if split not in info.splits:
        raise DataError(f"{name} has no split {split!r}; use one of {', '.join(info.splits)}")
    npz = data_dir() / f"{name}_{split}.npz"
    return npz if npz.is_file() else None


#: Arrays read so far, by source (an .npz file's resolved path, or a named set's split and
#: directory), each with the stamp (modification time, size) of the file it was read from: a
#: rewritten file is read again, not served stale.
_CACHE: dict[tuple[str, ...], tuple[tuple[int, int] | None, tuple[np.ndarray, np.ndarray]]] = {}


def dataset_size(name: str, split: str = "test") -> int:
    """Number of samples in a data set."""
    return len(_cached_raw(name, split, download=True)[1])


def _cached_raw(name: str, split: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    name = str(name)
    path = _locate(name, split)
    if path is None:  # torchvision's files in the data directory
        root = data_dir()
        key, stamp = ("torchvision", name, split, str(root.resolve())), None
    else:
        try:
            stat = path.stat()
        except OSError:  # gone since it was found
            raise DataError(
                f"data file {path} does not exist; give a path to an .npz with x and y"
            ) from None
        key, stamp = ("npz", str(path.resolve())), (stat.st_mtime_ns, stat.st_size)
    hit = _CACHE.get(key)
    if hit is None or hit[0] != stamp:
        if path is not None:
            arrays = _read_npz(path)
        else:
            from .weights import no_new_empty_dirs, offline

            # a failed download leaves no empty directories (torchvision's MNIST makes two)
            own = {"mnist": ("MNIST/raw",)}.get(name, ())
            with no_new_empty_dirs(root, *own):
                arrays = _read_torchvision(name, split, root, download and not offline())
        _CACHE[key] = (stamp, arrays)
    return _CACHE[key][1]


def described(name: str, split: str) -> str:
    """How a message names the data: ``cifar10/test`` for a named set, the path alone for a
    data file (which has no splits: ``mine.npz/test`` read as a path that is not there)."""
    return name if is_data_file(name) else f"{name}/{split}"


def load_dataset(
    name: str,
    split: str = "test",
    n: int | None = None,
    offset: int = 0,
    indices: list[int] | np.ndarray | None = None,
    download: bool = True,
    *,
    named: Naming = PYTHON,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``n`` samples from ``offset`` (or the given ``indices``) as ``(x, y)`` tensors.

    ``name``: ``"cifar10"`` (splits ``"test"``, ``"train"``), ``"mnist"`` (``"test"``), or the
    path of an ``.npz`` file with arrays ``x`` (uint8, or floats in [0, 1]; NCHW, NHWC or NHW)
    and ``y`` (integer labels). Named sets are read from ``$ROBUSTKIT_DATA`` and, with
    ``download=True``, fetched by torchvision where missing. ``x`` is float32 NCHW in [0, 1],
    ``y`` int64. ``n=None`` takes every sample from ``offset``. ``named``: how errors name
    ``n`` and ``offset``, as this function's arguments (``n=``, the default) or, passed by the
    CLI, its options (``--n``).
    """
    for what, value in (("n", n), ("offset", offset)):
        if (value is not None or what == "offset") and not is_whole_number(value):
            raise DataError(f"{what} must be a whole number of samples, got {value!r}")
    n, offset = (None if n is None else int(n)), int(offset)
    x, y = _cached_raw(name, split, download)
    total, source = len(y), described(str(name), split)
    if indices is not None:
        if n is not None or offset:  # (they were ignored without a word)
            raise DataError("give either indices or n/offset, not both")
        idx = np.asarray(indices)
        if idx.size and (idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer)):
            # (1.7 was read as sample 1)
            raise DataError(
                f"sample indices must be a flat list of whole numbers, got {idx.dtype} "
                f"shaped {idx.shape}"
            )
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= total):
            raise DataError(f"sample indices must lie in 0..{total - 1} for {source}")
        return _to_tensors(x[idx], y[idx], name)
    if offset < 0:
        raise DataError(f"offset must be >= 0, got {offset}")
    if offset >= total:
        raise DataError(
            f"{named.setting('offset', offset)} is past the end of {source} "
            f"({counted(total, 'sample')}); "
            f"use an offset below {total}"
        )
    if n is None:
        n = total - offset
    if n <= 0:
        raise DataError(f"n must be a positive number of samples, got {n}")
    if offset + n > total:
        raise DataError(
            f"{source} has {counted(total, 'sample')}; {named.setting('n', n)} from "
            f"{named.setting('offset', offset)} asks for {offset + n}; use "
            f"{named.setting('n', total - offset)} or fewer"
        )
    return _to_tensors(x[offset : offset + n], y[offset : offset + n], name)
