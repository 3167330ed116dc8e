"""White-box benchmark: FGSM and fixed 10-step PGD (L∞ 8/255) across libraries.

One process, one model object (cifar10/resnet20, normalization inside), the same ``--n`` CIFAR-10
test images and the same thread count for every method. The images are the first ``--n`` the model
classifies correctly, so every method does the same work: robustkit skips images the model gets
wrong, the others attack them too, and on the first 512 test images (91.2% correct) that alone
made robustkit look 1.10× faster. Each method is warmed up once, then timed ``--repeats`` times,
round-robin over the methods (this CPU's speed drifts over minutes); the median is reported. Robust accuracy is ``mean(model(x_adv).argmax == y)`` over the n images. Also measured: robustkit's
early-stopping PGD (time to the same robust accuracy as torchattacks' PGD-10) and robustkit's
``auto`` ensemble on cifar10/resnet4b-at at L∞ 2/255 (with PGD-10, step ε/4, for reference).

    .venv/bin/python benchmarks/whitebox.py --n 512 --threads 2 --repeats 3 --auto-n 1000 --readme
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import robustkit
from robustkit.data import dataset_size

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decision import installed, output_problem  # noqa: E402

#: The libraries compared with robustkit, as imported, and the packages that install them.
PEERS = {
    "torchattacks": "torchattacks",
    "foolbox": "foolbox",
    "art": "adversarial-robustness-toolbox",
}
EPS = 8 / 255
STEP = 2 / 255
STEPS = 10
ROOT = Path(__file__).resolve().parent
README = ROOT / "README.md"
BEGIN, END = "<!-- whitebox-benchmark:begin -->", "<!-- whitebox-benchmark:end -->"

Method = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def plain_pgd(model: torch.nn.Module, x, y, eps=EPS, alpha=STEP, steps=STEPS) -> torch.Tensor:
    """Reference PGD: uniform random start in the ε-ball, sign steps, clamp to ball and [0, 1];
    the whole batch at once, no early stop."""
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            x_adv = x_adv + alpha * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


def plain_fgsm(model: torch.nn.Module, x, y, eps=EPS) -> torch.Tensor:
    """Reference FGSM: one sign step of size ε, clamped to [0, 1]."""
    x_in = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_in), y, reduction="sum"), x_in)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def robustkit_method(model, name: str, **params) -> Method:
    attack = robustkit.get_attack(name, **params)
    return lambda x, y: attack(model, x, y).x_adv.to(x.device)  # results live on the CPU


def first_correct(model, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` CIFAR-10 test images ``model`` classifies correctly, and their labels."""
    x, y = robustkit.load_dataset("cifar10")
    keep = []
    with torch.no_grad():
        for start in range(0, len(y), 500):
            xb = x[start : start + 500].to(device)
            ok = (model(xb).argmax(1).cpu() == y[start : start + 500]).nonzero().flatten()
            keep += (ok + start).tolist()
            if len(keep) >= n:
                break
    if len(keep) < n:
        raise SystemExit(f"only {len(keep)} correctly classified test images; use a smaller --n")
    idx = torch.tensor(keep[:n])
    return x[idx].to(device), y[idx].to(device)


def torchattacks_methods(model) -> dict[str, Method]:
    import torchattacks

    pgd = torchattacks.PGD(model, eps=EPS, alpha=STEP, steps=STEPS, random_start=True)
    fgsm = torchattacks.FGSM(model, eps=EPS)
    return {"torchattacks FGSM": fgsm, "torchattacks PGD-10": pgd}


def foolbox_methods(model) -> dict[str, Method]:
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    pgd = fb.attacks.LinfPGD(abs_stepsize=STEP, steps=STEPS, random_start=True)
    fgsm = fb.attacks.FGSM(random_start=False)

    def run(attack):
        return lambda x, y: attack(fmodel, x, y, epsilons=EPS)[1]

    return {"Foolbox FGSM": run(fgsm), "Foolbox PGD-10": run(pgd)}


def art_methods(model, n: int) -> dict[str, Method]:
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(3, 32, 32),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="gpu" if robustkit.resolve_device("auto").type == "cuda" else "cpu",
    )
    pgd = ProjectedGradientDescent(
        clf,
        norm=np.inf,
        eps=EPS,
        eps_step=STEP,
        max_iter=STEPS,
        num_random_init=1,
        batch_size=n,
        verbose=False,
    )
    fgsm = FastGradientMethod(clf, norm=np.inf, eps=EPS, batch_size=n)

    def run(attack):
        def method(x, y):
            out = attack.generate(x.cpu().numpy(), y=y.cpu().numpy())
            return torch.from_numpy(out).to(x.device)

        return method

    return {"ART FGSM": run(fgsm), "ART PGD-10": run(pgd)}


@torch.no_grad()
def robust_accuracy(model, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x_adv).argmax(1) == y).float().mean())


def check_inside(x_adv: torch.Tensor, x: torch.Tensor) -> None:
    """Stop if ``x_adv`` leaves the threat model (L∞ ε-ball and [0, 1] box)."""
    linf = float((x_adv - x).abs().amax())
    if linf > EPS + 1e-5 or x_adv.min() < -1e-6 or x_adv.max() > 1 + 1e-6:
        raise RuntimeError(f"x_adv leaves the threat model (L∞ {linf:.5f} > {EPS:.5f})")


def time_methods(
    model, methods: dict[str, Method], x, y, repeats: int
) -> dict[str, tuple[float, float]]:
    """Per method: median seconds over ``repeats`` timed runs and robust accuracy of the last
    run, checked to stay inside the threat model. Every method is warmed up once, then the
    repeats go round-robin over the methods (run r of every method before run r + 1 of any),
    so that this CPU's drift of its speed over minutes does not favour whichever ran first."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    last: dict[str, torch.Tensor] = {}
    for method in methods.values():
        torch.manual_seed(0)
        method(x, y)  # warm-up
    for r in range(repeats):
        for name, method in methods.items():
            torch.manual_seed(r + 1)
            t0 = time.perf_counter()
            x_adv = method(x, y)
            if x_adv.is_cuda:
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
            last[name] = x_adv
    out = {}
    for name in methods:
        check_inside(last[name], x)
        out[name] = (statistics.median(times[name]), robust_accuracy(model, last[name], y))
    return out


def auto_inputs(n: int, device) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The auto section's model (cifar10/resnet4b-at) and its first ``n`` test images: loaded
    before the timed runs, so that a missing checkpoint ends the run before minutes of timing
    whose results would not be written."""
    model = robustkit.load_model("cifar10/resnet4b-at", device=str(device))
    x, y = robustkit.load_dataset("cifar10", n=n)
    return model, x.to(device), y.to(device)


def auto_section(model, x: torch.Tensor, y: torch.Tensor) -> dict:
    """robustkit ``auto`` (default stages) and PGD-10 (step ε/4) on cifar10/resnet4b-at, L∞ 2/255,
    on ``x`` (its first test images, :func:`auto_inputs`); one run each (after a small
    warm-up)."""
    n = x.shape[0]
    eps = 2 / 255
    auto = robustkit.get_attack("auto", eps=eps)
    pgd = robustkit.get_attack("pgd", eps=eps, steps=10, step_size=eps / 4, random_start=True)
    auto(model, x[:8], y[:8])  # warm-up
    out = {"model": "cifar10/resnet4b-at", "n": n, "eps": "2/255"}
    for key, attack in (("auto", auto), ("pgd10", pgd)):
        t0 = time.perf_counter()
        res = attack(model, x, y)
        seconds = time.perf_counter() - t0
        x_adv = res.x_adv.to(x.device)
        out[key] = {"seconds": seconds, "robust_accuracy": robust_accuracy(model, x_adv, y)}
    out["clean_accuracy"] = robust_accuracy(model, x, y)
    return out


def machine(threads: int) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": threads,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    device = robustkit.resolve_device("auto")
    model = robustkit.load_model("cifar10/resnet20", device=str(device))
    for p in model.parameters():
        p.requires_grad_(False)
    x, y = first_correct(model, args.n, device)
    auto = auto_inputs(args.auto_n, device) if args.auto_n > 0 else None

    methods: dict[str, Method] = {
        "plain PyTorch FGSM": lambda a, b: plain_fgsm(model, a, b),
        "plain PyTorch PGD-10": lambda a, b: plain_pgd(model, a, b),
        "robustkit FGSM": robustkit_method(model, "fgsm", eps=EPS),
        "robustkit PGD-10": robustkit_method(
            model, "pgd", eps=EPS, steps=STEPS, step_size=STEP, random_start=True, early_stop=False
        ),
    }
    methods |= torchattacks_methods(model)
    methods |= foolbox_methods(model)
    methods |= art_methods(model, args.n)

    # robustkit's early-stopping PGD joins the round-robin (reported apart from the table)
    early_name = "robustkit PGD early stop"
    timed = time_methods(
        model,
        methods
        | {
            early_name: robustkit_method(
                model, "pgd", eps=EPS, steps=STEPS, step_size=STEP, random_start=True
            )
        },
        x,
        y,
        args.repeats,
    )
    es_seconds, es_acc = timed.pop(early_name)
    rows = []
    for name, (seconds, acc) in timed.items():
        rows.append(
            {
                "method": name,
                "seconds": seconds,
                "images_per_s": args.n / seconds,
                "robust_accuracy": acc,
            }
        )
        print(
            f"{name:24s} {seconds:8.3f} s  {args.n / seconds:8.1f} img/s  robust {acc:.2%}",
            file=sys.stderr,
        )
    base = {"FGSM": None, "PGD-10": None}
    for r in rows:
        if r["method"].startswith("plain PyTorch"):
            base[r["method"].split()[-1]] = r["images_per_s"]
    for r in rows:
        r["ratio_to_plain"] = r["images_per_s"] / base[r["method"].split()[-1]]

    ta = next(r for r in rows if r["method"] == "torchattacks PGD-10")
    early = {
        "seconds": es_seconds,
        "robust_accuracy": es_acc,
        "speedup_vs_torchattacks_pgd10": ta["seconds"] / es_seconds,
        # both ways: a lower robust accuracy than torchattacks' is no more "the same"
        "same_robust_accuracy": abs(es_acc - ta["robust_accuracy"]) <= 0.002 + 1e-9,
        "torchattacks_robust_accuracy": ta["robust_accuracy"],
    }
    print(f"robustkit PGD early stop {es_seconds:8.3f} s  robust {es_acc:.2%}", file=sys.stderr)
    out = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(args.threads),
        "model": "cifar10/resnet20",
        "n": args.n,
        "repeats": args.repeats,
        "rows": rows,
        "early_stop": early,
    }
    if auto is not None:
        out["auto"] = auto_section(*auto)
    return out


def markdown(res: dict) -> str:
    m = res["machine"]
    gpu = f", GPU {m['gpu']}" if m["gpu"] else ""
    lines = [
        f"White-box attacks on {res['model']}, first {res['n']} correctly classified CIFAR-10 "
        "test images (every method does the same work), L∞ 8/255 "
        f"(PGD: 10 steps of 2/255, random start). Run {res['date']} on {m['cpu']} "
        f"({m['cores']} cores{gpu}), torch {m['torch']} with {m['threads']} thread(s); median of "
        f"{res['repeats']} timed runs after one warm-up, round-robin over the methods. "
        f"Command: `{res['command']}`.",
        "",
        "| method | seconds | images/s | × plain loop | robust accuracy |",
        "|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['method']} | {r['seconds']:.3f} | {r['images_per_s']:.1f} | "
            f"{r['ratio_to_plain']:.2f} | {r['robust_accuracy']:.2%} |"
        )
    e = res["early_stop"]
    lines += [
        "",
        f"Early-stopping evaluation (robustkit `pgd`, early_stop=True, same 10 × 2/255): "
        f"{e['seconds']:.3f} s, robust accuracy {e['robust_accuracy']:.2%} (torchattacks PGD-10: "
        f"{e['torchattacks_robust_accuracy']:.2%}; same within 0.2 pp: "
        f"{'yes' if e['same_robust_accuracy'] else 'no'}); speed-up vs torchattacks PGD-10: "
        f"{e['speedup_vs_torchattacks_pgd10']:.2f}×.",
    ]
    if "auto" in res:
        a = res["auto"]
        lines += [
            "",
            f"robustkit `auto` (default stages) on {a['model']}, L∞ {a['eps']}, first {a['n']} "
            f"images (clean {a['clean_accuracy']:.1%}): robust accuracy "
            f"{a['auto']['robust_accuracy']:.1%} in {a['auto']['seconds']:.1f} s; PGD-10 "
            f"(step ε/4): {a['pgd10']['robust_accuracy']:.1%} in {a['pgd10']['seconds']:.1f} s. "
            + (
                "Bar (issue 3, for these 1000 images): ≤ 61.2% in ≤ 51.6 s on the 2-core CPU "
                "(AutoAttack standard there, as issue 3 measured it, not run by this script: "
                "60.9% in 516 s; PGD-10 reference 61.8%)."
                if a["n"] == 1000 and a["model"] == "cifar10/resnet4b-at"
                else "(The bar of issue 3 is stated for the first 1000 images of "
                "cifar10/resnet4b-at.)"
            ),
        ]
    return "\n".join(lines)


def write_readme(table: str) -> None:
    """Replace the white-box section of benchmarks/README.md (kept above any other section)."""
    section = f"## White-box attacks\n\n{BEGIN}\n{table}\n{END}\n"
    text = README.read_text() if README.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = f"{head}{BEGIN}\n{table}\n{END}{tail}"
    else:
        text = section + ("\n" + text if text else "")
    README.write_text(text)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--n",
        type=int,
        default=512,
        help="images: the first N cifar10/resnet20 classifies correctly of the CIFAR-10 test "
        "set [default: %(default)s]",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads, the same for every method [default: %(default)s]",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs of each method after one warm-up; the median is reported "
        "[default: %(default)s]",
    )
    p.add_argument(
        "--auto-n",
        type=int,
        default=1000,
        help="images of the auto section (the first N test images, on cifar10/resnet4b-at at "
        "L∞ 2/255); 0 skips it [default: %(default)s]",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="result file [default: the published benchmarks/results/whitebox.json with "
        "--readme, else benchmarks/results/local/whitebox.json, which git ignores]",
    )
    p.add_argument(
        "--readme",
        action="store_true",
        help="publish: rewrite the README's white-box section (and the default --out)",
    )
    p.add_argument(
        "--note", default="", help="a sentence appended to the README section [default: none]"
    )
    args = p.parse_args(argv)
    counts = {"--n": (args.n, 1), "--threads": (args.threads, 1), "--repeats": (args.repeats, 1)}
    counts["--auto-n"] = (args.auto_n, 0)
    for flag, (value, least) in counts.items():
        if value < least:
            p.error(f"{flag} must be at least {least}, got {value}")
    for module, package in PEERS.items():  # (an ImportError once the model and data were loaded)
        if not installed(module):
            p.error(
                f"this benchmark compares robustkit with torchattacks, Foolbox and ART and needs "
                f"{module}, which is not installed: pip install {package} (`make setup` installs "
                "all three)"
            )
    if args.auto_n > 0 and args.auto_n > (size := dataset_size("cifar10", "test")):
        p.error(f"--auto-n must be at most {size} (the CIFAR-10 test set), got {args.auto_n}")
    if args.out is None:  # a trial run leaves the published results alone
        args.out = ROOT / "results" / ("whitebox.json" if args.readme else "local/whitebox.json")
    problem = output_problem(args.out)  # written after the whole run: checked before it
    if problem is None and args.out.is_dir():
        problem = f"{args.out} is a directory"
    if problem:
        p.error(f"cannot write --out {args.out}: {problem}; pass another --out")
    res = run(args)
    # The command as main() was given it (a caller's argv, not the process's) and the note.
    shown = sys.argv[1:] if argv is None else argv
    res["command"] = ".venv/bin/python benchmarks/whitebox.py " + shlex.join(shown)
    res["note"] = args.note
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    table = markdown(res) + (f"\n\n{args.note}" if args.note else "")
    print(table)
    if args.readme:
        write_readme(table)


if __name__ == "__main__":
    try:
        main()
    except robustkit.RobustkitError as exc:  # missing weights or data: one line, as the CLI
        sys.exit(f"error: {exc}")
    except KeyboardInterrupt:
        print(
            "stopped (Ctrl-C): nothing written (the results are written once every method has "
            "been timed)",
            file=sys.stderr,
        )
        sys.exit(130)
