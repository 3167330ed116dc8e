"""``robustkit leaderboard``: tables from the results store, and presets that fill it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from .cli import DB, DEVICE, PROGRESS, cli
from .errors import RobustkitError

FORMATS = ("markdown", "csv", "json", "html")


def write_all(board, out: Path) -> list[Path]:
    """Write the leaderboard in every format into ``out`` (atomically, file by file)."""
    from .leaderboard import EXTENSIONS, RENDERERS

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt_, render in RENDERERS.items():
        path = out / f"leaderboard.{EXTENSIONS[fmt_]}"
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(render(board), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


@cli.group(invoke_without_command=True)
@DB
@click.option(
    "--format",
    "fmt_",
    type=click.Choice(FORMATS),
    default="markdown",
    show_default=True,
    help="Format printed to the terminal.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Also write leaderboard.{md,csv,json,html} into this directory.",
)
@click.pass_context
def leaderboard(ctx: click.Context, db: str | None, fmt_: str, out: str | None) -> None:
    """Build leaderboards from the results store: one table per (data set, threat model), sorted
    by worst-case robust accuracy, and a decision-based table. `robustkit leaderboard run`
    evaluates a preset of zoo runs first."""
    if ctx.invoked_subcommand is not None:
        return
    from .leaderboard import RENDERERS, build
    from .store import Store

    with Store.open(db, create=False) as store:
        board = build(store)
    click.echo(RENDERERS[fmt_](board))
    if out:
        for path in write_all(board, Path(out)):
            click.echo(f"wrote {path}", err=True)


@leaderboard.command("run")
@click.option(
    "--preset",
    type=click.Choice(["quick", "full"]),
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
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every run.")
@DB
@DEVICE
@PROGRESS
def run_preset(
    preset: str,
    pattern: str,
    db: str | None,
    out: str | None,
    device: str,
    seed: int,
    progress: bool,
) -> None:
    """Evaluate the zoo with a preset (resuming whatever the store already has), then print the
    leaderboard and write it in every format.

    \b
    quick: FGSM + PGD-10 on 100 images and CGBA (300 queries) on 10 images per model, minutes.
    full:  FGSM, PGD and auto at four threat models on 1,000 images, CGBA (1,000 queries) on 100.
    """
    from .leaderboard import build, to_markdown
    from .presets import preset_runs
    from .runner import execute, prepare
    from .store import Store

    configs = preset_runs(preset, pattern, device=device, seed=seed)
    if not configs:
        raise RobustkitError(f"no zoo model matches {pattern!r}; see `robustkit models`")
    failures = []
    t0 = time.perf_counter()
    with Store.open(db) as store:
        for k, config in enumerate(configs, 1):
            what = f"[{k}/{len(configs)}] {config.model}: {', '.join(config.attacks)} ({config.norm} {config.eps or 'default ε'}, {config.n} images)"
            click.echo(what, err=True)
            config.extra["command"] = f"robustkit leaderboard run --preset {preset}"
            try:
                execute(prepare(config), store, progress=progress)
            except KeyboardInterrupt:
                click.echo(
                    f"interrupted at run {k} of {len(configs)}: the finished runs and shards are "
                    f"stored in {store.path}; rerun the same command to resume",
                    err=True,
                )
                sys.exit(130)
            except RobustkitError as exc:  # keep going: every finished run is already stored
                failures.append(f"{config.model}: {exc}")
                click.echo(f"  failed: {exc}", err=True)
        board = build(store)
    click.echo(to_markdown(board))
    target = Path(out or f"leaderboard-{preset}")
    for path in write_all(board, target):
        click.echo(f"wrote {path}", err=True)
    click.echo(
        f"{len(configs) - len(failures)} of {len(configs)} runs done in {time.perf_counter() - t0:.0f} s",
        err=True,
    )
    if failures:
        raise RobustkitError(f"{len(failures)} run(s) failed; first: {failures[0]}")
