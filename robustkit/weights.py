"""Resolve a checkpoint file: explicit path, local weights directory, or a verified download.

Order, for a zoo model's file:

1. an explicit path the user gives (used as it is; its sha256 is recorded, not enforced);
2. ``$ROBUSTKIT_WEIGHTS/<file name>`` (default: ``<user cache dir>/robustkit/weights``), used only
   if its sha256 matches the pinned one;
3. a download from the pinned URL into that directory, hashed while it streams, written to a
   temporary file and renamed into place only when the sha256 matches;
4. otherwise (or with ``ROBUSTKIT_OFFLINE=1``) a one-line :class:`~robustkit.errors.WeightsError` saying which file to put where.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs

from .errors import WeightsError

_CHUNK = 1 << 20


def offline() -> bool:
    """True when ``ROBUSTKIT_OFFLINE`` is set (to anything but 0, false, no or off): never
    download."""
    value = os.environ.get("ROBUSTKIT_OFFLINE", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def weights_dir() -> Path:
    """The local weights directory: ``$ROBUSTKIT_WEIGHTS`` or the user's cache directory."""
    env = os.environ.get("ROBUSTKIT_WEIGHTS")
    if env:  # absolute, so that a message says where it looked (a relative one is read from
        # the current directory, which a notebook's is not always)
        return Path(env).expanduser().absolute()
    return Path(platformdirs.user_cache_dir("robustkit")) / "weights"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of_weights(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a checkpoint file, with a one-line :class:`WeightsError` naming the file and
    the fix where it cannot be read (no read permission, say): a user's setup, not a bug."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise WeightsError(
            f"cannot read weights file {path} ({exc.strerror or exc}); make it readable "
            f"(chmod a+r {path}) or replace it with a readable copy"
        ) from None


@contextmanager
def no_new_empty_dirs(directory: Path, *inside: str) -> Iterator[None]:
    """Run the block; if it fails, remove the directories it was to make and that are still
    empty: ``directory`` and its missing parents, and the paths ``inside`` it (a download's
    own folders), those of them that did not exist before. Nothing else is touched, so a failed
    download leaves nothing behind and takes nothing away."""
    top = Path(directory).absolute()
    missing: list[Path] = []
    for target in [top, *(top / rel for rel in inside)]:
        # as written and normalised: making "m/../n" makes m too, where m is missing
        for path in (target, Path(os.path.abspath(target))):
            while not path.exists() and path != path.parent and path not in missing:
                if path.name != "..":  # "m/.." names an existing directory, never to remove
                    missing.append(path)
                path = path.parent
    try:
        yield
    except BaseException:
        for made in sorted(missing, key=lambda p: len(p.parts), reverse=True):  # deepest first
            try:
                made.rmdir()
            except OSError:  # never made, or not empty: it holds what the block wrote
                pass
        raise


def download(
    url: str,
    dest: Path,
    sha256: str,
    timeout: float = 60.0,
    prefix: bool = False,
    fix: str | None = None,
    unwritable: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically, refusing a file whose sha256 is not ``sha256``
    (``prefix=True``: does not start with it, for files known by the leading hex digits their
    names carry, as torchvision's are).

    The bytes go to a temporary file beside ``dest``; only a verified file is renamed into
    place, readable as the umask allows (as any file the user makes), so an interrupted or
    corrupted download never leaves a half-written ``dest`` (nor, when it fails, a directory
    made for it). ``fix``: what a failed download's error tells the user to do instead
    (default: put the file at ``dest`` or point ROBUSTKIT_WEIGHTS at a directory that has it);
    ``unwritable``: what to do where ``dest``'s directory cannot be written (default: set
    ROBUSTKIT_WEIGHTS to one that can be).
    """
    fix = fix or (f"put the file at {dest} or point ROBUSTKIT_WEIGHTS at a directory that has it")
    unwritable = unwritable or (
        f"set ROBUSTKIT_WEIGHTS to a directory you can write, or put {dest.name} in one and "
        "point ROBUSTKIT_WEIGHTS at it"
    )
    with no_new_empty_dirs(dest.parent):
        return _download(url, dest, sha256, timeout, prefix, fix, unwritable)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _content_length(resp: Any) -> int | None:
    """The byte count a reply announces (``Content-Length``), or None where it gives none."""
    value = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _download(
    url: str,
    dest: Path,
    sha256: str,
    timeout: float,
    prefix: bool,
    fix: str,
    unwritable: str,
) -> Path:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise WeightsError(
            f"cannot write the weights directory {dest.parent} ({exc.strerror or exc}); "
            f"{unwritable}"
        ) from None
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        # a fresh opener per download: urlopen's shared one keeps the proxy settings of the
        # process's first request, so a later change of http(s)_proxy went unseen
        opener = urllib.request.build_opener()
        received = 0
        with os.fdopen(fd, "wb") as out, opener.open(url, timeout=timeout) as resp:
            length = _content_length(resp)
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if length is not None and received < length:
            # (http.client ends a short read without an error: this was "sha256 mismatch ...
            # download it by hand", as if the server's file were the wrong one)
            raise WeightsError(
                f"the download of {dest.name} from {url} was cut off after {received} of "
                f"{length} bytes (the connection dropped); the partial file was discarded: "
                f"try again, or {fix}"
            )
        got = digest.hexdigest()
        if not (got.startswith(sha256) if prefix else got == sha256):
            expected = f"{sha256}…" if prefix else sha256
            raise WeightsError(
                f"sha256 mismatch for {dest.name} downloaded from {url}: expected {expected}, "
                f"got {got}; the file was discarded. Download it by hand and put it at {dest}"
            )
        # mkstemp made it private (0600); a weights directory is often shared
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        text = (str(reason).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsError(f"cannot download {dest.name} from {url} ({text}); {fix}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def refuse_a_directory(path: Path, fix: str) -> None:
    """A one-line :class:`WeightsError` where ``path``, the place of a checkpoint file, is a
    directory (a download into it failed only at its end, and "does not exist" misled)."""
    if path.is_dir():
        raise WeightsError(f"{path} is a directory, not a checkpoint file; {fix}")


def resolve_weights(
    filename: str,
    url: str | None,
    sha256: str | None,
    path: str | os.PathLike[str] | None = None,
    allow_download: bool = True,
) -> Path:
    """Find (or fetch) the checkpoint ``filename`` and return its verified path."""
    if path is not None:
        explicit = Path(path).expanduser()
        refuse_a_directory(explicit, "give the path of the checkpoint file in it")
        if not explicit.is_file():
            raise WeightsError(f"weights file {explicit} does not exist; check the path")
        return explicit
    local = weights_dir() / filename
    refuse_a_directory(local, f"remove it or move it away, then put {filename} there")
    if local.is_file():
        if sha256 is None:
            return local
        got = sha256_of_weights(local)
        if got == sha256:
            return local
        fetch = (
            "replace it with the original"
            if url is None or not allow_download or offline()
            else "delete it (robustkit downloads it again) or replace it with the original"
        )
        raise WeightsError(
            f"sha256 mismatch for {local}: expected {sha256}, got {got}; the file was not used: "
            f"{fetch}"
        )
    if url is None or not allow_download or offline():
        raise WeightsError(
            f"weights {filename} not found in {local.parent}; put the file there "
            "or set ROBUSTKIT_WEIGHTS to a directory that has it"
        )
    return download(url, local, sha256 or "")
