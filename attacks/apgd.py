"""APGD (Croce & Hein, ICML 2020): step-size-free PGD with momentum and checkpoints.

Per sample, the step size starts at 2·ε and is halved at checkpoints ``w_j`` (fractions
``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)`` of the
iterations) when fewer than ``rho`` of the steps since the last checkpoint raised the loss, or
when the step size and the best loss have not changed since the last checkpoint; on a halving the
iterate goes back to the best point found. Steps use momentum ``alpha`` = 0.75.

- ``apgd-ce``: cross-entropy loss; ``apgd-dlr``: the DLR loss (scale-invariant).
- ``apgd-t``: targeted DLR loss against each of the ``n_target_classes`` most likely wrong classes
  in turn (one run each); the target only shapes the loss: any misclassification is a success
  (and ends the sample's runs), as in AutoAttack.

``steps`` counts gradient evaluations, one per iteration: the first at the random start, so
``steps`` = N moves the iterate N − 1 times (AutoAttack's ``n_iter`` = N is ``steps`` = N + 1),
and at least 2 are needed.

Samples leave the batch at their first adversarial iterate (``early_stop``), which is all a
robust-accuracy evaluation needs. On a randomized model judged by majority vote (a defense with
``votes`` > 1) one pass cannot say whether an iterate is adversarial: every sample takes every
step, its best-loss point is the answer, and each run's answers are judged by the vote before the
next run or restart.
"""

from __future__ import annotations

import torch

from robustkit.attack import Attack
from robustkit.checks import flag, is_real_number, positive_int, shown
from robustkit.errors import InputError
from robustkit.registry import ATTACKS
from robustkit.threat import normalize_direction, project, random_in_ball

from .losses import check_dlr_classes, final_verdict, fooled, get_loss


def checkpoints(steps: int) -> list[int]:
    """The iterations at which APGD may halve its step size: ``ceil(p_j * steps)``.

    The fractions are summed in whole hundredths: in floats p_3 came out 0.5700000000000001 and
    p_4 0.7000000000000001, so at round step counts (10, 20, 100, ...) a checkpoint came one
    iteration later than the paper's (58 for 57 at 100 steps)."""
    pct = [0, 22]  # p_j in hundredths
    while pct[-1] < 100:
        pct.append(pct[-1] + max(pct[-1] - pct[-2] - 3, 6))
    ceil = [-(-q * steps // 100) for q in pct[1:]]
    return sorted({w for w in ceil if w < steps})


class _APGDBase(Attack):
    """Shared APGD machinery; subclasses choose the loss and the targets."""

    def __init__(
        self,
        norm: str = "linf",
        eps: float | str = 8 / 255,
        steps: int = 100,
        restarts: int = 1,
        rho: float = 0.75,
        alpha: float = 0.75,
        early_stop: bool = True,
        seed: int = 0,
    ):
        super().__init__(norm=norm, eps=eps, targeted=False, seed=seed)
        self.steps = positive_int("steps", steps)
        if self.steps < 2:  # (one gradient, at the random start: no step, a random point)
            raise InputError(
                f"APGD needs steps >= 2, got {self.steps}: steps counts gradient evaluations, "
                "the first at the random start, so steps=1 never moves from it"
            )
        self.restarts = positive_int("restarts", restarts)
        for name, value in (("rho", rho), ("alpha", alpha)):
            # (shown: a huge int's repr is hundreds of digits, past 4,300 an error of its own)
            if not is_real_number(value) or not 0 < value <= 1:
                raise InputError(f"{name} must be a number in (0, 1], got {shown(value)}")
        self.rho = float(rho)
        self.alpha = float(alpha)
        self.early_stop = flag("early_stop", early_stop)

    def _runs(self, ctx, x, y):
        """The (loss, per-sample target or None) pairs to run, in order."""
        raise NotImplementedError

    def _attack(self, ctx, x, y, target):
        out = x.clone()
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        runs = self._runs(ctx, x, y)
        left = len(runs) * self.restarts  # runs and restarts still to go
        for loss_name, targets in runs:
            for _ in range(self.restarts):
                left -= 1
                idx = (~done).nonzero().flatten()
                if idx.numel() == 0:
                    return out
                t = targets[idx] if targets is not None else None
                adv, hit = self._apgd(ctx, x[idx], y[idx], t, idx, get_loss(loss_name), left > 0)
                out[idx] = adv
                done[idx] = hit
        return out

    def _apgd(self, ctx, x0, y, target, idx, loss_fn, check_final: bool = False):
        """One APGD run on a subset; returns the answers and which are known adversarial.

        On a model judged by majority vote (``ctx.votes`` > 1) no iterate is judged by its one
        pass: every sample takes every step, and where another run follows (``check_final``)
        the answers are judged by the vote, so that run attacks only the samples still
        standing."""
        norm, eps, n = self.norm, self.eps, x0.shape[0]
        dev = x0.device
        judge_steps = ctx.votes == 1

        def step(xs, ids, ys, ts):
            # The target (APGD-T) only shapes the loss: any misclassification is a hit, as in
            # AutoAttack, so a sample pushed to another wrong class is done, not attacked again.
            logits, loss, grad = ctx.value_and_grad(xs, lambda z: loss_fn(z, ys, ts), ids)
            hit = (
                fooled(logits, ys, None) if judge_steps else torch.zeros_like(ys, dtype=torch.bool)
            )
            return loss, grad, hit

        result = x0.clone()
        hit_any = torch.zeros(n, dtype=torch.bool, device=dev)
        act = torch.arange(n, device=dev)
        x_cur = project(x0 + random_in_ball(x0, norm, eps, ctx.generator), x0, norm, eps)
        loss, grad, hit = step(x_cur, idx, y, target)
        state = {
            "x0": x0,
            "y": y,
            "t": target,
            "ids": idx,
            "x": x_cur,
            "x_prev": x_cur.clone(),
            "grad": grad,
            "loss": loss,
            "x_best": x_cur.clone(),
            "grad_best": grad.clone(),
            "loss_best": loss.clone(),
            "eta": torch.full((n,), 2.0 * eps, device=dev),
            "eta_ckpt": torch.full((n,), 2.0 * eps, device=dev),
            "best_ckpt": loss.clone(),
            "ups": torch.zeros(n, device=dev),
        }
        ckpts = checkpoints(self.steps)
        last_ckpt = 0

        def record(hit, act, state, point):
            """Keep each sample's first adversarial ``point`` (the iterate ``hit`` was judged
            on: a checkpoint may since have moved ``state["x"]`` back to the best point)."""
            new = hit & ~hit_any[act]
            if new.any():
                result[act[new]] = point[new]
                hit_any[act[new]] = True
            if self.early_stop and hit.any():
                keep = ~hit
                state = {k: (v[keep] if v is not None else None) for k, v in state.items()}
                act = act[keep]
            return act, state

        act, state = record(hit, act, state, x_cur)
        for k in range(1, self.steps):
            if act.numel() == 0:
                return result, hit_any
            s = state
            view = (-1,) + (1,) * (x0.dim() - 1)
            z = project(
                s["x"] + s["eta"].view(view) * normalize_direction(s["grad"], norm),
                s["x0"],
                norm,
                eps,
            )
            if k > 1:
                a = self.alpha
                z = project(
                    s["x"] + a * (z - s["x"]) + (1 - a) * (s["x"] - s["x_prev"]), s["x0"], norm, eps
                )
            s["x_prev"] = s["x"]
            s["x"] = z
            loss, grad, hit = step(z, s["ids"], s["y"], s["t"])
            s["ups"] += (loss > s["loss"]).float()
            s["loss"], s["grad"] = loss, grad
            better = loss > s["loss_best"]
            s["x_best"] = torch.where(better.view(view), z, s["x_best"])
            s["grad_best"] = torch.where(better.view(view), grad, s["grad_best"])
            s["loss_best"] = torch.where(better, loss, s["loss_best"])
            if k in ckpts:
                span = k - last_ckpt
                few_ups = s["ups"] < self.rho * span
                stalled = (s["eta"] == s["eta_ckpt"]) & (s["loss_best"] == s["best_ckpt"])
                reduce = few_ups | stalled
                s["eta_ckpt"] = s["eta"].clone()
                s["best_ckpt"] = s["loss_best"].clone()
                s["eta"] = torch.where(reduce, s["eta"] / 2, s["eta"])
                r = reduce.view(view)
                s["x"] = torch.where(r, s["x_best"], s["x"])
                s["grad"] = torch.where(r, s["grad_best"], s["grad"])
                s["ups"].zero_()
                last_ckpt = k
            act, state = record(hit, act, s, z)
        pending = ~hit_any[act]
        if pending.any():
            result[act[pending]] = state["x_best"][pending]
            if check_final and not judge_steps:
                verdict = final_verdict(
                    ctx, state["x_best"], state["ids"], state["y"], None, x0=state["x0"]
                )
                hit_any[act] |= verdict & pending
        return result, hit_any


@ATTACKS.register(
    "apgd-ce",
    family="gradient",
    norms="linf, l2",
    summary="APGD with cross-entropy loss: automatic step size, momentum, checkpoints",
    reference="Croce & Hein, ICML 2020",
)
class APGDCE(_APGDBase):
    """APGD on the cross-entropy loss.

    ``steps`` counts gradient evaluations, the first at the random start (at least 2;
    AutoAttack's ``n_iter=N`` is ``steps=N+1``); ``restarts`` retries the samples still robust
    from another random start; ``rho`` is the share of steps since the last checkpoint that must
    raise the loss to keep the step size; ``alpha`` is the momentum; ``early_stop=False`` runs
    every step for every sample. APGD is untargeted (``apgd-t`` aims at wrong classes itself).
    """

    name = "apgd-ce"

    def _runs(self, ctx, x, y):
        return [("ce", None)]


@ATTACKS.register(
    "apgd-dlr",
    family="gradient",
    norms="linf, l2",
    summary="APGD with the scale-invariant DLR loss",
    reference="Croce & Hein, ICML 2020",
)
class APGDDLR(_APGDBase):
    """APGD on the DLR loss (scale-invariant; needs 3 classes or more). Parameters as
    :class:`APGDCE`."""

    name = "apgd-dlr"

    def check_classes(self, classes: int) -> None:
        check_dlr_classes(classes, targeted=False)

    def _runs(self, ctx, x, y):
        return [("dlr", None)]


@ATTACKS.register(
    "apgd-t",
    family="gradient",
    norms="linf, l2",
    summary="Targeted APGD-DLR against the most likely wrong classes in turn (AutoAttack's APGD-T)",
    reference="Croce & Hein, ICML 2020",
)
class APGDT(_APGDBase):
    """Targeted APGD on the targeted DLR loss, one run per candidate target class.

    The candidates are the ``n_target_classes`` classes the model ranks highest after the
    true one (at most every wrong class: on a model of fewer than ``n_target_classes`` + 1
    classes, each wrong class once, so the default 9 fits 10 classes and any fewer); any
    misclassification counts as a success, as in AutoAttack. The other
    parameters are :class:`APGDCE`'s; ``steps`` and ``restarts`` apply to each target.
    """

    name = "apgd-t"

    def __init__(
        self,
        norm: str = "linf",
        eps: float | str = 8 / 255,
        steps: int = 100,
        n_target_classes: int = 9,
        restarts: int = 1,
        rho: float = 0.75,
        alpha: float = 0.75,
        early_stop: bool = True,
        seed: int = 0,
    ):
        super().__init__(norm, eps, steps, restarts, rho, alpha, early_stop, seed)
        self.n_target_classes = positive_int("n_target_classes", n_target_classes)

    def check_classes(self, classes: int) -> None:
        check_dlr_classes(classes, targeted=True)

    def _runs(self, ctx, x, y):
        ranking = ctx.logits(x).argsort(dim=1, descending=True)  # one counted forward pass
        k = min(self.n_target_classes, ranking.shape[1] - 1)
        runs = []
        for r in range(1, k + 1):
            t = ranking[:, r]
            # the top class is the true label for samples the model gets right; guard anyway
            t = torch.where(t == y, ranking[:, 0], t)
            runs.append(("dlr", t))
        return runs
