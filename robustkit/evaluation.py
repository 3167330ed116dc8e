"""Evaluate a model against several attacks, shard by shard.

:func:`evaluate` is the in-memory evaluation the notebook API and the runner share. Samples are
cut into shards (consecutive batches); each (shard, attack) pair gets its own seed derived from
the run's seed, so a shard gives the same numbers whether it runs first, last or after a resume.
Every attack runs on every shard independently (each skips samples the model already gets wrong);
the joint, worst-case robust accuracy counts a sample as robust only if no attack fooled it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .attack import Attack, AttackResult, check_seed, predict, validate_inputs
from .checks import is_whole_number, shown
from .device import derive_seed, model_device
from .errors import InputError
from .modelcheck import check_model_on
from .tables import counted
from .threat import ThreatModel

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class ShardResult:
    """The clean predictions and every attack's result on one shard ``[start, stop)``."""

    index: int
    start: int
    stop: int
    y: torch.Tensor
    clean_pred: torch.Tensor
    results: dict[str, AttackResult]
    seconds: float


@dataclass(repr=False)  # (the generated repr printed every tensor of every result)
class Evaluation:
    """Clean and robust accuracy of one model against a set of attacks.

    ``results`` maps each attack's label to its :class:`AttackResult` over all evaluated samples.
    ``sample`` holds each evaluated sample's position in the ``x`` given to :func:`evaluate`
    (``0 .. n-1`` unless shards were skipped; None: those positions).
    """

    y: torch.Tensor
    clean_pred: torch.Tensor
    results: dict[str, AttackResult] = field(default_factory=dict)
    seconds: float = 0.0
    sample: torch.Tensor | None = None

    @property
    def positions(self) -> torch.Tensor:
        """Each evaluated sample's position in the ``x`` given to :func:`evaluate`."""
        return self.sample if self.sample is not None else torch.arange(self.n)

    @property
    def n(self) -> int:
        """Number of evaluated samples."""
        return int(self.y.shape[0])

    @property
    def clean_correct(self) -> torch.Tensor:
        """Per sample: the model classified the clean image correctly."""
        return self.clean_pred == self.y

    @property
    def clean_accuracy(self) -> float:
        """Share of samples classified correctly (NaN for no samples)."""
        return float(self.clean_correct.double().mean()) if self.n else math.nan

    @property
    def joint_robust(self) -> torch.Tensor:
        """Per sample: correct on the clean input and not fooled by any attack within its ε.

        Minimum-norm attacks run without an ε say nothing about robustness at a budget and are
        left out of the joint figure (their distances are reported on their own).
        """
        robust = self.clean_correct.clone()
        for res in self.results.values():
            if res.eps is not None:
                robust &= res.robust
        return robust

    @property
    def judged_at_eps(self) -> bool:
        """Whether any attack here judges robustness at an ε (so the joint figure means one)."""
        return any(res.eps is not None for res in self.results.values())

    @property
    def robust_accuracy(self) -> float:
        """Worst-case robust accuracy over the attacks with an ε (NaN when no attack ran, or
        only minimum-norm attacks without an ε: they find a distance for every sample they fool
        and say nothing about robustness at a budget, so the clean accuracy would pass for a
        robust accuracy; :meth:`summary` gives None then)."""
        if not self.n or not self.judged_at_eps:
            return math.nan
        return float(self.joint_robust.double().mean())

    def summary(self) -> dict[str, Any]:
        """Numbers for tables and JSON: clean, per-attack and joint robust accuracy (None when
        no attack ran, or none with an ε)."""
        return {
            "n": self.n,
            "clean_accuracy": self.clean_accuracy,
            "attacks": {label: res.summary() for label, res in self.results.items()},
            "robust_accuracy": self.robust_accuracy if self.judged_at_eps else None,
            "seconds": self.seconds,
        }

    def __repr__(self) -> str:
        """Headline numbers and the attacks' labels (not the tensors)."""
        robust = f"{self.robust_accuracy:.4g}" if self.judged_at_eps else "None"
        return (
            f"Evaluation(n={self.n}, clean_accuracy={self.clean_accuracy:.4g}, "
            f"robust_accuracy={robust}, attacks={list(self.results)}, "
            f"seconds={self.seconds:.3g})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Per-sample, per-attack results as one long pandas DataFrame (the columns of
        :meth:`AttackResult.to_frame`, with ``sample``; an integer column only some attacks have,
        such as ``target`` or ``fooled_by``, stays integer, ``<NA>`` on the other rows)."""
        import pandas as pd

        frames = []
        for label, res in self.results.items():
            frame = res.to_frame()
            frame["attack"] = label
            frame.insert(0, "sample", self.positions.numpy())
            frames.append(frame)
        if not frames:
            return pd.DataFrame(
                {
                    "sample": self.positions.numpy(),
                    "y": self.y.numpy(),
                    "clean_pred": self.clean_pred.numpy(),
                }
            )
        frame = pd.concat(frames, ignore_index=True)
        for col in frame.columns:  # (concat filled them with NaN: a target class read 8.0)
            parts = [f[col] for f in frames if col in f.columns]
            if len(parts) < len(frames) and all(p.dtype.kind in "iu" for p in parts):
                frame[col] = frame[col].astype("Int64")
        return frame

    def worst_case_adversarials(
        self, x: torch.Tensor, min_norm: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sample, the adversarial example of the first attack that broke it in the sense
        of :attr:`joint_robust` (an attack with an ε that left it not robust: misclassified
        within ε), else the clean image; and the index of that attack in ``results`` (-1 for
        none). So the samples with an example are exactly those the joint figure counts as
        not robust among the correctly classified ones. ``x``: the evaluated images, or all
        those given to :func:`evaluate` (where it skipped shards).

        ``min_norm=True`` also gives every other attacked sample the closest adversarial
        example a minimum-norm attack (a label-only one without an ε) found for it, at
        whatever distance: what such an attack has to show, which the joint figure does not
        count (``which`` then names that attack)."""
        if not isinstance(x, torch.Tensor):
            raise InputError(f"x must be a torch.Tensor of images, got {type(x).__name__}")
        if len(x) != self.n:
            if self.sample is None or not self.n or len(x) <= int(self.positions.max()):
                raise InputError(
                    f"x has {counted(len(x), 'image')} but this evaluation covers {self.n}; "
                    "pass the "
                    "images given to evaluate()"
                )
            x = x[self.positions]
        x_adv = x.detach().cpu().clone()
        which = torch.full((self.n,), -1, dtype=torch.long)
        for i, res in enumerate(self.results.values()):
            if res.eps is None:  # a minimum-norm attack without ε judges no robustness
                continue
            take = ~res.robust & res.attacked & (which < 0)
            x_adv[take] = res.x_adv[take]
            which[take] = i
        if min_norm:
            free = which < 0  # no attack with an ε broke these
            closest = torch.full((self.n,), math.inf, dtype=torch.float64)
            for i, res in enumerate(self.results.values()):
                if res.eps is not None:
                    continue
                norms = res.norms.double()
                take = free & res.success & res.attacked & (norms < closest)
                x_adv[take] = res.x_adv[take]
                which[take] = i
                closest[take] = norms[take]
        return x_adv, which

    def targets_of(self, which: torch.Tensor) -> torch.Tensor | None:
        """Per sample, the target class of the attack ``which`` names (as
        :meth:`worst_case_adversarials` gives it), -1 where that attack is untargeted or there
        is none; None when no attack here is targeted."""
        results = list(self.results.values())
        if not any(res.target is not None for res in results):
            return None
        out = torch.full((self.n,), -1, dtype=torch.long)
        for i, res in enumerate(results):
            if res.target is not None:
                out[which == i] = res.target[which == i].cpu()
        return out


AttackSet = Attack | Sequence[Attack] | Mapping[str, Attack]


def label_attacks(attacks: AttackSet | None) -> dict[str, Attack]:
    """Give every attack a unique label (its name, then ``name#2`` ... for repeats)."""
    if attacks is None:
        return {}
    if isinstance(attacks, Attack):
        attacks = [attacks]
    if isinstance(attacks, Mapping):
        for label, atk in attacks.items():
            if not isinstance(atk, Attack):
                raise InputError(
                    f"attack {label!r} is a {type(atk).__name__}, not a robustkit attack; "
                    "make it with robustkit.get_attack(...)"
                )
        return dict(attacks)
    if isinstance(attacks, str):  # (one name: not a sequence of attacks)
        attacks = [attacks]
    labelled: dict[str, Attack] = {}
    for atk in attacks:
        if isinstance(atk, str):  # a name or spec (it said only "... got str")
            name, _, params = atk.partition(":")
            example = f"robustkit.get_attack({name.strip()!r}{', ...' if params else ''})"
            raise InputError(f"expected robustkit attacks, got str {atk!r}; make it with {example}")
        if not isinstance(atk, Attack):
            raise InputError(f"expected robustkit attacks, got {type(atk).__name__}")
        label, k = atk.name, 2
        while label in labelled:
            label, k = f"{atk.name}#{k}", k + 1
        labelled[label] = atk
    return labelled


def iter_shards(n: int, batch_size: int) -> Iterable[tuple[int, int, int]]:
    """``(index, start, stop)`` of consecutive shards of at most ``batch_size`` samples."""
    if not is_whole_number(batch_size) or batch_size <= 0:
        raise InputError(f"batch size must be a positive whole number, got {shown(batch_size)}")
    for index, start in enumerate(range(0, n, batch_size)):
        yield index, start, min(start + batch_size, n)


def shard_indices(indices: Iterable[int]) -> set[int]:
    """Shard indices (``skip_shards``) as a set, or a one-line error: one number (``1``) was a
    TypeError, and a float (``[0.0]``) skipped nothing."""
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Iterable):
        values = None
    else:
        values = list(indices)
    if values is None or not all(is_whole_number(i) for i in values):
        raise InputError(f"skip_shards must be shard indices, e.g. [0, 2], got {indices!r}")
    return {int(i) for i in values}


def evaluate_shard(
    model: nn.Module,
    attacks: Mapping[str, Attack],
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    seed: int,
    index: int,
    start: int,
) -> ShardResult:
    """Clean predictions and every attack on one shard, each attack seeded per shard.

    The clean labels (majority votes for a randomized defense, see :func:`predict`) are taken
    once and handed to every attack, so all judge the same samples correct. The global random
    state a randomized model draws its noise from is seeded per shard for the clean labels and
    per shard and attack for each attack (and restored after), so a shard gives the same
    numbers in a resumed run, and an attack the same whatever attacks run beside it, in
    whatever order (a run's identity ignores that order)."""
    t0 = time.perf_counter()
    device = model_device(model)
    xb, yb = x.to(device), y.to(device)
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(derive_seed(seed, index, "model noise"))
        clean_pred = predict(model, xb)
        results = {}
        for label, atk in attacks.items():
            # (seeded once per shard, an attack drew the noise the attacks before it left)
            torch.manual_seed(derive_seed(seed, index, label, "model noise"))
            shard_attack = atk.with_seed(derive_seed(seed, index, label))
            tb = target if atk.targeted else None
            results[label] = shard_attack(model, xb, yb, tb, clean_pred=clean_pred)
    clean_pred = clean_pred.cpu()
    return ShardResult(
        index, start, start + len(y), y.cpu(), clean_pred, results, time.perf_counter() - t0
    )


def evaluate(
    model: nn.Module,
    attacks: AttackSet | None,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    target: torch.Tensor | None = None,
    batch_size: int = 250,
    seed: int = 0,
    progress: bool = False,
    skip_shards: Iterable[int] = (),
    on_shard: Callable[[ShardResult], None] | None = None,
) -> Evaluation:
    """Evaluate ``model`` on ``(x, y)`` against ``attacks`` and return an :class:`Evaluation`.

    ``attacks``: one attack, a list (labelled by name, ``name#2`` for a repeat) or a mapping of
    labels to attacks; None measures clean accuracy only. ``target`` (one class per image) is
    required when an attack is targeted and refused when none is
    (:class:`~robustkit.errors.InputError`); only targeted attacks get it. Each shard's attacks
    are seeded from ``seed`` and the shard's index, so a shard gives the same numbers alone or
    in a resumed run. No sanity checks run here and nothing is stored (the runner,
    :func:`robustkit.runner.run_evaluation`, does both).

    ``x`` and ``y`` may live on the CPU; each shard of ``batch_size`` samples moves to the model's
    device in turn. ``skip_shards`` names shards not to compute (a resumed run has them already);
    ``on_shard`` receives each finished :class:`ShardResult` (the runner stores it). The returned
    evaluation covers the computed shards only.
    """
    labelled = label_attacks(attacks)
    seed = check_seed(seed)
    # The images and labels as every attack checks them (with no attack at all, too): x in the
    # box, one integer label per image; targets only where an attack is targeted.
    if target is not None and not any(a.targeted for a in labelled.values()):
        raise InputError(
            "targets were given but no attack is targeted; drop target or add a targeted "
            "attack (targeted=True)"
        )
    targeted = [label for label, a in labelled.items() if a.targeted]
    if target is None and targeted:
        raise InputError(
            f"attack {targeted[0]!r} is targeted: pass target= to evaluate (one target class "
            "per image), or make the attack untargeted"
        )
    threat = ThreatModel(eps=None, targeted=target is not None)
    x, y, target = validate_inputs(x, y, target, threat)
    skip = shard_indices(skip_shards)
    shards = [s for s in iter_shards(len(y), batch_size) if s[0] not in skip]
    if shards:
        # one-line errors before any work (and before the clean pass could touch BatchNorm
        # statistics): the attacks check the same, and warn about Dropout in training mode.
        # Every target too: a target outside the model's classes in a later shard was refused
        # only there, after the earlier shards' work, which the error then lost.
        check_model_on(model, x, y, target)
    bar = None
    if progress:
        bar = _progress_bar(sum(stop - start for _, start, stop in shards))
    done: list[ShardResult] = []
    t0 = time.perf_counter()
    try:
        for index, start, stop in shards:
            tb = target[start:stop] if target is not None else None
            shard = evaluate_shard(
                model, labelled, x[start:stop], y[start:stop], tb, seed, index, start
            )
            if on_shard is not None:
                on_shard(shard)
            done.append(shard)
            if bar is not None:
                bar.update(stop - start)
    finally:
        if bar is not None:
            bar.close()
    return merge_shards(done, list(labelled), time.perf_counter() - t0)


def _progress_bar(total: int) -> Any:
    """A tqdm bar of ``total`` images: a widget in a notebook with ipywidgets, else text.

    tqdm.auto warned "IProgress not found. Please update jupyter and ipywidgets" in every
    notebook without ipywidgets (not a robustkit dependency) before falling back to the text
    bar, which is what robustkit wants there: the warning is left out, not the bar."""
    import warnings

    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
        from tqdm.auto import tqdm
    return tqdm(total=total, unit="img", leave=False)


def merge_shards(
    shards: Sequence[ShardResult], labels: Sequence[str], seconds: float
) -> Evaluation:
    """Join shard results (in sample order) into one :class:`Evaluation`."""
    shards = sorted(shards, key=lambda s: s.start)
    if not shards:
        empty = torch.zeros(0, dtype=torch.long)
        return Evaluation(empty, empty.clone(), {}, seconds)
    return Evaluation(
        y=torch.cat([s.y for s in shards]),
        clean_pred=torch.cat([s.clean_pred for s in shards]),
        results={
            label: AttackResult.concat([s.results[label] for s in shards]) for label in labels
        },
        seconds=seconds,
        sample=torch.cat([torch.arange(s.start, s.stop) for s in shards]),
    )
