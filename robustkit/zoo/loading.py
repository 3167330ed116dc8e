"""``load_model``: a classifier by name, in eval mode, on a device, with its weights' sha256.

Names are resolved as:

- a zoo name (``cifar10/resnet20``; ``robustkit models`` lists them): the checkpoint resolves
  through :func:`robustkit.weights.resolve_weights` (explicit path, ``$ROBUSTKIT_WEIGHTS``,
  sha256-checked download), loads with ``torch.load(weights_only=True)`` and is adapted to the
  architecture's keys, then loaded with ``strict=True``;
- ``path/to/file.py:factory``: the file is imported and ``factory()`` builds the model; an optional
  ``weights`` checkpoint loads into it (``weights_only=True`` unless ``allow_unsafe``);
- ``torchvision/<arch>``: torchvision's ImageNet model with its default weights;
- any other registered name (a plug-in's factory): ``factory()`` (``factory(None)`` where it
  requires the weights' path) or ``factory(weights)``.

Every returned model carries ``robustkit_name`` and ``robustkit_weights_sha256`` attributes so that
results can record exactly which weights produced them (:func:`weights_sha256`); a zoo checkpoint
also carries ``robustkit_input_shape`` and ``robustkit_dataset``, which the model check holds
images to.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import inspect
import os
import pickle
import re
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..device import resolve_device
from ..errors import InputError, RobustkitError, WeightsError, first_line
from ..naming import PYTHON, Naming
from ..registry import MODELS
from ..weights import refuse_a_directory, resolve_weights, sha256_of_weights
from . import torchvision_models
from .architectures import Normalized
from .catalog import CheckpointFormatError, ZooSpec


def safe_load(path: Path, allow_unsafe: bool = False, named: Naming | None = None) -> Any:
    """``torch.load`` on the CPU with ``weights_only=True``.

    A file that needs full unpickling (it can run code while loading) is refused unless the user
    opted in with ``allow_unsafe``; a file that is not a torch checkpoint is a ``WeightsError``.
    ``named``: how the refusal names the opt-in, as for :func:`load_model`.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickler_detail(exc)
        if not detail.startswith("GLOBAL "):  # bytes the unpickler cannot parse: not code
            raise WeightsError(
                f"cannot read checkpoint {path} ({detail}): the file is damaged or not a torch "
                "checkpoint; download it again (or save it again with torch.save)"
            ) from None
        if not allow_unsafe:
            raise WeightsError(
                f"{path} cannot be loaded with weights_only=True (it refers to {detail}): it "
                "needs full unpickling, which can run code from the file; refused. If you trust "
                "it, pass "
                + ("allow_unsafe=True" if named is None else named.setting("unsafe_load", True))
            ) from None
    except Exception as exc:  # RuntimeError, EOFError, IndexError ... on a damaged file
        raise WeightsError(
            f"cannot read checkpoint {path} ({_first_line(exc)}): the file is damaged or not a "
            "torch checkpoint; download it again (or save it again with torch.save)"
        ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # arbitrary code ran; whatever it raised, the file is unusable
        raise WeightsError(f"cannot unpickle {path} ({_first_line(exc)})") from None


def _unpickler_detail(exc: BaseException) -> str:
    """The reason torch's weights-only unpickler gave: ``GLOBAL argparse.Namespace`` when the
    file names a class or function it does not allow (only then can full unpickling help),
    otherwise its complaint, e.g. ``Unsupported operand 92`` for bytes that are no pickle."""
    text = str(exc)
    match = re.search(r"Unsupported global: (GLOBAL \S+)", text) or re.search(
        r"WeightsUnpickler error:\s*([^\n]+)", text
    )
    return match.group(1).strip() if match else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message; of a long line, its first sentence."""
    first = first_line(exc)
    if len(first) > 120 and ". " in first:
        first = first[: first.index(". ")]
    return first


_SHOWN_KEYS = 3


def _some_keys(keys: list[str]) -> str:
    """``a, b, c and 7 more`` for a long list of state-dict keys."""
    shown = ", ".join(keys[:_SHOWN_KEYS])
    return shown + (f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else "")


def _state_mismatch(model: nn.Module, state: Any) -> str | None:
    """Which keys ``state`` lacks or has in excess for ``model`` (a few of each, with counts)."""
    if not isinstance(state, Mapping):
        return None
    expected = list(model.state_dict())
    known, given = set(expected), {str(k) for k in state}
    missing = [k for k in expected if k not in given]
    unexpected = [str(k) for k in state if str(k) not in known]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_some_keys(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_some_keys(unexpected)}")
    return "; ".join(parts) or None


def _load_state(model: nn.Module, state: Any, path: Path, name: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming the first mismatches."""
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        detail = _state_mismatch(model, state)
        if detail is None:  # same keys, other shapes: one "size mismatch for ..." per tensor
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            mismatches = [line for line in lines if line.startswith("size mismatch")]
            if mismatches:
                detail = mismatches[0].rstrip(".")
                if len(mismatches) > 1:
                    detail += f" (and {len(mismatches) - 1} more size mismatches)"
            else:
                detail = lines[1] if len(lines) > 1 else _first_line(exc)
        raise WeightsError(
            f"{path} does not fit {name} ({detail}); is it the right checkpoint?"
        ) from None


def _wrapped_state(checkpoint: Any, net: nn.Module) -> dict[str, Any] | None:
    """``checkpoint`` if it is the state dict of a model :func:`load_model` returned (the
    network under ``net.``, its normalization's buffers under ``normalize.``), else None."""
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        return None
    keys = [str(k) for k in checkpoint]
    if not all(k.startswith(("net.", "normalize.")) for k in keys):
        return None
    if not any(k.startswith("net.") for k in keys):
        return None
    if any(k.startswith(("net.", "normalize.")) for k in net.state_dict()):
        return None  # the network's own keys look like that: nothing to unwrap
    return dict(checkpoint)


def _networks_state(checkpoint: Any, net: nn.Module) -> Any:
    """The state dict in a user's ``checkpoint`` (plain, under ``state_dict``, or with
    DataParallel's ``module.`` prefixes, as a ``file.py:factory`` model takes it) where its keys
    are exactly ``net``'s, else None: a zoo checkpoint's own layout is then not required (it
    was, so ``torch.save(net.state_dict(), f)`` loaded into some zoo models and not others)."""
    state = _state_dict_of(checkpoint)
    if not isinstance(state, Mapping) or {str(k) for k in state} != set(net.state_dict()):
        return None
    return state


def _load_zoo(
    name: str,
    spec: ZooSpec,
    meta: dict[str, Any],
    weights: str | os.PathLike[str] | None,
    allow_download: bool,
    allow_unsafe: bool,
    named: Naming | None,
) -> tuple[nn.Module, str]:
    path = resolve_weights(meta["file"], meta["url"], meta["sha256"], weights, allow_download)
    net = spec.build()
    model = Normalized(net, spec.mean, spec.std)  # holds net: loading either loads both
    checkpoint = safe_load(path, allow_unsafe, named)
    wrapped = None if weights is None else _wrapped_state(checkpoint, net)
    own = None if weights is None or wrapped is not None else _networks_state(checkpoint, net)
    if wrapped is not None:  # saved from a model robustkit loaded: load_model(name).state_dict()
        _load_state(model, wrapped, path, name)
    elif own is not None:  # the network's state dict, as a training script saves it
        _load_state(net, own, path, name)
    else:
        try:
            state = spec.read_state(checkpoint)
        except (CheckpointFormatError, KeyError, IndexError, TypeError, AttributeError) as exc:
            # (what it holds instead; a KeyError's text was read as "no <key>", any other
            # exception's too: "(no too many indices for tensor of dimension 1)")
            detail = str(exc) if isinstance(exc, CheckpointFormatError) else _first_line(exc)
            raise WeightsError(
                f"{path} is not in the checkpoint format of {name} ({detail}); "
                f"use the file {meta['file']} from {meta['url']}"
            ) from None
        _load_state(net, state, path, name)
    # a resolved zoo file was verified against the pinned hash; an explicit path is hashed once
    # it has loaded
    return model, meta["sha256"] if weights is None else sha256_of_weights(path)


def _state_dict_of(obj: Any) -> Any:
    """The state dict inside a user's checkpoint: plain, under ``state_dict``, or a module."""
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and obj and all(str(k).startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}  # saved from DataParallel
    return obj


def is_user_file(name: str) -> bool:
    """Whether ``name`` has the ``path/to/file.py:factory`` form."""
    file, sep, factory = name.rpartition(":")
    return bool(sep) and file.endswith(".py") and factory.isidentifier()


def _existing_model_file(name: str) -> Path:
    """The file of a ``file.py:factory`` name, or a one-line error when there is none."""
    path = Path(name.rpartition(":")[0]).expanduser()
    if not path.is_file():
        raise RobustkitError(f"model file {path} does not exist; use path/to/file.py:factory")
    return path


def _refuse_a_file_without_factory(name: str) -> None:
    """The one-line error for ``net.py`` or ``net.py:`` (a file, but no factory named)."""
    if name.endswith(".py") or name.rpartition(":")[0].endswith(".py"):
        raise RobustkitError(
            f"{name!r} does not name a factory; use path/to/file.py:factory, where factory is "
            "a function in the file that returns the model"
        )


def _same_path(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` name one path, relative to the current directory or not."""
    return os.path.abspath(a) == os.path.abspath(b)


@contextlib.contextmanager
def _errors_of_user_code(path: Path, what: str):
    """Turn an exception raised in the user's model file into one line that names it and the
    file's line where it happened (the user's own code, so that line is where to look). What
    the code prints goes to stderr: stdout is the command's (``--format json``)."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except (Exception, SystemExit) as exc:
        # (Python names an imported file's frames by its absolute path: a relative one matched none)
        where = _where(exc, path, lambda filename: _same_path(filename, path))
        if isinstance(exc, SystemExit):  # a script's command-line part (argparse, sys.exit)
            raise RobustkitError(
                f"{what} exited (SystemExit: {exc.code}){where}; keep a model file's script "
                "part under `if __name__ == '__main__':`"
            ) from None
        raise _raised(what, exc, where) from exc


def _where(exc: BaseException, file: Any, matches: Any) -> str:
    """`` at FILE line N``: the last line of ``file`` (frames whose file name ``matches``) that
    ``exc`` passed through, where its author looks; empty where it passed through none."""
    here = [f for f in traceback.extract_tb(exc.__traceback__) if matches(f.filename)]
    return f" at {file} line {here[-1].lineno}" if here else ""


def _raised(what: str, exc: BaseException, where: str) -> RobustkitError:
    """The one-line error for ``exc`` raised by ``what`` (``where``: :func:`_where`): the first
    line of its message only (a multi-line one would break the one-line error; the caller
    chains the full exception to it, for a traceback in Python)."""
    message = f": {first_line(exc)}" if str(exc).strip() else ""
    return RobustkitError(f"{what} raised {type(exc).__name__}{message}{where}")


#: The module name a user's model file is imported under (then the digest of its path).
USER_MODULE_PREFIX = "robustkit_user_model_"


def user_code_line(exc: BaseException) -> tuple[Path, int] | None:
    """The file and line where ``exc`` was raised or last passed through a user's model file
    (a ``file.py:factory`` model or ensemble member), or None where no user code ran: what a
    one-line error about it names."""
    where = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__")
        if isinstance(name, str) and name.startswith(USER_MODULE_PREFIX):
            where = Path(tb.tb_frame.f_code.co_filename), tb.tb_lineno
        tb = tb.tb_next
    return where


def _load_user_file(
    name: str,
    weights: str | os.PathLike[str] | None,
    allow_unsafe: bool,
    named: Naming | None,
) -> tuple[nn.Module, str | None]:
    factory = name.rpartition(":")[2]
    path = _existing_model_file(name)
    # (os.fsencode: a path that is not valid UTF-8, as POSIX allows, has its bytes back)
    digest = hashlib.sha256(os.fsencode(path.resolve())).hexdigest()[:12]
    module_name = f"{USER_MODULE_PREFIX}{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RobustkitError(f"cannot import {path}; is it a Python file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so that classes in the file pickle and dataclasses work
    with _importable_from(path.parent), _errors_of_user_code(path, f"importing {path}"):
        spec.loader.exec_module(module)
    build = getattr(module, factory, None)
    if not callable(build):
        raise RobustkitError(
            f"{path} has no callable {factory!r}; name a function that returns the model"
        )
    with _importable_from(path.parent), _errors_of_user_code(path, f"{name}()"):
        model = build()
    if not isinstance(model, nn.Module):
        raise RobustkitError(f"{name} returned {type(model).__name__}, not a torch.nn.Module")
    if weights is None:
        return model, None
    wpath = resolve_weights(Path(weights).name, None, None, weights)
    _load_state(model, _state_dict_of(safe_load(wpath, allow_unsafe, named)), wpath, name)
    return model, sha256_of_weights(wpath)


@contextlib.contextmanager
def _importable_from(folder: Path) -> Iterator[None]:
    """Let a model file import the modules beside it (``from layers import Block``), as it
    could when run as a script: ``folder`` is first on ``sys.path`` while the file is imported
    and its factory runs, and is taken off again after (it was never on it: "No module named
    'layers'")."""
    entry = str(folder.resolve())
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def _takes(factory: Any, *args: Any) -> bool:
    """Whether ``factory`` can be called with ``args`` (True where its signature is unknown)."""
    try:
        inspect.signature(factory).bind(*args)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): the call itself tells
        pass
    return True


@contextlib.contextmanager
def _errors_of_plugin(name: str, factory: Any) -> Iterator[None]:
    """Turn an exception raised by a registered model's factory into one line that names the
    model and the last line of the factory's own file it passed through (where its author
    looks), as for a ``file.py:factory`` model; a :class:`RobustkitError` passes unchanged.
    The exception stays chained to it, for a traceback in Python."""
    try:
        yield
    except RobustkitError:
        raise
    except Exception as exc:
        code = getattr(inspect.unwrap(factory), "__code__", None)
        file = code.co_filename if code is not None else None
        where = _where(exc, file, lambda filename: filename == file)
        raise _raised(f"model {name}'s factory", exc, where) from exc


def _load_plugin(
    name: str, factory: Any, weights: str | os.PathLike[str] | None, named: Naming | None
) -> tuple[nn.Module, str | None]:
    """A plug-in's model: ``factory(weights)``, or without weights ``factory()`` (``factory(None)``
    for one whose weights path is required, the signature :data:`~robustkit.registry.MODELS`
    documents); weights it cannot take, a weights path that is not there or is a directory,
    an exception the factory raises, and a factory that returns no ``nn.Module`` are one-line
    errors."""
    if weights is None:
        with _errors_of_plugin(name, factory):
            model = factory() if _takes(factory) else factory(None)
    elif not _takes(factory, weights):
        raise RobustkitError(
            f"model {name} takes no weights file (its factory has no parameter for one); drop "
            + ("weights=" if named is None else named.dropped("weights", weights))
        )
    elif not os.path.exists(weights):  # (hashing it after the factory said "make it readable")
        raise WeightsError(f"weights file {weights} does not exist; check the path")
    else:
        # (as for every model: its sha256 is recorded, and a directory has none; hashing it
        # after the factory said "make it readable (chmod a+r ...)")
        refuse_a_directory(Path(weights), "give the path of the checkpoint file in it")
        with _errors_of_plugin(name, factory):
            model = factory(weights)
    if not isinstance(model, nn.Module):  # (model.eval() raised an AttributeError)
        raise RobustkitError(
            f"model {name}'s factory returned {type(model).__name__}, not a torch.nn.Module; "
            "fix or uninstall the package that registers it"
        )
    return model, None if weights is None else sha256_of_weights(weights)


def _load_torchvision(
    name: str,
    weights: str | os.PathLike[str] | None,
    allow_download: bool,
    allow_unsafe: bool,
    named: Naming | None,
) -> tuple[nn.Module, str | None]:
    """torchvision's default weights, or the user's checkpoint for that architecture."""
    arch = name[len(torchvision_models.PREFIX) :]
    if weights is None:
        # (it honours ROBUSTKIT_OFFLINE)
        return torchvision_models.load(arch, allow_download, allow_unsafe, named)
    net = torchvision_models.build(arch)
    model = torchvision_models.normalized(arch, net)
    wpath = resolve_weights(Path(weights).name, None, None, weights)
    state = _state_dict_of(safe_load(wpath, allow_unsafe, named))
    wrapped = _wrapped_state(state, net)
    if wrapped is None:
        _load_state(net, state, wpath, name)
    else:  # saved from load_model("torchvision/...")
        _load_state(model, wrapped, wpath, name)
    return model, sha256_of_weights(wpath)


def _finish(
    model: nn.Module,
    device: torch.device,
    name: str,
    sha256: str | None,
    metadata: dict[str, Any] | None = None,
) -> nn.Module:
    """Eval mode, frozen parameters, provenance attributes, on ``device``; a zoo checkpoint
    also carries the image shape and data set it was trained for (``robustkit_input_shape``,
    ``robustkit_dataset``), which the model check holds images to."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.robustkit_name = name  # type: ignore[attr-defined]
    model.robustkit_weights_sha256 = sha256  # type: ignore[attr-defined]
    if metadata and metadata.get("input_shape"):
        model.robustkit_input_shape = tuple(metadata["input_shape"])  # type: ignore[attr-defined]
        model.robustkit_dataset = metadata.get("dataset")  # type: ignore[attr-defined]
    return model.to(device)


def _registered_spelling(name: str) -> str:
    """``name`` as it is registered (names match case-insensitively: ``torchvision/ResNet18``
    is ``torchvision/resnet18``), or as given for a user's file or an unregistered name."""
    if is_user_file(name):
        return name
    entry = MODELS.find(name)
    return name if entry is None else entry.name


def load_model(
    name: str,
    device: str | int | torch.device = "auto",
    weights: str | os.PathLike[str] | None = None,
    allow_download: bool = True,
    allow_unsafe: bool = False,
    *,
    named: Naming | None = None,
) -> nn.Module:
    """Load the classifier ``name`` in eval mode on ``device`` (see the module docstring).

    ``weights`` overrides the checkpoint file (its sha256 is recorded, not enforced); for a zoo
    or torchvision name it may also hold the state dict of a model this function returned
    (``torch.save(load_model(name).state_dict(), f)``);
    ``allow_download=False`` never touches the network; ``allow_unsafe=True`` permits checkpoints
    that need full unpickling (only for files you trust: unpickling can run code).
    The model takes NCHW inputs in [0, 1]: the normalization is inside its forward pass.
    ``named``: how errors name the settings to change: None (the default) for this function's
    own arguments (``allow_unsafe=True``, ``weights=``, ``device='cpu'``); the CLI and
    ``run_evaluation`` pass theirs (``--unsafe-load``, RunConfig's ``unsafe_load=True``).
    """
    if not isinstance(name, str):
        raise InputError(
            f"a model name is a string (a zoo name, or path/to/file.py:factory), got "
            f"{type(name).__name__}; pass the model's name, or use your nn.Module directly"
        )
    dev = resolve_device(device, named or PYTHON)  # (None: its own device=)
    metadata = None
    name = _registered_spelling(name)
    if name.startswith(torchvision_models.PREFIX):
        model, sha = _load_torchvision(name, weights, allow_download, allow_unsafe, named)
    elif is_user_file(name):
        model, sha = _load_user_file(name, weights, allow_unsafe, named)
    else:
        _refuse_a_file_without_factory(name)
        entry = MODELS.entry(name)  # unknown names raise with suggestions
        if isinstance(entry.obj, ZooSpec):
            model, sha = _load_zoo(
                name, entry.obj, entry.metadata, weights, allow_download, allow_unsafe, named
            )
            metadata = entry.metadata
        else:
            model, sha = _load_plugin(name, entry.obj, weights, named)
    return _finish(model, dev, name, sha, metadata)


def model_info(name: str) -> dict[str, Any]:
    """The metadata of model ``name`` with its name.

    torchvision models are completed from torchvision's weight descriptions (this imports
    torchvision); a ``file.py:factory`` name gives what is known without running the file.
    """
    if is_user_file(name):
        path = _existing_model_file(name)
        return {"name": name, "source": str(path), "file": None, "sha256": None}
    _refuse_a_file_without_factory(name)
    name = _registered_spelling(name)
    if name.startswith(torchvision_models.PREFIX):  # listed or not, if torchvision knows it
        arch = name[len(torchvision_models.PREFIX) :]
        details = torchvision_models.describe(arch)
        return {"name": name, **torchvision_models.metadata(arch), **details}
    entry = MODELS.entry(name)
    # a copy to the last list: the caller's changes (info["input_shape"].insert(0, batch))
    # changed the registry's, and so every later load_model of the name
    try:
        metadata = copy.deepcopy(entry.metadata)
    except Exception:  # a plug-in's object that cannot be copied: the top level at least
        metadata = dict(entry.metadata)
    return {"name": entry.name, **metadata}


def weights_sha256(name_or_model: str | nn.Module) -> str | None:
    """The sha256 of the weights behind a model.

    For a model returned by :func:`load_model`: the hash of the file it was loaded from (``None``
    for a model built without a checkpoint). For a zoo name: the pinned hash; for a torchvision
    name: the hash of torchvision's cached file if it is there.
    """
    if isinstance(name_or_model, nn.Module):
        return getattr(name_or_model, "robustkit_weights_sha256", None)
    name = name_or_model
    if is_user_file(name):
        return None
    name = _registered_spelling(name)
    if name.startswith(torchvision_models.PREFIX):
        path = torchvision_models.cached_checkpoint(name[len(torchvision_models.PREFIX) :])
        return sha256_of_weights(path) if path.is_file() else None
    return MODELS.entry(name).metadata.get("sha256")


def state_sha256(model: nn.Module) -> str:
    """The sha256 of a model's parameters and persistent buffers: every name, dtype, shape and
    value of its state dict, in order (the same on any device).

    A model built without a checkpoint file (a ``file.py:factory`` that loads its own weights, a
    plug-in's factory) is known by it in the store, so other weights, or an architecture with
    other parameters, make another run rather than resuming results of the model before."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):  # an extra state object: its text
            digest.update(f"{key}={value!r};".encode())
            continue
        t = value.detach()
        if t.is_quantized:
            t = t.dequantize()
        if t.layout != torch.strided:
            t = t.to_dense()
        t = t.cpu().contiguous()
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
