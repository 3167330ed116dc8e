"""FGSM and PGD: (projected) gradient ascent on a loss inside the ε-ball (L∞ or L2).

PGD (Madry et al., ICLR 2018) repeats a steepest-ascent step of size ``step_size`` (the gradient's
sign for L∞, its direction for L2) and projects back onto the ε-ball and the [0, 1] box. FGSM
(Goodfellow et al., ICLR 2015) is the single step of size ε from the clean image; with a random
start it is FGSM-RS (Wong et al., ICLR 2020: step 1.25·ε, then projection).

Each sample's search ends at its first adversarial iterate when ``early_stop`` is on (the batch
shrinks as samples are fooled, so later steps cost less); with ``early_stop=False`` every sample
runs all steps and the first adversarial iterate found is still what is returned. Restarts attack
only the samples no earlier restart fooled. Targeted, a restart's answer that missed the target
but is misclassified is kept unless a later restart's answer is misclassified too (judged in the
pass that judges each restart's last iterate; the last restart judges only such samples), so
more restarts never raise robust accuracy. ``eot`` > 1 averages the gradient over that many
forward/backward passes, for randomized models (expectation over transformation). On a randomized
model judged by majority vote (a defense with ``votes`` > 1) no single pass says whether a sample
is fooled: every sample takes every step, its last iterate is the answer, and a restart's answers
are judged by the vote.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from robustkit.attack import Attack, AttackContext
from robustkit.checks import flag, positive_float, positive_int
from robustkit.errors import InputError
from robustkit.registry import ATTACKS
from robustkit.threat import normalize_direction, parse_eps, project, random_in_ball

from .losses import LOSSES, check_dlr_classes, final_outcome, fooled, get_loss


def check_step_size(value: object) -> float | None:
    """A step size, or None for the attack's default. Text is read as ε is (``"2/255"``,
    :func:`~robustkit.threat.parse_eps`): ``eps="8/255"`` was taken and ``step_size="2/255"``
    refused, though the spec ``pgd:step_size=2/255`` works. A number is taken as it is."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_eps(value, name="step_size")
    return positive_float("step_size", value)


def eot_value_and_grad(ctx: AttackContext, x, idx, loss_of, eot: int):
    """Logits, loss and gradient at ``x``, averaged over ``eot`` passes (counted per pass)."""
    logits, loss, grad = ctx.value_and_grad(x, loss_of, idx)
    for _ in range(eot - 1):
        lg, ls, g = ctx.value_and_grad(x, loss_of, idx)
        logits, loss, grad = logits + lg, loss + ls, grad + g
    if eot > 1:
        logits, loss, grad = logits / eot, loss / eot, grad / eot
    return logits, loss, grad


@ATTACKS.register(
    "pgd",
    family="gradient",
    norms="linf, l2",
    summary="Projected gradient descent: steps, restarts, CE/margin/DLR loss, targeted, EOT",
    reference="Madry et al., ICLR 2018",
)
class PGD(Attack):
    """Projected gradient ascent with random start, restarts, early stop and EOT.

    ``steps`` steps of ``step_size`` (None: 2.5·ε/steps, see :attr:`alpha`; in L∞ a step of
    2·ε, the ball's width, already takes each pixel the gradient moves to the ball's face, so
    any larger step acts as 2·ε: a step in pixel levels is written ``step_size=2/255``) from a
    random point of the ε-ball (``random_start``, else the clean image); ``restarts`` retries
    the samples no earlier restart fooled (from another random start: without one, and with
    ``eot`` = 1, a restart would repeat the first, so restarts > 1 is refused there);
    ``loss``: ``ce``, ``margin`` (Carlini & Wagner's; ``cw`` names it too) or ``dlr``;
    ``targeted=True`` aims at the ``target`` the call is given (a sample no restart moves to
    its target keeps a misclassified answer where a restart found one); ``early_stop=False``
    runs every step for every sample (the first adversarial iterate is still the answer);
    ``eot`` > 1 averages each gradient over that many passes (for randomized models).
    """

    name = "pgd"

    def __init__(
        self,
        norm: str = "linf",
        eps: float | str = 8 / 255,
        steps: int = 10,
        step_size: float | str | None = None,
        random_start: bool = True,
        restarts: int = 1,
        loss: str = "ce",
        targeted: bool = False,
        early_stop: bool = True,
        eot: int = 1,
        seed: int = 0,
    ):
        super().__init__(norm=norm, eps=eps, targeted=targeted, seed=seed)
        self.steps = positive_int("steps", steps)
        self.step_size = check_step_size(step_size)
        self.random_start = flag("random_start", random_start)
        self.restarts = positive_int("restarts", restarts)
        get_loss(loss)
        if str(loss).lower() not in LOSSES + ("cw",):
            raise InputError(f"unknown loss {loss!r}; use one of {', '.join(LOSSES)}")
        # one name per loss: pgd:loss=cw and pgd:loss=margin are one attack
        self.loss = {"cw": "margin"}.get(str(loss).lower(), str(loss).lower())
        self.early_stop = flag("early_stop", early_stop)
        self.eot = positive_int("eot", eot)
        if self.restarts > 1 and not self.random_start and self.eot == 1:
            # every restart starts at the clean image: with one pass per gradient it repeated
            # the first restart on the samples that one left (same answers, more gradients)
            raise InputError(
                f"pgd: restarts={self.restarts} without a random start repeat the same run "
                "(each starts at the clean image); set random_start=true or restarts=1 (on a "
                "randomized model, eot > 1 draws anew in every restart)"
            )

    @property
    def alpha(self) -> float:
        """The step size used: ``step_size``, or 2.5·ε/steps (Madry et al.'s rule)."""
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps

    def check_classes(self, classes: int) -> None:
        if self.loss == "dlr":
            check_dlr_classes(classes, self.targeted)

    def clean_gradient_loss(
        self, y: torch.Tensor, target: torch.Tensor | None
    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Without a random start (and with one pass per gradient) the first step's gradient is
        taken at the clean images, in the pass that also gives their labels."""
        if self.random_start or self.eot != 1:
            return None
        loss_fn = get_loss(self.loss)
        return lambda logits: loss_fn(logits, y, target)

    def _attack(self, ctx, x, y, target):
        n = x.shape[0]
        out = x.clone()
        done = torch.zeros(n, dtype=torch.bool, device=x.device)
        # targeted: the answer in out missed its target but is misclassified (judged so); a
        # later restart's answer replaces it only where judged no worse, so more restarts
        # never raise robust accuracy (the last restart then judges these samples' answers)
        wrong = torch.zeros_like(done)
        for restart in range(self.restarts):
            idx = (~done).nonzero().flatten()
            if idx.numel() == 0:
                break
            t = target[idx] if target is not None else None
            last = restart == self.restarts - 1
            check = True if not last else wrong[idx]
            adv, hit, miss = self._run(ctx, x[idx], y[idx], t, idx, check_final=check)
            if target is None:
                out[idx] = adv
            else:
                take = hit | miss | ~wrong[idx]
                out[idx[take]] = adv[take]
                wrong[idx] = (wrong[idx] | miss) & ~hit
            done[idx] = hit
        return out

    def _run(self, ctx, x0, y, target, idx, check_final: bool | torch.Tensor):
        """One restart on a subset; returns each sample's answer, whether it is known to be
        adversarial, and (targeted) whether it is known to miss the target but be misclassified.
        ``check_final`` (for every sample, or those of a mask) spends one more forward pass (a
        vote's passes on a model judged by majority vote) to judge the last iterate (needed
        only when another restart would otherwise redo a sample already fooled, or to choose
        between a targeted sample's answers)."""
        loss_fn = get_loss(self.loss)
        eps, norm, alpha = self.eps, self.norm, self.alpha
        x_adv = x0
        if self.random_start:
            x_adv = project(x0 + random_in_ball(x0, norm, eps, ctx.generator), x0, norm, eps)
        result = x_adv.clone()
        hit_any = torch.zeros(x0.shape[0], dtype=torch.bool, device=x0.device)
        act = torch.arange(x0.shape[0], device=x0.device)
        xa, x0a, ya, ta, ida = x_adv, x0, y, target, idx
        # On a model judged by majority vote one pass (or the EOT mean) cannot say whether a
        # sample is fooled: every sample then takes every step and its last iterate is judged
        # by the vote (stopping at a lucky draw froze points the vote calls correct).
        judge_steps = ctx.votes == 1
        # the first gradient, where the clean pass gave it (see clean_gradient_loss)
        first = ctx.take_clean_gradient(idx)
        for _ in range(self.steps):
            if first is not None:
                logits, _, grad = first
                first = None
            else:
                logits, _, grad = eot_value_and_grad(
                    ctx, xa, ida, lambda z, ya=ya, ta=ta: loss_fn(z, ya, ta), self.eot
                )
            hit = fooled(logits, ya, ta) if judge_steps else None
            if hit is not None and hit.any():
                new = hit & ~hit_any[act]
                result[act[new]] = xa[new]
                hit_any[act[new]] = True
                if self.early_stop:
                    keep = ~hit
                    act, xa, x0a, ya, grad, ida = (
                        act[keep],
                        xa[keep],
                        x0a[keep],
                        ya[keep],
                        grad[keep],
                        ida[keep],
                    )
                    ta = ta[keep] if ta is not None else None
                    if act.numel() == 0:
                        return result, hit_any, torch.zeros_like(hit_any)
            xa = project(xa + alpha * normalize_direction(grad, norm), x0a, norm, eps)
        miss = torch.zeros_like(hit_any)
        pending = ~hit_any[act]
        if pending.any():
            result[act[pending]] = xa[pending]
            if check_final is True:  # one pass over the batch as it stands
                hit, wrong = final_outcome(ctx, xa, ida, ya, ta, x0=x0a)
                hit_any[act] |= hit & pending
                miss[act] = wrong & ~hit & pending
            elif (pending & check_final[act]).any():  # only the samples of the mask
                j = (pending & check_final[act]).nonzero().flatten()
                tj = ta[j] if ta is not None else None
                hit, wrong = final_outcome(ctx, xa[j], ida[j], ya[j], tj, x0=x0a[j])
                hit_any[act[j]] |= hit
                miss[act[j]] = wrong & ~hit
        return result, hit_any, miss


@ATTACKS.register(
    "fgsm",
    family="gradient",
    norms="linf, l2",
    summary="Fast gradient sign method: one step of size eps (FGSM-RS with random_start)",
    reference="Goodfellow et al., ICLR 2015; FGSM-RS: Wong et al., ICLR 2020",
)
class FGSM(PGD):
    """One gradient step: the sign (L∞) or direction (L2) of the loss gradient, scaled to ε.

    With ``random_start`` it is FGSM-RS: a uniform random start in the ε-ball, one step of
    1.25·ε (unless ``step_size`` says otherwise), then projection.
    """

    name = "fgsm"

    def __init__(
        self,
        norm: str = "linf",
        eps: float | str = 8 / 255,
        step_size: float | str | None = None,
        random_start: bool = False,
        loss: str = "ce",
        targeted: bool = False,
        eot: int = 1,
        seed: int = 0,
    ):
        super().__init__(
            norm=norm,
            eps=eps,
            steps=1,
            step_size=step_size,
            random_start=random_start,
            restarts=1,
            loss=loss,
            targeted=targeted,
            early_stop=True,
            eot=eot,
            seed=seed,
        )

    @property
    def alpha(self) -> float:
        """The step size used: ``step_size``, or ε (1.25·ε with ``random_start``, FGSM-RS)."""
        if self.step_size is not None:
            return self.step_size
        return 1.25 * self.eps if self.random_start else self.eps
