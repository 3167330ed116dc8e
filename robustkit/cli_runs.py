"""``robustkit runs``: the runs a results store holds, one run's report, and deleting runs.

A run interrupted for good (its model file edited since, say) stays ``running`` in the store,
and one computed by mistake stays on the leaderboard: these commands show them and take them
out, without opening Python.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import sys
from typing import Any

import click

from .cli import DB, FORMAT, cli, echo, echo_json, exit_status
from .errors import RobustkitError
from .store import Store, defense_names, find_run
from .tables import counted, render


def run_rows(store: Store, pattern: str = "*", status: str | None = None) -> list[dict[str, Any]]:
    """One row per stored run whose model matches ``pattern`` (a glob, any case): what the run
    is, how far it got (samples stored of those it was given) and when it started (UTC)."""
    from .cli_evaluate import targeted_text
    from .data import described
    from .threat import format_eps

    with store.snapshot():  # counts and runs of one state of the store
        counts = store.sample_counts()
        runs = store.runs(status)
    rows = []
    for run in runs:
        if not fnmatch.fnmatch(str(run["model"]).lower(), pattern.lower()):
            continue
        eps = "min-norm" if run["eps"] is None else format_eps(run["eps"])
        specs = json.loads(run["attacks"] or "{}")
        attacks = list(specs)
        # (a targeted run was listed as its untargeted twin; its report's header says which)
        targeted = targeted_text({label: spec["params"] for label, spec in specs.items()})
        rows.append(
            {
                "run_id": run["run_id"],
                "model": run["model"],
                "data": described(run["dataset"], run["split"]),
                # (a clean-accuracy run has none: it showed the default ε nothing used)
                "threat": f"{run['norm']} {eps}{targeted}" if attacks else "-",
                "attacks": attacks,
                "defenses": defense_names(run["defenses"]),
                "stored": counts.get(run["run_id"], 0),
                "n": len(json.loads(run["indices"] or "[]")),
                "status": run["status"],
                "started": dt.datetime.fromtimestamp(run["started"], dt.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M"
                ),
            }
        )
    return rows


@cli.group()
def runs() -> None:
    """The runs in the results store: list them, show one's report, delete some.

    Every `robustkit evaluate` (and `leaderboard run`) is a run, stored shard by shard; a run
    stopped before its end shows as running with fewer samples stored than asked for, and the
    same command resumes it.
    """


@runs.command("list")
@click.argument("pattern", default="*")
@click.option(
    "--status",
    type=click.Choice(["running", "finished"]),
    help="Only runs in this state (running: not finished, or being computed now).",
)
@DB
@FORMAT
def list_runs(pattern: str, status: str | None, db: str | None, fmt_: str) -> None:
    """List the stored runs whose model matches PATTERN (a glob, e.g. 'cifar10/*'), oldest
    first: id, model, data, threat model (and which attacks are targeted), attacks, defenses,
    samples stored of those asked for, status and start time (UTC)."""
    with Store.open(db, create=False) as store:
        rows = run_rows(store, pattern, status)
        total = 0 if rows else len(store.runs())  # (for a listing without rows)
    if fmt_ == "json":
        echo_json(rows)
        return
    if not rows:  # (with --status running it said "no stored run", beside finished ones)
        echo(
            f"no {status or 'stored'} run of a model matching {pattern!r} "
            f"({counted(total, 'stored run')} in all)"
        )
        return
    headers = ["run_id", "model", "data", "threat", "attacks", "defenses", "samples", "status"]
    table = [
        [
            r["run_id"],
            r["model"],
            r["data"],
            r["threat"],
            ", ".join(r["attacks"]) or "-",
            ", ".join(r["defenses"]) or "-",
            f"{r['stored']}/{r['n']}",
            r["status"],
            r["started"],
        ]
        for r in rows
    ]
    echo(render(table, [*headers, "started"]))


@runs.command("show")
@click.argument("run_id")
@DB
@FORMAT
def show_run(run_id: str, db: str | None, fmt_: str) -> None:
    """The report of stored run RUN_ID (or a unique start of it, 4 characters or more), as
    `robustkit evaluate` prints it, from the stored results alone."""
    from .cli_evaluate import render_report
    from .runner import summarize

    with Store.open(db, create=False) as store:
        report = summarize(store, find_run(store, run_id))
    if fmt_ == "json":
        echo_json(report)
    else:
        echo(render_report(report))


def _confirmed(question: str) -> bool:
    """The user's yes or no to ``question`` (on stderr). Input that ends before an answer (a
    script without --yes) is a one-line error naming --yes, and a Ctrl-C ends as every other
    does (one line, exit status 130): both ended with click's "Aborted!" and status 1."""
    try:
        return click.confirm(question, err=True)
    except click.Abort as exc:
        click.echo("", err=True)  # (ends the question's line)
        if isinstance(exc.__context__, KeyboardInterrupt):
            click.echo("interrupted: nothing deleted", err=True)
            sys.exit(exit_status(exc.__context__))
        raise RobustkitError(
            f"no answer to {question!r} (the input ended); nothing deleted: pass --yes to "
            "delete without asking"
        ) from None


@runs.command("delete")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@DB
def delete_runs(run_ids: tuple[str, ...], yes: bool, db: str | None) -> None:
    """Delete the stored runs RUN_IDS (ids or unique starts of them) and all their results.

    They leave the leaderboard; their samples are computed again if the same command is run
    again. Do not delete a run another process is computing now."""
    with Store.open(db, create=False) as store:
        with store.snapshot():  # (another process may delete or write runs meanwhile)
            ids = list(dict.fromkeys(find_run(store, ident) for ident in run_ids))
            rows = {r["run_id"]: r for r in run_rows(store)}
        for run_id in ids:
            r = rows[run_id]
            click.echo(
                f"{run_id}  {r['model']}  {r['threat']}  {', '.join(r['attacks']) or '-'}  "
                f"{r['stored']}/{counted(r['n'], 'sample')}  {r['status']}",
                err=True,
            )
        if not yes and not _confirmed(f"delete {counted(len(ids), 'run')} from {store.path}?"):
            click.echo("nothing deleted", err=True)
            return
        deleted = store.delete_runs(ids)
    click.echo(f"deleted {counted(deleted, 'run')}", err=True)
