"""Output paths that cannot be written (a part of the path is a file) are one-line errors that
name the path, and --save-adv / --out are checked before anything is computed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import robustkit.runner as runner
from robustkit.cli import cli
from robustkit.errors import RobustkitError
from robustkit.store import Store


def assert_one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def afile(tmp_path):
    path = tmp_path / "afile"
    path.write_text("not a directory")
    return path


@pytest.fixture
def no_computation(monkeypatch):
    """Fails the test if any run is prepared or executed."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("computed before the output path was checked")

    monkeypatch.setattr(runner, "prepare", refuse)
    monkeypatch.setattr(runner, "execute", refuse)
    return calls


EVALUATE = ["evaluate", "--model", "mnist/cnn-tiny-at", "--n", "5", "--attack", "fgsm"]
EVALUATE += ["--device", "cpu", "--no-progress"]


def test_save_adv_under_a_file_is_refused_before_the_run(tmp_path, afile, no_computation):
    db = tmp_path / "r.db"
    result = CliRunner().invoke(
        cli, [*EVALUATE, "--db", str(db), "--save-adv", str(afile / "x.npz")]
    )
    assert_one_line_error(result, "--save-adv", str(afile / "x.npz"), "is a file")
    assert not no_computation and not db.exists()


def test_db_under_a_file_is_a_one_line_error(afile):
    result = CliRunner().invoke(cli, [*EVALUATE, "--db", str(afile / "x.db")])
    assert_one_line_error(result, str(afile / "x.db"), "is a file", "--db")
    with pytest.raises(RobustkitError, match="is a file, not a directory"):
        Store.open(afile / "sub" / "x.db")
    with pytest.raises(RobustkitError, match="is a directory"):
        Store.open(afile.parent)


def test_leaderboard_out_under_a_file_is_refused_before_anything_runs(
    tmp_path, afile, no_computation
):
    db = tmp_path / "r.db"
    Store.open(db).close()
    out = str(afile / "sub")
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--out", out])
    assert_one_line_error(result, "--out", out, "is a file")
    for args in (
        ["leaderboard", "run", "--models", "mnist/cnn-tiny-at", "--db", str(db), "--out", out],
        ["leaderboard", "--out", out, "run", "--models", "mnist/cnn-tiny-at", "--db", str(db)],
    ):
        result = CliRunner().invoke(cli, [*args, "--no-progress"])
        assert_one_line_error(result, "--out", out, "is a file")
    assert not no_computation


def test_save_adv_onto_the_store_or_the_data_is_refused_before_the_run(
    tmp_path, monkeypatch, no_computation
):
    """--save-adv naming the results store (found by review: the examples' zip replaced the
    store, every run in it lost, exit 0), its -wal file, the default store, a symlink to the
    store, the data, the weights or the model file is refused before anything runs; each file
    is left as it was."""
    db = tmp_path / "r.db"
    Store.open(db).close()
    stored = db.read_bytes()
    data = tmp_path / "d.npz"
    data.write_bytes(b"data")
    (tmp_path / "link.db").symlink_to(db)
    home = tmp_path / "home"
    monkeypatch.setenv("ROBUSTKIT_HOME", str(home))
    default = home / "results.db"
    cases = [
        (["--db", str(db)], str(db), "results store"),
        (["--db", str(tmp_path / "." / "r.db")], str(db), "results store"),
        (["--db", str(db)], str(tmp_path / "link.db"), "results store"),
        (["--db", str(tmp_path / "link.db")], str(db), "results store"),
        (["--db", str(db)], str(db) + "-wal", "-wal"),
        ([], str(default), "results store"),
        (["--db", str(db), "--data", str(data)], str(data), "--data"),
        (["--db", str(db), "--weights", str(data)], str(data), "--weights"),
        (["--db", str(db), "--model", f"{data}.py:build"], f"{data}.py", "model file"),
    ]
    for options, save_adv, what in cases:
        args = [*EVALUATE, *options, "--save-adv", save_adv]
        if "--model" in options:  # (given once: a second --model is refused)
            args[1:3] = []
        result = CliRunner().invoke(cli, args)
        assert_one_line_error(result, "--save-adv", save_adv, what, "another file")
    assert not no_computation
    assert db.read_bytes() == stored and data.read_bytes() == b"data"
    assert not default.exists() and not (tmp_path / "r.db-wal").exists()


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def test_outputs_never_write_through_a_file_planted_at_their_temporary_name(tmp_path):
    """--out and --save-adv wrote through a fixed temporary name (``leaderboard.md.part``,
    ``adv.npz.part``), following a symlink found there: in a shared directory, anyone could
    plant ``leaderboard.md.part -> ~/.bashrc`` and have that file overwritten with the board.
    The temporary files are now new files of their own (never an existing one), none is left
    behind, and the outputs get the usual permissions."""
    from .fake_store import LINF, add_run, robust

    db = tmp_path / "r.db"
    with Store.open(db) as store:
        add_run(store, "a" * 16, {"pgd": (LINF, robust("rrff"))})
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("precious\n")
    for name in ("leaderboard.md.part", "leaderboard.html.part"):
        (out / name).symlink_to(victim)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"
    assert (out / "leaderboard.md").read_text().startswith("# robustkit leaderboard")
    made = sorted(p.name for p in out.iterdir() if not p.is_symlink())
    assert made == ["leaderboard.csv", "leaderboard.html", "leaderboard.json", "leaderboard.md"]
    assert {(out / name).stat().st_mode & 0o777 for name in made} == {_umask_mode()}

    adv = tmp_path / "adv.npz"
    (tmp_path / "adv.npz.part").symlink_to(victim)
    args = [*EVALUATE, "--db", str(tmp_path / "e.db"), "--save-adv", str(adv)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious\n"
    assert np.load(adv, allow_pickle=False)["x_adv"].shape == (5, 1, 28, 28)
    assert adv.stat().st_mode & 0o777 == _umask_mode()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part") and not p.is_symlink()]


def test_a_failed_leaderboard_write_leaves_the_earlier_files_and_no_temporary_ones(
    tmp_path, monkeypatch
):
    """A write that fails part way (a full disk at the third file) left a half-written
    ``leaderboard.json.part`` behind and a mixed set: Markdown and CSV of the new board beside
    JSON and HTML of the old one. Now every file is written before any replaces its old one:
    the old set stays whole, and no temporary file is left."""
    import robustkit.leaderboard as leaderboard

    from .fake_store import LINF, add_run, robust

    db, out = tmp_path / "r.db", tmp_path / "out"
    with Store.open(db) as store:
        add_run(store, "a" * 16, {"pgd": (LINF, robust("rrff"))}, model="old")
    assert (
        CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--out", str(out)]).exit_code == 0
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with Store.open(db) as store:
        add_run(store, "b" * 16, {"pgd": (LINF, robust("rrrf"))}, model="new")

    def full_disk(board):
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(leaderboard.RENDERERS, "json", full_disk)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Error: cannot write --out" in result.output and "No space left" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_leaderboard_out_holding_a_directory_at_a_file_name_is_refused_before_anything_runs(
    tmp_path, no_computation
):
    """A directory at ``--out DIR/leaderboard.json`` was found only when the board was written,
    after every run of `leaderboard run` (hours for the full preset), in an error that did not
    say which file ("Is a directory"), with leaderboard.md and .csv already replaced."""
    db, out = tmp_path / "r.db", tmp_path / "out"
    Store.open(db).close()
    (out / "leaderboard.json").mkdir(parents=True)
    for args in (
        ["leaderboard", "--db", str(db), "--out", str(out)],
        ["leaderboard", "run", "--models", "mnist/cnn-tiny-at", "--db", str(db), "--out", str(out)],
    ):
        result = CliRunner().invoke(cli, [*args, "--no-progress"] if "run" in args else args)
        assert_one_line_error(result, "--out", str(out / "leaderboard.json"), "is a directory")
    assert not no_computation
    assert sorted(p.name for p in out.iterdir()) == ["leaderboard.json"]


def test_a_pipe_or_device_as_an_output_or_store_is_refused_before_anything_runs(
    tmp_path, monkeypatch, no_computation
):
    """A path that is not a regular file (a FIFO here; ``/dev/null`` or ``/dev/stdout`` for a
    user who wants no store or the examples on stdout) was taken as a file: --save-adv replaced
    it with the .npz (as root, ``--save-adv /dev/stdout`` would replace the system's
    ``/dev/stdout``), --db said "disk I/O error ... what it holds is kept: rerun the same command
    to resume" (as root, leaving ``/dev/null-journal`` behind), or "no results store" to the
    read commands. Each is now a one-line error naming it, before anything is computed."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    db = tmp_path / "r.db"
    Store.open(db).close()
    result = CliRunner().invoke(cli, [*EVALUATE, "--db", str(db), "--save-adv", str(fifo)])
    assert_one_line_error(result, "--save-adv", str(fifo), "not a regular file")
    for command in (["runs", "list"], ["leaderboard"]):
        result = CliRunner().invoke(cli, [*command, "--db", str(fifo)])
        assert_one_line_error(result, str(fifo), "not a regular file")
    for create in (True, False):
        with pytest.raises(RobustkitError, match="not a regular file"):
            Store.open(fifo, create=create)
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "leaderboard.csv")
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--out", str(out)])
    assert_one_line_error(result, "--out", str(out / "leaderboard.csv"), "not a regular file")
    assert not no_computation
    monkeypatch.undo()  # (the store is opened once the model and data are loaded)
    result = CliRunner().invoke(cli, [*EVALUATE, "--db", str(fifo)])
    assert_one_line_error(result, "--db", str(fifo), "not a regular file")
    assert fifo.is_fifo() and (out / "leaderboard.csv").is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "pipe", "r.db"]


def test_a_dangling_symlink_in_an_output_path_is_refused_before_anything_runs(
    tmp_path, no_computation
):
    """A symlink to a directory that is not there (an unmounted share, a moved folder) passed
    the checks made before a run, as a path still to be made: --save-adv and `leaderboard run
    --out` failed only once every run was computed, with "File exists", which did not say why;
    --db said its directory "cannot be created (File exists)". Each is now refused first, with
    the symlink and where it points named."""
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "unmounted")
    db = tmp_path / "r.db"
    Store.open(db).close()
    needles = (str(link), "symlink", str(tmp_path / "unmounted"), "does not exist")
    for sub in ("", "sub"):
        out = str(link / sub) if sub else str(link)
        result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--out", out])
        assert_one_line_error(result, "--out", *needles)
        args = ["leaderboard", "run", "--models", "mnist/cnn-tiny-at", "--db", str(db)]
        result = CliRunner().invoke(cli, [*args, "--out", out, "--no-progress"])
        assert_one_line_error(result, "--out", *needles)
    save_adv = str(link / "adv.npz")
    result = CliRunner().invoke(cli, [*EVALUATE, "--db", str(db), "--save-adv", save_adv])
    assert_one_line_error(result, "--save-adv", *needles)
    with pytest.raises(RobustkitError, match="symlink .* does not exist"):
        Store.open(link / "r.db")
    assert not no_computation
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "r.db"]


def test_an_empty_output_or_store_path_is_refused_not_ignored(
    tmp_path, monkeypatch, no_computation
):
    """``--save-adv "$ADV"`` or ``--out "$DIR"`` with the variable unset (an empty path) was
    taken as no option at all: the run ended with exit status 0 and no file written, nor a
    word (`leaderboard run` wrote to its default directory instead); ``--db ""`` said ". is a
    directory". Each is now a one-line error saying the path is empty, before anything runs."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "r.db"
    Store.open(db).close()
    result = CliRunner().invoke(cli, [*EVALUATE, "--db", str(db), "--save-adv", ""])
    assert_one_line_error(result, "--save-adv", "empty")
    for args in (
        ["leaderboard", "--db", str(db), "--out", ""],
        ["leaderboard", "run", "--models", "mnist/cnn-tiny-at", "--db", str(db), "--out", ""],
        ["leaderboard", "--out", "", "run", "--models", "mnist/cnn-tiny-at", "--db", str(db)],
    ):
        result = CliRunner().invoke(cli, [*args, "--no-progress"] if "run" in args else args)
        assert_one_line_error(result, "--out", "empty")
    for args in (["runs", "list"], ["leaderboard"]):
        result = CliRunner().invoke(cli, [*args, "--db", ""])
        assert_one_line_error(result, "--db", "empty")
    with pytest.raises(RobustkitError, match="empty"):
        Store.open("")
    assert not no_computation
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db"]


def test_a_stream_of_the_process_as_an_output_or_store_is_refused(tmp_path, no_computation):
    """``--save-adv /dev/stdout`` with stdout redirected to a file passed the check for pipes
    and devices (its target is a regular file), so the examples' file replaced the symlink
    itself: as root, the system's /dev/stdout became a plain file. A path that leads into
    /proc (/dev/stdout, /dev/fd/1, /proc/self/fd/1; here a symlink in tmp_path to
    /proc/self/fd/1, which pytest redirects to a file) is refused like a pipe."""
    stdout = tmp_path / "stdout.npz"
    stdout.symlink_to("/proc/self/fd/1")
    db = tmp_path / "r.db"
    Store.open(db).close()
    for target in (stdout, Path("/proc/self/fd/1")):
        result = CliRunner().invoke(cli, [*EVALUATE, "--db", str(db), "--save-adv", str(target)])
        assert_one_line_error(result, "--save-adv", str(target), "not a regular file")
        with pytest.raises(RobustkitError, match="not a regular file"):
            Store.open(target)
    assert not no_computation and stdout.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db", "stdout.npz"]


def test_an_output_written_again_keeps_the_permissions_its_file_had(tmp_path):
    """--out and --save-adv replace a file by a new one (written beside it, then renamed onto
    it): a board or examples file made private (chmod 600) became readable by all (0644, the
    umask's) at the next run, where writing it in place keeps its mode. The new file takes
    the mode of the file it replaces; a file new to the directory gets the umask's."""
    from robustkit.cli_evaluate import part_file

    from .fake_store import LINF, add_run, robust

    db, out = tmp_path / "r.db", tmp_path / "out"
    with Store.open(db) as store:
        add_run(store, "a" * 16, {"pgd": (LINF, robust("rrff"))})
    out.mkdir()
    (out / "leaderboard.md").write_text("old")
    (out / "leaderboard.md").chmod(0o600)
    (out / "leaderboard.csv").write_text("old")
    (out / "leaderboard.csv").chmod(0o640)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert modes == {
        "leaderboard.md": 0o600,
        "leaderboard.csv": 0o640,
        "leaderboard.json": _umask_mode(),
        "leaderboard.html": _umask_mode(),
    }
    adv = tmp_path / "adv.npz"
    adv.write_bytes(b"old")
    adv.chmod(0o600)
    tmp, fh = part_file(adv)
    with fh:
        fh.write(b"new")
    assert tmp.stat().st_mode & 0o777 == 0o600
    tmp.replace(adv)
    assert adv.stat().st_mode & 0o777 == 0o600 and adv.read_bytes() == b"new"


def test_temporary_files_a_killed_write_left_are_cleared_at_the_next_write(tmp_path):
    """A process killed while it wrote an output (SIGKILL, the OOM killer during a large
    --save-adv) leaves its ``NAME.<random>.part`` file, and each such kill left one more, for
    good. Writing NAME again removes those of its own that are a day old or more (a write in
    progress is younger); nothing else: another output's, a recent one, a symlink, a name
    not of that pattern."""
    import time

    from robustkit.cli_evaluate import part_file

    path = tmp_path / "adv.npz"
    day_old = time.time() - 25 * 3600
    names = {
        "stale": "adv.npz.0123abcd.part",
        "recent": "adv.npz.89abcdef.part",
        "other output": "leaderboard.md.0123abcd.part",
        "not ours": "adv.npz.notours!.part",
        "user file": "adv.npz.backup.part",
    }
    for what, name in names.items():
        (tmp_path / name).write_text(what)
        if what != "recent":
            os.utime(tmp_path / name, (day_old, day_old))
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "adv.npz.fedcba98.part").symlink_to(victim)
    os.utime(tmp_path / "adv.npz.fedcba98.part", (day_old, day_old), follow_symlinks=False)
    tmp, fh = part_file(path)
    with fh:
        fh.write(b"new")
    tmp.replace(path)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"adv.npz", "victim", "adv.npz.fedcba98.part"} | set(names.values()) - {
        names["stale"]
    }
    assert victim.read_text() == "precious"
