"""A worst-case ensemble in the manner of AutoAttack (Croce & Hein, ICML 2020).

The stages run one after another, each only on the samples every earlier stage failed to fool;
a sample counts as robust only if it survives them all. The default spends effort where it is
needed: a short APGD-CE pass removes the easy samples cheaply, then targeted APGD-DLR runs on
the few that are left.

Per sample, ``result.extras["fooled_by"]`` is the index of the stage that fooled it (-1: none),
so the robust accuracy after each stage is ``clean_correct & (fooled_by == -1 | fooled_by > k)``
(:func:`stage_robust_accuracy`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from robustkit.attack import Attack, AttackContext, AttackResult
from robustkit.device import derive_seed
from robustkit.errors import InputError
from robustkit.registry import ATTACKS

from .losses import final_verdict

#: The default stages: cheap first, expensive only on what is left.
DEFAULT_STAGES = ("apgd-ce:steps=20", "apgd-t:steps=20,n_target_classes=3")


def stage_robust_accuracy(result: AttackResult) -> list[float]:
    """Robust accuracy after each stage of an ``auto`` result (cumulative;
    :meth:`AttackResult.stage_robust_accuracy`)."""
    per_stage = result.stage_robust_accuracy()
    if per_stage is None:
        raise InputError(f"{result.attack!r} is not an ensemble of stages (no auto result)")
    return per_stage


def _draws_at_random(atk: Attack) -> bool:
    """Whether ``atk`` draws from its seed or the model's randomness: a random start (APGD
    always), or EOT's several passes per gradient. One that does not (FGSM, PGD without a random
    start) repeats itself exactly on a deterministic model, whatever its seed."""
    return getattr(atk, "random_start", True) or getattr(atk, "eot", 1) > 1


@ATTACKS.register(
    "auto",
    family="gradient",
    norms="linf, l2",
    summary="Worst-case ensemble: stages run on the samples still robust (default APGD-CE, APGD-T)",
    reference="Croce & Hein, ICML 2020 (AutoAttack)",
)
class Auto(Attack):
    """Run ``stages`` (attack specifications such as ``"apgd-ce:steps=25"``; on the command line
    ``auto:stages=apgd-ce:steps=25+apgd-t:steps=25;n_target_classes=3``) in order on the
    samples no earlier stage fooled. Every stage gets this attack's norm, ε and a seed derived
    from its own; a stage that draws nothing at random (FGSM, PGD without a random start) may
    not be given twice, as it would repeat its first run."""

    name = "auto"
    extras_fill = {"fooled_by": -1}  # a sample not attacked (already wrong): fooled by no stage

    def __init__(
        self,
        norm: str = "linf",
        eps: float | str = 8 / 255,
        stages: str | Sequence[str] = DEFAULT_STAGES,
        seed: int = 0,
    ):
        super().__init__(norm=norm, eps=eps, targeted=False, seed=seed)
        if isinstance(stages, str):
            stages = [s for s in stages.split("+") if s.strip()]
        elif not isinstance(stages, (list, tuple)) or not all(isinstance(s, str) for s in stages):
            raise InputError(
                f"auto stages must be attack specs joined by +, got {stages!r}; "
                "e.g. stages=apgd-ce+apgd-t"
            )
        if not stages:
            raise InputError("auto needs at least one stage, e.g. stages=apgd-ce+apgd-t")
        from robustkit.specs import registered_stage

        self._attacks = [self._build(spec) for spec in stages]
        # by registered name and without spaces (APGD-CE: steps=5 is apgd-ce:steps=5: one run)
        self.stages = tuple(registered_stage(spec) for spec in stages)
        built = [(atk.name, atk.params) for atk in self._attacks]  # (defaults spelled out)
        for k, (stage, atk) in enumerate(zip(self.stages, self._attacks, strict=True)):
            if not _draws_at_random(atk) and built[k] in built[:k]:
                # it ran again on the samples the first left and repeated its steps exactly
                raise InputError(
                    f"auto stage {stage!r} repeats stage {built.index(built[k]) + 1} and "
                    "draws nothing at random, so it would repeat that stage's run on the "
                    "samples it left: drop it or set random_start=true"
                )

    def _build(self, spec: str) -> Attack:
        from robustkit.specs import build_attack, parse_attack_spec

        # inside a CLI spec, a stage's own parameters are separated by ';' (',' ends the stage list)
        name, _, rest = spec.partition(":")
        items = [item.strip() for item in rest.split(";")] if rest.strip() else []
        if not all(items):  # (said of the ',' it became: "empty parameter in 'pgd:steps=2,'")
            given = ";".join(filter(None, items))
            fix = f"{name.strip()}:{given}" if given else name.strip()
            raise InputError(f"empty parameter in auto stage {spec!r} (a stray ;); write {fix!r}")
        text = spec.replace(";", ",")
        if "seed" in {k.lower() for k in parse_attack_spec(text)[1]}:
            # (it was ignored without a word: the stage's draws come from auto's seed)
            raise InputError(
                f"auto stage {spec!r} sets its own seed; every stage's seed is derived from "
                "auto's: drop seed= from the stage (set auto's own seed instead)"
            )
        atk = build_attack(text, norm=self.norm, eps=self.eps)
        if atk.name == self.name or atk.family != "gradient" or atk.targeted:
            raise InputError(f"auto stages must be untargeted gradient attacks, got {spec!r}")
        # (ε as written, e.g. 0.03137255 for 8/255: the same to 1e-6)
        if atk.norm != self.norm or not math.isclose(atk.eps, self.eps, rel_tol=1e-6):
            # its examples would be projected onto auto's ball: another attack than written
            raise InputError(
                f"auto stage {spec!r} sets its own threat model ({atk.norm}, ε={atk.eps!r}); "
                f"every stage runs at auto's ({self.norm}, ε={self.eps!r}): drop norm=/eps= "
                "from the stage"
            )
        return atk

    def check_classes(self, classes: int) -> None:
        for atk in self._attacks:  # (a later stage runs only on what earlier ones left)
            atk.check_classes(classes)

    def _attack(self, ctx, x, y, target):
        out = x.clone()
        fooled_by = torch.full((x.shape[0],), -1, dtype=torch.long, device=x.device)
        for k, atk in enumerate(self._attacks):
            idx = (fooled_by < 0).nonzero().flatten()
            if idx.numel() == 0:
                break
            sub = AttackContext(
                ctx.model, idx.numel(), ctx.device, derive_seed(self.seed, k), self.threat
            )
            candidate = self.threat.project(atk._attack(sub, x[idx], y[idx], None).detach(), x[idx])
            # judged as success is (by the vote of a randomized model, not by one noise draw),
            # and a stage whose answer is the clean image found nothing
            hit = final_verdict(sub, candidate, None, y[idx], None, x0=x[idx])
            ctx.queries.index_add_(0, idx, sub.queries)
            ctx.gradients.index_add_(0, idx, sub.gradients)
            out[idx] = candidate
            fooled_by[idx[hit]] = k
        ctx.extras["fooled_by"] = fooled_by.cpu()
        return out
