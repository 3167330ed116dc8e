"""``robustkit evaluate``: clean and robust accuracy of one model against attacks."""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import shlex
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click
from click.core import ParameterSource

from .cli import (
    DB,
    DEVICE,
    FORMAT,
    PROGRESS,
    OutputError,
    cli,
    db_option,
    echo,
    echo_json,
    exit_status,
)
from .errors import RobustkitError
from .store import directory_problem, special_file
from .tables import counted, fmt, render

if TYPE_CHECKING:  # loaded by the commands that need them (the CLI starts without them)
    import numpy as np
    import torch


def save_adversarials(
    path: Path, evaluation, x: torch.Tensor, indices: Sequence[int] | np.ndarray | None
) -> None:
    """Write the adversarial examples and labels to an ``.npz`` file (atomically): per sample,
    the worst-case example (of the first attack in ``evaluation.results``, the order given, with
    an ε that broke it), else the closest one a minimum-norm attack found, else the clean image
    (``attack`` names the attack, '' for none); with the target of a targeted attack's example
    (``target``, -1 for none) where one ran."""
    import numpy as np
    import torch

    x_adv, which = evaluation.worst_case_adversarials(x, min_norm=True)
    labels = list(evaluation.results)
    # per sample, the saving attack's own figures (a clean image: its label, distance 0)
    adv_pred = evaluation.clean_pred.clone()
    l2, linf = torch.zeros(evaluation.n), torch.zeros(evaluation.n)
    for i, res in enumerate(evaluation.results.values()):
        take = which == i
        adv_pred[take], l2[take], linf[take] = res.adv_pred[take], res.l2[take], res.linf[take]
    arrays = {
        "x_adv": x_adv.numpy(),
        "y": evaluation.y.numpy(),
        "clean_pred": evaluation.clean_pred.numpy(),
        "adv_pred": adv_pred.numpy(),
        "attack": np.array([labels[i] if i >= 0 else "" for i in which.tolist()]),
        "index": np.asarray(indices) if indices is not None else np.arange(evaluation.n),
        "l2": l2.numpy(),
        "linf": linf.numpy(),
    }
    target = evaluation.targets_of(which)
    if target is not None:
        arrays["target"] = target.numpy()
    path = path.expanduser()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp, fh = part_file(path)
        with fh:
            np.savez_compressed(fh, **arrays)
        tmp.replace(path)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        # checked before the run (check_save_adv); changed since
        raise RobustkitError(
            f"cannot write --save-adv {path} ({exc.strerror or exc}); the run is stored: "
            "rerun with another --save-adv to get its adversarial examples"
        ) from None


def part_file(path: Path) -> tuple[Path, BinaryIO]:
    """A new, empty file beside ``path`` (opened for writing) to write it through, then
    ``os.replace`` it onto ``path``: a reader never sees ``path`` half written. Its name is
    its own (``NAME.<random>.part``) and it is created, never opened (``O_EXCL``): a file or a
    symlink found at a fixed name (``leaderboard.md.part -> ~/.bashrc``, planted in a shared
    directory) had its target overwritten, and two processes writing one path wrote into one
    temporary file; those a killed write left are cleared (:func:`clear_stale_parts`). Its
    permissions are those of the file at ``path`` it replaces (one made private with chmod 600
    became readable by all at the next run), else those of any new file (mode 0o666 less the
    umask, which ``os.open`` applies: ``tempfile.mkstemp`` would make it 0o600, and reading
    the umask means setting it, for every thread of the process)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except (OSError, ValueError):  # (no file there yet)
        mode = None
    while True:
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            try:  # (by its descriptor: the name could be another file's by now)
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, mode)
                else:  # (Windows before Python 3.13)
                    os.chmod(tmp, mode)
            except BaseException:
                os.close(fd)
                tmp.unlink(missing_ok=True)
                raise
        clear_stale_parts(path)
        return tmp, os.fdopen(fd, "wb")


#: How old a temporary file of an output must be to be taken for one a killed write left: a
#: write in progress keeps its file younger (it is written, then renamed at once).
STALE_PART_SECONDS = 24 * 3600


def clear_stale_parts(path: Path) -> None:
    """Remove the temporary files of ``path`` (``NAME.<8 hex digits>.part``, as
    :func:`part_file` names them) that a write killed before its end left (SIGKILL, the OOM
    killer during a large --save-adv: each such kill left one more, for good): regular files
    of this user, untouched for :data:`STALE_PART_SECONDS`. Best effort: nothing that fails
    here stops the write."""
    pattern = re.compile(re.escape(path.name) + r"\.[0-9a-f]{8}\.part")
    user = os.geteuid() if hasattr(os, "geteuid") else None
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            if not pattern.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):  # (gone meanwhile, say)
                info = entry.stat(follow_symlinks=False)
                if (
                    stat.S_ISREG(info.st_mode)
                    and (user is None or info.st_uid == user)
                    and now - info.st_mtime >= STALE_PART_SECONDS
                ):
                    os.unlink(entry.path)


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same file where both exist (through symlinks
    and hard links), else the same path once symlinks are resolved (a file still to be made)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):  # unreachable or unnameable: not shown to be the same
        return False


def store_files(db: str | None) -> list[tuple[Path, str]]:
    """The results store (``--db`` or the default one) and SQLite's -wal, -shm and -journal
    files beside it, each with the option that names it: files no output may replace."""
    from .store import default_db_path

    store = Path(db).expanduser() if db is not None else default_db_path()
    store_option = f"the results store (--db {db})" if db else f"the results store {store}"
    return [(store, store_option)] + [
        (store.with_name(store.name + suffix), f"the {suffix} file of {store_option}")
        for suffix in ("-wal", "-shm", "-journal")
    ]


def _run_files(
    db: str | None,
    dataset: str | None,
    split: str,
    model_name: str,
    weights: str | None,
) -> list[tuple[Path, str]]:
    """The files a run reads or writes, each with the option that names it: the results store
    (``--db`` or the default one) with SQLite's -wal, -shm and -journal files beside it, the
    data file (a named set's ``.npz``; every known set's when ``--data`` is left to the model),
    the weights and the model file."""
    from .data import DATASETS, data_dir, is_data_file
    from .zoo import is_user_file

    files = store_files(db)
    for name in [dataset] if dataset else list(DATASETS):
        if is_data_file(name):
            files.append((Path(name).expanduser(), f"the data (--data {name})"))
        elif name in DATASETS:
            files.append((data_dir() / f"{name}_{split}.npz", f"the {name} data"))
    if weights:
        files.append((Path(weights).expanduser(), f"the weights (--weights {weights})"))
    if is_user_file(model_name):
        model_file = model_name.rpartition(":")[0]
        files.append((Path(model_file).expanduser(), f"the model file {model_file}"))
    return files


def check_save_adv(
    save_adv: str,
    db: str | None = None,
    dataset: str | None = None,
    split: str = "test",
    model_name: str = "",
    weights: str | None = None,
) -> None:
    """Refuse an ``--save-adv`` path that cannot be written, or that is a file the run reads or
    writes (the results store would be replaced by the examples, every run in it lost), before
    anything is computed."""
    path = Path(save_adv).expanduser()
    if special_file(path):  # (replaced by the .npz: as root, the system's /dev/stdout)
        raise RobustkitError(
            f"--save-adv {save_adv} is not a regular file (a device, pipe, socket or stream); "
            "give the path of an .npz file to write"
        )
    problem = directory_problem(path.parent)
    if problem:
        raise RobustkitError(
            f"cannot write --save-adv {save_adv}: {problem}; choose a file in a writable directory"
        )
    for other, what in _run_files(db, dataset, split, model_name, weights):
        if same_file(path, other):
            raise RobustkitError(
                f"--save-adv {save_adv} is {what}, which writing the adversarial examples "
                "would replace; choose another file for --save-adv"
            )


def check_queries_used(queries: int, attack_specs: Sequence[str]) -> None:
    """Refuse a ``--queries`` that no attack takes (white-box attacks alone, or label-only ones
    that each set ``max_queries`` themselves): it was dropped without a word, as an ``--eps``
    that no attack uses is refused. (It is no part of a run's identity: the same command
    without it resumes a run stored with it.)"""
    from .specs import parse_attack_spec, takes_run_queries

    if any(takes_run_queries(spec) for spec in attack_specs):
        return
    own = [spec for spec in attack_specs if "max_queries" in parse_attack_spec(spec)[1]]
    why = (
        f"{', '.join(own)} set{'s its' if len(own) == 1 else ' their'} own max_queries"
        if own
        else "it is the budget of label-only attacks (cgba, cgba-h, hsja, geoda) and none runs"
    )
    raise RobustkitError(f"--queries {queries} is used by no attack here: {why}; drop --queries")


@cli.command()
@click.option("--model", "model_name", required=True, help="Zoo name or path/to/file.py:factory.")
@click.option("--weights", type=click.Path(dir_okay=False), help="Explicit checkpoint file.")
@click.option(
    "--unsafe-load",
    is_flag=True,
    help="Allow a checkpoint that needs full unpickling (runs code from the file: trust it).",
)
@click.option(
    "--defense",
    "defense_specs",
    multiple=True,
    help="DEFENSE[:key=value,...] wrapped around the model, repeatable (see `robustkit defenses`).",
)
@click.option("--data", "dataset", help="Data set name or .npz path [default: the model's].")
@click.option(
    "--split", default="test", show_default=True, help="Data split (of a named data set)."
)
@click.option("--n", "n", type=int, default=1000, show_default=True, help="Number of samples.")
@click.option("--offset", type=int, default=0, show_default=True, help="Index of the first sample.")
@click.option(
    "--batch-size",
    type=int,
    default=250,
    show_default=True,
    help="Samples per shard (attacked together; a finished shard is stored). Part of the run: "
    "another --batch-size starts another run, it does not resume this one. On a GPU larger "
    "shards pay for decision-based attacks: CGBA on an H200 made 29,000 queries/s with 100 "
    "images and 119,000 with 1,000 (cifar10/resnet20).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for every random draw.")
@click.option(
    "--attack",
    "attack_specs",
    multiple=True,
    help="ATTACK[:key=value,...], repeatable, e.g. pgd:steps=20,restarts=2 (see `robustkit "
    "attacks`); auto's stages are joined with + and a stage's parameters with ; "
    "(auto:stages=pgd:steps=5;restarts=2+apgd-t). [default: none: without --attack, clean "
    "accuracy only]",
)
@click.option("--norm", default="linf", show_default=True, help="Threat-model norm: linf or l2.")
@click.option(
    "--eps",
    help="Perturbation budget on the [0, 1] pixel scale, e.g. 8/255 [default: the data set's: "
    "CIFAR-10 8/255 L∞, 0.5 L2; MNIST 0.3, 2.0; other data 8/255, 0.5]. Refused where no attack "
    "would use it (no --attack, or only label-only attacks, which are L2 and minimum-norm in an "
    "L∞ run).",
)
@click.option(
    "--targeted",
    is_flag=True,
    help="Targeted attacks, with a random target per sample: pgd, fgsm and the label-only "
    "attacks (refused with an attack that takes no target, apgd-* or auto, and where no attack "
    "is targeted: without --attack, or with only specs that set targeted=false).",
)
@click.option(
    "--queries",
    type=int,
    default=1000,
    show_default=True,
    help="Query budget per sample for decision-based attacks (refused where no attack takes "
    "it: white-box attacks alone, or label-only ones that set max_queries in their spec).",
)
@click.option(
    "--save-adv",
    type=click.Path(dir_okay=False),
    help="Write adversarial examples to this .npz file (refused without --attack; array "
    "x_adv): per sample the worst-case one (of the first attack with an ε that broke it, in "
    "the order given with --attack; the "
    "report lists attacks by name), else the closest a minimum-norm attack found, else the clean "
    "image; with y, clean_pred, adv_pred, attack (its label, '' for none), index, l2, linf, and "
    "target where an attack is targeted. The store keeps no images: on a stored run the attacks "
    "run again, in memory with each shard's seed, to give them.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Start over instead of resuming a stored run of this configuration (its stored "
    "results stay until the new run stores its first shard, which replaces them).",
)
@DEVICE
@DB
@PROGRESS
@FORMAT
def evaluate(
    model_name: str,
    weights: str | None,
    unsafe_load: bool,
    defense_specs: tuple[str, ...],
    dataset: str | None,
    split: str,
    n: int,
    offset: int,
    batch_size: int,
    device: str,
    seed: int,
    attack_specs: tuple[str, ...],
    norm: str,
    eps: str | None,
    targeted: bool,
    queries: int,
    save_adv: str | None,
    db: str | None,
    fresh: bool,
    progress: bool,
    fmt_: str,
) -> None:
    """Clean accuracy and robust accuracy of MODEL against each --attack and all of them jointly.

    Label-only attacks (cgba, cgba-h, hsja, geoda) judge robustness at an ε only with --norm l2
    (at --eps, or the data set's default L2 ε); otherwise they are minimum-norm attacks that
    report distances and stay out of the joint figure.

    \b
    Examples:
      robustkit evaluate --model cifar10/resnet20 --n 1000
      robustkit evaluate --model cifar10/resnet20 --attack fgsm --attack pgd:steps=10 --eps 8/255
      robustkit evaluate --model cifar10/resnet20 --attack cgba --queries 1000 --n 100
    """
    from .runner import RunConfig, execute, prepare, stored_note, summarize
    from .store import Store

    if save_adv is not None:  # before anything is loaded or computed
        if not attack_specs:  # (it wrote the clean images as "adversarial examples")
            raise RobustkitError(
                "--save-adv is used by no attack: without --attack a run makes no adversarial "
                "examples; add an --attack or drop --save-adv"
            )
        check_save_adv(save_adv, db, dataset, split, model_name, weights)
    config = RunConfig(
        model=model_name,
        dataset=dataset,
        split=split,
        n=n,
        offset=offset,
        attacks=attack_specs,
        defenses=defense_specs,
        norm=norm,
        eps=eps,
        targeted=targeted,
        queries=queries,
        batch_size=batch_size,
        seed=seed,
        device=device,
        weights=weights,
        unsafe_load=unsafe_load,
        extra={"command": stored_command(sys.argv[1:])},  # copy-pastable
    )
    # What the model prints while it loads and runs (a user model may print in its forward)
    # goes to stderr: stdout carries the report alone, so --format json stays valid JSON.
    with contextlib.redirect_stdout(sys.stderr):
        run = prepare(config)
        if (
            click.get_current_context().get_parameter_source("queries")
            is ParameterSource.COMMANDLINE
        ):
            check_queries_used(queries, attack_specs)
        with Store.open(db) as store:
            try:
                evaluation = execute(
                    run, store, fresh=fresh, progress=progress, recompute=bool(save_adv)
                )
            except KeyboardInterrupt as exc:  # (a SIGTERM too: cli.Terminated)
                # Every finished shard is already stored: say so, and how to go on.
                kept, go_on = stored_note(run, store, fresh)
                click.echo(f"interrupted: {kept}; {go_on}", err=True)
                sys.exit(exit_status(exc))
            report = summarize(store, run.run_id)
        if save_adv:
            save_adversarials(Path(save_adv), evaluation, run.x, run.indices)
            report["saved_adversarials"] = str(save_adv)
            # the report lists the attacks by name: say which of them the examples take first
            order = [label for label, atk in run.attacks.items() if atk.eps is not None]
            if len(order) > 1:
                report["saved_adversarials_order"] = order
    try:
        if fmt_ == "json":
            echo_json(report)
        else:
            echo(render_report(report))
    except OutputError as exc:  # (it said nothing of the run, stored before the report)
        where = db_option(db)
        raise RobustkitError(
            f"{exc}; run {run.run_id} is stored in {report['db']}: robustkit runs show "
            f"{run.run_id}{where} prints its report"
        ) from None


def stored_command(args: Sequence[str]) -> str:
    """The command line (``robustkit`` and ``args``, shell-quoted) a run records as the one that
    resumes and reproduces it: without --fresh, which starts it over (``runs show`` of a fresh
    run stopped early said "rerun its command to resume it: ... --fresh"). A "--fresh" that is
    another option's value (``--save-adv --fresh``) stays."""
    takes_value = {
        opt
        for param in evaluate.params
        if isinstance(param, click.Option) and not param.is_flag and not param.count
        for opt in param.opts
    }
    kept: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--":  # (what follows is arguments, kept as given)
            kept += [token, *tokens]
            break
        if token == "--fresh":
            continue
        kept.append(token)
        value = next(tokens, None) if token in takes_value else None
        if value is not None:  # the option's value (given with =, it is in the token)
            kept.append(value)
    return shlex.join(["robustkit", *kept])


def resuming_command(command: str) -> str:
    """A run's stored ``command`` as the one that resumes it: without --fresh, which a run
    stored before :func:`stored_command` (or by another program) may still have."""
    try:
        args = shlex.split(command)
    except ValueError:  # (not a shell command line: shown as stored)
        return command
    if args[:2] != ["robustkit", "evaluate"] or "--fresh" not in args:
        return command
    return stored_command(args[1:])


#: The order the report lists package versions in (others follow, by name).
_VERSION_ORDER = ("robustkit", "torch", "numpy", "python", "platform")


def _version_text(versions: dict[str, str]) -> str:
    keys = [k for k in _VERSION_ORDER if k in versions]
    keys += sorted(k for k in versions if k not in _VERSION_ORDER)
    return ", ".join(f"{k} {versions[k]}" for k in keys)


def _resumed_on(report: dict[str, Any]) -> str:
    """`` (resumed on cuda:0)`` where a resume ran on another device than the run began on."""
    devices = [r["device"] for r in report.get("resumed_with", []) if "device" in r]
    return f" (resumed on {', '.join(dict.fromkeys(devices))})" if devices else ""


def _versions_line(report: dict[str, Any]) -> list[str]:
    """The package versions, where a resume ran with others than the run began with (the
    run's results were computed by both; the versions are not shown otherwise)."""
    others = [{k: v for k, v in r.items() if k != "device"} for r in report.get("resumed_with", [])]
    others = [o for o in others if o]
    if not others:
        return []
    resumed = "; ".join(_version_text(o) for o in others)
    return [f"versions: {_version_text(report['versions'])} (resumed with {resumed})"]


def targeted_text(params: dict[str, dict[str, Any]]) -> str:
    """What follows a run's threat model to say which of its attacks (label -> parameters) are
    targeted: " targeted" for all, " (targeted: LABEL, ...)" for some, "" for none. Said by the
    attacks that are, not by --targeted: an attack targeted by default (cgba-h) was headed
    "threat linf 0.3" (untargeted) above its targeted row, and one set targeted=false under
    --targeted was headed targeted."""
    targeted = [label for label, p in params.items() if p.get("targeted")]
    if targeted and len(targeted) == len(params):
        return " targeted"
    return f" (targeted: {', '.join(targeted)})" if targeted else ""


def render_report(report: dict[str, Any]) -> str:
    """The evaluation report as terminal text."""
    from .runner import counts_in_worst_case
    from .sanity import was_checked
    from .threat import format_eps

    tm = report["threat_model"]
    threat = f"{tm['norm']} {tm['eps_text']}"
    threat += targeted_text({label: row["params"] for label, row in report["attacks"].items()})
    if not report["attacks"]:  # (the data set's default ε, which nothing used, was shown)
        threat = "none (clean accuracy only)"
    if report.get("correct_only"):  # not a range: the first ones the model gets right
        samples = f"first {report.get('n_asked', report['n'])} correct from {report['offset']}"
    else:
        samples = f"[{report['offset']}, {report['offset'] + report['n']})"
    from .data import described

    data = described(report["data"], report["split"])
    lines = [
        f"model {report['model']} | data {data} "
        f"{samples} | threat {threat} "
        f"| device {report['device']}{_resumed_on(report)} | seed {report['seed']}"
        + (f" | defenses {', '.join(report['defenses'])}" if report.get("defenses") else ""),
        *_versions_line(report),
        f"clean accuracy: {fmt(report['clean_accuracy'], percent=True)} ({counted(report['n'], 'sample')})",
    ]
    unfinished = report.get("status", "finished") != "finished"
    if unfinished:  # (runs show of a run stopped early: its figures cover what is stored)
        asked = report.get("n_asked", report["n"])
        # (it said "rerun the run's command" without showing the command the store keeps)
        rerun = (
            f"rerun its command to resume it: {resuming_command(report['command'])}"
            if report.get("command")
            else "rerun the run's command to resume it"
        )
        lines.append(
            f"UNFINISHED: {report['n']} of {counted(asked, 'sample')} stored; every figure here covers "
            f"those only ({rerun})"
        )
    if report["attacks"]:
        rows = [
            [
                label,
                row["threat"],
                fmt(row["robust_accuracy"], percent=True),
                fmt(row["success_rate"], percent=True),
                fmt(row["median_norm"]),
                fmt(row["max_norm"]),
                row["forwards"],
                row["gradients"],
                "-" if math.isnan(row["seconds"]) else f"{row['seconds']:.1f}",  # (none stored)
            ]
            for label, row in report["attacks"].items()
        ]
        headers = [
            "attack",
            "threat",
            "robust acc",
            "success",
            "median norm (fooled)",
            "max norm (fooled)",
            "forwards",
            "gradients",
            "seconds",
        ]
        lines += ["", render(rows, headers), ""]
        joint = (
            f"joint (worst-case) robust accuracy: {fmt(report['robust_accuracy'], percent=True)}"
        )
        if report["robust_accuracy"] is None and not report["n"]:
            joint += " (no sample stored yet)"
        elif report["robust_accuracy"] is None:
            joint += (
                " (no attack here has an ε: minimum-norm attacks report distances, not robustness;"
                " give --norm l2 to judge label-only attacks at an L2 ε)"
            )
        elif all(
            row["params"].get("targeted")
            for row in report["attacks"].values()
            if counts_in_worst_case(row["params"])
        ):
            fix = "drop --targeted" if tm.get("targeted") else "add an untargeted attack"
            joint += (
                " (every attack here with an ε is targeted: each aimed only at its targets,"
                " though any misclassification it reached counts, so this is an upper bound;"
                f" {fix} for the robust accuracy)"
            )
        lines.append(joint)
        for label, row in report["attacks"].items():
            if row.get("stages"):
                steps = ", then ".join(
                    f"{s['stage']} {fmt(s['robust_accuracy'], percent=True)}" for s in row["stages"]
                )
                lines.append(f"{label}, robust accuracy after each stage: {steps}")
        for label, row in report["attacks"].items():
            dec = row.get("decision")
            if not dec or not dec.get("median_l2"):
                continue
            lines += [
                "",
                f"{label}: median L2 of the best adversarial within each query budget, over every "
                "attacked sample (inf: half of them or fewer fooled within it)",
            ]
            drows = [["median L2"] + [fmt(v) for v in dec["median_l2"]]]
            if "success_rate_at_eps" in dec:
                drows.append(
                    [f"success at L2 <= {format_eps(dec['eps'])}"]
                    + [fmt(v, percent=True) for v in dec["success_rate_at_eps"]]
                )
            lines.append(render(drows, ["queries"] + [str(b) for b in dec["budgets"]]))
    checks = report.get("checks", [])
    flagged = [c for c in checks if c["flagged"]]
    if flagged:
        lines.append("")
        lines += [f"UNRELIABLE ({c['name']}): {c['detail']}" for c in flagged]
    elif checks:
        # a check that could not be made on this run (e.g. no label-only attack to compare)
        # is not a pass
        skipped = [c["name"] for c in checks if not was_checked(c["detail"])]
        line = f"sanity checks: {len(checks) - len(skipped)} passed"
        if skipped:
            line += f", {len(skipped)} not applicable to this run ({', '.join(skipped)})"
        lines += ["", line]
    if report.get("run_id"):
        lines.append(f"run {report['run_id']} stored in {report['db']}")
    if report.get("saved_adversarials"):  # (the JSON said where; the table did not)
        line = f"adversarial examples saved to {report['saved_adversarials']}"
        if report.get("saved_adversarials_order"):  # (the rows above are in another order)
            line += (
                " (of a sample several attacks broke, the example of the first in the order "
                f"given: {', '.join(report['saved_adversarials_order'])})"
            )
        lines.append(line)
    return "\n".join(lines)
