"""``robustkit leaderboard``: tables from the results store, and presets that fill it."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click

from .cli import DB, DEVICE, PROGRESS, OutputError, cli, db_option, echo, exit_status
from .errors import RobustkitError, StoreWriteError
from .store import directory_problem, special_file
from .tables import counted

FORMATS = ("markdown", "csv", "json", "html")


def check_out(out: str, db: str | None) -> None:
    """Refuse an ``--out`` directory that cannot be written, or whose files include the results
    store or SQLite's files beside it (``--db DIR/leaderboard.json --out DIR`` wrote the board
    over the store, every run in it lost) or a directory, pipe or device, before anything is
    computed. (The temporary files they are written through are new files, never an existing
    one: see ``part_file``.)"""
    from .cli_evaluate import same_file, store_files
    from .leaderboard import EXTENSIONS

    problem = directory_problem(Path(out).expanduser())
    if problem:
        raise RobustkitError(f"cannot write --out {out}: {problem}; pass another --out")
    for ext in EXTENSIONS.values():
        path = Path(out).expanduser() / f"leaderboard.{ext}"
        # (found only once written, after every run of `leaderboard run`; a pipe or a device
        # was replaced by the file)
        what = "a directory" if path.is_dir() else None
        what = "not a regular file" if special_file(path) else what
        if what:
            raise RobustkitError(
                f"cannot write --out {out}: {path} is {what}; move it away or pass another --out"
            )
        for other, what in store_files(db):
            if same_file(path, other):
                raise RobustkitError(
                    f"--out {out} would write {path.name} over {what}; pass another "
                    "--out (or keep the store elsewhere)"
                )


def write_all(board, out: Path, after_runs: bool = False) -> list[Path]:
    """Write the leaderboard in every format into ``out``: each file in full (through a
    temporary file of its own, :func:`~robustkit.cli_evaluate.part_file`) before any replaces
    its earlier one, so a write that fails leaves the earlier files whole and alike (not new
    Markdown beside old JSON) and no temporary file. ``after_runs``: it follows runs computed
    by this command (`leaderboard run`), which a failure to write it says are kept."""
    from .cli_evaluate import part_file
    from .leaderboard import EXTENSIONS, RENDERERS

    out = out.expanduser()
    parts: list[tuple[Path, Path]] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for fmt_, render in RENDERERS.items():
            path = out / f"leaderboard.{EXTENSIONS[fmt_]}"
            tmp, fh = part_file(path)
            parts.append((tmp, path))
            with fh:
                fh.write(render(board).encode("utf-8"))
        written = []
        for tmp, path in parts:
            tmp.replace(path)
            written.append(path)
    except BaseException as exc:
        for tmp, _ in parts:
            tmp.unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        # checked before (check_out); changed since
        kept = " (every run is kept in the store: nothing is computed again)" if after_runs else ""
        raise RobustkitError(
            f"cannot write --out {out} ({exc.strerror or exc}); pass another --out{kept}"
        ) from None
    return written


def built(store, db: str | None) -> dict:
    """The board (:func:`~robustkit.leaderboard.build`), with its notes on stderr
    (:func:`note_missing_rows`), from one snapshot of the store: a run that another process
    finishes meanwhile left a board without rows and no note (the notes saw it finished)."""
    from .leaderboard import build

    with store.snapshot():
        board = build(store)
        note_missing_rows(store, db)
    return board


def note_missing_rows(store, db: str | None) -> None:
    """Say (on stderr, in one line) why the board lacks rows, from one read of the store's run
    list: a store of unfinished runs only, or of none (:func:`_note_unfinished`), or finished
    runs that make no row (:func:`_note_left_off`). Nothing where every finished run makes a
    row."""
    runs = store.runs()
    finished = [run for run in runs if run["status"] == "finished"]
    running = sum(run["status"] == "running" for run in runs)
    if finished:
        _note_left_off(store.path, finished, running, db)
    else:
        _note_unfinished(store.path, running, db)


def _note_unfinished(path: Path, running: int, db: str | None) -> None:
    """Say why a store whose runs are all unfinished (``running`` of them) makes a board without
    rows, and how to finish them, or one without runs, and how to add one: it printed the page's
    header alone, with no word why."""
    where = db_option(db)
    if not running:
        click.echo(
            f"note: {path} holds no run, so the leaderboard has no rows; robustkit evaluate"
            f"{where} --model NAME --attack pgd adds one (robustkit leaderboard run{where} "
            "evaluates the zoo)",
            err=True,
        )
    else:
        click.echo(
            f"note: {path} holds {counted(running, 'unfinished run')} and no finished "
            f"one, so the leaderboard has no rows; rerun the command of each to finish it "
            f"(robustkit runs list{where} lists them, robustkit runs show ID{where} shows one's "
            "command)",
            err=True,
        )


def _note_left_off(path: Path, finished: list[dict], running: int, db: str | None) -> None:
    """Say how many of the ``finished`` runs make no row of the board and why
    (:func:`~robustkit.leaderboard.why_left_off`): where none makes one, it printed the page's
    header alone with no word why; there the line says too what run makes a row, and what the
    ``running`` (unfinished) ones would. Nothing where every finished run makes a row (one that
    a larger or later run replaced makes one)."""
    from .leaderboard import left_off_counts

    counts = left_off_counts(finished)
    if not counts:
        return
    reasons = ", ".join(f"{k} {why}" for why, k in counts.items())
    left, n = sum(counts.values()), len(finished)
    where = db_option(db)
    if left == n:
        unfinished = (
            f"; its {counted(running, 'unfinished run')} make{'s' if running == 1 else ''} "
            f"none until finished (rerun the command of each: robustkit runs show ID{where} "
            "shows it)"
            if running
            else ""
        )
        click.echo(
            f"note: {path} holds {counted(n, 'finished run')} and none makes a "
            f"row of the leaderboard: {reasons}; a run on the test split (the default) of all "
            "its images (no --correct-only) with an untargeted white-box attack (e.g. --attack "
            "pgd) makes a row of the robust-accuracy tables, one with a label-only attack (e.g. "
            f"--attack cgba) a row of the decision-based table{unfinished}",
            err=True,
        )
    else:
        click.echo(
            f"note: {left} of {counted(n, 'finished run')} make{'s' if left == 1 else ''} no "
            f"row of the leaderboard: {reasons} (robustkit runs list{where} lists them)",
            err=True,
        )


def _passed_on(ctx: click.Context, name: str, value, option: str):
    """A ``leaderboard`` group option given before the subcommand, merged with the subcommand's
    own: either may give it; both, only with the same value."""
    outer = ctx.parent.params.get(name) if ctx.parent is not None else None
    if outer is not None and value is not None and outer != value:
        raise RobustkitError(
            f"{option} is given twice, {outer} before `{ctx.info_name}` and {value} after it; "
            "give it once"
        )
    return value if value is not None else outer


@cli.group(invoke_without_command=True)
@DB
@click.option(
    "--format",
    "fmt_",
    type=click.Choice(FORMATS),
    help="Format printed to the terminal [default: markdown].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Also write leaderboard.{md,csv,json,html} into this directory.",
)
@click.pass_context
def leaderboard(ctx: click.Context, db: str | None, fmt_: str | None, out: str | None) -> None:
    """Build leaderboards from the results store: one table per (data set, threat model), sorted
    by worst-case robust accuracy, and a decision-based table. `robustkit leaderboard run`
    evaluates a preset of zoo runs first (--db, --format and --out given here apply to it too)."""
    if ctx.invoked_subcommand is not None:
        return  # the subcommand reads --db, --format and --out from here (_passed_on)
    from .leaderboard import RENDERERS
    from .store import Store

    if out is not None:
        check_out(out, db)
    with Store.open(db, create=False) as store:
        board = built(store, db)
    try:
        echo(RENDERERS[fmt_ or "markdown"](board))
    except OutputError as exc:  # --out can still be written
        unprinted: OutputError | None = exc
    else:
        unprinted = None
    if out is not None:
        for path in write_all(board, Path(out)):
            click.echo(f"wrote {path}", err=True)
    if unprinted is not None:
        raise unprinted


@leaderboard.command("run")
@click.option(
    "--preset",
    type=click.Choice(["quick", "full"], case_sensitive=False),
    default="quick",
    show_default=True,
    help="Which set of runs (see robustkit/presets.py).",
)
@click.option(
    "--models",
    "pattern",
    default="*",
    show_default=True,
    help="Only zoo models matching this glob.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Directory for leaderboard.{md,csv,json,html} [default: leaderboard-PRESET].",
)
@click.option(
    "--format",
    "fmt_",
    type=click.Choice(FORMATS),
    help="Format printed to the terminal [default: markdown].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every run.")
@DB
@DEVICE
@PROGRESS
@click.pass_context
def run_preset(
    ctx: click.Context,
    preset: str,
    pattern: str,
    db: str | None,
    out: str | None,
    fmt_: str | None,
    device: str,
    seed: int,
    progress: bool,
) -> None:
    """Evaluate the zoo with a preset (resuming whatever the store already has), then print the
    leaderboard and write it in every format.

    \b
    quick: FGSM + PGD-10 on 100 images and CGBA (300 queries) on 10 images per model, about 30 s.
    full:  FGSM, PGD and auto on 1,000 images (CIFAR-10 at L∞ 8/255, L∞ 2/255 and L2 0.5;
           MNIST at L∞ 0.3), CGBA (1,000 queries) on 100 correctly classified images.
    """
    from .device import resolve_device
    from .leaderboard import RENDERERS
    from .naming import COMMAND_LINE
    from .presets import preset_runs
    from .runner import execute, prepare
    from .store import Store

    db = _passed_on(ctx, "db", db, "--db")
    out = _passed_on(ctx, "out", out, "--out")
    fmt_ = _passed_on(ctx, "fmt_", fmt_, "--format") or "markdown"
    out = out if out is not None else f"leaderboard-{preset}"
    check_out(out, db)  # before hours of runs
    target = Path(out)
    resolve_device(device, COMMAND_LINE)  # not there: one error, not one failure per run
    configs = preset_runs(preset, pattern, device=device, seed=seed)
    if not configs:
        raise RobustkitError(
            f"no CIFAR-10 or MNIST zoo model matches {pattern!r} (the presets evaluate only "
            "those); see `robustkit models 'cifar10/*'` and `robustkit models 'mnist/*'`"
        )
    # The command each run records (the leaderboard's tables quote it): what reproduces it.
    command = ["robustkit", "leaderboard", "run", "--preset", preset]
    for flag, value, default in (("--models", pattern, "*"), ("--seed", seed, 0)):
        if value != default:
            command += [flag, str(value)]
    if device != "auto":
        command += ["--device", device]
    failures = []
    t0 = time.perf_counter()
    with Store.open(db) as store:
        for k, config in enumerate(configs, 1):
            what = f"[{k}/{len(configs)}] {config.model}: {', '.join(config.attacks)} ({config.norm} {config.eps or 'default ε'}, {counted(config.n, 'image')})"
            click.echo(what, err=True)
            config.extra["command"] = shlex.join(command)
            try:
                execute(prepare(config), store, progress=progress)
            except KeyboardInterrupt as exc:  # (a SIGTERM too: cli.Terminated)
                click.echo(
                    f"interrupted at run {k} of {len(configs)}: the finished runs and shards are "
                    f"stored in {store.path}; rerun the same command to resume",
                    err=True,
                )
                sys.exit(exit_status(exc))
            except StoreWriteError as exc:  # every later run would compute a shard, then fail
                raise RobustkitError(
                    f"stopped at run {k} of {len(configs)} ({config.model}), as every later run "
                    f"would fail alike: {exc}"
                ) from None
            except RobustkitError as exc:  # keep going: every finished run is already stored
                failures.append(f"{config.model}: {exc}")
                click.echo(f"  failed: {exc}", err=True)
        board = built(store, db)
    try:
        echo(RENDERERS[fmt_](board))
    except OutputError as exc:  # the runs are stored, and --out can still be written
        unprinted: OutputError | None = exc
    else:
        unprinted = None
    for path in write_all(board, target, after_runs=True):
        click.echo(f"wrote {path}", err=True)
    if unprinted is not None:
        where = db_option(db)
        raise RobustkitError(
            f"{unprinted}; the runs are stored in {store.path}: robustkit leaderboard{where} "
            "prints the leaderboard"
        )
    click.echo(
        f"{len(configs) - len(failures)} of {counted(len(configs), 'run')} done in {time.perf_counter() - t0:.0f} s",
        err=True,
    )
    if failures:
        raise RobustkitError(f"{counted(len(failures), 'run')} failed; first: {failures[0]}")
