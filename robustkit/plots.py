"""Plots for notebooks (matplotlib, the optional ``plot`` extra). Each returns a Figure and never
calls ``plt.show``."""

from __future__ import annotations

from typing import Any

import torch

from .errors import RobustkitError


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise RobustkitError("plots need matplotlib: pip install 'robustkit[plot]'") from None
    return plt


def robust_accuracy_vs_eps(results, model: str | None = None, attack: str | None = None, ax=None):
    """Robust accuracy against ε, one line per (model, norm), from the stored runs."""
    plt = _plt()
    runs = results.runs
    if model is not None:
        runs = runs[runs["model"] == model]
    if runs.empty:
        raise RobustkitError("no stored runs to plot; run robustkit evaluate at a few ε first")
    lines = []
    for (name, norm), group in runs.groupby(["model", "norm"]):
        values = []
        for _, run in group.sort_values("eps").iterrows():
            s = results.summary(run["run_id"])
            acc = (
                s["attacks"][attack]["robust_accuracy"]
                if attack in s["attacks"]
                else s["robust_accuracy"]
            )
            if acc is not None:  # None: a run without an attack that has an ε
                values.append((run["eps"], acc))
        if values:
            lines.append((f"{name} ({norm})", values))
    if not lines:
        raise RobustkitError(
            "no stored run has an attack with an ε to plot; run robustkit evaluate with --attack "
            "and --eps at a few ε first"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for label, values in lines:
        eps, acc = zip(*values, strict=True)
        ax.plot(eps, [100 * a for a in acc], marker="o", label=label)
    ax.set_xlabel("ε")
    ax.set_ylabel("robust accuracy (%)" + (f", {attack}" if attack else ", worst case"))
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax.figure


def median_l2_vs_queries(results, run_id: str, attacks: list[str] | None = None, ax=None):
    """Median L2 of the best adversarial example against the query budget."""
    plt = _plt()
    summary = results.summary(run_id)
    names = attacks or [k for k, v in summary["attacks"].items() if v["family"] == "decision"]
    if not names:
        raise RobustkitError(f"run {run_id} has no decision-based attack")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for name in names:
        curve = results.decision_curve(run_id, name)
        ax.plot(curve["queries"], curve["median_l2"], label=name)
    ax.set_xlabel("queries")
    ax.set_ylabel("median L2")
    ax.set_yscale("log")
    ax.set_title(summary["model"])
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax.figure


def adversarial_grid(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: Any = None,
    adv_pred: Any = None,
    classes: list[str] | None = None,
    n: int = 8,
):
    """Rows: clean images, adversarial images, perturbations (magnified to the full range)."""
    plt = _plt()
    n = min(n, x.shape[0])
    fig, axes = plt.subplots(3, n, figsize=(1.4 * n, 4.4), squeeze=False)
    delta = (x_adv[:n] - x[:n]).detach().cpu()
    scale = delta.abs().amax().clamp_min(1e-12)

    def show(ax, img):
        img = img.detach().cpu()
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1))
        ax.set_xticks([])
        ax.set_yticks([])

    name = (lambda k: classes[int(k)]) if classes else (lambda k: str(int(k)))
    for i in range(n):
        show(axes[0, i], x[i])
        show(axes[1, i], x_adv[i])
        show(axes[2, i], 0.5 + 0.5 * delta[i] / scale)
        if y is not None:
            axes[0, i].set_title(name(y[i]), fontsize=8)
        if adv_pred is not None:
            axes[1, i].set_title(name(adv_pred[i]), fontsize=8)
    for row, label in enumerate(("clean", "adversarial", "perturbation")):
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig
