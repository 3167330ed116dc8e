"""The results store: resumable runs after SIGKILL, concurrent writers, refusing foreign files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import robustkit.store as store_module
from robustkit.errors import RobustkitError
from robustkit.runner import RunConfig, run_evaluation, summarize
from robustkit.store import SCHEMA_VERSION, Store

ROOT = Path(__file__).resolve().parents[1]
SLOW_ATTACK = "pgd:steps=150,early_stop=false"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from robustkit.cli import main; main()", *args]


def evaluate_args(
    db: Path, n: int = 400, attack: str = SLOW_ATTACK, model: str = "mnist/cnn-tiny-at"
):
    return [
        "evaluate",
        "--model",
        model,
        "--n",
        str(n),
        "--batch-size",
        "50",
        "--attack",
        attack,
        "--db",
        str(db),
        "--format",
        "json",
        "--no-progress",
        "--device",
        "cpu",
    ]


def shard_times(db: Path) -> dict[int, float]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT shard, finished FROM shards").fetchall())


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed_db, clean_db = tmp_path / "killed.db", tmp_path / "clean.db"
    proc = subprocess.Popen(
        cli(*evaluate_args(killed_db)),
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if killed_db.exists():
            try:
                if len(shard_times(killed_db)) >= 2:
                    break
            except sqlite3.Error:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = shard_times(killed_db)
    assert 2 <= len(before) < 8, f"kill came too late or too early: {sorted(before)}"

    resumed = subprocess.run(
        cli(*evaluate_args(killed_db)),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    after = shard_times(killed_db)
    assert len(after) == 8
    assert all(after[s] == t for s, t in before.items())  # finished shards were not recomputed

    clean = subprocess.run(
        cli(*evaluate_args(clean_db)),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert clean.returncode == 0, clean.stderr
    a, b = json.loads(resumed.stdout), json.loads(clean.stdout)
    assert a["run_id"] == b["run_id"]
    for key in ("clean_accuracy", "robust_accuracy", "n"):
        assert a[key] == b[key]
    for label in a["attacks"]:
        for key in ("robust_accuracy", "success_rate", "median_norm", "forwards", "gradients"):
            assert a["attacks"][label][key] == b["attacks"][label][key]
    with Store.open(killed_db) as s1, Store.open(clean_db) as s2:
        strip = lambda rows: [{k: v for k, v in r.items() if k != "run_id"} for r in rows]  # noqa: E731
        assert strip(s1.results(a["run_id"])) == strip(s2.results(b["run_id"]))


@pytest.mark.slow
def test_two_writers_at_once(tmp_path):
    db = tmp_path / "shared.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            cli(*evaluate_args(db, n=300, attack="pgd:steps=40,early_stop=false", model=model)),
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for model in ("mnist/cnn-tiny-at", "mnist/cnn-a-at")
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    with Store.open(db) as store:
        runs = store.runs(status="finished")
        assert len(runs) == 2
        for run in runs:
            assert len(store.samples(run["run_id"])) == 300
            assert len(store.results(run["run_id"])) == 300
            assert len(store.shards(run["run_id"])) == 6


def foreign_db(path: Path) -> Path:
    """Another program's SQLite database (a table robustkit never makes)."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    return path


def truncated_db(path: Path) -> Path:
    """A robustkit store cut short after its header."""
    with Store.open(path):
        pass
    path.write_bytes(path.read_bytes()[:100] + b"\x00" * 50)
    return path


def test_refuses_corrupt_and_foreign_files(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 10)
    original = junk.read_bytes()
    with pytest.raises(RobustkitError, match="not a SQLite database.*left untouched"):
        Store.open(junk)
    assert junk.read_bytes() == original
    for not_a_path in (5, b"x.db", ["x.db"]):  # raw TypeErrors from pathlib before
        with pytest.raises(RobustkitError, match="a results store is a file path"):
            Store.open(not_a_path)

    foreign = foreign_db(tmp_path / "foreign.db")
    original = foreign.read_bytes()
    with pytest.raises(RobustkitError, match="another program's database"):
        Store.open(foreign)
    assert foreign.read_bytes() == original

    # no tables, but marked by another program (user_version): once "written by a newer
    # robustkit"
    marked = tmp_path / "marked.db"
    conn = sqlite3.connect(marked)
    conn.execute("PRAGMA user_version = 5")
    conn.close()
    with pytest.raises(RobustkitError, match="another program's database"):
        Store.open(marked)

    truncated = truncated_db(tmp_path / "truncated.db")
    with pytest.raises(RobustkitError):
        with Store.open(truncated) as s:
            s.runs()

    from click.testing import CliRunner

    from robustkit.cli import cli as click_cli

    result = CliRunner().invoke(click_cli, ["leaderboard", "--db", str(junk)])
    assert (
        result.exit_code == 2
        and result.output.startswith("Error: ")
        and "Traceback" not in result.output
    )


def test_a_refused_store_leaves_no_connection_open(tmp_path, monkeypatch):
    """Every way Store.open can refuse a file closes the connection it opened."""
    opened = []
    connect = sqlite3.connect

    def recording_connect(*args, **kwargs):
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(store_module.sqlite3, "connect", recording_connect)
    foreign = foreign_db(tmp_path / "foreign.db")
    newer = tmp_path / "newer.db"
    with Store.open(newer) as store:
        store.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    truncated = truncated_db(tmp_path / "truncated.db")
    opened.clear()
    for path in (foreign, newer, truncated):
        with pytest.raises(RobustkitError):
            Store.open(path)
    assert len(opened) == 3
    for conn in opened:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")


def test_schema_version_and_fresh(tmp_path):
    db = tmp_path / "r.db"
    config = RunConfig(
        model="mnist/cnn-tiny-at", n=20, batch_size=10, attacks=("fgsm",), device="cpu"
    )
    first = run_evaluation(config, db=db, progress=False)
    with Store.open(db) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        t0 = {s["shard"]: s["finished"] for s in store.shards(first["run_id"])}
    again = run_evaluation(config, db=db, progress=False)
    with Store.open(db) as store:
        assert {s["shard"]: s["finished"] for s in store.shards(first["run_id"])} == t0
    fresh = run_evaluation(config, db=db, fresh=True, progress=False)
    with Store.open(db) as store:
        assert {s["shard"]: s["finished"] for s in store.shards(first["run_id"])} != t0
        assert summarize(store, first["run_id"])["robust_accuracy"] == first["robust_accuracy"]
    assert again["robust_accuracy"] == first["robust_accuracy"] == fresh["robust_accuracy"]
    other_seed = RunConfig(**{**config.__dict__, "seed": 1})
    assert run_evaluation(other_seed, db=db, progress=False)["run_id"] != first["run_id"]


def test_a_store_of_the_first_schema_without_stages_is_written_and_read(tmp_path, monkeypatch):
    """The results table gained its ``stage`` column (2026-11-23) without a new schema version
    or a migration: a store made before, still version 1, refused every shard ("table results
    has 13 columns but 14 values were supplied"; resuming or adding a run was impossible) and
    its results frame was a KeyError. Opened writable, it gets the column; read-only, its rows
    read with no stage."""
    import robustkit.results as rr

    db = tmp_path / "old.db"
    config = RunConfig(model="mnist/cnn-tiny-at", n=4, batch_size=2, attacks=("fgsm",))
    first = run_evaluation(config, db=db, progress=False)
    with Store.open(db) as store:  # as the first schema made it
        store.conn.execute("ALTER TABLE results DROP COLUMN stage")
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with monkeypatch.context() as m:  # read-only: read as it is
        m.setattr(store_module, "directory_problem", lambda d: f"{d} is not writable")
        with rr.open(db) as res:
            assert res.results()["stage"].isna().all() and len(res.results()) == 4
    other = run_evaluation(RunConfig(**{**config.__dict__, "eps": 0.1}), db=db, progress=False)
    assert other["n"] == 4 and other["status"] == "finished"
    with rr.open(db) as res:
        assert len(res.results()) == 8
        assert summarize(res.store, first["run_id"]) == first


def test_a_new_store_waits_for_another_process_creating_it(tmp_path):
    """Two processes opening one new store at once: the second waits for the first's lock
    (the switch to WAL gets SQLITE_BUSY at once, without SQLite's busy handler) instead of
    failing with "database is locked"."""
    db = tmp_path / "new.db"
    creator = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN IMMEDIATE")  # what a creating process holds while it migrates
    creator.execute("CREATE TABLE other_creator (x)")
    release = threading.Timer(0.5, lambda: creator.execute("ROLLBACK"))
    release.start()
    t0 = time.monotonic()
    try:
        with Store.open(db) as store:
            assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        release.join()
        creator.close()
    assert time.monotonic() - t0 >= 0.4  # it did wait for the lock


def test_a_store_locked_for_too_long_is_a_one_line_error(tmp_path, monkeypatch):
    db = tmp_path / "new.db"
    creator = sqlite3.connect(db, isolation_level=None)
    creator.execute("BEGIN EXCLUSIVE")
    creator.execute("CREATE TABLE other_creator (x)")
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT_S", 0.3)
    try:
        with pytest.raises(RobustkitError, match="locked by another process.*another --db"):
            Store.open(db)
    finally:
        creator.execute("ROLLBACK")
        creator.close()


def test_a_read_of_a_store_out_of_wal_mode_locked_too_long_is_a_one_line_error(
    tmp_path, monkeypatch
):
    """A store another tool switched to a rollback journal (``PRAGMA journal_mode=DELETE``)
    blocks its readers while that tool writes: a read that waited past the busy timeout ended
    in a raw ``sqlite3.OperationalError: database is locked`` traceback (in WAL mode readers
    never wait). It is the one-line error of a store locked for too long."""
    import robustkit.results as rr

    db = tmp_path / "r.db"
    with Store.open(db) as store:
        _stored_run(store, "r", [0, 1], [[0, 1]])
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("PRAGMA journal_mode = DELETE")
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT_S", 0.05)
    with Store.open(db) as store, rr.open(db) as res:
        other.execute("BEGIN EXCLUSIVE")  # the other tool writing
        try:
            reads = (
                store.runs,
                lambda: store.get_run("r"),
                store.sample_counts,
                lambda: store.samples("r"),
                lambda: store.results("r"),
                lambda: store.checks("r"),
                lambda: store.shards("r"),
                lambda: store.finished_shards("r"),
                lambda: store.is_complete("r"),
                lambda: res.runs,
            )
            for read in reads:
                with pytest.raises(RobustkitError, match="locked by another process") as info:
                    read()
                assert "\n" not in str(info.value)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert store.get_run("r")["run_id"] == "r"  # and it reads once the lock is gone


def test_a_ctrl_c_while_waiting_for_a_locked_store_stops_the_wait(tmp_path, monkeypatch):
    """A writer waited for another process's lock in one SQLite busy wait of the whole
    timeout (a minute), during which Python cannot act on a Ctrl-C: it was held until the wait
    ended. The wait is now made of short ones, and a Ctrl-C ends it at once, with nothing
    left open on the connection and a write lock still there for the next transaction."""
    import _thread

    db = tmp_path / "r.db"
    Store.open(db).close()
    # In one busy wait the Ctrl-C is held for the whole timeout: 30 s, far from the bound below,
    # which leaves a loaded machine seconds for a wait of 0.3 s and a 0.1 s slice.
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT_S", 30.0)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with Store.open(db) as store:
        ctrl_c = threading.Timer(0.3, _thread.interrupt_main)
        t0 = time.monotonic()
        ctrl_c.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                with store.transaction():
                    pass
        finally:
            ctrl_c.join()
            other.execute("ROLLBACK")
            other.close()
        assert time.monotonic() - t0 < 10  # 30 s before: the whole busy wait
        assert not store.conn.in_transaction
        with store.transaction() as conn:  # and the next one takes the lock
            conn.execute("CREATE TABLE written (x)")
        assert store.conn.execute("SELECT count(*) FROM written").fetchone()[0] == 0


def test_many_connections_creating_one_store_at_once(tmp_path):
    """Eight connections open one new store together, 30 times over: every one gets the
    store (before the fix, about one in five was refused as "another program's database",
    reading the file between the creator's tables and its application id, or hit "database
    is locked" switching to WAL)."""
    failures: list[str] = []

    def open_store(db: Path, start: threading.Barrier) -> None:
        start.wait()
        try:
            Store.open(db).close()
        except Exception as exc:  # noqa: BLE001 - every failure is what the test counts
            failures.append(repr(exc))

    for trial in range(30):
        db = tmp_path / f"trial{trial}.db"
        start = threading.Barrier(8)
        threads = [threading.Thread(target=open_store, args=(db, start)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with Store.open(db) as store:
            assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert not failures, failures[:3]


def _stored_run(store: Store, run_id: str, indices: list[int], shards: list[list[int]]) -> dict:
    """Register a run over ``indices`` and store the given shards of it (plain Store API)."""
    fields = {
        "config": "{}",
        "model": "m",
        "dataset": "mnist",
        "split": "test",
        "indices": json.dumps(indices),
        "norm": "linf",
        "eps": 0.3,
        "attacks": json.dumps({"fgsm": {"name": "fgsm", "params": {"eps": 0.3}}}),
        "defenses": "{}",
        "seed": 0,
        "device": "cpu",
        "versions": "{}",
    }
    store.start_run(run_id, fields)
    for k, idx in enumerate(shards):
        rows = [("fgsm", i, 1, 0, 1, 3, 0.0, 0.0, 0.0, 1, 1, None, None) for i in idx]
        store.write_shard(
            run_id, k, idx[0], idx[-1] + 1, 0.1, {"fgsm": 0.1}, [(i, 3, 3) for i in idx], rows
        )
    return fields


def test_rerunning_a_finished_run_keeps_it_finished(tmp_path):
    """Rerunning a finished run once set it back to 'running': it left the leaderboard while it
    reran, and for good if the rerun was interrupted, although every shard was stored. A
    finished run whose samples are all stored now stays finished (with the device it was
    computed on); one that lacks shards, and a --fresh rerun, go back to running."""
    with Store.open(tmp_path / "r.db") as store:
        fields = _stored_run(store, "done", [0, 1, 2, 3], [[0, 1], [2, 3]])
        store.finish_run("done")
        finished_at = store.get_run("done")["finished"]
        # the same command again, on another device, interrupted before it finishes
        assert store.start_run("done", {**fields, "device": "cuda:0"}) is True
        run = store.get_run("done")
        assert run["status"] == "finished" and run["finished"] == finished_at
        assert run["device"] == "cpu"
        assert [r["run_id"] for r in store.runs(status="finished")] == ["done"]
        assert store.finished_shards("done") == {0, 1}
        # a finished run that lacks a shard is resumed as before
        _stored_run(store, "partial", [0, 1, 2, 3], [[0, 1]])
        store.finish_run("partial")
        assert store.start_run("partial", fields) is True
        assert store.get_run("partial")["status"] == "running"
        # a running run stays running
        assert store.start_run("partial", fields) is True
        assert store.get_run("partial")["status"] == "running"
        # --fresh starts the finished run over: it stays, whole, until the first new shard
        assert store.start_run("done", fields, fresh=True) is False
        assert store.replacing("done") and store.get_run("done")["status"] == "finished"
        assert store.finished_shards("done") == {0, 1}
        store.write_shard("done", 1, 2, 4, 0.1, {}, [(2, 0, 0), (3, 0, 0)], [])
        assert not store.replacing("done") and store.get_run("done")["status"] == "running"
        assert store.finished_shards("done") == {1}
        assert [s["idx"] for s in store.samples("done")] == [2, 3]


def test_rerunning_a_complete_run_computes_nothing(tmp_path, monkeypatch):
    """The same command again on a finished run whose samples are all stored reran the sanity
    checks (a stronger attack on up to 64 samples) and rewrote the time it finished. It now
    computes nothing and changes nothing; a run stored without checks gets them when asked."""
    import robustkit.sanity as sanity

    config = RunConfig(
        model="mnist/cnn-tiny-at", n=8, batch_size=8, eps=0.1, device="cpu", attacks=("fgsm",)
    )
    db = tmp_path / "r.db"
    first = run_evaluation(config, db=db, progress=False)
    with Store.open(db) as store:
        before = store.get_run(first["run_id"])
        checks = store.checks(first["run_id"])
    assert before["status"] == "finished" and checks

    def no_checks(*args, **kwargs):
        raise AssertionError("a complete run's checks were recomputed")

    monkeypatch.setattr(sanity, "run_checks", no_checks)
    again = run_evaluation(config, db=db, progress=False)
    with Store.open(db) as store:
        assert store.get_run(first["run_id"]) == before
        assert store.checks(first["run_id"]) == checks
    assert again == first
    monkeypatch.undo()

    # stored without checks (sanity=False), then asked again with them: they are computed once
    bare = RunConfig(**{**config.__dict__, "eps": 0.2, "sanity": False})
    run_id = run_evaluation(bare, db=db, progress=False)["run_id"]
    with Store.open(db) as store:
        finished = store.get_run(run_id)["finished"]
        assert store.checks(run_id) == []
    run_evaluation(RunConfig(**{**bare.__dict__, "sanity": True}), db=db, progress=False)
    with Store.open(db) as store:
        assert store.checks(run_id) and store.get_run(run_id)["finished"] == finished


def test_read_only_and_full_stores_are_one_line_errors_and_keep_what_they_hold(
    tmp_path, monkeypatch
):
    """A store on read-only storage could not even be read ("cannot be read as a database");
    a write into a read-only or full store was a raw sqlite3 traceback."""
    config = RunConfig(
        model="mnist/cnn-tiny-at", n=8, batch_size=4, eps=0.1, device="cpu", attacks=("fgsm",)
    )
    db = tmp_path / "r.db"
    first = run_evaluation(config, db=db, progress=False)
    # its directory read-only (stubbed: the tests run as root, which chmod does not stop)
    monkeypatch.setattr(store_module, "directory_problem", lambda d: f"{d} is not writable")
    assert run_evaluation(config, db=db, progress=False) == first  # complete: it only reads
    other = RunConfig(**{**config.__dict__, "eps": 0.2})
    with pytest.raises(RobustkitError, match="it is read-only; what it holds is kept") as info:
        run_evaluation(other, db=db, progress=False)
    assert str(info.value).endswith("pass a writable db=") and "\n" not in str(info.value)
    from click.testing import CliRunner

    from robustkit.cli import cli

    args = ["evaluate", "--model", "mnist/cnn-tiny-at", "--n", "8", "--batch-size", "4"]
    args += ["--eps", "0.2", "--attack", "fgsm", "--device", "cpu", "--db", str(db)]
    result = CliRunner().invoke(cli, [*args, "--no-progress"])
    assert result.exit_code == 2 and result.output.strip().endswith("pass a writable --db")
    monkeypatch.undo()
    with Store.open(db) as store:
        assert summarize(store, first["run_id"]) == first
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # a disk about to be full
        with pytest.raises(RobustkitError, match="the disk is full; what it holds is kept"):
            with store.transaction() as conn:
                conn.execute("CREATE TABLE filler (x BLOB)")
                conn.execute("INSERT INTO filler VALUES (zeroblob(1000000))")
        assert summarize(store, first["run_id"]) == first


def test_a_new_store_on_a_full_disk_is_a_one_line_error(tmp_path, monkeypatch):
    """Creating a store on a full disk (seen on a full tmpfs) ended in a raw sqlite3 traceback
    from the switch to WAL mode, the first write a new store makes."""

    class FullDisk(sqlite3.Connection):
        def execute(self, sql, *args):
            if sql.startswith("PRAGMA journal_mode"):
                raise sqlite3.OperationalError("database or disk is full")
            return super().execute(sql, *args)

    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real(*a, **k, factory=FullDisk))
    db = tmp_path / "new.db"
    with pytest.raises(RobustkitError, match="the disk is full") as info:
        Store.open(db)
    assert str(db) in str(info.value) and "\n" not in str(info.value)


def test_a_read_only_store_shows_what_its_write_ahead_log_holds(tmp_path, monkeypatch):
    """A store in a read-only directory was opened immutable, which ignores the -wal file: runs
    its writer (still running, say a notebook that holds the store open) had finished were
    missing from the reader's reports, silently."""
    config = RunConfig(
        model="mnist/cnn-tiny-at", n=4, batch_size=4, eps=0.1, device="cpu", attacks=("fgsm",)
    )
    db = tmp_path / "w.db"
    run_evaluation(config, db=db, progress=False)
    holder = sqlite3.connect(db)  # the writer's process keeps the store (and its log) open
    holder.execute("SELECT count(*) FROM sqlite_master").fetchall()
    second = run_evaluation(RunConfig(**{**config.__dict__, "eps": 0.2}), db=db, progress=False)
    assert Path(f"{db}-wal").stat().st_size > 0
    monkeypatch.setattr(store_module, "directory_problem", lambda d: f"{d} is not writable")
    with Store.open(db) as store:
        assert summarize(store, second["run_id"]) == second
    holder.close()


def test_a_fresh_run_on_a_read_only_store_is_refused_before_computing(tmp_path, monkeypatch):
    """--fresh on a read-only store wrote nothing when it started (the earlier results stay
    until the first shard replaces them), so its first shard was computed, then refused."""
    from .helpers import at_shard

    config = RunConfig(
        model="mnist/cnn-tiny-at", n=4, batch_size=4, eps=0.1, device="cpu", attacks=("fgsm",)
    )
    db = tmp_path / "r.db"
    first = run_evaluation(config, db=db, progress=False)
    monkeypatch.setattr(store_module, "directory_problem", lambda d: f"{d} is not writable")
    computed = []
    at_shard(monkeypatch, 0, lambda: computed.append(0))
    with pytest.raises(RobustkitError, match="it is read-only; what it holds is kept"):
        run_evaluation(config, db=db, fresh=True, progress=False)
    assert computed == []
    monkeypatch.undo()
    with Store.open(db) as store:
        assert summarize(store, first["run_id"]) == first


@pytest.mark.parametrize("create", [True, False])
def test_a_store_path_that_cannot_be_reached_is_a_one_line_error(tmp_path, create):
    """A --db whose file name is too long (or under a directory the user may not read) ended
    in an OSError traceback from the first look at the path."""
    db = tmp_path / ("a" * 300 + ".db")
    with pytest.raises(RobustkitError, match="cannot be read .File name too long.") as info:
        Store.open(db, create=create)
    assert "pass another --db" in str(info.value) and "\n" not in str(info.value)


def test_a_store_write_failing_mid_run_says_once_how_to_resume(tmp_path, monkeypatch):
    """A store write refused after some shards were stored (a disk filling up) gave the store's
    advice and the run's one after the other, and they disagreed on a --fresh run: "...what it
    holds is kept: free space and rerun the same command to resume; 1 of 2 shards of run ... are
    stored in ...: fix that and rerun the same command without --fresh to resume" (the same
    command, --fresh included, deletes the shards just stored). It now says it once, right."""
    from click.testing import CliRunner

    from robustkit.cli import cli

    db = tmp_path / "r.db"
    args = ["evaluate", "--model", "mnist/cnn-tiny-at", "--n", "8", "--batch-size", "4"]
    args += ["--attack", "fgsm", "--device", "cpu", "--no-progress", "--db", str(db)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    real_write = Store.write_shard

    def full_at_the_second_shard(self, run_id, shard, *rest):
        if shard == 1:
            with self.transaction():  # (as SQLite refuses the shard's write)
                raise sqlite3.OperationalError("database or disk is full")
        return real_write(self, run_id, shard, *rest)

    monkeypatch.setattr(Store, "write_shard", full_at_the_second_shard)
    for fresh, go_on in ((["--fresh"], "the same command without --fresh"), ([], "the same")):
        result = CliRunner().invoke(cli, args + fresh)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        (line,) = [ln for ln in result.output.splitlines() if ln.strip()]
        assert line.startswith("Error: cannot write to the results store") and str(db) in line
        assert "the disk is full" in line and "1 of 2 shards of run" in line, line
        assert line.count("rerun") == 1 and f"free space and rerun {go_on}" in line, line


def test_a_resumed_run_keeps_the_versions_and_device_that_began_it(tmp_path):
    """Resuming a run overwrote its stored device and package versions with the resuming
    process's: a run computed half on cpu with torch 2.0 and finished on cuda with torch 2.1
    read as all cuda and torch 2.1. The first ones stay; a resume with others is recorded
    beside them, and the report says so."""
    from robustkit.cli_evaluate import render_report
    from robustkit.runner import summarize

    first = json.dumps({"robustkit": "1.0", "torch": "2.0"})
    later = json.dumps({"robustkit": "1.0", "torch": "2.1"})
    with Store.open(tmp_path / "r.db") as store:
        fields = {**_stored_run(store, "r", [0, 1, 2, 3], [[0, 1]]), "versions": first}
        store.conn.execute("UPDATE runs SET versions = ? WHERE run_id = 'r'", (first,))
        store.conn.commit()
        assert store.start_run("r", fields) is True  # the same process's again: nothing new
        assert json.loads(store.get_run("r")["versions"]) == json.loads(first)
        assert store.start_run("r", {**fields, "versions": later, "device": "cuda:0"}) is True
        run = store.get_run("r")
        assert run["device"] == "cpu"
        versions = json.loads(run["versions"])
        assert versions["torch"] == "2.0"
        assert versions["resumed with"] == [{"device": "cuda:0", "torch": "2.1"}]
        report = render_report(summarize(store, "r"))
    assert "| device cpu (resumed on cuda:0) |" in report, report
    assert "versions: robustkit 1.0, torch 2.0 (resumed with torch 2.1)" in report, report


def test_a_resume_never_writes_into_a_run_another_process_started_over(tmp_path):
    """A process resuming a run while another started it over with --fresh went on writing its
    shards into the new run (its check only asked whether the run still existed, and the new
    one did) and marked it finished: the run was finished with samples missing, and with
    shards computed by the resuming process (its code, before the change --fresh was run for).
    Its writes are now refused with a one-line error; the fresh run stays running until its
    own process finishes it. Interleaved by hand, on two connections."""
    db = tmp_path / "r.db"
    with Store.open(db) as first:
        fields = _stored_run(first, "r", [0, 1, 2, 3, 4, 5], [[0, 1]])
    resuming, fresh = Store.open(db), Store.open(db)
    try:
        assert resuming.start_run("r", fields) is True
        assert resuming.finished_shards("r") == {0}
        assert fresh.start_run("r", fields, fresh=True) is False
        rows = [("fgsm", i, 1, 0, 1, 3, 0.0, 0.0, 0.0, 1, 1, None, None) for i in (2, 3)]
        fresh.write_shard("r", 1, 2, 4, 0.1, {"fgsm": 0.1}, [(2, 3, 3), (3, 3, 3)], rows)
        # the resuming process computed shard 2 meanwhile
        rows = [("fgsm", i, 1, 0, 1, 3, 0.0, 0.0, 0.0, 1, 1, None, None) for i in (4, 5)]
        with pytest.raises(RobustkitError, match="started over") as raised:
            resuming.write_shard("r", 2, 4, 6, 0.1, {"fgsm": 0.1}, [(4, 3, 3), (5, 3, 3)], rows)
        assert "\n" not in str(raised.value) and "--fresh" in str(raised.value)
        with pytest.raises(RobustkitError, match="started over"):
            resuming.write_checks("r", [("check", False, "")])
        with pytest.raises(RobustkitError, match="started over"):
            resuming.finish_run("r")
        assert fresh.get_run("r")["status"] == "running"
        assert fresh.finished_shards("r") == {1} and fresh.checks("r") == []
        # the fresh process goes on as if nothing happened
        for k, idx in ((0, (0, 1)), (2, (4, 5))):
            rows = [("fgsm", i, 1, 0, 1, 3, 0.0, 0.0, 0.0, 1, 1, None, None) for i in idx]
            fresh.write_shard("r", k, idx[0], idx[1] + 1, 0.1, {}, [(i, 3, 3) for i in idx], rows)
        fresh.finish_run("r")
        assert fresh.is_complete("r")
        # a resume begun after the fresh run replaced the earlier one resumes the new one
        assert resuming.start_run("r", fields) is True
        resuming.write_checks("r", [("check", False, "")])
    finally:
        resuming.close()
        fresh.close()


def test_checks_of_a_complete_run_never_land_in_a_run_another_process_started_over(tmp_path):
    """A complete run is not started again (the runner asks is_complete and skips start_run);
    one stored without checks gets them written. is_complete did not record which run it found,
    so where another process's --fresh replaced the run in between, write_checks found the new
    run there and put these checks (of the earlier run's results) into it. Interleaved by hand,
    on two connections."""
    db = tmp_path / "r.db"
    with Store.open(db) as first:
        fields = _stored_run(first, "r", [0, 1], [[0, 1]])
        first.finish_run("r")
    rerun, fresh = Store.open(db), Store.open(db)
    try:
        assert rerun.is_complete("r") and rerun.checks("r") == []
        assert fresh.start_run("r", fields, fresh=True) is False
        rows = [("fgsm", i, 1, 0, 1, 3, 0.0, 0.0, 0.0, 1, 1, None, None) for i in (0, 1)]
        fresh.write_shard("r", 0, 0, 2, 0.1, {}, [(0, 3, 3), (1, 3, 3)], rows)
        with pytest.raises(RobustkitError, match="started over") as raised:
            rerun.write_checks("r", [("check", False, "")])
        assert "\n" not in str(raised.value)
        # nor the shards it computes, which it takes for missing (the new run has shard 0 only)
        with pytest.raises(RobustkitError, match="started over"):
            rerun.write_shard("r", 1, 2, 4, 0.1, {}, [(2, 3, 3), (3, 3, 3)], [])
        assert fresh.checks("r") == [] and fresh.get_run("r")["status"] == "running"
        assert fresh.finished_shards("r") == {0}
        # a complete run found after the fresh one finished is that one: its checks go in
        fresh.finish_run("r")
        assert rerun.is_complete("r")
        rerun.write_checks("r", [("check", False, "")])
        assert [c["name"] for c in fresh.checks("r")] == ["check"]
    finally:
        rerun.close()
        fresh.close()


def test_a_fresh_run_never_writes_into_a_run_another_fresh_run_started(tmp_path):
    """Two --fresh runs of one configuration at once: the second to write found the run
    replaced, took it for its own and wrote into the other's. It is now refused, as a resume
    into a run started over is."""
    db = tmp_path / "r.db"
    with Store.open(db) as first:
        fields = _stored_run(first, "r", [0, 1, 2, 3], [[0, 1], [2, 3]])
        first.finish_run("r")
    one, two = Store.open(db), Store.open(db)
    try:
        assert one.start_run("r", fields, fresh=True) is False
        assert two.start_run("r", fields, fresh=True) is False
        rows = [("fgsm", i, 1, 0, 1, 3, 0.0, 0.0, 0.0, 1, 1, None, None) for i in (0, 1)]
        one.write_shard("r", 0, 0, 2, 0.1, {}, [(0, 3, 3), (1, 3, 3)], rows)
        assert not two.replacing("r")
        with pytest.raises(RobustkitError, match="started over"):
            two.write_shard("r", 0, 0, 2, 0.1, {}, [(0, 3, 3), (1, 3, 3)], rows)
        assert one.replacing("r") is False
        one.write_shard("r", 1, 2, 4, 0.1, {}, [(2, 3, 3), (3, 3, 3)], rows)
    finally:
        one.close()
        two.close()


def test_a_resume_stopped_by_a_fresh_run_in_another_process_says_so_in_one_line(
    tmp_path, monkeypatch
):
    """The runner's message for a resume whose run another process started over says that,
    without counting the other process's shards as this one's ("1 of 3 shards ... are stored:
    fix that and rerun the same command to resume")."""
    from .helpers import at_shard, interrupt

    config = RunConfig(
        model="mnist/cnn-tiny-at", n=12, batch_size=4, eps=0.1, device="cpu", attacks=("fgsm",)
    )
    db = tmp_path / "r.db"
    at_shard(monkeypatch, 1, interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(config, db=db, progress=False)
    with Store.open(db) as store:
        (run,) = store.runs()
    fields = {k: v for k, v in run.items() if k not in ("run_id", "started", "finished", "status")}

    def fresh_in_another_process() -> None:
        with Store.open(db) as other:
            other.start_run(run["run_id"], fields, fresh=True)
            other.write_shard(run["run_id"], 0, 0, 4, 0.1, {}, [(i, 0, 0) for i in range(4)], [])

    monkeypatch.undo()
    at_shard(monkeypatch, 2, fresh_in_another_process)
    with pytest.raises(RobustkitError) as raised:
        run_evaluation(config, db=db, progress=False)
    message = str(raised.value)
    assert "started over by another process (--fresh" in message, message
    assert "shards of run" not in message and "\n" not in message
    assert message.endswith("rerun the run_evaluation call without fresh=True to resume that run")
    with Store.open(db) as store:
        assert store.get_run(run["run_id"])["status"] == "running"
        assert store.finished_shards(run["run_id"]) == {0}


def test_a_store_file_without_write_permission_is_read_without_leaving_read_only_files(
    tmp_path, monkeypatch
):
    """A store file the user may not write (chmod 444, in a writable directory) was opened for
    writing; SQLite fell back to reading it and made its -wal and -shm files beside it with the
    file's permissions, read-only, and left them: once the user made the store writable, every
    write was still refused as read-only (the -shm file). It is now opened read-only, as a store
    in a read-only directory is: it reads, makes no files, and a write is a one-line error."""
    db = tmp_path / "r.db"
    with Store.open(db) as store:
        _stored_run(store, "r", [0, 1], [[0, 1]])
    before = db.read_bytes()
    real_access = os.access

    def access(path, mode, *args, **kwargs):  # (the tests run as root, whom chmod does not stop)
        if Path(path) == db and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    with Store.open(db) as store:
        assert [r["run_id"] for r in store.runs()] == ["r"]
        assert not Path(f"{db}-shm").exists() and not Path(f"{db}-wal").exists()
        with pytest.raises(RobustkitError, match="it is read-only; what it holds is kept") as info:
            store.finish_run("r")
        assert "\n" not in str(info.value)
    assert db.read_bytes() == before


def test_a_store_reached_through_a_symlink_is_read_where_its_file_is(tmp_path, monkeypatch):
    """A symlink to a store in a read-only directory (a team's shared results, linked into a
    writable home) was checked as if the store lay beside the link: it was opened for writing,
    SQLite could not make its -wal and -shm files beside the real file, and even reading it
    failed: "cannot be read as a database (attempt to write a readonly database)". It is now
    judged by the directory of the file itself: read-only, readable."""
    shared = tmp_path / "shared"
    shared.mkdir()
    with Store.open(shared / "results.db") as store:
        _stored_run(store, "r", [0, 1], [[0, 1]])
    link = tmp_path / "home" / "results.db"
    link.parent.mkdir()
    link.symlink_to(shared / "results.db")
    real_problem = store_module.directory_problem

    def problem(directory):  # (stubbed: the tests run as root, whom chmod does not stop)
        return f"{directory} is not writable" if directory == shared else real_problem(directory)

    monkeypatch.setattr(store_module, "directory_problem", problem)
    with Store.open(link) as store:
        assert [r["run_id"] for r in store.runs()] == ["r"]
        assert not Path(f"{shared / 'results.db'}-shm").exists()
        with pytest.raises(RobustkitError, match="it is read-only; what it holds is kept"):
            store.finish_run("r")


def test_a_default_store_refused_says_it_comes_from_robustkit_home(tmp_path, monkeypatch):
    """Without --db (or db=) the store is $ROBUSTKIT_HOME/results.db: one that cannot be made
    or is missing was refused as if the user had typed its path ("cannot create the results
    store /etc/hostname/results.db: /etc/hostname is a file, not a directory; pass another
    --db"), not saying where that path came from. It now names ROBUSTKIT_HOME."""
    from click.testing import CliRunner

    import robustkit.results as rr
    from robustkit.cli import cli

    home = tmp_path / "home-file"
    home.write_text("not a directory")
    monkeypatch.setenv("ROBUSTKIT_HOME", str(home))
    needle = f"(the default store, in ROBUSTKIT_HOME={home})"
    for create in (True, False):
        with pytest.raises(RobustkitError) as info:
            Store.open(create=create)
        assert str(info.value).endswith(needle) and "\n" not in str(info.value)
    with pytest.raises(RobustkitError, match="no results store at .*in ROBUSTKIT_HOME="):
        rr.open()
    result = CliRunner().invoke(cli, ["runs", "list"])
    assert result.exit_code == 2 and result.output.strip().endswith(needle), result.output
    # a store named by its path is not the default one
    with pytest.raises(RobustkitError) as info:
        Store.open(home / "results.db")
    assert "ROBUSTKIT_HOME" not in str(info.value)


def test_checks_for_a_complete_run_on_a_read_only_store_are_refused_before_computing(
    tmp_path, monkeypatch
):
    """A complete run stored without checks, run again with them on a read-only store, computed
    them (a stronger attack on up to 64 samples) and only then was refused the write."""
    import robustkit.sanity as sanity

    config = RunConfig(
        model="mnist/cnn-tiny-at", n=4, batch_size=4, eps=0.1, device="cpu", attacks=("fgsm",)
    )
    db = tmp_path / "r.db"
    bare = run_evaluation(RunConfig(**{**config.__dict__, "sanity": False}), db=db, progress=False)
    monkeypatch.setattr(store_module, "directory_problem", lambda d: f"{d} is not writable")
    computed = []
    monkeypatch.setattr(sanity, "run_checks", lambda *a, **k: computed.append(1) or [("c", 0, "")])
    with pytest.raises(RobustkitError, match="it is read-only; what it holds is kept"):
        run_evaluation(config, db=db, progress=False)
    assert computed == []
    monkeypatch.undo()
    with Store.open(db) as store:
        assert summarize(store, bare["run_id"]) == bare


def test_asking_whether_a_run_is_complete_leaves_a_fresh_start_of_it_as_it_was(tmp_path):
    """is_complete records the complete run it finds (see the test above); it must not end a
    fresh start of that run on the same connection: its first shard still replaces the
    earlier run's results, never mixes with them."""
    with Store.open(tmp_path / "r.db") as store:
        fields = _stored_run(store, "r", [0, 1, 2, 3], [[0, 1], [2, 3]])
        store.finish_run("r")
        assert store.start_run("r", fields, fresh=True) is False
        assert store.is_complete("r") and store.replacing("r")
        store.write_shard("r", 0, 0, 2, 0.1, {}, [(0, 0, 0), (1, 0, 0)], [])
        assert [s["idx"] for s in store.samples("r")] == [0, 1]
        assert store.get_run("r")["status"] == "running"
