"""Plots for notebooks (matplotlib, the optional ``plot`` extra). Each returns a Figure and never
calls ``plt.show``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .checks import given, is_real_number, is_whole_number
from .errors import InputError, RobustkitError
from .tables import counted
from .threat import check_norm

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .results import Results


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise RobustkitError("plots need matplotlib: pip install 'robustkit[plot]'") from None
    return plt


def _check_results(results: Any) -> None:
    """A one-line error unless ``results`` is an opened store: a path to it, the Store or one
    of its frames (``res.runs``) ended in AttributeError tracebacks."""
    from .results import Results

    if not isinstance(results, Results):
        raise RobustkitError(
            "the plots take the opened results store, robustkit.results.open(db) (or open() "
            f"for the default one), got {given(results)}"
        )


def robust_accuracy_vs_eps(
    results: Results,
    model: str | None = None,
    attack: str | None = None,
    ax: Axes | None = None,
    norm: str | None = None,
) -> Figure:
    """Robust accuracy against ε from the stored runs: one panel per (data set, norm), one line
    per (model, defenses).

    Each point is the run the leaderboard shows for that (data set, norm, ε, model, defenses): a
    finished run with an untargeted white-box attack, the one with the most samples, then the
    latest (:func:`robustkit.leaderboard.build`). It plots the run's worst-case robust accuracy,
    or with ``attack=`` (a label as stored, any case) that attack's, skipping runs without it;
    attacks that do not count in the worst case (minimum-norm, label-only attacks without an ε)
    have no robust accuracy at an ε and are never plotted. A point whose run the sanity checks
    flag (UNRELIABLE in the leaderboard; :meth:`Results.checks` says why) is crossed out in
    red. ``norm=`` (``linf`` or ``l2``) keeps one norm; an ``ax`` given takes one panel only.
    """
    from .leaderboard import build, norm_title

    plt = _plt()
    _check_results(results)
    for value, what, example in (
        (model, "a model name", "mnist/cnn-tiny-at"),
        (attack, "an attack label", "pgd"),
    ):
        if value is not None and not isinstance(value, str):  # (failed in value.lower())
            raise InputError(f"{what} is text, such as {example!r}, got {given(value)}")
    board = build(results.store, decision=False)
    tables = board["tables"]
    what = "finished run with an untargeted white-box attack at an ε"
    if not tables:
        raise RobustkitError(
            f"no stored run has an attack with an ε to plot (no {what}); "
            + _why_no_run_is_plotted(results.store)
        )
    if norm is not None:  # spelled as anywhere else (inf, Linf, L-inf, 2)
        norm = check_norm(norm)
        tables = [t for t in tables if t["norm"] == norm]
        if not tables:
            norms = sorted({t["norm"] for t in board["tables"]})
            raise RobustkitError(f"no {what} has norm {norm!r}; stored norms: {', '.join(norms)}")
    if model is not None:
        models = sorted({r["model"] for t in tables for r in t["rows"]})
        match = [m for m in models if m.lower() == model.lower()]
        if not match:
            raise RobustkitError(
                f"no {what} of model {model!r}; models with one: {', '.join(models) or 'none'}"
            )
        model = match[0]
    panels: dict[tuple, dict[tuple, list]] = {}
    labels: set[str] = set()
    stored = attack
    for t in tables:
        for r in t["rows"]:
            if model is not None and r["model"] != model:
                continue
            labels.update(r["robust"])
            if attack is None:
                acc = r["worst_case"]
            else:
                hit = [k for k in r["robust"] if k.lower() == attack.lower()]
                if not hit:
                    continue  # this run lacks the attack: no point rather than another figure
                acc = r["robust"][hit[0]]
                stored = hit[0]  # the label as stored, for the axis (not as typed)
            if acc is None or (isinstance(acc, float) and math.isnan(acc)):
                continue
            line = panels.setdefault((t["dataset"], t["norm"]), {})
            point = (t["eps"], acc, bool(r["flags"]))  # flagged: UNRELIABLE in the leaderboard
            line.setdefault((r["model"], r["defenses"]), []).append(point)
    if not panels:
        raise RobustkitError(
            f"no {what}"
            + (f" of {model}" if model else "")
            + f" has attack {attack!r} with an ε; their attacks: {', '.join(sorted(labels))}"
        )
    keys = sorted(panels)
    if ax is not None and len(keys) > 1:
        raise RobustkitError(
            "the runs span "
            + ", ".join(norm_title(*k) for k in keys)
            + "; give norm= (one panel) to plot into ax, or leave ax out for one panel each"
        )
    if ax is None:
        _, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
        axes = list(axes[0])
    else:
        axes = [ax]
    for a, key in zip(axes, keys, strict=True):
        flagged: list[tuple[float, float]] = []
        for (name, defenses), values in sorted(panels[key].items()):
            eps, acc, flags = zip(*sorted(values), strict=True)
            label = name + (f" + {defenses}" if defenses else "")
            a.plot(eps, [100 * v for v in acc], marker="o", label=label)
            flagged += [(e, 100 * v) for e, v, f in zip(eps, acc, flags, strict=True) if f]
        if flagged:
            a.plot(
                *zip(*flagged, strict=True),
                linestyle="none",
                marker="x",
                markersize=10,
                color="red",
                label="flagged by sanity checks (unreliable)",
            )
        a.set_title(norm_title(*key))
        a.set_xlabel("ε" + (" (L∞)" if key[1] == "linf" else " (L2)"))
        a.set_ylabel("robust accuracy (%)" + (f", {stored}" if attack else ", worst case"))
        a.set_ylim(0, 100)
        a.legend(fontsize="small")
        a.grid(alpha=0.3)
    if ax is None:  # laid out, or savefig cut the ε label off (a given ax: the caller's)
        axes[0].figure.tight_layout()
    return axes[0].figure


def _why_no_run_is_plotted(store: Any) -> str:
    """Where no run makes a point: how many runs the store holds and why each is left out (as
    the leaderboard's note says it, :func:`robustkit.leaderboard.why_left_off`), then what run
    makes one. Runs at a few ε left out (``correct_only`` ones, say) were told to run robustkit
    evaluate at a few ε first, as if there were none."""
    from .leaderboard import left_off_counts

    runs = store.runs()  # (one read of the run list)
    finished = [run for run in runs if run["status"] == "finished"]
    running = sum(run["status"] == "running" for run in runs)
    # (a run that makes a row makes one of the decision table, which this plot does not show)
    counts = left_off_counts(finished, otherwise="of label-only attacks only")
    parts = [f"{k} {why}" for why, k in counts.items()]
    if running:
        parts.append(f"{running} unfinished (rerun the command of each to finish it)")
    needed = (
        "a point is a finished run on the test split, of all its images, with an untargeted "
        "white-box attack (robustkit evaluate --attack pgd --eps ...; the runs the "
        "leaderboard's robust-accuracy tables show)"
    )
    if not finished and not running:
        return f"{needed}: run one at a few ε first"
    held = f"of its {counted(len(finished), 'finished run')}" + (", " if parts else "")
    return f"{held}{', '.join(parts)}; {needed}"


def median_l2_vs_queries(
    results: Results, run_id: str, attacks: str | list[str] | None = None, ax: Axes | None = None
) -> Figure:
    """Median L2 of the best adversarial example against the query budget, one line per
    decision-based attack of the run, or per label in ``attacks`` (one label, or a list).

    The median is over the images the attack attacked (those classified correctly), an image
    not yet fooled counting as infinitely far: it is infinite, and not drawn, at budgets where
    fewer than half are fooled (a line with no point at all says so in the legend). A run that
    attacked no image has no curve: a one-line error."""
    plt = _plt()
    _check_results(results)
    summary = results.summary(run_id)
    own = ax is None
    if isinstance(attacks, str):  # one label, not one attack per letter ("no attack 'c'")
        attacks = [attacks]
    elif attacks is not None and not isinstance(attacks, (list, tuple)):  # (a number: TypeError)
        raise InputError(
            "an attack label is text, or a list of labels (the attacks in run "
            f"{summary['run_id']}: {', '.join(summary['attacks'])}), got {given(attacks)}"
        )
    names = attacks or [k for k, v in summary["attacks"].items() if v["family"] == "decision"]
    if not names:
        raise RobustkitError(f"run {run_id} has no decision-based attack")
    if not summary["n"]:  # (said "the model misclassified all 0 images")
        raise RobustkitError(
            f"run {summary['run_id']} has no stored results yet ({summary['status']}: "
            "rerun its command to resume it); there is no curve to plot"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for name in names:
        curve = results.decision_curve(run_id, name)
        # labelled as stored (a label is matched in any case: CGBA is cgba)
        label = next((k for k in summary["attacks"] if k.lower() == name.lower()), name)
        report = summary["attacks"][label]
        attacked = report["decision"]["n"]
        if not attacked:  # every median NaN: an empty axis said nothing of why
            raise RobustkitError(
                f"run {summary['run_id']}: {label} attacked no image (the model misclassified "
                f"all {counted(summary['n'], 'image')}); there is no curve to plot"
            )
        if not np.isfinite(curve["median_l2"].to_numpy()).any():  # every median inf: no line
            label += (
                f" (fewer than half of {counted(attacked, 'image')} fooled within "
                f"{counted(report['params']['max_queries'], 'query', 'queries')})"
            )
        # marked: a median finite at one budget only (inf before it) has no segment to draw
        ax.plot(curve["queries"], curve["median_l2"], marker=".", label=label)
    ax.set_xlabel("queries")
    ax.set_ylabel("median L2")
    ax.set_yscale("log")
    # with its defenses, as the robust-accuracy plot's legend names a defended model, one a
    # line and smaller (a zoo name and a defense's full text in one line ran off the figure)
    defenses = [f"+ {d}" for d in summary["defenses"]]
    ax.set_title("\n".join([summary["model"], *defenses]), fontsize="medium" if defenses else None)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    if own:  # laid out, or savefig cut the "queries" label off (a given ax: the caller's)
        ax.figure.tight_layout()
    return ax.figure


def _images(what: str, images: Any) -> torch.Tensor:
    """``images`` as a tensor (a NumPy array, e.g. the ``x_adv`` of a ``--save-adv`` file, is
    taken as it is), or a one-line error: an array met the tensor in ``x_adv - x`` with a
    TypeError, and one image (C×H×W), channels last or uint8 pixels, given as a tensor or an
    array, failed in matplotlib or showed a blank grid. On the CPU, detached: images kept on a
    GPU met the CPU's ``x_adv`` of a result in ``x_adv - x``. Half-precision images as float32
    ones (bfloat16 has no NumPy type: ``.numpy()`` failed with a TypeError)."""
    try:
        out = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    except (TypeError, ValueError, RuntimeError):
        out = None
    if out is None or out.dim() != 4 or out.shape[1] not in (1, 3) or not out.is_floating_point():
        raise RobustkitError(
            f"adversarial_grid: {what} must be N×C×H×W images in [0, 1] with 1 or 3 channels "
            f"(a tensor or a NumPy array), got {type(images).__name__}"
            + (f" shaped {tuple(out.shape)} of {out.dtype}" if out is not None else "")
        )
    out = out.detach().cpu()
    out = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
    # (outside [0, 1] the images were clipped without a word: float pixels in [0, 255] showed
    # a white grid, normalised images a saturated one, NaN an empty one)
    if not torch.isfinite(out).all():
        raise RobustkitError(f"adversarial_grid: {what} must lie in [0, 1], got NaN or inf values")
    lo, hi = (out.min().item(), out.max().item()) if out.numel() else (0.0, 1.0)
    if lo < 0 or hi > 1:
        raise RobustkitError(
            f"adversarial_grid: {what} must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
            "pass the unnormalised images (pixels divided by 255), as the attacks take them"
        )
    return out


def _is_index(value: Any) -> bool:
    """Whether ``value`` is a class index: a whole number (``3``, ``np.int64(3)``, ``3.0``)."""
    return is_real_number(value) and math.isfinite(value) and int(value) == value


def _titles(what: str, labels: Any, n: int, classes: list[str] | None) -> list[str] | None:
    """The titles of the first ``n`` images from their labels (class names where ``classes``
    is given), or a one-line error: too few labels, or a label with no class name, was an
    IndexError."""
    if labels is None:
        return None
    try:  # a tensor or an array as its numbers (a 0-d one as one number: no labels)
        raw = labels.tolist() if hasattr(labels, "tolist") else list(labels)
    except TypeError:  # (one number: int() and iteration failed with tracebacks)
        raw = None
    if isinstance(raw, list):  # a list of 0-d tensors or arrays: their numbers
        raw = [k.item() if getattr(k, "ndim", None) == 0 else k for k in raw]
    if not isinstance(raw, list) or not all(_is_index(k) for k in raw):
        raise RobustkitError(
            f"adversarial_grid: {what} must be class indices, one whole number per image (a "
            f"list, a tensor or an array; class names go in classes=), got {given(labels)}"
        )
    values = [int(k) for k in raw[:n]]
    if len(values) < n:
        raise RobustkitError(
            f"adversarial_grid: {what} has {counted(len(values), 'label')} for "
            f"{counted(n, 'image')}; pass one per image"
        )
    if classes:
        bad = [k for k in values if not 0 <= k < len(classes)]
        if bad:
            raise RobustkitError(
                f"adversarial_grid: {what} has label {bad[0]}, but classes names {len(classes)} "
                f"classes (0 to {len(classes) - 1}); pass a name for every class"
            )
        return [classes[k] for k in values]
    return [str(k) for k in values]


def adversarial_grid(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: Any = None,
    adv_pred: Any = None,
    classes: list[str] | None = None,
    n: int = 8,
) -> Figure:
    """Rows: clean images, adversarial images, perturbations (magnified to the full range).

    ``x`` and ``x_adv``: N×C×H×W images in [0, 1], as tensors or NumPy arrays (the ``x_adv``
    of a ``--save-adv`` file)."""
    plt = _plt()
    # ("8" or None failed in a comparison, 2.5 inside matplotlib)
    if not is_whole_number(n):
        raise RobustkitError(
            f"adversarial_grid: n is the number of images to show, a whole number, got {given(n)}"
        )
    x, x_adv = _images("x", x), _images("x_adv", x_adv)
    if x.shape[0] == 0 or n < 1:
        raise RobustkitError(
            f"adversarial_grid needs at least one image (got {counted(x.shape[0], 'image')}, n={n})"
        )
    if tuple(x_adv.shape) != tuple(x.shape):
        raise RobustkitError(
            f"adversarial_grid: x_adv has shape {tuple(x_adv.shape)}, x {tuple(x.shape)}; "
            "pass the adversarial examples of the same images"
        )
    n = min(n, x.shape[0])
    titles = _titles("y", y, n, classes), _titles("adv_pred", adv_pred, n, classes)
    fig, axes = plt.subplots(3, n, figsize=(1.4 * n, 4.4), squeeze=False)
    delta = x_adv[:n] - x[:n]
    scale = delta.abs().amax().clamp_min(1e-12)

    def show(ax, img):  # as arrays: a tensor's __array__ takes no copy= (NumPy 2 warned)
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_xticks([])
        ax.set_yticks([])

    for i in range(n):
        show(axes[0, i], x[i])
        show(axes[1, i], x_adv[i])
        show(axes[2, i], 0.5 + 0.5 * delta[i] / scale)
        for row, names in enumerate(titles):
            if names is not None:
                axes[row, i].set_title(names[i], fontsize=8)
    for row, label in enumerate(("clean", "adversarial", "perturbation")):
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig
