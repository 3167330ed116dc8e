"""Benchmark of the decision-based attacks: median L2 at query budgets, speed, plot.

On each model, the first ``--n`` correctly classified CIFAR-10 test images are attacked once
with the largest budget; "median L2 at B" is read from the per-image trajectories (the best
adversarial example found within B queries; an image with none counts as infinite). ART's and
Foolbox's HopSkipJump run in the same process on the same images through a recording wrapper that
counts every input row as one query of its image, keeps the closest adversarial input seen so
far and stops the attack at the budget. The model's raw batched forward throughput is measured
too, so robustkit's queries per second can be reported as a fraction of it.

    .venv/bin/python benchmarks/decision.py --n 100 --budgets 250,500,1000,2000,5000 \\
        [--models cifar10/resnet20,cifar10/resnet4b-at] [--attacks cgba,cgba-h,hsja,geoda,art-hsja,foolbox-hsja] \\
        [--out benchmarks/results/decision.json] [--plot benchmarks/decision.png] [--readme]

Results are saved after every (model, attack) pair; a rerun skips pairs already in ``--out``
with the same images and budgets, and targeted and speed runs made with the same
``--targeted-pairs``, or ``--speed-queries``, ``--speed-repeats`` and ``--serial-images``
(``--fresh`` recomputes them).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

import robustkit
from robustkit.budgets import l2_at_budgets, median_l2_at
from robustkit.data import dataset_size
from robustkit.device import full_float32, model_device
from robustkit.jsonsafe import json_safe
from robustkit.oracle import default_batch_size
from robustkit.store import directory_problem, special_file

ROOT = Path(__file__).resolve().parent
OURS = ("cgba", "cgba-h", "hsja", "geoda")
THIRD_PARTY = ("art-hsja", "foolbox-hsja")
LABELS = {
    "cgba": "robustkit CGBA",
    "cgba-h": "robustkit CGBA-H",
    "hsja": "robustkit HopSkipJump",
    "geoda": "robustkit GeoDA",
    "art-hsja": "ART HopSkipJump",
    "foolbox-hsja": "Foolbox HopSkipJump",
    "cgba-h-targeted": "robustkit CGBA-H, targeted",
}
#: The module each third-party attack imports, and the package that installs it (`make setup`
#: installs both, with the test extras).
PEERS = {
    "art-hsja": ("art", "adversarial-robustness-toolbox"),
    "foolbox-hsja": ("foolbox", "foolbox"),
}
MARK_BEGIN = "<!-- decision-benchmark:begin -->"
MARK_END = "<!-- decision-benchmark:end -->"


# -- data ------------------------------------------------------------------------------------------
def first_correct(model: nn.Module, n: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The first ``n`` CIFAR-10 test images the model classifies correctly (and their indices),
    classified in full float32 as the attacks' label oracle does (under a GPU's default TF32 an
    image could pass here, then be found misclassified by the attack and left out)."""
    xs, ys, idx, offset = [], [], [], 0
    device = model_device(model)
    total = dataset_size("cifar10", "test")
    while sum(len(v) for v in ys) < n:
        if offset >= total:
            raise SystemExit(f"only {len(idx)} correctly classified test images; use a smaller --n")
        x, y = robustkit.load_dataset("cifar10", "test", n=min(256, total - offset), offset=offset)
        x, y = x.to(device), y.to(device)
        with torch.no_grad(), full_float32():
            ok = model(x).argmax(1) == y
        xs.append(x[ok])
        ys.append(y[ok])
        idx += (ok.nonzero().flatten() + offset).tolist()
        offset += 256
    return torch.cat(xs)[:n], torch.cat(ys)[:n], idx[:n]


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (found, not imported: checked before a run)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing; a module without a spec
        return False


def span(values, fmt: str) -> str:
    """``"lo-hi"`` of ``values`` in format ``fmt`` (one value when they all format alike)."""
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def synchronize(x: torch.Tensor) -> None:
    """Wait for the GPU's queued work (timings of asynchronous CUDA calls mean nothing else)."""
    if x.is_cuda:
        torch.cuda.synchronize(x.device)


#: Images of the benchmark: the first this many correctly classified CIFAR-10 test images.
DEFAULT_N = 100

#: Batch sizes of the raw forward loop: on a CPU the best lies within these; a GPU keeps gaining
#: up to thousands of rows (the label oracle's default there is 4096).
CPU_BATCHES = (16, 32, 48, 64, 96, 128, 256, 512, 1024)
GPU_BATCHES = (256, 512, 1024, 2048, 4096, 8192)


def tiled(x: torch.Tensor, rows: int) -> torch.Tensor:
    """``rows`` images: ``x`` repeated as often as needed, cut to length."""
    return x.repeat((rows + x.shape[0] - 1) // x.shape[0], 1, 1, 1)[:rows]


def forward_throughput(
    model: nn.Module,
    x: torch.Tensor,
    batches: tuple[int, ...] | None = None,
    seconds: float = 0.5,
    repeats: int = 3,
) -> tuple[float, int]:
    """The model's best raw throughput (images per second of batched ``model(x).argmax(1)``
    under ``torch.no_grad``) over the batch sizes tried (None: :data:`CPU_BATCHES`, or
    :data:`GPU_BATCHES` on a GPU), and the batch size that reached it. Each batch size is timed
    for ``seconds`` ``repeats`` times, interleaved with the others, and its median kept, so
    that one lucky burst on a shared CPU does not set the bar. Runs in full float32 (no TF32 on
    a GPU), as the decision-based attacks do."""
    if batches is None:
        batches = GPU_BATCHES if x.is_cuda else CPU_BATCHES
    rates: dict[int, list[float]] = {b: [] for b in batches}
    for _ in range(repeats):
        for batch in batches:
            reps = tiled(x, batch)
            with torch.no_grad(), full_float32():  # the precision the label oracle runs in
                model(reps).argmax(1)  # warm-up
                synchronize(reps)
                done, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    model(reps).argmax(1)
                    done += batch
                synchronize(reps)
            rates[batch].append(done / (time.perf_counter() - start))
    return max((float(np.median(r)), b) for b, r in rates.items())


def stable_allocator() -> str:
    """Stop glibc's malloc from handing freed memory back to the system between forward passes
    (``mallopt``: trim threshold 1 GiB, mmap threshold 32 MiB, so both fixed), for the raw loop
    and the attacks alike. By default glibc trims the heap or unmaps a block whenever a large
    free leaves enough memory, and the next forward pass faults its activations back in page
    by page; whether that happens depends on where long-lived tensors happen to sit, so on this
    CPU the same run swings by 20-30% (measured: 2.3 to 12 million page faults in 100 images ×
    1000 queries of CGBA on cifar10/resnet20, 67-93% of raw, against under 1,000 with the
    setting). Returns what was set, or why nothing was (not glibc)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        trim = libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
        mmap = libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError) as exc:
        return f"default (no glibc mallopt: {exc})"
    if trim != 1 or mmap != 1:
        return "default (mallopt refused)"
    return "glibc mallopt: M_TRIM_THRESHOLD 1 GiB, M_MMAP_THRESHOLD 32 MiB"


def between_raw_measurements(model: nn.Module, x: torch.Tensor, run, seconds: float = 0.5):
    """``run()`` between two measurements of the raw forward throughput (each batch size timed
    for ``seconds``): on a shared CPU the speed drifts, and a ratio must compare like with
    like. Returns (result, before, after)."""
    before = forward_throughput(model, x, seconds=seconds)
    result = run()
    return result, before, forward_throughput(model, x, seconds=seconds)


# -- third-party attacks through a recording wrapper -----------------------------------------------
class BudgetReached(Exception):
    """Raised inside a third-party attack when its images have spent the budget."""


class QueryRecorder(nn.Module):
    """Counts each input row as one query, keeps the closest adversarial input per image, and
    stops the attack (raises :class:`BudgetReached`) when the budget is spent.

    ``per_row=True``: every call holds one row per image of the batch, in order (Foolbox).
    ``per_row=False``: every row belongs to the single image being attacked (ART).

    ``seconds`` adds up the time of this bookkeeping (everything but the model's forward
    passes): the benchmark's work, not the attack's, so it is taken off the attack's time."""

    def __init__(self, model: nn.Module, budget: int):
        super().__init__()
        self.model = model
        self.budget = budget
        self.seconds = self.model_seconds = 0.0

    def start(self, x0: torch.Tensor, y0: torch.Tensor, per_row: bool) -> None:
        self.x0, self.y0, self.per_row = x0, y0, per_row
        self.queries = torch.zeros(x0.shape[0], dtype=torch.long)
        self.best = torch.full((x0.shape[0],), math.inf)
        self.log: list[list[tuple[int, float]]] = [[] for _ in range(x0.shape[0])]
        self.rows = torch.arange(x0.shape[0])  # per_row: the image of each row of a call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start, model_seconds = time.perf_counter(), self.model_seconds
        try:
            return self.recorded(x)
        finally:
            self.seconds += time.perf_counter() - start - (self.model_seconds - model_seconds)

    def label(self, x: torch.Tensor) -> torch.Tensor:
        """The model's forward pass, timed."""
        start = time.perf_counter()
        out = self.model(x)
        self.model_seconds += time.perf_counter() - start
        return out

    def recorded(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.per_row:
            if x.shape[0] != self.rows.numel():
                raise RuntimeError(f"expected one row per image, got {x.shape[0]} rows")
            if int(self.queries[self.rows].max()) >= self.budget:
                raise BudgetReached
            out = self.label(x)
            owners = self.rows
            self.queries[owners] += 1
        else:
            left = self.budget - int(self.queries[0])
            if left <= 0:
                raise BudgetReached
            # A call that would cross the budget: label (and log) the rows within it, then stop.
            over = x.shape[0] > left
            x = x[:left]
            out = self.label(x)
            owners = torch.zeros(x.shape[0], dtype=torch.long)
        with torch.no_grad():
            adv = out.argmax(1) != self.y0[owners]
            dist = (x - self.x0[owners]).flatten(1).norm(dim=1)
        for row in adv.nonzero().flatten().tolist():
            i = int(owners[row])
            q = int(self.queries[i]) if self.per_row else int(self.queries[0]) + row + 1
            if dist[row] < self.best[i]:
                self.best[i] = float(dist[row])
                self.log[i].append((q, float(dist[row])))
        if not self.per_row:
            self.queries += x.shape[0]
            if over:
                raise BudgetReached
        return out

    def trajectories(self) -> list[torch.Tensor]:
        return [torch.tensor(t, dtype=torch.float32).reshape(-1, 2) for t in self.log]


def seed_peer(seed: int, image: int) -> None:
    """Seed the global generators a third-party attack draws from (NumPy for ART, torch for
    Foolbox) for one image, so that its row is reproducible and an image's draws do not depend
    on the images before it (robustkit's own attacks take ``seed`` directly)."""
    np.random.seed((seed * 1_000_003 + image) % 2**32)
    torch.manual_seed(seed * 1_000_003 + image)


@contextlib.contextmanager
def seeded_random_states():
    """ART's HopSkipJump draws its start from a fresh ``np.random.RandomState()`` (seeded by the
    OS); inside this block such a state is seeded from NumPy's global generator instead, which
    :func:`seed_peer` seeds, so ART's rows are reproducible too."""
    made = np.random.RandomState

    def from_global(seed=None):
        return made(np.random.randint(2**31) if seed is None else seed)

    np.random.RandomState = from_global
    try:
        yield
    finally:
        np.random.RandomState = made


def run_art(model, x, y, budget, seed: int = 0):
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import PyTorchClassifier

    rec = QueryRecorder(model, budget).eval()
    clf = PyTorchClassifier(
        model=rec,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    attack = HopSkipJump(clf, targeted=False, norm=2, max_iter=10**6, verbose=False)
    trajs, start = [], time.perf_counter()
    for i in range(x.shape[0]):
        rec.start(x[i : i + 1], y[i : i + 1], per_row=False)
        seed_peer(seed, i)
        try:
            with seeded_random_states():
                attack.generate(x=x[i : i + 1].numpy())
        except BudgetReached:
            pass
        trajs += rec.trajectories()
    return trajs, time.perf_counter() - start - rec.seconds


def run_foolbox(model, x, y, budget, seed: int = 0):
    """Foolbox's HopSkipJump with its defaults, one image at a time: in a batch its start search
    charges every image the queries of the slowest one (and gives up on the whole batch when one
    image gets no start). An image without a start counts as not found."""
    import foolbox as fb

    rec = QueryRecorder(model, budget).eval()
    fmodel = fb.PyTorchModel(rec, bounds=(0, 1), device="cpu")
    attack = fb.attacks.HopSkipJumpAttack(steps=10**6, constraint="l2")
    trajs, start = [], time.perf_counter()
    for i in range(x.shape[0]):
        rec.start(x[i : i + 1], y[i : i + 1], per_row=False)
        seed_peer(seed, i)
        try:
            attack.run(fmodel, x[i : i + 1], y[i : i + 1])
        except (BudgetReached, ValueError):  # ValueError: foolbox found no start
            pass
        trajs += rec.trajectories()
    return trajs, time.perf_counter() - start - rec.seconds


# -- one (model, attack) pair ----------------------------------------------------------------------
def run_pair(model, x, y, name, budgets, seed, target=None, raw_seconds: float = 0.5) -> dict:
    top = max(budgets)
    grid = sorted({int(v) for v in np.unique(np.geomspace(10, top, 60).round())} | set(budgets))
    if name in OURS or name == "cgba-h-targeted":
        attack_name = "cgba-h" if name == "cgba-h-targeted" else name
        targeted = name == "cgba-h-targeted" or (name == "cgba-h" and target is not None)
        attack = robustkit.get_attack(attack_name, max_queries=top, seed=seed, targeted=targeted)
        res, before, after = between_raw_measurements(
            model, x, partial(attack, model, x, y, target), raw_seconds
        )
        trajs = [t for t, a in zip(res.trajectories, res.attacked.tolist(), strict=True) if a]
        seconds = res.seconds
        queries = int(res.queries.sum())
        extra = {
            "success_rate": res.success_rate,
            "accounting_exact": bool(torch.equal(res.extras["step_queries"], res.queries)),
            "max_queries_used": int(res.queries.max()),
            "params": {k: v for k, v in res.params.items() if not isinstance(v, torch.Tensor)},
        }
        extra["forward_images_per_s"] = (before[0] + after[0]) / 2
        extra["forward_around"] = [before, after]
        extra["oracle_batch"] = default_batch_size(x.device, model, x)
        if "dim_reduction_factor" in res.extras:
            extra["dim_reduction_factor"] = int(res.extras["dim_reduction_factor"][0])
    elif name == "art-hsja":
        trajs, seconds = run_art(model, x, y, top, seed)
        queries, extra = None, {}
    elif name == "foolbox-hsja":
        trajs, seconds = run_foolbox(model, x, y, top, seed)
        queries, extra = None, {}
    else:
        raise SystemExit(f"unknown attack {name!r}; use {', '.join(OURS + THIRD_PARTY)}")
    table = l2_at_budgets(trajs, budgets)
    out = {
        "median_l2": {
            str(b): float(v) for b, v in zip(budgets, median_l2_at(trajs, budgets), strict=True)
        },
        "found_within": {
            str(b): float(torch.isfinite(table[:, j]).float().mean()) for j, b in enumerate(budgets)
        },
        "curve": {"queries": grid, "median_l2": [float(v) for v in median_l2_at(trajs, grid)]},
        "seconds": seconds,
        "seconds_per_image": seconds / x.shape[0],
        **extra,
    }
    if queries is not None:
        out["queries"] = queries
        out["queries_per_s"] = queries / seconds
    return out


def speed_key(model_name: str, device: str, n: int) -> str:
    """Key of a speed entry: the model alone for the benchmark's own images on the CPU; else
    the model, the device (other than the CPU) and the number of images."""
    if device == "CPU" and n == DEFAULT_N:
        return model_name
    return ", ".join([model_name] + ([device] if device != "CPU" else []) + [f"{n} images"])


class TimedForward:
    """Wraps ``model.forward`` to add up the seconds and rows of every forward pass (and the
    passes by their number of rows), so that a run can tell the model's time from an attack's
    own work; ``paused`` lets raw-loop measurements in between go uncounted. Waits for a GPU
    around each pass, which slows a GPU run: time GPU runs without it."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.inner = model.forward
        self.paused = False
        self.reset()
        model.forward = self

    def reset(self) -> None:
        self.seconds, self.rows, self.calls = 0.0, 0, 0
        self.by_rows: dict[int, list[float]] = {}  # rows of a pass -> [seconds, passes]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.paused:  # a raw-loop measurement in between, not the attack's
            return self.inner(x)
        synchronize(x)
        start = time.perf_counter()
        out = self.inner(x)
        synchronize(out)
        seconds = time.perf_counter() - start
        self.seconds += seconds
        self.rows += x.shape[0]
        self.calls += 1
        entry = self.by_rows.setdefault(x.shape[0], [0.0, 0])
        entry[0] += seconds
        entry[1] += 1
        return out

    def split(self, batch: int) -> tuple[tuple[float, int], tuple[float, int, int]]:
        """(seconds, passes) of the passes of exactly ``batch`` rows, and (seconds, passes,
        rows) of all the others."""
        full = self.by_rows.get(batch, [0.0, 0])
        rest = [(s, c, r * c) for r, (s, c) in self.by_rows.items() if r != batch]
        return (full[0], full[1]), tuple(map(sum, zip(*rest, strict=True))) if rest else (0.0, 0, 0)

    def restore(self) -> None:
        del self.model.forward


def speed_runs(
    model,
    x,
    y,
    queries: int,
    repeats: int,
    seed: int,
    serial_images: int = 10,
    raw_seconds: float = 0.5,
) -> dict:
    """CGBA's counted queries per second as a fraction of the raw forward throughput, measured
    ``repeats`` times: raw throughput, one CGBA run on all images with ``queries`` per image, raw
    throughput again. This CPU's speed drifts by tens of percent within minutes, so one ratio is
    one draw; the median of the repeats is the figure to quote, and every draw is kept. Then the
    first ``serial_images`` images attacked one at a time (see :func:`one_at_a_time`). On a CPU
    each run also times the model's forward passes inside the attack (:class:`TimedForward`)."""
    runs = []
    timed = None if x.is_cuda else TimedForward(model)
    if timed is not None:
        timed.paused = True  # counting only inside attacked()

    def attacked(attack):
        """The attack's run, its forward passes alone timed (not the raw loops around it)."""
        if timed is None:
            return attack(model, x, y)
        timed.reset()
        timed.paused = False
        try:
            return attack(model, x, y)
        finally:
            timed.paused = True

    try:
        for k in range(repeats):
            attack = robustkit.get_attack("cgba", max_queries=queries, seed=seed + k)
            res, before, after = between_raw_measurements(
                model, x, partial(attacked, attack), raw_seconds
            )
            qps = int(res.queries.sum()) / res.seconds
            raw = (before[0] + after[0]) / 2
            run = {"before": before, "after": after, "queries_per_s": qps, "ratio": qps / raw}
            line = f"  speed run {k + 1}: {qps:.0f} q/s = {qps / raw:.0%} of raw {raw:.0f}"
            if timed is not None:
                run.update(seconds=res.seconds, forward_s=timed.seconds, forward_rows=timed.rows)
                line += (
                    f"; forward passes {timed.rows / timed.seconds:.0f} rows/s, own work "
                    f"{res.seconds - timed.seconds:.2f} of {res.seconds:.2f} s"
                )
            runs.append(run)
            print(line, flush=True)
    finally:
        if timed is not None:
            timed.restore()
    out = {
        "images": int(x.shape[0]),
        "queries": queries,
        "runs": runs,
        "median_ratio": float(np.median([r["ratio"] for r in runs])),
        "median_queries_per_s": float(np.median([r["queries_per_s"] for r in runs])),
    }
    if serial_images:
        out["one_at_a_time"] = one_at_a_time(
            model, x[:serial_images], y[:serial_images], queries, seed
        )
        qps = out["one_at_a_time"]["queries_per_s"]
        print(f"  one image at a time: {qps:.0f} q/s", flush=True)
    return out


def one_at_a_time(model, x, y, queries: int, seed: int = 0) -> dict:
    """CGBA's queries per second when each image is attacked alone, as the authors' code does
    (normal estimation batched over one image's probes, every search and bisection candidate
    its own forward pass): what lockstep batching over images is worth on this device. Seeded
    from ``seed`` (the benchmark's --seed), as the lockstep runs are."""
    attack = robustkit.get_attack("cgba", max_queries=queries, seed=seed)
    spent, seconds = 0, 0.0
    for i in range(x.shape[0]):
        res = attack(model, x[i : i + 1], y[i : i + 1])
        spent += int(res.queries.sum())
        seconds += res.seconds
    return {"images": int(x.shape[0]), "queries": spent, "queries_per_s": spent / seconds}


# -- outputs ---------------------------------------------------------------------------------------
def command_line(args: list[str]) -> str:
    """The benchmark's command line as recorded with its results (a ``--note``'s text elided:
    the note is printed under the tables)."""
    shown, skip = [], False
    for arg in args:
        if skip:
            shown.append("…")
            skip = False
            continue
        if arg.startswith("--note="):
            arg = "--note=…"
        skip = arg == "--note"
        shown.append(arg)
    return ".venv/bin/python benchmarks/decision.py " + " ".join(shown)


def stamped(rows: dict, part: dict, path: str) -> dict:
    """Rows of a merged result file, each carrying the command that produced it: its own, the
    file's, or, for a file that records none, the file's path."""
    fallback = part.get("command", f"{path} (no command recorded)")
    return {k: {"command": fallback, **v} for k, v in rows.items()}


def sources(report: dict) -> list[str]:
    """The distinct commands that produced the rows of ``report``, in order of appearance."""
    rows = [r for e in report["models"].values() for r in e["attacks"].values()]
    rows += list(report.get("targeted", {}).values()) + list(report.get("speed", {}).values())
    return list(dict.fromkeys(r["command"] for r in rows if "command" in r))


def fmt(v: float) -> str:
    return "∞" if math.isinf(v) else ("—" if math.isnan(v) else f"{v:.3f}")


def markdown(report: dict) -> str:
    budgets = report["budgets"]
    lines = [
        f"Decision-based attacks, non-targeted, L2 in [0, 1] pixel space: median over the first "
        f"{report['n']} correctly classified CIFAR-10 test images of the best adversarial example "
        "found within each budget (∞: none found within the budget for at least half of them). "
        f"Run {report['date']} on {report['machine']} with {report['threads']} thread(s), "
        f"seed {report['seed']}; command: `{report['command']}`. The rows come from "
        + "; ".join(f"`{c}`" for c in sources(report))
        + ".",
        "",
    ]
    for model, entry in report["models"].items():
        if not entry["attacks"]:  # a speed-only run's model: no table of medians to show
            continue
        lines.append(
            f"**{model}** (best raw forward throughput {entry['forward_images_per_s']:.0f} "
            f"images/s, at batch {entry['forward_batch']})"
        )
        lines.append("")
        head = "| attack | " + " | ".join(f"{b} q" for b in budgets) + " | s/image | queries/s |"
        lines += [head, "|" + "---|" * (len(budgets) + 3)]
        for name, r in entry["attacks"].items():
            qps = r.get("queries_per_s")
            raw = r.get("forward_images_per_s", entry["forward_images_per_s"])
            ratio = f"{qps:.0f} ({qps / raw:.0%})" if qps else "—"
            cells = [fmt(r["median_l2"].get(str(b), math.nan)) for b in budgets]
            lines.append(
                f"| {LABELS.get(name, name)} | "
                + " | ".join(cells)
                + f" | {r['seconds_per_image']:.2f} | {ratio} |"
            )
        lines.append("")
    if report.get("targeted"):
        for model, r in report["targeted"].items():
            b = [str(v) for v in budgets]
            lines.append(
                f"Targeted CGBA-H on {model}, {r['pairs']} (image, target) pairs (target: the "
                f"class of another of these images, drawn at random): success {r['success_rate']:.0%} within "
                f"{max(budgets)} queries; median L2 "
                + ", ".join(f"{fmt(r['median_l2'][k])} at {k}" for k in b if k in r["median_l2"])
                + "."
            )
        lines.append("")
    for model, sp in report.get("speed", {}).items():
        draws = ", ".join(f"{r['queries_per_s']:.0f} ({r['ratio']:.0%})" for r in sp["runs"])
        # A key other than the model's own already names the device and the number of
        # images (see speed_key).
        images = sp.get("images", report["n"])
        what = model if model.endswith(" images") else f"{model}, {images} images"
        lines.append(
            f"CGBA speed on {what}: {len(sp['runs'])} "
            f"{'repeat' if len(sp['runs']) == 1 else 'repeats'} of {sp['queries']} queries per "
            "image, each between two raw-throughput measurements: "
            f"{draws} queries/s (share of raw); median {sp['median_queries_per_s']:.0f} "
            f"queries/s = **{sp['median_ratio']:.0%}** of the raw batched forward throughput"
            f"{'; allocator: ' + sp['allocator'] if sp.get('allocator') else ''}."
        )
        timed = [r for r in sp["runs"] if r.get("forward_s")]
        if timed:
            fwd = [r["forward_rows"] / r["forward_s"] for r in timed]
            share = [
                f / ((r["before"][0] + r["after"][0]) / 2) for f, r in zip(fwd, timed, strict=True)
            ]
            own = [r["seconds"] - r["forward_s"] for r in timed]
            lines[-1] += (
                f" Inside the attack the forward passes ran at {span(fwd, '{:.0f}')} rows/s "
                f"({span(share, '{:.0%}')} of raw) and its own work outside them took "
                f"{span(own, '{:.2f}')} s of {span([r['seconds'] for r in timed], '{:.2f}')} s "
                "per run."
            )
        alone = sp.get("one_at_a_time")
        if alone:
            lines[-1] += (
                f" The first {alone['images']} images attacked one at a time (the authors' "
                f"structure): {alone['queries_per_s']:.0f} queries/s, so lockstep batching is "
                f"worth **{sp['median_queries_per_s'] / alone['queries_per_s']:.1f}×**"
                f"{' on ' + sp['device'] if sp.get('device') else ''}."
            )
    if report.get("speed"):
        lines.append("")
    lines.append(
        "queries/s: counted label queries per second of the whole attack (robustkit's attacks), "
        "and in brackets its ratio to the model's best raw batched forward throughput, measured "
        "right before and right after that attack (mean of the two; each the best over batch "
        "sizes 16-1024 on a CPU, 256-8192 on a GPU, of the median of 3 interleaved timings). "
        "Third-party attacks run through a recording wrapper that counts every input row as a "
        "query and keeps the closest adversarial input it sees (probes included), which can only "
        "flatter them."
    )
    if report.get("note"):
        lines += ["", report["note"]]
    lines += [""] + acceptance(report)
    return "\n".join(lines)


#: The authors' CGBA code and ART's HopSkipJump on cifar10/resnet20 (non-targeted, median L2
#: within each budget), measured on this machine for issue 4; the bar is f = 1, +5 %.
REFERENCE = {
    "authors' CGBA f = 1, first 100": (100, {250: 1.420, 500: 0.899, 1000: 0.484, 2000: 0.315}),
    "authors' CGBA f = 1, first 30": (30, {250: 1.349, 500: 0.891, 1000: 0.544, 2000: 0.303}),
    "authors' CGBA f = 4, first 100": (100, {250: 1.833, 500: 1.200, 1000: 0.907, 2000: 0.731}),
    "ART HopSkipJump (issue), first 30": (30, {250: 2.233, 500: 0.905, 1000: 0.549, 2000: 0.366}),
}


def acceptance(report: dict) -> list[str]:
    """Lines comparing the run with the reference numbers and with the HopSkipJumps."""
    out = []
    r20 = report["models"].get("cifar10/resnet20", {}).get("attacks", {})
    if "cgba" in r20:
        ours = r20["cgba"]["median_l2"]
        cols = (250, 500, 1000, 2000)
        out.append(f"CGBA on cifar10/resnet20 against the reference (first {report['n']} images):")
        out.append("")
        out += ["| reference | 250 q | 500 q | 1000 q | 2000 q |", "|---|---|---|---|---|"]
        for label, (_, vals) in REFERENCE.items():
            out.append(f"| {label} | " + " | ".join(fmt(vals[b]) for b in cols) + " |")
        row = [fmt(ours[str(b)]) if str(b) in ours else "—" for b in cols]
        out.append(f"| **robustkit CGBA, first {report['n']}** | " + " | ".join(row) + " |")
        bar = REFERENCE["authors' CGBA f = 1, first 100"][1]
        if report["n"] == 100:
            verdict = [f"{b}: {ours[str(b)] / bar[b] - 1:+.1%}" for b in cols if str(b) in ours]
            out += [
                "",
                "robustkit CGBA vs the authors' f = 1 (first 100), bar +5 %: "
                + ", ".join(verdict)
                + ".",
            ]
        out.append("")
    for model, entry in report["models"].items():
        att = entry["attacks"]
        hs = [a for a in ("hsja", "art-hsja", "foolbox-hsja") if a in att]
        if "cgba" not in att or not hs:
            continue
        parts = []
        for b in ("1000", "2000"):
            if b not in att["cgba"]["median_l2"]:
                continue
            best = min(hs, key=lambda a: att[a]["median_l2"][b])
            c, h = att["cgba"]["median_l2"][b], att[best]["median_l2"][b]
            parts.append(
                f"at {b} queries CGBA {fmt(c)} vs best HopSkipJump ({LABELS[best]}) {fmt(h)}: "
                + ("matches or beats it" if c <= h else "**does not match it**")
            )
        if parts:
            out.append(f"{model}: " + "; ".join(parts) + ".")
    return out


def _infinities(obj):
    """``obj`` as read from a result file, with the infinite distances it holds as ``"inf"``
    (json_safe's strict JSON: the token Infinity is not JSON) as floats again."""
    if isinstance(obj, str) and obj in ("inf", "-inf"):
        return float(obj)
    if isinstance(obj, dict):
        return {k: _infinities(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_infinities(v) for v in obj]
    return obj


def read_result(path: Path, what: str) -> dict:
    """A result file of this benchmark, or a one-line error naming ``what`` it was given as."""
    try:
        report = _infinities(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SystemExit(f"{what} {path}: not a readable result file ({exc})") from None
    if not isinstance(report, dict) or not isinstance(report.get("models"), dict):
        raise SystemExit(f"{what} {path}: not a result file of this benchmark (no models)")
    return report


def output_problem(path: Path) -> str | None:
    """Why the file ``path`` (a result file or a plot) cannot be written, or None: checked
    before a run, which otherwise ended in a traceback once it reached the write (a plot's after
    every row had been computed). A part of the path that is a file, a directory that is not
    writable (tried with a temporary file where it exists: root passes ``os.access`` even on a
    read-only file system), or a path that is a device or a pipe."""
    path = path.expanduser()
    problem = directory_problem(path.parent)
    if problem is None and special_file(path):
        problem = f"{path} is not a regular file"
    if problem is None and path.parent.is_dir():
        try:
            with tempfile.TemporaryFile(dir=path.parent):
                pass
        except OSError as exc:
            problem = f"{path.parent} is not writable ({exc.strerror or exc})"
    return problem


def plot_problem(path: Path) -> str | None:
    """Why the plot cannot be written to ``path`` (beyond :func:`output_problem`), or None:
    checked before a run, since the plot is made after every row (it ended in a traceback
    there). Matplotlib not installed is its own usage error, named in main."""
    if path.is_dir():
        return f"{path} is a directory"
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    kinds = Figure().canvas.get_supported_filetypes()
    suffix = path.suffix[1:].lower()
    if suffix and suffix not in kinds:  # (no suffix: savefig writes a PNG)
        return f"matplotlib writes no .{suffix} files; use one of .{', .'.join(sorted(kinds))}"
    return None


def update_readme(text: str, path: Path) -> None:
    """Replace the decision section of benchmarks/README.md, keeping everything else."""
    block = f"{MARK_BEGIN}\n{text}\n{MARK_END}"
    old = path.read_text() if path.exists() else ""
    if MARK_BEGIN in old and MARK_END in old:
        head, rest = old.split(MARK_BEGIN, 1)
        new = head + block + rest.split(MARK_END, 1)[1]
    else:
        new = (
            old.rstrip() + ("\n\n" if old else "") + "## Decision-based attacks\n\n" + block + "\n"
        )
    path.write_text(new)


def plot(report: dict, path: Path) -> None:
    """Median L2 against queries, one panel per model with attack rows (none: no file)."""
    models = [m for m, entry in report["models"].items() if entry.get("attacks")]
    if not models:
        print(f"no attack rows to plot: {path} not written")
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for name, r in report["models"][model]["attacks"].items():
            q, m = r["curve"]["queries"], r["curve"]["median_l2"]
            ax.plot(q, [v if math.isfinite(v) else np.nan for v in m], label=LABELS.get(name, name))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("queries per image")
        ax.set_ylabel("median L2 (pixels in [0, 1])")
        ax.set_title(f"{model}, first {report['n']} correct CIFAR-10 test images")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


# -- main ------------------------------------------------------------------------------------------
def bad_arguments(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line, checked before anything runs, or None."""
    counts = {
        "--n": (args.n, 1),
        "--speed-queries": (args.speed_queries, 1),
        "--targeted-pairs": (args.targeted_pairs, 0),
        "--speed-repeats": (args.speed_repeats, 0),
        "--serial-images": (args.serial_images, 0),
    }
    for flag, (value, least) in counts.items():
        if value < least:
            return f"{flag} must be at least {least}, got {value}"
    if args.targeted_pairs == 1:
        return "--targeted-pairs must be 0 or at least 2 (each target is another image's class)"
    if args.device.startswith("cuda") and set(args.attacks.split(",")) & set(THIRD_PARTY):
        return (
            "ART's and Foolbox's attacks run on the CPU only: with --device cuda, leave them out "
            f"of --attacks (e.g. --attacks {','.join(OURS)})"
        )
    if args.threads is not None and args.threads < 1:
        return f"--threads must be at least 1, got {args.threads}"
    if not 0 < args.raw_seconds < math.inf:  # (inf: the raw loop never ended)
        return f"--raw-seconds must be a positive number of seconds, got {args.raw_seconds}"
    try:
        budgets = [int(b) for b in args.budgets.split(",")]
    except ValueError:
        return f"--budgets must be whole numbers separated by commas, got {args.budgets!r}"
    if not budgets or min(budgets) < 1:
        return f"--budgets must be positive query counts, got {args.budgets!r}"
    if len(set(budgets)) < len(budgets):  # (a repeated column in every table)
        return f"--budgets names a budget twice, got {args.budgets!r}; give each once"
    known = set(OURS + THIRD_PARTY) | {"none"}
    unknown = [a for a in args.attacks.split(",") if a and a not in known]
    if unknown:
        return (
            f"unknown attack {unknown[0]!r} for --attacks; use some of {', '.join(sorted(known))}"
        )
    if args.plot != "" and not installed("matplotlib"):  # (None: the default plot)
        return (
            "--plot needs matplotlib, which is not installed: pip install matplotlib "
            "(`make setup` installs it), or --plot= for none"
        )
    for attack in args.attacks.split(","):  # (an ImportError after robustkit's rows had run)
        module, package = PEERS.get(attack, (None, None))
        if module and not installed(module):
            return (
                f"{attack} needs {module}, which is not installed: pip install {package} "
                f"(`make setup` installs it), or leave {attack} out of --attacks"
            )
    return models_problem([m for m in args.models.split(",") if m])


def models_problem(models: list[str]) -> str | None:
    """What is wrong with ``models`` as --models, or None: each must be a CIFAR-10 model of the
    zoo or a ``file.py:factory`` (an MNIST model ended in conv2d's channel error on the CIFAR-10
    images; a torchvision one tried to download ImageNet weights)."""
    zoo = set(robustkit.list_models())
    for name in models:
        if ".py:" in name:
            continue
        if name not in zoo:
            return f"unknown model {name!r} for --models; see `robustkit models`"
        if not name.startswith("cifar10/"):
            cifar = ", ".join(m for m in sorted(zoo) if m.startswith("cifar10/"))
            return (
                f"--models takes CIFAR-10 models: {name!r} is not one (the benchmark attacks "
                f"CIFAR-10 test images); use some of {cifar}"
            )
    return None


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--n",
        type=int,
        default=DEFAULT_N,
        help="images per model: the first N it classifies correctly of the CIFAR-10 test set "
        "[default: %(default)s]",
    )
    p.add_argument(
        "--budgets",
        default="250,500,1000,2000,5000",
        help="comma-separated query budgets, the tables' columns; each attack runs once with "
        "the largest [default: %(default)s]",
    )
    p.add_argument(
        "--models",
        default="cifar10/resnet20,cifar10/resnet4b-at",
        help="comma-separated CIFAR-10 models of the zoo (or path/to/file.py:factory) "
        "[default: %(default)s]",
    )
    p.add_argument(
        "--attacks",
        default=",".join(OURS + THIRD_PARTY),
        help="comma-separated attacks, the tables' rows; none: no rows (only speed or targeted "
        "runs, or render --out and --merge again) [default: %(default)s]",
    )
    p.add_argument(
        "--targeted-pairs",
        type=int,
        default=20,
        help="(image, target) pairs of the targeted CGBA-H run per model; 0 skips it "
        "[default: %(default)s]",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of every attack (the third-party ones seeded per image from it) "
        "[default: %(default)s]",
    )
    p.add_argument(
        "--speed-repeats",
        type=int,
        default=3,
        help="repeats of the CGBA speed measurement per model; 0 skips it [default: %(default)s]",
    )
    p.add_argument(
        "--speed-queries",
        type=int,
        default=1000,
        help="queries per image of each speed run [default: %(default)s]",
    )
    p.add_argument(
        "--serial-images",
        type=int,
        default=10,
        help="images attacked one at a time after the speed repeats; 0 skips it "
        "[default: %(default)s]",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="device of the model and images (cuda: for robustkit's attacks and the speed runs; "
        "the third-party attacks run on the CPU only) [default: %(default)s]",
    )
    p.add_argument(
        "--raw-seconds",
        type=float,
        default=0.5,
        help="seconds each batch size of the raw forward loop is timed (3 times per "
        "measurement) [default: %(default)s]",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's own]")
    p.add_argument(
        "--default-allocator",
        action="store_true",
        help="leave glibc's malloc as it is (by default the benchmark keeps freed memory in the "
        "process, for the raw loop and the attacks alike; see stable_allocator)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="result file, also the cache of pairs already run [default: the published "
        "benchmarks/results/decision.json with --readme, else benchmarks/results/local/"
        "decision.json, which git ignores]",
    )
    p.add_argument(
        "--plot",
        default=None,
        help="PNG of median L2 against queries; --plot= for none [default: the published "
        "benchmarks/decision.png with --readme, else benchmarks/results/local/decision.png]",
    )
    p.add_argument(
        "--readme",
        action="store_true",
        help="publish: update benchmarks/README.md (and the default --out and --plot)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="recompute pairs already in --out (an --out of other --n, --budgets or --seed: "
        "start it over)",
    )
    p.add_argument("--note", default="", help="a remark printed under the tables [default: none]")
    p.add_argument(
        "--merge",
        default="",
        help="comma-separated result files of partial runs to merge into --out before "
        "reporting (attack rows need the same --n, --budgets and --seed; a file of speed runs "
        "alone may have others); with --attacks none nothing new is run [default: none]",
    )
    args = p.parse_args(argv)
    problem = bad_arguments(args)
    if problem:
        p.error(problem)  # usage and the one-line reason, exit status 2
    if args.threads:
        torch.set_num_threads(args.threads)
    allocator = "default" if args.default_allocator else stable_allocator()
    budgets = sorted(int(b) for b in args.budgets.split(","))
    # a trial run leaves the published results alone
    local = ROOT / "results" / "local"
    if args.out is None:
        args.out = str(
            ROOT / "results" / "decision.json" if args.readme else local / "decision.json"
        )
    if args.plot is None:
        args.plot = str(ROOT / "decision.png" if args.readme else local / "decision.png")
    for flag, path in (("--out", args.out), ("--plot", args.plot)):
        problem = output_problem(Path(path)) if path else None
        if problem is None and flag == "--plot" and path:
            problem = plot_problem(Path(path))
        if problem:
            none = " (or --plot= for none)" if flag == "--plot" else ""
            p.error(f"cannot write {flag} {path}: {problem}; pass another {flag}{none}")
    out = Path(args.out)
    # --fresh recomputes what this command asks for and keeps the rest of the file; a file of
    # other images, budgets or seed is refused (its rows were dropped and the file saved over:
    # a trial run wiped an earlier one), or with --fresh started over
    report = read_result(out, "--out") if out.exists() else {}
    theirs = {"--n": report.get("n"), "--budgets": report.get("budgets")}
    theirs["--seed"] = report.get("seed", args.seed)
    other = [
        f"{flag} {','.join(map(str, value)) if isinstance(value, list) else value}"
        for (flag, value), mine in zip(theirs.items(), (args.n, budgets, args.seed), strict=True)
        if value != mine
    ]
    if other and any(report.get(k) for k in ("models", "targeted", "speed")) and not args.fresh:
        p.error(
            f"--out {out} holds results of {', '.join(other)}, not of this command's; pass "
            "another --out, or --fresh to start it over"
        )
    if other:
        report = {}
    gpu = ""
    if args.device.startswith("cuda") and torch.cuda.is_available():
        gpu = f", GPU {torch.cuda.get_device_name(torch.device(args.device))}"
    attacks = [a for a in args.attacks.split(",") if a and a != "none"]
    wanted = attacks or args.targeted_pairs or args.speed_repeats
    report.update(n=args.n, budgets=budgets, seed=args.seed)
    if wanted or args.merge or "date" not in report:
        # a run that computes or merges rows is the report's run; one that only renders the
        # file again (--attacks none, no speed, targeted or merge) keeps its header
        report.update(
            threads=torch.get_num_threads(),
            machine=f"{platform.machine()} CPU ({os.cpu_count()} cores){gpu}, "
            f"torch {torch.__version__}",
            date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            command=command_line(argv if argv is not None else sys.argv[1:]),
        )
    report.pop("parts", None)  # provenance is kept per row (see sources)
    report.setdefault("models", {})
    report.setdefault("targeted", {})
    for part in filter(None, args.merge.split(",")):
        other = read_result(Path(part), "--merge")
        rows = any(e["attacks"] for e in other["models"].values()) or other.get("targeted")
        theirs = (other.get("n"), other.get("budgets"), other.get("seed", args.seed))
        if rows and theirs != (args.n, budgets, args.seed):
            raise SystemExit(f"{part} holds attack rows run with other --n, --budgets or --seed")
        for model_name, entry in other["models"].items():
            mine = report["models"].setdefault(model_name, {"attacks": {}})
            for key, value in entry.items():
                if key != "attacks":
                    mine.setdefault(key, value)
            mine["attacks"].update(stamped(entry["attacks"], other, part))
        report["targeted"].update(stamped(other.get("targeted", {}), other, part))
        report.setdefault("speed", {}).update(stamped(other.get("speed", {}), other, part))

    def save():
        # through a temporary file: a run stopped while writing keeps the rows saved before
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_text(json.dumps(json_safe(report), indent=1))
        os.replace(tmp, out)

    report.setdefault("speed", {})
    try:
        models = [m for m in args.models.split(",") if m] if wanted else []
        compute(args, models, report, budgets, attacks, allocator, save)
    except KeyboardInterrupt:  # (Ctrl-C) say what is kept: every pair is saved when it ends
        raise KeyboardInterrupt(
            f"the rows finished before are saved in {out}; the same command runs the rest"
            if out.exists()
            else f"nothing was finished; {out} not written"
        ) from None
    if args.note:
        report["note"] = args.note
    save()
    text = markdown(report)
    print(text)
    if args.plot:
        plot(report, Path(args.plot))
    if args.readme:
        update_readme(text, ROOT / "README.md")


def compute(
    args: argparse.Namespace,
    models: list[str],
    report: dict,
    budgets: list[int],
    attacks: list[str],
    allocator: str,
    save: Callable[[], None],
) -> None:
    """The rows, targeted runs and speed runs the command asks for on ``models``, into
    ``report``; ``save()`` after each, so that a run stopped keeps those finished."""
    for model_name in models:
        model = robustkit.load_model(model_name, device=args.device)
        x, y, indices = first_correct(model, args.n)
        entry = report["models"].setdefault(model_name, {"attacks": {}})
        if entry.get("images", indices) != indices:  # other images: its rows are not these
            entry["attacks"] = {}
            report["targeted"].pop(model_name, None)
        entry.update(images=indices)
        if "forward_images_per_s" not in entry or args.fresh:
            speed, batch = forward_throughput(model, x, seconds=args.raw_seconds)
            entry.update(forward_images_per_s=speed, forward_batch=batch)
            save()
        for name in attacks:
            if name in entry["attacks"] and not args.fresh:
                continue
            print(f"{model_name} {name} ...", flush=True)
            entry["attacks"][name] = run_pair(
                model, x, y, name, budgets, args.seed, raw_seconds=args.raw_seconds
            )
            entry["attacks"][name]["command"] = report["command"]
            r = entry["attacks"][name]
            print(f"  median L2 {r['median_l2']}  {r['seconds_per_image']:.2f} s/image", flush=True)
            save()
        k = min(args.targeted_pairs, x.shape[0])
        # a row or speed entry made with other settings is not the one asked for: rerun it
        done = report["targeted"].get(model_name, {}).get("pairs") == k
        if args.targeted_pairs and (not done or args.fresh):
            gen = torch.Generator().manual_seed(args.seed)
            present = torch.unique(y[:k])  # classes of the attacked images themselves
            target = torch.empty(k, dtype=torch.long)
            for i in range(k):  # a random class, other than the image's, that the set holds
                choices = present[present != y[i]]
                if len(choices) == 0:
                    raise SystemExit(
                        f"the first {k} images of {model_name} are all of one class: no other "
                        "class to target; "
                        + (
                            "use a larger --targeted-pairs"
                            if k < x.shape[0]
                            else "use a larger --n (the pairs are among its images)"
                        )
                    )
                target[i] = choices[torch.randint(len(choices), (1,), generator=gen)]
            r = run_pair(
                model, x[:k], y[:k], "cgba-h-targeted", budgets, args.seed, target, args.raw_seconds
            )
            report["targeted"][model_name] = {"pairs": k, **r, "command": report["command"]}
            print(f"  targeted CGBA-H: success {r['success_rate']:.2f}, {r['median_l2']}")
            save()
        device = torch.cuda.get_device_name(x.device) if x.is_cuda else "CPU"
        key = speed_key(model_name, device, args.n)
        sp = report["speed"].get(key, {})
        done = (
            sp.get("queries"),
            len(sp.get("runs", [])),
            sp.get("one_at_a_time", {}).get("images", 0),
        )
        if args.speed_repeats and (
            done != (args.speed_queries, args.speed_repeats, min(args.serial_images, args.n))
            or args.fresh
        ):
            print(f"{key} CGBA speed ...", flush=True)
            report["speed"][key] = speed_runs(
                model,
                x,
                y,
                args.speed_queries,
                args.speed_repeats,
                args.seed,
                args.serial_images,
                args.raw_seconds,
            )
            report["speed"][key].update(
                device=device, allocator=allocator, command=report["command"]
            )
            save()


if __name__ == "__main__":
    try:
        main()
    except robustkit.RobustkitError as exc:  # missing weights or data: one line, as the CLI
        sys.exit(f"error: {exc}")
    except KeyboardInterrupt as exc:
        print(f"stopped (Ctrl-C){': ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        sys.exit(130)
