"""Sanity checks run with every evaluation (after AutoAttack's checks and Carlini et al., "On
Evaluating Adversarial Robustness", 2019). Each returns ``(name, flagged, detail)``; a flagged run
is marked unreliable in every leaderboard, with the detail saying why.

Model checks look at a few samples of the run: randomized outputs (flagged unless every
gradient attack of the run averages over draws, ``eot`` > 1; the detail names those that do not), outputs that look like probabilities, zero or
NaN input gradients (gradient masking; of the whole model, or of one member of an ensemble: partial
masking). They judge the run's gradient attacks: a run without one has them not checked (a
label-only attack sees neither scores nor gradients). A run with a label-only attack has its own
model check: randomized outputs whose labels take a single draw (no majority vote), which make
the attack's verdicts and re-checks single draws. Result checks compare the run's own numbers: a
decision-based attack beating the white-box ones, robust accuracy above clean accuracy, and
whether twice the steps with an extra restart still lower the robust accuracy (for ``auto``: every
stage at twice its steps with one more restart). Cross-run checks (robust accuracy rising with ε)
live in :mod:`robustkit.leaderboard`.

A check that could not be made on a run (no attack it applies to, too few samples) is stored
unflagged with a detail that starts with :data:`NOT_CHECKED`; :func:`was_checked` tells it
apart from a check that passed, so reports do not count it as one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .tables import counted

Check = tuple[str, bool, str]

#: How the detail of a check that could not be made on a run begins (it is not a pass).
NOT_CHECKED = "not checked: "


def was_checked(detail: str) -> bool:
    """False for a check that could not be made on its run (stored unflagged, not a pass)."""
    return not detail.startswith(NOT_CHECKED)


#: How the detail of a model check begins on a run with no gradient attack (it judges those).
_NO_GRADIENT_ATTACK = NOT_CHECKED + "no gradient attack in the run ("

#: The checks that judge a run's gradient attacks only: a label-only attack's figures (the
#: decision table) do not carry their flags (the model's randomness, scores and gradients mean
#: nothing to an attack that sees labels only; a label-only attack beating the white-box ones
#: discredits the white-box numbers; more steps concern the gradient attack).
GRADIENT_CHECKS = frozenset(
    {
        "randomized_outputs",
        "probability_outputs",
        "gradient_masking",
        "blackbox_beats_whitebox",
        "more_steps_help",
    }
)

#: The checks that judge a run's label-only attacks only: a robust-accuracy row carries their
#: flags only where a label-only attack is one of its columns (one with an ε; a minimum-norm
#: one is in the decision table alone).
LABEL_ONLY_CHECKS = frozenset({"randomized_labels"})


def _items(attacks: Any) -> Any:
    """The attacks of a run given as a mapping (label -> attack) or a sequence."""
    return attacks.values() if isinstance(attacks, Mapping) else attacks


def _gradient_attacks(attacks: Any) -> list[Any]:
    """The run's white-box attacks, the stages of ensembles (``auto``) included."""
    from .attack import Attack

    out = []
    for a in _items(attacks):
        if isinstance(a, Attack) and a.family == "gradient":
            out.append(a)
            out += _gradient_attacks(getattr(a, "_attacks", ()))
    return out


def _labelled(attacks: Any) -> list[tuple[str, Any]]:
    """The run's attacks with their labels (a sequence's by their names)."""
    if isinstance(attacks, Mapping):
        return list(attacks.items())
    return [(getattr(a, "name", str(a)), a) for a in attacks]


def _eot(atk: Any) -> int:
    """How many draws a gradient attack averages each gradient over (1: none, no EOT)."""
    return int(getattr(atk, "eot", 1) or 1)


def _without_eot(label: str, atk: Any) -> str | None:
    """How to name a gradient attack of the run that takes a single draw of a randomized model
    per gradient (its figure is not adaptive): its label; for an ensemble (``auto``), its label
    with the stages that do so (``auto (its stage fgsm)``). None for one that averages."""
    stages = getattr(atk, "_attacks", None)
    if stages is None:
        return label if _eot(atk) <= 1 else None
    lacking = [s.name for s in _gradient_attacks(stages) if _eot(s) <= 1]
    if not lacking:
        return None
    return f"{label} (its stage{'s' if len(lacking) > 1 else ''} {', '.join(lacking)})"


def check_randomized(
    model: nn.Module, x: torch.Tensor, attacks: Any, change: tuple[bool, float] | None = None
) -> Check:
    """Flag a model whose outputs change between identical calls unless every gradient attack
    of the run (``attacks``: the run's attacks, a mapping label -> attack or a sequence; every
    stage of ``auto``) averages its gradients over draws (``eot`` > 1): an attack that takes one
    draw per gradient is not adaptive, and its figure overstates robustness; one such attack
    beside an EOT one is named (by its label) in the detail, so that a reader of the flag knows
    which figure is not adaptive (the row, worst case included, carries the flag: the worst case
    then rests on the EOT attacks alone for adaptivity). Not checked for a run without a
    gradient attack (EOT does not apply). ``change``: :func:`_output_change` of ``model`` on
    ``x``, where the caller has it."""
    gradient = [
        (label, a) for label, a in _labelled(attacks) if getattr(a, "family", None) == "gradient"
    ]
    if not gradient:
        return (
            "randomized_outputs",
            False,
            _NO_GRADIENT_ATTACK + "EOT is for gradient attacks; a label-only attack sees one "
            "draw per query, as a client would, and its examples are judged by the vote where "
            "the model takes votes, else by one draw)",
        )
    randomized, diff = change or _output_change(model, x)
    named = [(label, _without_eot(label, a)) for label, a in gradient]
    lacking = [n for _, n in named if n is not None]
    averaging = [label for label, n in named if n is None]
    eot = max((_eot(g) for g in _gradient_attacks(attacks)), default=1)
    flagged = randomized and bool(lacking)
    if flagged and not averaging:
        detail = (
            f"outputs change between identical calls (max difference {diff:.3g}): the model is "
            "randomized and no gradient attack of the run averages over its draws; evaluate "
            "with EOT (e.g. --attack pgd:eot=10)"
        )
    elif flagged:
        some = "s" if len(lacking) > 1 else ""
        detail = (
            f"outputs change between identical calls (max difference {diff:.3g}): the model is "
            f"randomized and {', '.join(lacking)} did not average over its draws (no EOT; "
            f"only {', '.join(averaging)} did): {'their figures are' if some else 'its figure is'} "
            f"not adaptive, and the worst case is adaptive through {', '.join(averaging)} alone; "
            "evaluate every gradient attack with EOT (e.g. --attack pgd:eot=10)"
        )
    elif randomized:
        detail = (
            f"outputs change between identical calls (max difference {diff:.3g}): randomized; "
            f"evaluated with EOT={eot}"
        )
    else:
        detail = "outputs are deterministic"
        wasted = [n for n in (_with_eot(label, a) for label, a in gradient) if n is not None]
        if wasted:  # (each pass the same: the answers of eot=1, at eot times the gradients)
            detail += (
                f": EOT averages identical passes there ({', '.join(wasted)}), the gradients "
                "of eot=1 at several times the cost; use eot=1"
            )
            # (PGD without a random start: its restarts repeat the first, and eot=1 alone is
            # refused with restarts > 1)
            if any(_restarts_repeat(a) for a in _gradient_attacks(attacks)):
                detail += (
                    ", and restarts=1 where there is no random start (each restart repeats "
                    "the first)"
                )
    return "randomized_outputs", flagged, detail


def _with_eot(label: str, atk: Any) -> str | None:
    """How to name a gradient attack of the run that averages over several passes (``eot`` >
    1): its label; for an ensemble (``auto``), its label with the stages that do so. None for
    one that takes a single pass per gradient."""
    stages = getattr(atk, "_attacks", None)
    if stages is None:
        return label if _eot(atk) > 1 else None
    averaging = [s.name for s in _gradient_attacks(stages) if _eot(s) > 1]
    if not averaging:
        return None
    return f"{label} (its stage{'s' if len(averaging) > 1 else ''} {', '.join(averaging)})"


def _restarts_repeat(atk: Any) -> bool:
    """Whether ``atk`` runs restarts that, on a deterministic model, repeat its first: several,
    each from the clean image (no random start), with EOT (PGD refuses them without)."""
    return (
        _eot(atk) > 1
        and getattr(atk, "restarts", 1) > 1
        and not atk.params.get("random_start", True)
    )


def _output_change(model: nn.Module, x: torch.Tensor) -> tuple[bool, float]:
    """Do ``model``'s outputs on ``x`` change between two identical calls, and by how much."""
    with torch.no_grad():
        a, b = model(x), model(x)
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    return diff > 1e-5 * (1 + float(a.abs().max()) if a.numel() else 1), diff


def check_randomized_labels(
    model: nn.Module, x: torch.Tensor, change: tuple[bool, float] | None = None
) -> Check:
    """For a run with a label-only attack: flag a model whose outputs change between identical
    calls while its labels take a single draw (no ``votes``, :func:`~robustkit.attack.
    prediction_votes`): the attack's verdicts and the fresh re-check of its examples are then
    single draws, and its success rates and distances depend on them. ``change``: as for
    :func:`check_randomized`."""
    from .attack import prediction_votes

    randomized, diff = change or _output_change(model, x)
    votes = prediction_votes(model)
    flagged = randomized and votes == 1
    if flagged:
        detail = (
            f"outputs change between identical calls (max difference {diff:.3g}) and a label "
            "takes one draw: the label-only attack's verdicts and re-checks are single draws; "
            "label by a majority vote (a defense with votes, e.g. input-noise) or attack a "
            "deterministic model"
        )
    elif randomized:
        detail = f"randomized; each label a majority vote of {votes} draws"
    else:
        detail = "outputs are deterministic"
    return "randomized_labels", flagged, detail


def check_probabilities(model: nn.Module, x: torch.Tensor) -> Check:
    from .attack import looks_like_probabilities

    with torch.no_grad():
        flagged = looks_like_probabilities(model(x))
    detail = (
        "outputs are non-negative and sum to 1 (probabilities, not logits): gradient attacks "
        "saturate; attack the logits"
        if flagged
        else "outputs look like logits"
    )
    return "probability_outputs", flagged, detail


def _zero_share(grad: torch.Tensor | None) -> float:
    """The share of samples whose input gradient is exactly zero (all of them without one)."""
    if grad is None:
        return 1.0
    return float((grad.flatten(1).abs().amax(dim=1) == 0).float().mean())


def check_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Check:
    """Flag gradient masking: input gradients of the loss that contain NaN or are exactly zero
    for most samples. Partial masking too: a module that averages the outputs of ``members``
    (an ``nn.ModuleList``, named by ``names``: the ensemble defense) with a member whose own
    gradients are so (bit-depth without BPDA under an ensemble), where the gradient of the
    whole comes from the other members only. Masking inside one model's own layers, off such
    a module, shows only where it blanks the whole gradient; so does that of a TorchScript
    member (it takes no hooks)."""
    members: list[tuple[str, torch.Tensor]] = []
    hooks = []
    xg = x.detach().clone().requires_grad_(True)
    try:
        for module in model.modules():
            if not isinstance(getattr(module, "members", None), nn.ModuleList):
                continue
            names = getattr(module, "names", None) or [
                f"member {i}" for i in range(len(module.members))
            ]
            for name, member in zip(names, module.members, strict=False):
                if isinstance(member, torch.jit.ScriptModule):
                    continue  # (register_forward_hook raises on one)
                hooks.append(
                    member.register_forward_hook(
                        lambda _m, _i, out, name=name: members.append((name, out))
                    )
                )
        with torch.enable_grad():
            logits = model(xg)
            loss = F.cross_entropy(logits, y, reduction="sum")
            # no autograd path at all (the model detaches its input): grad() would raise
            grad = (
                torch.autograd.grad(loss, xg, allow_unused=True, retain_graph=bool(members))[0]
                if loss.requires_grad
                else None
            )
            masked = []  # (member, share of its samples with a zero gradient)
            for name, out in members:
                if not isinstance(out, torch.Tensor) or out.shape != logits.shape:
                    continue  # (not logits of the classes averaged)
                member_loss = F.cross_entropy(out, y, reduction="sum")
                share = _zero_share(
                    torch.autograd.grad(member_loss, xg, allow_unused=True, retain_graph=True)[0]
                    if member_loss.requires_grad
                    else None
                )
                if share > 0.5:
                    masked.append((name, share))
    finally:
        for hook in hooks:
            hook.remove()
    if grad is None:
        return "gradient_masking", True, "the loss does not depend on the input (no gradient)"
    flat = grad.flatten(1)
    nan = bool(torch.isnan(flat).any())
    zero = _zero_share(grad)
    if not nan and zero <= 0.5 and masked:
        name, share = masked[0]
        return (
            "gradient_masking",
            True,
            f"input gradients of ensemble member {name} are exactly zero for {share:.0%} of "
            "samples (e.g. bit-depth without BPDA under the ensemble): partial gradient "
            "masking, the attack follows the other members only; use BPDA (bit-depth:bpda=true) "
            "or a label-only attack",
        )
    flagged = nan or zero > 0.5
    if nan:
        detail = (
            "input gradients contain NaN: gradient masking; use BPDA or a score/label-only attack"
        )
    elif flagged:
        detail = (
            f"input gradients are exactly zero for {zero:.0%} of samples (e.g. a rounding or "
            "quantizing input layer): gradient masking; use BPDA or a label-only attack"
        )
    else:
        detail = f"input gradients are non-zero ({zero:.0%} zero)"
    return "gradient_masking", flagged, detail


def check_decision_beats_whitebox(summary: dict[str, Any]) -> Check:
    """Flag gradient masking: an ε-bounded label-only attack that fools more samples than every
    white-box attack of the same threat model (norm, ε, targeted or not) in the run."""

    def threat(v: dict[str, Any]) -> tuple:
        p = v["params"]
        eps = p.get("eps")
        return p.get("norm"), None if eps is None else round(eps, 10), bool(p.get("targeted"))

    white: dict[tuple, float] = {}
    for v in summary["attacks"].values():
        if v["family"] == "gradient":
            key = threat(v)
            white[key] = min(white.get(key, math.inf), v["robust_accuracy"])
    pairs = [
        (k, v["robust_accuracy"], white[threat(v)])
        for k, v in summary["attacks"].items()
        if v["family"] == "decision" and v["params"].get("eps") is not None and threat(v) in white
    ]
    if not pairs:
        return (
            "blackbox_beats_whitebox",
            False,
            NOT_CHECKED
            + "needs a white-box and an ε-bounded label-only attack of the same threat model",
        )
    bk, best_black, best_white = min(pairs, key=lambda p: p[1] - p[2])
    # more than one point below (with room for rounding: 0.07 - 0.01 > 0.06)
    flagged = best_white - best_black > 0.01 + 1e-9
    detail = (
        f"label-only {bk} reaches {best_black:.1%} robust accuracy, below the white-box "
        f"{best_white:.1%}: the gradients mislead (masking); trust neither white-box number"
        if flagged
        else "white-box attacks are at least as strong as label-only ones"
    )
    return "blackbox_beats_whitebox", flagged, detail


def check_robust_above_clean(summary: dict[str, Any]) -> Check:
    bad = [
        k
        for k, v in summary["attacks"].items()
        if v["robust_accuracy"] > summary["clean_accuracy"] + 1e-9
    ]
    detail = (
        f"robust accuracy above clean accuracy for {', '.join(bad)}: the attack or the model is broken"
        if bad
        else "robust accuracy never exceeds clean accuracy"
    )
    return "robust_above_clean", bool(bad), detail


def _iterative(atk) -> bool:
    """An attack whose steps can be doubled: one with a ``steps`` parameter above 1, or an
    ensemble (``auto``) with such a stage."""
    stages = getattr(atk, "_attacks", None)
    if stages is not None:
        return any(_iterative(s) for s in stages)
    return "steps" in atk.params and atk.steps > 1


def _effort(atk, classes: int | None = None) -> int:
    """Gradient passes per sample, roughly: steps × restarts (× target classes × EOT passes: on a
    randomized model the EOT attack is the strong one); an ensemble's stages add up. Target
    classes count as many as the model of ``classes`` classes has wrong ones, where fewer than
    ``n_target_classes``: apgd-t's default 9 on a 4-class model runs 3 targets, and counting 9
    chose it over a PGD with more steps."""
    stages = getattr(atk, "_attacks", None)
    if stages is not None:
        return sum(_effort(s, classes) for s in stages)
    if "steps" not in atk.params:
        return 1
    targets = getattr(atk, "n_target_classes", 1)
    if classes is not None:
        targets = min(targets, max(classes - 1, 1))
    return atk.steps * getattr(atk, "restarts", 1) * targets * getattr(atk, "eot", 1)


def _targets_classes(attacks: list[Any]) -> bool:
    """Whether an attack of ``attacks`` (or a stage of one) runs one pass per target class."""
    return any(hasattr(a, "n_target_classes") for a in _gradient_attacks(attacks))


def _classes(model: nn.Module, x: torch.Tensor) -> int:
    """How many classes ``model`` scores (one pass on one sample, the global random state of a
    randomized model left as it was)."""
    cuda = [x.device] if x.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=cuda):
        return int(model(x[:1]).shape[1])


def _stronger(atk):
    """The same attack with twice the steps, one more restart and another seed; for an ensemble
    (``auto``), every stage made stronger so (a stage without steps, e.g. FGSM, stays). PGD
    without a random start (and with one pass per gradient) gets no restart: it would repeat
    the first, and PGD refuses it."""
    from .attack import next_seed

    stages = getattr(atk, "_attacks", None)
    if stages is not None:
        clone = atk.with_seed(next_seed(atk.seed))  # a copy: the run's own attack stays as it is
        clone._attacks = [_stronger(s) for s in stages]
        clone.stages = tuple(_describe(s) for s in clone._attacks)
        return clone
    if "steps" not in atk.params:
        return atk
    # a step size too small to cross the ε-ball in twice the steps: the default rule instead
    small = {}
    step = atk.params.get("step_size")
    if step is not None and atk.eps is not None and 2 * atk.steps * step < atk.eps:
        small = {"step_size": None}
    return type(atk)(
        **{
            **atk.params,
            **small,
            "steps": 2 * atk.steps,
            "seed": next_seed(atk.seed),
            **({"restarts": atk.restarts + 1} if _restarts_differ(atk) else {}),
        }
    )


def _restarts_differ(atk) -> bool:
    """Whether another restart of ``atk`` can differ from its first: it has restarts, and
    starts from a random point or draws anew each pass (PGD's ``random_start``, ``eot``)."""
    params = atk.params
    if "restarts" not in params:
        return False
    return params.get("random_start", True) or params.get("eot", 1) > 1


def _describe(atk) -> str:
    """Short text for an attack's effort, e.g. ``pgd with 20 steps``."""
    stages = getattr(atk, "_attacks", None)
    if stages is not None:
        return f"{atk.name} ({' then '.join(_describe(s) for s in stages)})"
    if "steps" not in atk.params:
        return atk.name
    restarts = getattr(atk, "restarts", 1)
    return f"{atk.name} with {counted(atk.steps, 'step')}" + (
        f" and {restarts} restarts" if restarts > 1 else ""
    )


def check_more_steps(
    run,
    x: torch.Tensor,
    y: torch.Tensor,
    limit: int = 64,
    survivors: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
    seed: int = 0,
) -> Check:
    """Attack the samples that survived every attack of the run (``survivors``, a boolean mask
    over ``x``; without it, those the strongest iterative gradient attack leaves robust) with that
    attack at twice the steps and one more restart (``auto``: each of its stages so); if it fools
    more than 1% of them, the reported worst-case robust accuracy is not converged. A targeted
    attack aims at the run's targets of the same samples (``target``, aligned with ``x``).

    Starting from the worst-case survivors, not from one attack's, means a weak attack that a
    stronger one in the same run already corrects (PGD next to ``auto``) does not flag the row:
    the flag says the number the leaderboard ranks on would still fall.

    The samples attacked are correct by construction (the stronger attack is told so, as an
    evaluation tells its attacks: a randomized model's fresh clean vote on a survivor must not
    count it as fooled), and a randomized model draws its noise from a generator seeded from
    ``seed`` (the run's), so the check repeats."""
    from .attack import Attack
    from .device import derive_seed

    candidates = [
        a
        for a in run.attacks.values()
        if isinstance(a, Attack) and a.family == "gradient" and _iterative(a)
    ]
    if not candidates:
        return "more_steps_help", False, NOT_CHECKED + "no iterative gradient attack in the run"
    # (the classes only where they can change the choice)
    choice = len(candidates) > 1 and x.shape[0] > 0 and _targets_classes(candidates)
    classes = _classes(run.model, x) if choice else None
    atk = max(candidates, key=lambda a: _effort(a, classes))
    if atk.targeted and target is None:
        raise ValueError("a targeted attack's convergence check needs the run's targets")
    target = target if atk.targeted else None
    cuda = [x.device] if x.device.type == "cuda" else []
    if survivors is None:
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(derive_seed(seed, "more steps", "survivors", "model noise"))
            survivors = atk(run.model, x, y, target).robust
        who = (
            f"the samples that survived {counted(atk.steps, 'step')}"
            if "steps" in atk.params
            else f"the samples that survived {_describe(atk)}"
        )
    else:
        who = "the samples that survived every attack of the run"
    keep = survivors.to(x.device).nonzero().flatten()[:limit]
    if keep.numel() < 10:
        return (
            "more_steps_help",
            False,
            NOT_CHECKED + f"too few robust samples ({keep.numel()} < 10) to test convergence",
        )
    stronger = _stronger(atk)
    iterative = [s for s in getattr(atk, "_attacks", [atk]) if "steps" in s.params]
    restart = " and one more restart" if all(map(_restarts_differ, iterative)) else ""
    what = (
        f"{atk.name} with {2 * atk.steps} steps{restart}"
        if "steps" in atk.params
        # the stronger stages' own counts, named as such: "auto (... 40 steps ...), each stage at
        # twice the steps" read as twice 40
        else f"{atk.name} with each stage at twice the steps{restart}, that is "
        f"{' then '.join(stronger.stages)},"
    )
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(derive_seed(seed, "more steps", "model noise"))
        t = None if target is None else target[keep]
        res = stronger(run.model, x[keep], y[keep], t, clean_pred=y[keep])
    drop = 1.0 - res.robust_accuracy
    flagged = drop > 0.01 and int((~res.robust).sum()) >= 2
    detail = (
        f"{what} fools {drop:.1%} of {who}: not converged; use more steps or restarts"
        if flagged
        else f"{what} fooled none of {keep.numel()} of {who}"
        if drop == 0
        else f"{what} changed robust accuracy by {drop:.1%} only"
    )
    return "more_steps_help", flagged, detail


def run_checks(
    run,
    summary: dict[str, Any],
    sample: int = 64,
    survivors: torch.Tensor | None = None,
    limit: int = 64,
) -> list[Check]:
    """Every check for a prepared run (:class:`robustkit.runner.Run`) and its stored summary,
    on its first ``sample`` samples; ``survivors`` marks which of those every attack of the run
    left robust (from the stored rows), and the convergence check attacks at most ``limit`` of
    them."""
    x = run.x[:sample].to(run.device)
    y = run.y[:sample].to(run.device)
    probe = slice(0, 64)  # the model-behaviour checks need few samples
    gradient = bool(_gradient_attacks(run.attacks))
    label_only = any(getattr(a, "family", None) == "decision" for a in _items(run.attacks))
    # (both randomness checks read it: measured once)
    change = _output_change(run.model, x[probe]) if gradient or label_only else None
    checks = [
        check_randomized(run.model, x[probe], run.attacks, change),
        check_probabilities(run.model, x[probe])
        if gradient
        else (
            "probability_outputs",
            False,
            _NO_GRADIENT_ATTACK + "a label-only attack sees top-1 labels only)",
        ),
        check_gradients(run.model, x[probe], y[probe])
        if gradient
        else ("gradient_masking", False, _NO_GRADIENT_ATTACK + "a label-only attack needs none)"),
        check_decision_beats_whitebox(summary),
        check_robust_above_clean(summary),
    ]
    if label_only:
        checks.append(check_randomized_labels(run.model, x[probe], change))
    if gradient:
        target = None if run.target is None else run.target[:sample].to(run.device)
        checks.append(
            check_more_steps(
                run, x, y, limit=limit, survivors=survivors, target=target, seed=run.config.seed
            )
        )
    return checks
