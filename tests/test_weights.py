"""Weights resolution: explicit path, local directory with sha256 check, atomic verified download."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

import robustkit
from robustkit.errors import WeightsError
from robustkit.weights import resolve_weights, sha256_file
from robustkit.zoo import model_info

from .conftest import WEIGHTS
from .helpers import unreadable

NAME = "mnist/cnn-tiny-at"  # the smallest checkpoint
INFO = model_info(NAME)
ORIGINAL = WEIGHTS / INFO["file"]


def test_local_directory_is_used_when_sha_matches(monkeypatch, tmp_path):
    shutil.copy(ORIGINAL, tmp_path / INFO["file"])
    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", str(tmp_path))
    path = resolve_weights(INFO["file"], "file:///nonexistent", INFO["sha256"])
    assert path == tmp_path / INFO["file"]


def test_sha_mismatch_in_local_directory_is_refused(monkeypatch, tmp_path):
    bad = tmp_path / INFO["file"]
    bad.write_bytes(ORIGINAL.read_bytes()[:-10] + b"0123456789")
    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match="sha256 mismatch.*was not used") as info:
        robustkit.load_model(NAME, device="cpu")
    assert "\n" not in str(info.value) and "downloads it again" in str(info.value)
    # offline, nothing downloads it again: the fix is the original file
    monkeypatch.setenv("ROBUSTKIT_OFFLINE", "1")
    with pytest.raises(WeightsError, match="not used: replace it with the original$"):
        robustkit.load_model(NAME, device="cpu")


def test_download_from_url_is_verified_and_atomic(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", str(cache))
    url = ORIGINAL.resolve().as_uri()
    path = resolve_weights(INFO["file"], url, INFO["sha256"])
    assert path == cache / INFO["file"] and sha256_file(path) == INFO["sha256"]

    # a corrupted download is discarded and leaves nothing behind
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not the checkpoint")
    with pytest.raises(WeightsError, match="sha256 mismatch.*discarded"):
        resolve_weights("other.pt", corrupt.as_uri(), INFO["sha256"])
    assert sorted(p.name for p in cache.iterdir()) == [INFO["file"]]


def test_missing_weights_without_network(monkeypatch, tmp_path):
    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match=f"cannot download {INFO['file']}.*put the file at") as e:
        resolve_weights(INFO["file"], "http://127.0.0.1:9/nothing-here.pt", INFO["sha256"], None)
    assert "\n" not in str(e.value) and list(tmp_path.iterdir()) == []
    with pytest.raises(WeightsError, match="not found in"):
        resolve_weights(INFO["file"], INFO["url"], INFO["sha256"], allow_download=False)


def test_a_failed_download_leaves_no_directories_and_says_where_it_looked(monkeypatch, tmp_path):
    """A relative ROBUSTKIT_WEIGHTS is read from the current directory: the message names the
    absolute directory, and the directories made for the failed download are removed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", "shared/models")
    with pytest.raises(WeightsError, match=f"put the file at {tmp_path}/shared/models/"):
        resolve_weights(INFO["file"], "http://127.0.0.1:9/nothing-here.pt", INFO["sha256"])
    assert list(tmp_path.iterdir()) == []  # it left shared/models behind
    with pytest.raises(WeightsError, match=f"not found in {tmp_path}/shared/models;"):
        resolve_weights(INFO["file"], INFO["url"], INFO["sha256"], allow_download=False)
    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", "m/../n")  # n, where m is none: it was left behind
    with pytest.raises(WeightsError, match="cannot download"):
        resolve_weights(INFO["file"], "http://127.0.0.1:9/nothing-here.pt", INFO["sha256"])
    assert list(tmp_path.iterdir()) == []


def test_explicit_path(tmp_path):
    copy = tmp_path / "mine.pt"
    shutil.copy(ORIGINAL, copy)
    assert resolve_weights(INFO["file"], None, INFO["sha256"], copy) == copy
    with pytest.raises(WeightsError, match="does not exist"):
        resolve_weights(INFO["file"], None, None, tmp_path / "absent.pt")
    model = robustkit.load_model(NAME, device="cpu", weights=copy)
    assert model.robustkit_weights_sha256 == hashlib.sha256(Path(copy).read_bytes()).hexdigest()


def test_weights_directory_that_cannot_be_created(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for where in ("/proc/robustkit-weights", str(blocker / "weights")):
        monkeypatch.setenv("ROBUSTKIT_WEIGHTS", where)
        with pytest.raises(WeightsError, match="cannot write .*ROBUSTKIT_WEIGHTS") as info:
            resolve_weights(INFO["file"], ORIGINAL.resolve().as_uri(), INFO["sha256"])
        assert "\n" not in str(info.value) and where in str(info.value)


class _Replies:
    """A local server on 127.0.0.1 that answers every connection with the next raw reply."""

    def __init__(self, replies: list[bytes]):
        import socket
        import threading

        self.replies = list(replies)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/w.pt"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for reply in self.replies:
            conn, _ = self.sock.accept()
            conn.recv(65536)
            conn.sendall(reply)
            conn.close()

    def close(self) -> None:
        self.sock.close()


def _no_proxy(monkeypatch) -> None:
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def _http_ok(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


def test_a_broken_http_reply_is_a_one_line_error(monkeypatch, tmp_path):
    """A reply cut off mid-chunk and a reply that is not HTTP at all raised raw http.client
    tracebacks (IncompleteRead, BadStatusLine); nothing is left behind either way."""
    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", str(tmp_path / "w"))
    _no_proxy(monkeypatch)
    cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"
    server = _Replies([cut, b"SSH-2.0-OpenSSH_9.6\r\n"])
    try:
        for _ in range(2):
            with pytest.raises(WeightsError, match=r"cannot download .*put the file at") as e:
                resolve_weights(INFO["file"], server.url, INFO["sha256"])
            assert "\n" not in str(e.value)
    finally:
        server.close()
    assert not (tmp_path / "w").exists()


def test_a_downloaded_file_is_readable_as_the_umask_allows(monkeypatch, tmp_path):
    """Downloads kept mkstemp's private mode (0600): a shared weights directory's files were
    unreadable to everyone else."""
    import os

    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", str(tmp_path))
    _no_proxy(monkeypatch)
    server = _Replies([_http_ok(ORIGINAL.read_bytes())])
    old = os.umask(0o022)
    try:
        path = resolve_weights(INFO["file"], server.url, INFO["sha256"])
    finally:
        os.umask(old)
        server.close()
    assert path.stat().st_mode & 0o777 == 0o644
    assert sha256_file(path) == INFO["sha256"]


def test_each_download_reads_the_proxy_settings_of_its_time(monkeypatch, tmp_path):
    """urlopen's shared opener kept the proxies of the process's first request: after one
    download through a (dead) proxy, a later one without any still went to it."""
    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # a closed port
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    server = _Replies([_http_ok(ORIGINAL.read_bytes())])
    try:
        with pytest.raises(WeightsError, match="cannot download"):
            resolve_weights(INFO["file"], server.url, INFO["sha256"])
        _no_proxy(monkeypatch)
        path = resolve_weights(INFO["file"], server.url, INFO["sha256"])
    finally:
        server.close()
    assert sha256_file(path) == INFO["sha256"]


def test_an_unreadable_weights_file_is_a_one_line_error(monkeypatch, tmp_path):
    """Found by review: a checkpoint in $ROBUSTKIT_WEIGHTS without read permission ended the
    run with a PermissionError traceback from hashing it."""
    local = tmp_path / INFO["file"]
    shutil.copy(ORIGINAL, local)
    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", str(tmp_path))
    unreadable(monkeypatch, local)
    with pytest.raises(WeightsError, match="cannot read weights file .*Permission denied") as e:
        robustkit.load_model(NAME, device="cpu")
    assert "\n" not in str(e.value) and f"chmod a+r {local}" in str(e.value)


def test_a_download_cut_off_before_its_length_says_so(monkeypatch, tmp_path):
    """A reply that ended before its Content-Length (the connection dropped) was reported as
    a sha256 mismatch, "download it by hand", as if the server's file were the wrong one: it
    is an interrupted download, to try again. Nothing is left behind."""
    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", str(tmp_path / "w"))
    _no_proxy(monkeypatch)
    body = ORIGINAL.read_bytes()
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    server = _Replies([head + body[:1000]])
    try:
        with pytest.raises(WeightsError, match="cut off after 1000 of") as e:
            resolve_weights(INFO["file"], server.url, INFO["sha256"])
    finally:
        server.close()
    assert "\n" not in str(e.value) and "sha256 mismatch" not in str(e.value)
    assert "try again" in str(e.value) and not (tmp_path / "w").exists()


def test_a_directory_in_place_of_the_weights_file_is_named(monkeypatch, tmp_path):
    """A directory under the checkpoint's name in $ROBUSTKIT_WEIGHTS was downloaded over (the
    download failed at the end, "cannot download ... Is a directory", and offline the file was
    "not found" there); a directory given as the weights path "does not exist"."""
    (tmp_path / INFO["file"]).mkdir()
    monkeypatch.setenv("ROBUSTKIT_WEIGHTS", str(tmp_path))
    url = ORIGINAL.resolve().as_uri()  # a download that would succeed, but for the directory
    for allow_download in (True, False):
        with pytest.raises(WeightsError, match="is a directory, not a checkpoint file") as e:
            resolve_weights(INFO["file"], url, INFO["sha256"], None, allow_download)
        assert "\n" not in str(e.value) and f"{tmp_path / INFO['file']}" in str(e.value)
        assert "cannot download" not in str(e.value)
    assert [p.name for p in tmp_path.iterdir()] == [INFO["file"]]  # no temporary file left
    with pytest.raises(WeightsError, match="is a directory, not a checkpoint file") as e:
        robustkit.load_model(NAME, device="cpu", weights=tmp_path)
    assert "does not exist" not in str(e.value)


def test_robustkit_offline_reads_as_a_switch(monkeypatch):
    """ROBUSTKIT_OFFLINE=off (or =False, =no, =0, empty) means online; it was read as offline,
    as any value but 0, false and no was, and every download was refused."""
    from robustkit.weights import offline

    for value in ("1", "true", "yes", "on", "TRUE"):
        monkeypatch.setenv("ROBUSTKIT_OFFLINE", value)
        assert offline(), value
    for value in ("", "0", "false", "False", "no", "off", "OFF", " 0 "):
        monkeypatch.setenv("ROBUSTKIT_OFFLINE", value)
        assert not offline(), value
