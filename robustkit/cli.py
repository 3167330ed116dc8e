"""The ``robustkit`` command line: a thin shell over the Python API.

Every command's ``--help`` documents it. A user's mistake (unknown name, missing file, bad
parameter) ends with a one-line ``Error: ...`` and exit status 2, as click's own usage errors
do, never a traceback (exit status 1 is left to robustkit's own bugs).
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import signal
import sys
import threading
import warnings
from typing import Any

import click

from . import __version__
from .errors import RobustkitError
from .jsonsafe import json_safe
from .registry import ATTACKS, DEFENSES, MODELS
from .tables import fmt, render

#: The exit status of a user's mistake (a one-line ``Error: ...``), as click's usage errors.
USER_ERROR = 2


class Terminated(KeyboardInterrupt):
    """A SIGTERM (``kill``, ``timeout``, a job scheduler's stop), raised where the command is,
    as a Ctrl-C raises KeyboardInterrupt: the handlers of the commands that store results then
    say what is stored and how to resume. The default SIGTERM ended a run without a word."""


def _terminated(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
    raise Terminated


def exit_status(exc: KeyboardInterrupt) -> int:
    """The exit status of a command stopped by ``exc``: 128 + the signal's number, as a shell
    reports a process that signal ended (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


def user_error(message: str) -> click.ClickException:
    """The one-line ``Error: message`` of a user's mistake, with its exit status."""
    error = click.ClickException(message)
    error.exit_code = USER_ERROR
    return error


def check_option_values(command: click.Command, args: list[str], interspersed: bool) -> None:
    """Refuse an option given an empty value (``--save-adv "$OUT"`` with OUT unset: an empty
    path read as no option, so the run saved nothing without a word) and one that takes one
    value given twice with two values (``--eps 8/255 ... --eps 4/255``: click keeps the last
    without a word, so a run was stored at another ε, or of another model, than the command
    line's first mention). ``interspersed``: the command takes arguments between its options
    (a group's first argument is its subcommand, whose options are its own)."""
    single = {
        opt: param
        for param in command.params
        if isinstance(param, click.Option) and not param.is_flag and not param.count
        for opt in param.opts
    }
    given: dict[str, list[tuple[str, str]]] = {}
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            break
        name, eq, value = token.partition("=")
        param = single.get(name) if token.startswith("--") else single.get(token)
        if param is None:
            if not token.startswith("-") and not interspersed:
                break  # (a group's subcommand)
            continue  # a flag, an argument, or what click itself refuses
        if not eq:
            value = next(tokens, None)  # its value, even one that starts with "-"
            if value is None:
                break  # (click says the value is missing)
        shown = name if eq else token
        if not value.strip():
            raise user_error(f"{shown} is given an empty value; give one, or leave {shown} out")
        if not param.multiple:
            given.setdefault(param.name, []).append((shown, value))
    for values in given.values():
        if len({value for _, value in values}) > 1:
            times = "twice" if len(values) == 2 else f"{len(values)} times"
            raise user_error(
                f"{values[0][0]} is given {times} ({', '.join(v for _, v in values)}); give it once"
            )


class RobustkitCommand(click.Command):
    """A click command that refuses an option given an empty value, or twice with two values
    (:func:`check_option_values`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        check_option_values(self, args, interspersed=True)
        return parse_printing(super().parse_args, ctx, args)


class RobustkitGroup(click.Group):
    """A click group that turns :class:`RobustkitError` into a one-line error message with exit
    status 2 (that of click's own usage errors: ``--n abc`` exited with 2 and ``--n 0`` with 1,
    so a script could not tell a mistake by its status), and a
    Ctrl-C or SIGTERM outside the commands' own handlers (loading a model, printing a report)
    into one line and exit status 130 or 143, as those handlers end (click's own "Aborted!"
    exits with 1). While a command runs, SIGTERM raises :class:`Terminated` (where it was not
    set to be ignored, and in the main thread only, where Python runs signal handlers)."""

    command_class = RobustkitCommand
    group_class = type  # (its groups, `runs` and `leaderboard`, are RobustkitGroups too)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        check_option_values(self, args, interspersed=False)
        return parse_printing(super().parse_args, ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        previous = None
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                previous = signal.signal(signal.SIGTERM, _terminated)
        try:
            return super().invoke(ctx)
        except RobustkitError as exc:
            raise user_error(str(exc)) from None
        except KeyboardInterrupt as exc:
            click.echo("interrupted", err=True)
            sys.exit(exit_status(exc))
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _one_line_warnings() -> None:
    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"Warning: {message}", err=True)

    warnings.showwarning = show


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # tensors, arrays, NumPy scalars
        return json_safe(obj.tolist())
    return str(obj)


class OutputError(RobustkitError):
    """Standard output that cannot be written (a full disk, ``> /dev/full``, an I/O error)."""


def output_error(exc: OSError) -> OutputError:
    """The one-line error of a write to stdout that failed with ``exc`` (not a closed pipe,
    click's own quiet exit). What stays buffered of stdout is dropped (stdout is pointed at
    os.devnull): Python's flush at exit failed on it again, with a second message."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # (not a file: nothing to flush at exit)
        fd = None
    if fd is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    return OutputError(
        f"cannot write the output to stdout ({exc.strerror or exc}); send it where it can be "
        "written"
    )


def db_option(db: str | None) -> str:
    """`` --db PATH`` (shell-quoted) to repeat in a suggested command, or nothing for the
    default store."""
    return f" --db {shlex.quote(db)}" if db else ""


def echo(message: str) -> None:
    """Print ``message`` and a newline on standard output, as ``click.echo``; a write that fails
    is an :class:`OutputError` (one line, exit status 2) where it ended in a traceback. A closed
    pipe (``| head -1``) is left to click, which ends quietly."""
    try:
        click.echo(message)
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise
        raise output_error(exc) from None


def parse_printing(parse: Any, ctx: click.Context, args: list[str]) -> list[str]:
    """``parse(ctx, args)``, a command's click parsing, where --help and --version print (as
    click, outside :func:`echo`): a write of theirs that fails is a one-line error too."""
    try:
        return parse(ctx, args)
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise
        raise user_error(str(output_error(exc))) from None


def echo_json(data: Any) -> None:
    echo(json.dumps(json_safe(data), indent=2, default=_json_default))


FORMAT = click.option(
    "--format",
    "fmt_",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


DB = click.option(
    "--db",
    type=click.Path(dir_okay=False),
    help="Results store (SQLite) [default: $ROBUSTKIT_HOME/results.db or the user data directory].",
)
DEVICE = click.option(
    "--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."
)
PROGRESS = click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show progress bars."
)


@click.group(cls=RobustkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="robustkit")
def cli() -> None:
    """robustkit: adversarial-robustness evaluation for PyTorch image classifiers.

    Models come from the zoo (`robustkit models`), attacks from `robustkit attacks`. Data and
    weights are read from $ROBUSTKIT_DATA and $ROBUSTKIT_WEIGHTS (see README.md).
    """
    _one_line_warnings()


@cli.command()
def version() -> None:
    """Print the versions of robustkit, torch and Python."""
    import torch

    echo(f"robustkit {__version__}")
    echo(f"torch {torch.__version__} (CUDA available: {torch.cuda.is_available()})")
    echo(f"python {sys.version.split()[0]}")


def _registry_listing(registry, pattern: str, fmt_: str, columns: list[str]) -> None:
    entries = registry.entries(pattern)
    if fmt_ == "json":
        echo_json([{"name": e.name, **e.metadata} for e in entries])
        return
    if not entries:
        echo(f"no {registry.kind} matches {pattern!r}")
        return
    rows = [[e.name] + [fmt(e.metadata.get(c)) for c in columns] for e in entries]
    echo(render(rows, ["name"] + columns))


@cli.command()
@click.argument("pattern", default="*")
@FORMAT
def models(pattern: str, fmt_: str) -> None:
    """List registered models whose names match PATTERN (a glob, e.g. 'cifar10/*').

    The table shows each model's licence and source; the JSON format gives every metadata
    field of the zoo models: data set, architecture, training, threat model, source URL,
    sha256, licence, and published and measured clean accuracy in percent (91.73; `evaluate
    --format json` gives fractions, 0.9173) (torchvision/* names show placeholders:
    robustkit.zoo.model_info gives theirs).
    """
    _registry_listing(
        MODELS,
        pattern,
        fmt_,
        [
            "dataset",
            "architecture",
            "training",
            "threat_model",
            "clean_accuracy_measured",
            "licence",
            "source",
        ],
    )


@cli.command()
@click.argument("pattern", default="*")
@FORMAT
def attacks(pattern: str, fmt_: str) -> None:
    """List registered attacks whose names match PATTERN."""
    _registry_listing(ATTACKS, pattern, fmt_, ["family", "norms", "summary"])


@cli.command()
@click.argument("pattern", default="*")
@FORMAT
def defenses(pattern: str, fmt_: str) -> None:
    """List registered defenses whose names match PATTERN."""
    _registry_listing(DEFENSES, pattern, fmt_, ["kind", "adaptive_attack", "summary"])


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="robustkit")


# Sub-command modules register themselves on ``cli``; imported last because they import ``cli``.
from . import cli_evaluate, cli_leaderboard, cli_runs  # noqa: E402,F401
