"""``robustkit evaluate``: clean and robust accuracy of one model against attacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from .cli import FORMAT, cli, echo_json
from .errors import InputError
from .tables import fmt, render
from .threat import check_norm, format_eps, parse_eps

#: ε used when --eps is not given, by (data set, norm): the budgets most papers report.
DEFAULT_EPS = {
    ("cifar10", "linf"): 8 / 255,
    ("cifar10", "l2"): 0.5,
    ("mnist", "linf"): 0.3,
    ("mnist", "l2"): 2.0,
}


def default_eps(dataset: str, norm: str) -> float:
    """The conventional ε for a data set and norm (8/255 and 0.5 for CIFAR-10, 0.3 and 2.0 for
    MNIST, 8/255 and 0.5 otherwise)."""
    return DEFAULT_EPS.get((dataset, norm), 8 / 255 if norm == "linf" else 0.5)


def random_targets(y: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    """A target class for every sample, uniformly among the classes other than its label."""
    gen = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, y.shape, generator=gen)
    return (y + shift) % num_classes


def save_adversarials(path: Path, evaluation, x: torch.Tensor, indices: np.ndarray) -> None:
    """Write the worst-case adversarial examples and labels to an ``.npz`` file (atomically)."""
    x_adv, which = evaluation.worst_case_adversarials(x)
    labels = list(evaluation.results)
    adv_pred = evaluation.clean_pred.clone()
    for i, res in enumerate(evaluation.results.values()):
        adv_pred[which == i] = res.adv_pred[which == i]
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            x_adv=x_adv.numpy(),
            y=evaluation.y.numpy(),
            clean_pred=evaluation.clean_pred.numpy(),
            adv_pred=adv_pred.numpy(),
            attack=np.array([labels[i] if i >= 0 else "" for i in which.tolist()]),
            index=indices,
        )
    tmp.replace(path)


def decision_summary(res, budgets: list[int], eps: float | None) -> dict[str, Any]:
    """Median L2 at each budget and success rate at ε within each budget, from trajectories."""
    from .budgets import median_l2_at, success_rate_at

    out: dict[str, Any] = {"budgets": budgets}
    attacked = res.attacked
    traj = [t for t, a in zip(res.trajectories, attacked.tolist(), strict=True) if a]
    out["median_l2"] = [float(v) for v in median_l2_at(traj, budgets)] if traj else []
    if eps is not None and traj:
        out["eps"] = eps
        out["success_rate_at_eps"] = [float(v) for v in success_rate_at(traj, eps, budgets)]
    return out


def parse_budgets(text: str | None, max_queries: int) -> list[int]:
    if not text:
        return [b for b in (100, 250, 500, 1000, 2000, 5000, 10000) if b < max_queries] + [
            max_queries
        ]
    try:
        budgets = sorted({int(b) for b in text.split(",") if b.strip()})
    except ValueError:
        raise InputError(
            f"--budgets takes whole numbers separated by commas, got {text!r}"
        ) from None
    if not budgets or budgets[0] <= 0:
        raise InputError("--budgets must be positive numbers of queries, e.g. 250,500,1000")
    return budgets


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
@click.option("--split", default="test", show_default=True, help="Data split.")
@click.option("--n", "n", type=int, default=1000, show_default=True, help="Number of samples.")
@click.option("--offset", type=int, default=0, show_default=True, help="Index of the first sample.")
@click.option("--batch-size", type=int, default=250, show_default=True, help="Samples per shard.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for every random draw.")
@click.option(
    "--attack",
    "attack_specs",
    multiple=True,
    help="ATTACK[:key=value,...], repeatable, e.g. pgd:steps=20,restarts=2 (see `robustkit attacks`).",
)
@click.option("--norm", default="linf", show_default=True, help="Threat-model norm: linf or l2.")
@click.option("--eps", help="Perturbation budget, e.g. 8/255 [default: 8/255 CIFAR-10, 0.3 MNIST].")
@click.option("--targeted", is_flag=True, help="Targeted attacks, with a random target per sample.")
@click.option(
    "--queries",
    type=int,
    default=1000,
    show_default=True,
    help="Query budget per sample for decision-based attacks.",
)
@click.option(
    "--budgets", help="Query budgets to report for decision-based attacks, e.g. 250,500,1000."
)
@click.option(
    "--save-adv",
    type=click.Path(dir_okay=False),
    help="Write adversarial examples and labels to this .npz file.",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show a progress bar."
)
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
    budgets: str | None,
    save_adv: str | None,
    progress: bool,
    fmt_: str,
) -> None:
    """Clean accuracy and robust accuracy of MODEL against each --attack and all of them jointly.

    \b
    Examples:
      robustkit evaluate --model cifar10/resnet20 --n 1000
      robustkit evaluate --model cifar10/resnet20 --attack fgsm --attack pgd:steps=10 --eps 8/255
      robustkit evaluate --model cifar10/resnet20 --attack cgba --queries 1000 --n 100
    """
    from . import zoo
    from .data import load_dataset
    from .device import resolve_device, seed_everything
    from .evaluation import evaluate as run_evaluate
    from .specs import build_attack, build_defense

    norm = check_norm(norm)
    if queries <= 0:
        raise InputError(f"--queries must be a positive query budget, got {queries}")
    if batch_size <= 0:
        raise InputError(f"--batch-size must be a positive integer, got {batch_size}")
    dev = resolve_device(device)
    seed_everything(seed)
    info = zoo.model_info(model_name) if ":" not in model_name else {}
    dataset = dataset or info.get("dataset")
    if dataset is None:
        raise InputError(f"--data is needed: {model_name!r} does not say which data set it takes")
    eps_value = parse_eps(eps) if eps is not None else default_eps(dataset, norm)
    attacks = {}
    for spec in attack_specs:
        atk = build_attack(
            spec, norm=norm, eps=eps_value, max_queries=queries, targeted=targeted or None
        )
        label, k = spec, 2
        while label in attacks:
            label, k = f"{spec}#{k}", k + 1
        attacks[label] = atk
    defenses = [build_defense(spec) for spec in defense_specs]
    model = zoo.load_model(model_name, device=dev, weights=weights, allow_unsafe=unsafe_load)
    for defense in defenses:
        model = defense.apply(model)
    x, y = load_dataset(dataset, split=split, n=n, offset=offset)
    indices = np.arange(offset, offset + len(y))
    target = None
    if any(a.targeted for a in attacks.values()):
        with torch.no_grad():
            num_classes = model(x[:1].to(dev)).shape[1]
        target = random_targets(y, num_classes, seed)

    evaluation = run_evaluate(
        model, attacks, x, y, target=target, batch_size=batch_size, seed=seed, progress=progress
    )
    report = build_report(
        evaluation,
        attacks,
        model_name,
        dataset,
        split,
        offset,
        dev,
        seed,
        norm,
        eps_value,
        parse_budgets(budgets, queries),
    )
    report["defenses"] = list(defense_specs)
    if save_adv:
        save_adversarials(Path(save_adv), evaluation, x, indices)
        report["saved_adversarials"] = str(save_adv)
    if fmt_ == "json":
        echo_json(report)
    else:
        click.echo(render_report(report))


def build_report(
    evaluation, attacks, model_name, dataset, split, offset, dev, seed, norm, eps, budgets
):
    """The evaluation as a JSON-ready dict (also what the table is rendered from)."""
    report: dict[str, Any] = {
        "model": model_name,
        "data": dataset,
        "split": split,
        "offset": offset,
        "n": evaluation.n,
        "device": str(dev),
        "seed": seed,
        "threat_model": {"norm": norm, "eps": eps, "eps_text": format_eps(eps)},
        "clean_accuracy": evaluation.clean_accuracy,
        "attacks": {},
        "robust_accuracy": evaluation.robust_accuracy if attacks else None,
        "seconds": evaluation.seconds,
    }
    for label, res in evaluation.results.items():
        row = res.summary()
        row["family"] = attacks[label].family
        row["params"] = attacks[label].params
        if res.trajectories is not None:
            eps_l2 = (
                res.threat.eps if res.threat.eps is not None else (eps if norm == "l2" else None)
            )
            max_q = int(res.params.get("max_queries", max(budgets)))
            own = sorted({b for b in budgets if b <= max_q} | {max_q})
            row["decision"] = decision_summary(res, own, eps_l2)
        report["attacks"][label] = row
    return report


def render_report(report: dict[str, Any]) -> str:
    """The evaluation report as terminal text."""
    tm = report["threat_model"]
    lines = [
        f"model {report['model']} | data {report['data']}/{report['split']} "
        f"[{report['offset']}, {report['offset'] + report['n']}) | threat {tm['norm']} "
        f"{tm['eps_text']} | device {report['device']} | seed {report['seed']}"
        + (f" | defenses {', '.join(report['defenses'])}" if report.get("defenses") else ""),
        f"clean accuracy: {fmt(report['clean_accuracy'], percent=True)} ({report['n']} samples)",
    ]
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
                f"{row['seconds']:.1f}",
            ]
            for label, row in report["attacks"].items()
        ]
        headers = [
            "attack",
            "threat",
            "robust acc",
            "success",
            "median norm",
            "max norm",
            "forwards",
            "gradients",
            "seconds",
        ]
        lines += ["", render(rows, headers), ""]
        lines.append(
            f"joint (worst-case) robust accuracy: {fmt(report['robust_accuracy'], percent=True)}"
        )
        for label, row in report["attacks"].items():
            dec = row.get("decision")
            if not dec or not dec.get("median_l2"):
                continue
            lines += ["", f"{label}: median L2 of the best adversarial within each query budget"]
            drows = [["median L2"] + [fmt(v) for v in dec["median_l2"]]]
            if "success_rate_at_eps" in dec:
                drows.append(
                    [f"success at L2 <= {dec['eps']:g}"]
                    + [fmt(v, percent=True) for v in dec["success_rate_at_eps"]]
                )
            lines.append(render(drows, ["queries"] + [str(b) for b in dec["budgets"]]))
    return "\n".join(lines)
