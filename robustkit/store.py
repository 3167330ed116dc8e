"""The results store: one SQLite file that keeps every run, shard by shard.

Schema (version in ``PRAGMA user_version``, file marked with robustkit's ``application_id``):

- ``runs``: one row per run, identified by the hash of its configuration (model and weights,
  data set and exact sample indices, threat model, attacks with all parameters, defenses, seed,
  shard size), with the device, package versions, start/end times and status;
- ``shards``: the shards a run finished (a resumed run skips them);
- ``samples``: per sample, its label and clean prediction;
- ``results``: per (sample, attack), success, robustness, adversarial prediction, perturbation
  norms, forward/gradient counts, for decision-based attacks the trajectory and for ensembles the
  stage that fooled the sample;
- ``checks``: the sanity checks run with each evaluation (flagged or not, and why).

Writes happen one shard per transaction (``BEGIN IMMEDIATE``) in WAL mode with a busy timeout,
so several processes can write to one file and an interrupted run keeps every finished shard.
A file that is not a robustkit store (corrupt, or another program's database) is refused with a
one-line error and never written to.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs

from .errors import InputError, RobustkitError, RunStartedOverError, StoreWriteError
from .naming import COMMAND_LINE, Naming

APPLICATION_ID = 0x524B5431  # "RKT1"
SCHEMA_VERSION = 1
LOCK_TIMEOUT_S = 60.0  # how long a writer waits for another process's lock
BUSY_SLICE_MS = 100  # a writer's waits between two looks for a Ctrl-C

_SCHEMA_V1 = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    model TEXT NOT NULL,
    weights_sha256 TEXT,
    dataset TEXT NOT NULL,
    split TEXT NOT NULL,
    indices TEXT NOT NULL,
    norm TEXT NOT NULL,
    eps REAL,
    attacks TEXT NOT NULL,
    defenses TEXT NOT NULL,
    seed INTEGER NOT NULL,
    device TEXT,
    versions TEXT,
    training TEXT,
    command TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    started REAL NOT NULL,
    finished REAL
);
CREATE TABLE shards (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    shard INTEGER NOT NULL,
    start INTEGER NOT NULL,
    stop INTEGER NOT NULL,
    seconds REAL NOT NULL,
    attack_seconds TEXT NOT NULL,
    finished REAL NOT NULL,
    PRIMARY KEY (run_id, shard)
);
CREATE TABLE samples (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    y INTEGER NOT NULL,
    clean_pred INTEGER NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE results (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    attack TEXT NOT NULL,
    idx INTEGER NOT NULL,
    attacked INTEGER NOT NULL,
    success INTEGER NOT NULL,
    robust INTEGER NOT NULL,
    adv_pred INTEGER NOT NULL,
    norm REAL NOT NULL,
    l2 REAL NOT NULL,
    linf REAL NOT NULL,
    queries INTEGER NOT NULL,
    gradients INTEGER NOT NULL,
    trajectory TEXT,
    stage INTEGER,
    PRIMARY KEY (run_id, attack, idx)
);
CREATE TABLE checks (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    flagged INTEGER NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX results_by_run ON results(run_id, attack);
"""

#: Migrations: ``MIGRATIONS[v]`` takes a store from version ``v`` to ``v + 1``.
MIGRATIONS: dict[int, str] = {0: _SCHEMA_V1}


def default_db_path() -> Path:
    """``$ROBUSTKIT_HOME/results.db``, else ``<user data dir>/robustkit/results.db``."""
    home = os.environ.get("ROBUSTKIT_HOME")
    base = Path(home).expanduser() if home else Path(platformdirs.user_data_dir("robustkit"))
    return base / "results.db"


def directory_problem(directory: Path) -> str | None:
    """Why files cannot be written into ``directory`` (created where missing), or None: an
    existing part of the path that is a file or a symlink to nothing (an unmounted share: it
    passed as a directory still to be made, and its making failed with "File exists" once the
    run was computed), or the nearest existing directory not writable. Checked before a long
    computation whose result goes there."""
    for part in (directory, *directory.parents):
        try:
            if not part.exists():
                if part.is_symlink():
                    return f"{part} is a symlink to {os.readlink(part)}, which does not exist"
                continue
        except OSError as exc:  # e.g. a name too long, a permission denied higher up
            return f"{part} cannot be reached ({exc.strerror or exc})"
        if not part.is_dir():
            return f"{part} is a file, not a directory"
        if not os.access(part, os.W_OK | os.X_OK):
            return f"{part} is not writable"
        return None
    return None


def special_file(path: Path) -> bool:
    """Whether ``path`` is there but is neither a regular file nor a directory (through a
    symlink): a device (``/dev/null``), a pipe or a socket, which an output written through a
    temporary file would replace (as root, the system's own ``/dev/null``) and SQLite cannot
    keep a store in; or a stream of this process, through /proc (``/dev/stdout``,
    ``/dev/fd/1``), whatever it leads to (redirected to a file, the symlink was replaced)."""
    try:
        if os.path.realpath(path.parent).startswith("/proc/"):
            return True
        if path.is_symlink() and os.readlink(path).startswith("/proc/"):
            return True
        return path.exists() and not path.is_file() and not path.is_dir()
    except OSError:  # unreachable: directory_problem and the writes say why
        return False


def _write_error(path: Path, exc: sqlite3.OperationalError, named: Naming) -> StoreWriteError:
    """A one-line error for a write the store refused; what it holds already is kept."""
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        why, remedy, fix = "it is read-only", "make it writable", f"pass a writable {named.db}"
    elif "full" in text:
        why, remedy = "the disk is full", "free space"
        fix = f"{remedy} and rerun the same {named.command} to resume"
    else:
        why, remedy = text, "fix that"
        fix = f"{remedy} and rerun the same {named.command} to resume"
    return StoreWriteError(
        f"cannot write to the results store {path}: {why}; what it holds is kept: {fix}",
        reason=why,
        remedy=remedy,
    )


def _is_locked(exc: sqlite3.DatabaseError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _locked_error(path: Path, named: Naming) -> RobustkitError:
    return RobustkitError(
        f"{path} stayed locked by another process for {LOCK_TIMEOUT_S:.0f} s; "
        f"wait for it to finish or pass another {named.db}"
    )


def storable(value: Any) -> Any:
    """``value`` as SQLite can store it: a text with lone surrogates (a path that is not valid
    UTF-8, which POSIX allows and Python decodes so) has those bytes as ``\\xNN`` escapes, the
    way Python prints them; anything else is unchanged."""
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # surrogates that are no escaped bytes
            return value.encode("utf-8", "backslashreplace").decode("utf-8")


class Store:
    """A robustkit results database (SQLite). Use :meth:`open` to get one."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path
        # how the user names the path and a rerun, for messages (set by open)
        self.named = COMMAND_LINE
        # runs started with fresh=True whose earlier results stay until the first new shard
        # is written (run id -> the new run's fields, and when the earlier run started, which
        # tells it from the new one): see start_run and replacing
        self._replacing: dict[str, tuple[dict[str, Any], float]] = {}
        # per run this connection started or resumed, the start time of the stored run it
        # writes to: another process's --fresh (or a delete and a new run) puts in a run of the
        # same id that started at another time, which this one's shards must not go into
        self._started: dict[str, float] = {}

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        create: bool = True,
        named: Naming = COMMAND_LINE,
    ) -> Store:
        """Open (or create) the store at ``path`` (default :func:`default_db_path`). ``named``
        says how the user gave the path, for the errors that say what to do: ``--db`` on the
        command line, :data:`~robustkit.naming.PYTHON` for a function's ``db=``."""
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise RobustkitError(
                f"a results store is a file path, got {type(path).__name__} {path!r:.40}; "
                "pass the path of the .db file"
            )
        if path is not None and os.fspath(path) in ("", b""):  # (Path("") is the directory ".")
            raise RobustkitError(
                "the results store's path is empty (an unset variable?); pass the path of a .db "
                f"file as {named.db}, or leave {named.db} out for the default store"
            )
        if path is not None:
            return cls._open_file(Path(path).expanduser(), create, named)
        try:
            return cls._open_file(default_db_path(), create, named)
        except RobustkitError as exc:
            # (a path the user did not type: one from an environment variable set long ago)
            home = os.environ.get("ROBUSTKIT_HOME")
            if home:
                exc.args = (f"{exc} (the default store, in ROBUSTKIT_HOME={home})",)
            raise

    @classmethod
    def _open_file(cls, path: Path, create: bool, named: Naming) -> Store:
        """:meth:`open` of the store file at ``path``."""
        try:
            if path.is_dir():
                raise RobustkitError(
                    f"{path} is a directory, not a results store: pass a file as {named.db}"
                )
            if special_file(path):  # (/dev/null: "disk I/O error", and a /dev/null-journal)
                raise RobustkitError(
                    f"{path} is not a regular file (a device, pipe, socket or stream), not a "
                    f"results store: pass the path of a .db file as {named.db}"
                )
            exists = path.exists() and path.stat().st_size > 0
            if not exists and not create:
                # (a notebook's working directory is the notebook's, often not the store's)
                where = "" if path.is_absolute() else f" (in {Path.cwd()})"
                raise RobustkitError(f"no results store at {path}{where}; {named.first}")
            if exists:
                with open(path, "rb") as fh:
                    header = fh.read(16)
        except OSError as exc:  # a name too long, a directory above it or the file unreadable
            raise RobustkitError(
                f"the results store {path} cannot be read ({exc.strerror or exc}); "
                f"pass another {named.db}"
            ) from None
        if exists and header != b"SQLite format 3\x00":
            raise RobustkitError(
                f"{path} is not a SQLite database (corrupt or another kind of file); "
                f"it was left untouched: pass another {named.db}"
            )
        # An existing store may sit in a read-only directory (or file system): it is opened
        # read-only there, so it can be read, and a write is a one-line error. SQLite cannot
        # make the -wal and -shm files a WAL store needs beside it, so it is opened immutable,
        # unless its writer (still running, or one that crashed) left a write-ahead log: what
        # that holds is not yet in the file, and an immutable read silently showed the store as
        # it was before (finished runs missing). SQLite reads the log through the -shm file it
        # finds beside it. A store file the user may not write (in a writable directory) is
        # opened so too: opened for writing, SQLite read it and left -wal and -shm files made
        # with its permissions, read-only, which refused every write once it was made writable.
        # Through a symlink, the file's own directory is where SQLite makes them.
        real = Path(os.path.realpath(path)) if exists else path
        problem = directory_problem(real.parent)
        read_only = exists and (problem is not None or not os.access(path, os.W_OK))
        wal = Path(f"{real}-wal")
        pending_log = read_only and wal.exists() and wal.stat().st_size > 0
        if not exists:
            if problem is None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    problem = f"its directory cannot be created ({exc.strerror or exc})"
            if problem:
                raise RobustkitError(
                    f"cannot create the results store {path}: {problem}; pass another {named.db}"
                )
        conn = None
        try:
            target, uri = path, False
            if read_only:
                mode = "mode=ro" if pending_log else "mode=ro&immutable=1"
                target, uri = f"{path.absolute().as_uri()}?{mode}", True
            conn = sqlite3.connect(target, timeout=LOCK_TIMEOUT_S, isolation_level=None, uri=uri)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(LOCK_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            # one read transaction, so both come from the same snapshot even while another
            # process is creating the store (it sets both in one transaction)
            conn.execute("BEGIN")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            user_version = conn.execute("PRAGMA user_version").fetchone()[0]
            # damage past the first page shows only when those pages are read: check them all
            # now, before anything is written into a damaged file
            damage = conn.execute("PRAGMA quick_check(1)").fetchone()[0] if exists else "ok"
            conn.execute("COMMIT")
            if damage != "ok":
                raise sqlite3.DatabaseError("damaged: " + " ".join(str(damage).split()))
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if _is_locked(exc):
                raise _locked_error(path, named) from None
            if pending_log:
                raise RobustkitError(
                    f"{path} has changes in its write-ahead log ({wal.name}) that cannot be "
                    f"read from its read-only location ({exc}); copy the store with its "
                    "-wal and -shm files to a writable directory, or let its writer finish"
                ) from None
            if not exists:  # nothing there to read: the file could not be made
                raise RobustkitError(
                    f"cannot create the results store {path} ({exc}); pass another {named.db}"
                ) from None
            raise RobustkitError(
                f"{path} cannot be read as a database ({exc}); it was left untouched: "
                f"pass another {named.db}"
            ) from None
        # ours, or a new empty file; anything else marked by another program is not ours
        if app_id != APPLICATION_ID and (tables or exists and (app_id != 0 or user_version != 0)):
            conn.close()
            raise RobustkitError(
                f"{path} is another program's database, not a robustkit results store; "
                f"it was left untouched: pass another {named.db}"
            )
        store = cls(conn, path)
        store.named = named
        try:
            store._migrate()
        except BaseException:
            store.close()
            raise
        return store

    def _migrate(self) -> None:
        version = self._read("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RobustkitError(
                f"{self.path} was written by a newer robustkit (schema {version} > "
                f"{SCHEMA_VERSION}); upgrade robustkit to read it"
            )
        if version == SCHEMA_VERSION:
            self._add_stage_column()
            return
        self._enable_wal()
        with self.transaction():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            while version < SCHEMA_VERSION:
                for statement in filter(None, (s.strip() for s in MIGRATIONS[version].split(";"))):
                    self.conn.execute(statement)
                version += 1
            self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.conn.execute(f"PRAGMA user_version = {version}")

    def _add_stage_column(self) -> None:
        """Give a store of the first version-1 schema (made before 2026-11-23, when
        ``results.stage`` was added without a new version) its ``stage`` column: every shard
        written to it was refused ("table results has 13 columns but 14 values were
        supplied"). A read-only one stays as it is; its rows read with no stage
        (:meth:`results`)."""
        if self._has_stage_column():
            return
        try:
            with self.transaction():
                if not self._has_stage_column():  # (another process may have added it)
                    self.conn.execute("ALTER TABLE results ADD COLUMN stage INTEGER")
        except RobustkitError:  # read-only: it can still be read
            pass

    def _has_stage_column(self) -> bool:
        return any(row[1] == "stage" for row in self._read("PRAGMA table_info(results)"))

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """Run the reading statement ``sql``. A store another tool switched out of WAL mode (to
        a rollback journal) makes its readers wait while that tool writes: a wait past the busy
        timeout is the one-line error of a store locked for too long, as for a write (it was a
        raw "database is locked" traceback)."""
        with self._reading():
            return self.conn.execute(sql, args)

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads in the block that wait past the busy timeout for a lock are a one-line error
        (see :meth:`_read`)."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise _locked_error(self.path, self.named) from None
            raise

    def _enable_wal(self) -> None:
        """Switch the file to WAL mode (persistent: done once, by whichever process is first).

        The switch needs an exclusive lock, and SQLite answers SQLITE_BUSY to it at once,
        without the busy handler, while another process holds any lock (for instance one
        creating the same new store). So it is retried here, with a short back-off, for as
        long as the busy timeout of every other statement. Any other refusal (a full disk:
        it is a new store's first write) is a one-line error, as a refused write is.
        """
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        delay = 0.005
        while True:
            try:
                # a file system without shared memory answers with the old mode: still
                # correct, only writers then wait for readers
                self.conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise _write_error(self.path, exc, self.named) from None
                if time.monotonic() > deadline:
                    raise _locked_error(self.path, self.named) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)

    def close(self) -> None:
        """Close the connection (also done on leaving a ``with`` block)."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read in the block sees the store as it was at the first one (a read
        transaction), whatever other processes write meanwhile: a report made of many reads
        never mixes two states of a run. Inside another snapshot it is part of that one."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locking) transaction: all of it lands, or none (a Ctrl-C at
        any point after BEGIN included)."""
        try:
            self._begin_immediate()
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:  # SQLite rolled back itself (a full disk, for one)
                    pass
            if isinstance(exc, sqlite3.OperationalError):
                if _is_locked(exc):
                    raise _locked_error(self.path, self.named) from None
                raise _write_error(self.path, exc, self.named) from None
            raise

    def _begin_immediate(self) -> None:
        """BEGIN IMMEDIATE, waiting up to LOCK_TIMEOUT_S for another process's write lock in
        short busy waits: Python acts on a Ctrl-C only between them (in one wait of the whole
        timeout, a Ctrl-C was held until it ended, up to a minute)."""
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_SLICE_MS}")
        try:
            while True:
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_locked(exc) or time.monotonic() > deadline:
                        raise
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(LOCK_TIMEOUT_S * 1000)}")

    def check_writable(self) -> None:
        """Refuse a store that cannot be written to (read-only, say) with its one-line write
        error now, before a result to store in it is computed."""
        with self.transaction() as conn:
            self._write_nothing(conn)

    @staticmethod
    def _write_nothing(conn: sqlite3.Connection) -> None:
        """A write that changes nothing, which SQLite refuses as any write where it cannot
        write."""
        conn.execute("DELETE FROM runs WHERE 0")

    # -- runs ------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The ``runs`` row of ``run_id`` (the full id) as a dict; None if no such run is
        stored."""
        row = self._read("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    def start_run(self, run_id: str, fields: dict[str, Any], fresh: bool = False) -> bool:
        """Register a run; returns True if it already existed (a resume).

        ``fresh`` starts the run over: whatever an earlier run with the same configuration
        stored is replaced by the first shard :meth:`write_shard` writes for it, in that
        shard's transaction, so a fresh run that fails or is interrupted before it has
        computed anything leaves the earlier results as they were (see :meth:`replacing`).

        A finished run whose samples are all stored stays finished (and keeps the device and
        versions its results were computed with): rerunning it computes nothing new, so it
        stays on the leaderboard meanwhile, and an interrupted rerun cannot take it off. A
        resumed run keeps the device and versions that began it too, with the resume's where
        they differ (see :meth:`_record_resume`)."""
        self._replacing.pop(run_id, None)
        self._started.pop(run_id, None)
        with self.transaction() as conn:
            existing = conn.execute(
                "SELECT status, indices, started, device, versions FROM runs WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            if existing and fresh:
                # a store that cannot be written to is refused now, not once the first shard
                # is computed
                self._write_nothing(conn)
                self._replacing[run_id] = (dict(fields), existing["started"])
                self._started[run_id] = existing["started"]  # (until its first shard)
                return False
            if existing and self._complete(conn, run_id) is not None:
                self._started[run_id] = existing["started"]
                return True
            if existing:
                conn.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", (run_id,))
                self._record_resume(conn, run_id, existing, fields)
                self._started[run_id] = existing["started"]
                return True
            self._started[run_id] = self._insert_run(conn, run_id, fields)
            return False

    @staticmethod
    def _record_resume(
        conn: sqlite3.Connection, run_id: str, existing: sqlite3.Row, fields: dict[str, Any]
    ) -> None:
        """Keep the device and package versions that began a run, and add what a resume by
        another process differs in (its device, a torch upgraded meanwhile) to the versions'
        ``"resumed with"`` list: resuming overwrote them, and a run computed half on cpu with
        torch 2.0 read as all computed by the resuming process."""
        if existing["versions"] is None:  # nothing to keep: the resuming process's, as before
            conn.execute(
                "UPDATE runs SET device = ?, versions = ? WHERE run_id = ?",
                (fields.get("device"), fields.get("versions"), run_id),
            )
            return
        versions = json.loads(existing["versions"])
        now = json.loads(fields.get("versions") or "{}")
        other = {k: v for k, v in now.items() if versions.get(k) != v}
        if fields.get("device") != existing["device"]:
            other["device"] = fields.get("device")
        resumed = versions.setdefault("resumed with", [])
        if other and other not in resumed:
            resumed.append(other)
            conn.execute("UPDATE runs SET versions = ? WHERE run_id = ?", (dumps(versions), run_id))

    def replacing(self, run_id: str) -> bool:
        """True while a run started with ``fresh`` has written no shard: what is stored for
        ``run_id`` is still the earlier run's, which the first new shard replaces.

        Read from the store: a Ctrl-C just after the commit of that first shard, before
        :meth:`write_shard` returned, left the earlier run counted as kept when it was gone.
        Another process may have started the run over too (its own --fresh) and replaced the
        earlier one first: not this one's run either, so its writes are refused."""
        pending = self._replacing.get(run_id)
        if pending is None:
            return False
        row = self._read("SELECT started FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is not None and row[0] != pending[1]:  # the stored run is a new one
            del self._replacing[run_id]
            return False
        return True

    @staticmethod
    def _insert_run(
        conn: sqlite3.Connection, run_id: str, fields: dict[str, Any], after: float | None = None
    ) -> float:
        """Insert the ``runs`` row; returns its start time, which tells it from the run it
        replaces (started at ``after``) and from any later run of the same id."""
        started = time.time()
        if after is not None and started <= after:  # (a clock set back meanwhile)
            started = after + max(1e-6, abs(after) * 1e-15)
        cols = ["run_id", "started", *fields]
        conn.execute(
            f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            (run_id, started, *map(storable, fields.values())),
        )
        return started

    def is_complete(self, run_id: str) -> bool:
        """True when ``run_id`` is finished and every one of its samples is stored: running it
        again computes nothing (see :meth:`start_run`).

        A complete run is then the one this connection writes to, as after :meth:`start_run`
        (which the runner skips for it): the checks it writes for a run stored without them
        are refused where another process started the run over meanwhile (they went into the
        new run)."""
        with self._reading(), self.snapshot():
            started = self._complete(self.conn, run_id)
        if started is None:
            return False
        self._started[run_id] = started
        return True

    @staticmethod
    def _complete(conn: sqlite3.Connection, run_id: str) -> float | None:
        """The start time of ``run_id`` if it is complete (finished, every sample stored), else
        None."""
        run = conn.execute(
            "SELECT status, indices, started FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if run is None or run["status"] != "finished":
            return None
        stored = conn.execute("SELECT count(*) FROM samples WHERE run_id = ?", (run_id,)).fetchone()
        return run["started"] if stored[0] >= len(json.loads(run["indices"])) else None

    def finish_run(self, run_id: str, status: str = "finished") -> None:
        """Mark ``run_id`` with ``status`` (``"finished"`` by default), ending now. A run
        deleted or started over meanwhile is a one-line error, as in :meth:`write_shard` (it
        marked another process's fresh run finished with its samples still missing)."""
        with self.transaction() as conn:
            self._check_current(conn, run_id)
            conn.execute(
                "UPDATE runs SET status = ?, finished = ? WHERE run_id = ?",
                (status, time.time(), run_id),
            )

    def shards(self, run_id: str) -> list[dict[str, Any]]:
        """The shards ``run_id`` finished, in order: index, sample range, seconds (total and per
        attack) and when each was stored."""
        rows = self._read("SELECT * FROM shards WHERE run_id = ? ORDER BY shard", (run_id,))
        return [dict(r) for r in rows]

    def finished_shards(self, run_id: str) -> set[int]:
        """Indices of the shards ``run_id`` has stored (a resumed run skips them)."""
        rows = self._read("SELECT shard FROM shards WHERE run_id = ?", (run_id,))
        return {r[0] for r in rows}

    def write_shard(
        self,
        run_id: str,
        shard: int,
        start: int,
        stop: int,
        seconds: float,
        attack_seconds: dict[str, float],
        samples: Iterable[tuple[int, int, int]],
        results: Iterable[tuple],
    ) -> None:
        """Store one finished shard: its samples ``(idx, y, clean_pred)`` and per-attack rows
        ``(attack, idx, attacked, success, robust, adv_pred, norm, l2, linf, queries, gradients,
        trajectory, stage)`` in one transaction. A run deleted meanwhile (by ``robustkit runs
        delete``) or started over (by ``--fresh`` in another process) is a one-line error, not
        a foreign-key one, and not rows written into the other process's new run. The first
        shard of a run started with ``fresh`` deletes the earlier run's results in the same
        transaction."""
        with self.transaction() as conn:
            if self.replacing(run_id):
                fields, earlier = self._replacing[run_id]
                conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
                started = self._insert_run(conn, run_id, fields, after=earlier)
                # (set before the commit: a Ctrl-C just after it leaves this run this one's)
                self._started[run_id] = started
            else:
                self._check_current(conn, run_id)
            conn.executemany(
                "INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?)",
                [(run_id, i, shard, y, c) for i, y, c in samples],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *row) for row in results],
            )
            conn.execute(
                "INSERT OR REPLACE INTO shards VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, shard, start, stop, seconds, dumps(attack_seconds), time.time()),
            )
        self._replacing.pop(run_id, None)

    def _check_current(self, conn: sqlite3.Connection, run_id: str) -> None:
        """Refuse a write for ``run_id`` (in the write's transaction) where the stored run is
        not the one this connection started or resumed: deleted, or started over by another
        process meanwhile (a fresh run in it, whose shards this process did not compute)."""
        row = conn.execute("SELECT started FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunStartedOverError(
                f"run {run_id} was deleted from {self.path} while it was computed (robustkit "
                f"runs delete, or --fresh in another process); rerun the {self.named.command} "
                "to compute it again"
            )
        # (a fresh run that has not replaced the earlier one yet writes to that one)
        pending = run_id in self._replacing and self.replacing(run_id)
        started = self._replacing[run_id][1] if pending else self._started.get(run_id)
        if started is not None and row[0] != started:
            raise RunStartedOverError(
                f"run {run_id} in {self.path} was started over by another process (--fresh, "
                "or deleted and run again) while this one computed it, and this one's shards "
                f"are not written into the new run; rerun the {self.named.command} without "
                f"{self.named.fresh} to resume that run"
            )

    def write_checks(self, run_id: str, checks: Iterable[tuple[str, bool, str]]) -> None:
        """Store sanity checks ``(name, flagged, detail)`` for ``run_id`` in one transaction; a
        check already stored under the same name is replaced. A run deleted or started over
        meanwhile is a one-line error, as in :meth:`write_shard`."""
        with self.transaction() as conn:
            self._check_current(conn, run_id)
            conn.executemany(
                "INSERT OR REPLACE INTO checks VALUES (?, ?, ?, ?)",
                [(run_id, name, int(flag), storable(detail)) for name, flag, detail in checks],
            )

    # -- reading ---------------------------------------------------------------------------
    def runs(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every stored run (its ``runs`` row as a dict), oldest first; only those with ``status``
        (``"running"`` or ``"finished"``) if given."""
        sql = "SELECT * FROM runs" + (" WHERE status = ?" if status else "") + " ORDER BY started"
        return [dict(r) for r in self._read(sql, (status,) if status else ())]

    def sample_counts(self) -> dict[str, int]:
        """Per run id, the number of samples stored (runs with none are absent)."""
        rows = self._read("SELECT run_id, COUNT(*) FROM samples GROUP BY run_id")
        return {run_id: count for run_id, count in rows}

    def delete_runs(self, run_ids: Iterable[str]) -> int:
        """Delete runs and everything stored for them (samples, results, shards, checks);
        returns how many runs there were to delete."""
        ids = list(dict.fromkeys(run_ids))
        with self.transaction() as conn:
            deleted = 0
            for run_id in ids:
                deleted += conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount
        return deleted

    def samples(self, run_id: str) -> list[dict[str, Any]]:
        """The samples ``run_id`` has stored, by data-set index: ``idx``, ``shard``, label ``y`` and
        ``clean_pred``."""
        rows = self._read("SELECT * FROM samples WHERE run_id = ? ORDER BY idx", (run_id,))
        return [dict(r) for r in rows]

    def results(self, run_id: str, attack: str | None = None) -> list[dict[str, Any]]:
        """The per-(sample, attack) rows of ``run_id`` (only ``attack``'s if given), ordered by
        attack, then index; ``stage`` is None where the attack has no stages."""
        sql = "SELECT * FROM results WHERE run_id = ?" + (" AND attack = ?" if attack else "")
        args = (run_id, attack) if attack else (run_id,)
        # (a read-only store of the first schema has no stage column: see _add_stage_column)
        rows = [dict(r) for r in self._read(sql + " ORDER BY attack, idx", args)]
        for row in rows:
            row.setdefault("stage", None)
        return rows

    def checks(self, run_id: str) -> list[dict[str, Any]]:
        """The sanity checks stored for ``run_id`` (``name``, ``flagged``, ``detail``), by name."""
        rows = self._read("SELECT * FROM checks WHERE run_id = ? ORDER BY name", (run_id,))
        return [dict(r) for r in rows]


#: Shortest run-id prefix taken for a whole id (ids are 16 hex digits).
MIN_PREFIX = 4


def find_run(store: Store, ident: str, see: str = "robustkit runs list") -> str:
    """The run id ``ident`` names in ``store``: the id itself or a unique prefix of it (at
    least :data:`MIN_PREFIX` characters, in any case), else a one-line error listing what
    there is and pointing to ``see`` (``robustkit runs``; ``Results.runs`` in a notebook)."""
    from .tables import names_text

    ids = [r["run_id"] for r in store.runs()]
    if isinstance(ident, str):
        ident = ident.strip()  # (pasted with a space or a newline)
    if ident in ids:
        return ident
    start = ident.lower() if isinstance(ident, str) else None
    matches = [i for i in ids if start and len(start) >= MIN_PREFIX and i.startswith(start)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InputError(
            f"run id {ident!r} is the start of {len(matches)} runs ({', '.join(matches[:5])}); "
            "give more of it"
        )
    if start is not None and len(start) < MIN_PREFIX and any(i.startswith(start) for i in ids):
        raise InputError(
            f"run id {ident!r} is too short to name a run; give at least {MIN_PREFIX} "
            f"characters of it (see {see})"
        )
    raise InputError(
        f"no run {ident!r} in {store.path} (its runs: {names_text(ids, 5)}); see {see}"
    )


def defense_names(stored: str | None) -> list[str]:
    """A stored run's defense specs (its ``defenses`` column) in the order they wrap the model
    (stores before 2026-11-27 kept them as a mapping, in sorted order), each as
    :func:`defense_text` writes it from its stored parameters."""
    value = json.loads(stored or "[]")
    pairs = value if isinstance(value, list) else list(value.items())
    return [defense_text(spec, params) for spec, params in pairs]


def defense_text(spec: str, params: dict[str, Any]) -> str:
    """The text of a stored defense, ``NAME:k=v,...`` with every digit (``canonical_spec(...,
    exact=True)``), made from its stored parameters rather than read from its stored text,
    which changed over time (as typed before 2026-11-27, 6 significant digits before
    2026-11-29: ``sigma=0.0313725``): runs of one configuration read alike, whenever stored.
    The parameters are in the constructor's order (else in the stored text's)."""
    from .registry import DEFENSES, constructor_parameters
    from .specs import canonical_spec

    name, _, rest = spec.partition(":")
    try:
        entry = DEFENSES.find(name)
    except RobustkitError:  # a broken plug-in: the store is still read
        entry = None
    if entry is not None:
        name, order = entry.name, constructor_parameters(entry.obj)
    else:
        order = [item.partition("=")[0] for item in rest.split(",")]
    keys = [k for k in order if k in params] + [k for k in params if k not in order]
    return canonical_spec(name, {k: params[k] for k in keys}, exact=True)


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys) for configurations and hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
