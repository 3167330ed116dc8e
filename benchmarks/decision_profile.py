"""Where a decision-based attack's time goes: the model's forward passes or the attack's own work.

Runs one attack on the first ``--n`` correctly classified CIFAR-10 test images of each model, with
the model's forward passes timed, and prints per run: total seconds, seconds in forward passes
(and their rows per second), seconds in everything else (candidates, normal estimates, query
bookkeeping), the number of forward passes and the counted queries per second, next to the
model's best raw batched forward throughput (as in ``decision.py``); then the passes of exactly
the oracle's batch size against the raw loop at that same size (measured right after), and the
time of all smaller (or larger) passes. This explains a ratio the speed runs of ``decision.py``
report; ``--profile`` adds cProfile's top functions. ``--warm-split`` separates the attack's own
work into what it costs with warm caches and what the model's forward passes add by evicting
them: the same attack against a linear classifier of the same images (whose forward pass leaves
the caches warm), and the first operations after a forward pass against the same operations
repeated.

    .venv/bin/python benchmarks/decision_profile.py --models cifar10/resnet4b-at \\
        [--attack cgba] [--n 100] [--queries 1000] [--batch-sizes auto,512] [--repeats 2] \\
        [--warm-split]
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import torch

import robustkit
import robustkit.oracle
from robustkit.oracle import default_batch_size

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decision import (  # noqa: E402
    TimedForward,
    first_correct,
    forward_throughput,
    models_problem,
    stable_allocator,
    synchronize,
    tiled,
)


def first_ops_after_forward(model: torch.nn.Module, x: torch.Tensor, rows: int, repeats: int = 30):
    """Median microseconds of two tiny operations (a PyTorch in-place addition and a NumPy one,
    100 numbers each) right after a forward pass of ``rows`` images, and of the same operations
    run again at once: the difference is the cost of fetching the code and data they need back
    into the caches the forward pass has evicted, which every kind of operation of an attack's
    round pays again after each pass."""
    batch = tiled(x, rows)
    z, a = torch.zeros(100, device=x.device), np.zeros(100)
    times: dict[str, list[float]] = {
        k: [] for k in ("torch", "torch again", "numpy", "numpy again")
    }
    with torch.no_grad():
        for _ in range(repeats):
            for kind, op in (("torch", lambda: z.add_(1)), ("numpy", lambda: np.add(a, 1, out=a))):
                model(batch)
                synchronize(batch)
                for key in (kind, f"{kind} again"):
                    start = time.perf_counter()
                    op()
                    synchronize(z)
                    times[key].append(time.perf_counter() - start)
    return {k: float(np.median(v)) * 1e6 for k, v in times.items()}


def warm_split(attack, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int):
    """The attack's own time per million queries against ``model`` and against a linear
    classifier of the same images (seeded; attacked on its own labels), whose forward pass
    touches a few megabytes at most: what remains there is the attack's own work with warm
    caches. Prints both, and the first-operation costs of :func:`first_ops_after_forward`."""
    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].numel(), 10))
    linear = linear.to(x.device).eval()
    with torch.no_grad():
        y_linear = linear(x).argmax(1)
    for label, net, labels in (("the model", model, y), ("a linear classifier", linear, y_linear)):
        timer = TimedForward(net)
        try:
            attack(net, x[:10], labels[:10])  # warm-up
            for _ in range(repeats):
                timer.reset()
                start = time.perf_counter()
                res = attack(net, x, labels)
                other = time.perf_counter() - start - timer.seconds
                queries = int(res.queries.sum())
                print(
                    f"    against {label}: the attack's own work {other:.2f} s for {queries} "
                    f"queries in {timer.calls} passes = {other / queries * 1e6:.2f} s per "
                    f"million queries",
                    flush=True,
                )
        finally:
            timer.restore()
    rows = attack.batch_size or default_batch_size(x.device, model, x)
    cost = first_ops_after_forward(model, x, rows)
    print(
        f"    right after a forward pass of {rows} rows: an in-place addition of 100 numbers "
        f"{cost['torch']:.1f} us in PyTorch (then {cost['torch again']:.1f}), "
        f"{cost['numpy']:.1f} us in NumPy (then {cost['numpy again']:.1f})",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--models",
        default="cifar10/resnet20,cifar10/resnet4b-at",
        help="comma-separated CIFAR-10 models of the zoo, profiled one after the other "
        "[default: %(default)s]",
    )
    p.add_argument(
        "--attack",
        default="cgba",
        help="the decision-based attack profiled: cgba, cgba-h, geoda or hsja "
        "[default: %(default)s]",
    )
    p.add_argument(
        "--n",
        type=int,
        default=100,
        help="images: the first N the model classifies correctly of the CIFAR-10 test set "
        "[default: %(default)s]",
    )
    p.add_argument(
        "--queries", type=int, default=1000, help="queries per image [default: %(default)s]"
    )
    p.add_argument(
        "--batch-sizes",
        default="auto",
        help="comma-separated oracle batch sizes, each profiled; auto: the oracle's default "
        "for the device [default: %(default)s]",
    )
    p.add_argument(
        "--pad",
        default="auto",
        help="comma-separated: auto (the oracle pads its passes on a GPU), off (it never pads) "
        "[default: %(default)s]",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="timed runs of each configuration, after a warm-up on 10 images "
        "[default: %(default)s]",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's own]")
    p.add_argument(
        "--device",
        default="cpu",
        help="device of the model and images (cpu, cuda, cuda:N) [default: %(default)s]",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="cProfile one more run per model, at the last --batch-sizes entry",
    )
    p.add_argument(
        "--warm-split",
        action="store_true",
        help="also attack a linear classifier of the same images (warm caches) and time the "
        "first operations after a forward pass, at the last --batch-sizes entry",
    )
    args = p.parse_args(argv)
    counts = {
        "--n": (args.n, 1),
        "--queries": (args.queries, 1),
        "--repeats": (args.repeats, 0),
        "--threads": (1 if args.threads is None else args.threads, 1),
    }
    for flag, (value, least) in counts.items():  # each was a traceback, or a silent default
        if value < least:
            p.error(f"{flag} must be at least {least}, got {value}")
    if not all(b == "auto" or (b.isdigit() and int(b) > 0) for b in args.batch_sizes.split(",")):
        p.error(f"--batch-sizes takes auto and/or positive whole numbers, not {args.batch_sizes!r}")
    pads = args.pad.split(",")
    if not set(pads) <= {"auto", "off"}:
        p.error(f"--pad takes auto and/or off, not {args.pad!r}")
    # checked before anything runs: these failed after a model's raw loop, or its whole profile
    decision = [a for a in robustkit.list_attacks() if robustkit.get_attack(a).family == "decision"]
    if args.attack not in decision:
        problem = (
            f"--attack {args.attack} is not a decision-based attack"
            if args.attack in robustkit.list_attacks()
            else f"unknown attack {args.attack!r} for --attack"
        )
        p.error(f"{problem}; use one of {', '.join(decision)}")
    models = [m for m in args.models.split(",") if m]
    problem = models_problem(models)
    if problem:
        p.error(problem)
    if not models:
        p.error("--models names no model; see `robustkit models`")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"allocator: {stable_allocator()}; threads {torch.get_num_threads()}", flush=True)
    for name in models:
        model = robustkit.load_model(name, device=args.device)
        x, y, _ = first_correct(model, args.n)
        raw, raw_batch = forward_throughput(model, x)
        print(f"{name}: raw forward {raw:.0f} images/s (best at batch {raw_batch})", flush=True)
        timer = TimedForward(model)
        padding = robustkit.oracle.PAD_ON_GPU  # --pad changes it; put back after
        try:
            for pad, size in itertools.product(pads, args.batch_sizes.split(",")):
                robustkit.oracle.PAD_ON_GPU = pad == "auto"
                batch = None if size == "auto" else int(size)
                attack = robustkit.get_attack(
                    args.attack, max_queries=args.queries, batch_size=batch
                )
                attack(model, x[:10], y[:10])  # warm-up
                for _ in range(args.repeats):
                    timer.reset()
                    start = time.perf_counter()
                    res = attack(model, x, y)
                    total = time.perf_counter() - start
                    queries = int(res.queries.sum())
                    print(
                        f"  batch {size}, pad {pad}: {total:.2f} s, forward {timer.seconds:.2f} s "
                        f"({timer.rows / timer.seconds:.0f} rows/s, {timer.calls} passes), "
                        f"other {total - timer.seconds:.2f} s; {queries / total:.0f} queries/s "
                        f"= {queries / total / raw:.0%} of raw",
                        flush=True,
                    )
                    rows = batch or default_batch_size(x.device, model, x)
                    (full_s, full_n), (part_s, part_n, part_rows) = timer.split(rows)
                    timer.paused = True  # the raw loop below must not count as the attack's
                    same, _ = forward_throughput(model, x, batches=(rows,), seconds=0.3)
                    timer.paused = False
                    print(
                        f"    full passes of {rows} rows: {full_n} at "
                        f"{full_n * rows / max(full_s, 1e-9):.0f} rows/s (raw loop at {rows} "
                        f"rows, right after: {same:.0f}); other passes: {part_n} of "
                        f"{part_rows / max(part_n, 1):.0f} rows on average, {part_s:.2f} s",
                        flush=True,
                    )
            if args.profile:
                profiler = cProfile.Profile()
                profiler.runcall(attack, model, x, y)
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        finally:
            timer.restore()
            robustkit.oracle.PAD_ON_GPU = padding
        if args.warm_split:
            warm_split(attack, model, x, y, args.repeats)


if __name__ == "__main__":
    try:
        main()
    except robustkit.RobustkitError as exc:  # missing weights or data: one line, as the CLI
        sys.exit(f"error: {exc}")
    except KeyboardInterrupt:  # what was measured is printed as it comes
        print("stopped (Ctrl-C)", file=sys.stderr)
        sys.exit(130)
