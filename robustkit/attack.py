"""The one attack interface: :class:`Attack`, its per-call :class:`AttackContext` and the
:class:`AttackResult` every attack returns.

An attack is a configured object (its threat model and parameters) called as
``attack(model, x, y[, target])``. The base class does everything that must be the same for every
attack and must not be left to each one: it validates the inputs, predicts the clean labels, skips
samples the model already gets wrong, hands the rest to the attack's :meth:`Attack._attack`,
projects the answer onto the threat model, re-predicts it to decide success, and counts every
forward pass and gradient per sample.
"""

from __future__ import annotations

import math
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from .checks import is_whole_number, shown
from .device import make_generator, model_device
from .errors import InputError, first_line
from .modelcheck import HALF_DTYPES, check_model_on, check_scores
from .registry import constructor_parameters
from .tables import counted
from .threat import NORMS, ThreatModel, flat_norm

if TYPE_CHECKING:
    import pandas as pd


class RobustkitWarning(UserWarning):
    """A result may be misleading (probabilities instead of logits, a randomized model, ...)."""


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------
def validate_inputs(
    x: torch.Tensor,
    y: torch.Tensor | Sequence[int],
    target: torch.Tensor | Sequence[int] | None,
    threat: ThreatModel,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Check images, labels and targets; return them as contiguous tensors (``x`` detached from
    any autograd graph it belongs to).

    Raises :class:`~robustkit.errors.InputError` with a one-line message for wrong types,
    shapes, dtypes, NaN/inf values, values outside the box, and missing or invalid targets.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"x must be a torch.Tensor of images, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputError(
            f"x must be a floating-point tensor in [0, 1], got dtype {x.dtype}; "
            "convert it with x.float() / 255"
        )
    if x.dtype in HALF_DTYPES:
        raise InputError(
            f"x is {x.dtype}: attacks run in float32 or float64 (neither the ε-ball nor steps of "
            "1/255 are exact in half precision); pass x.float() and a float32 model"
        )
    if x.dim() != 4:
        raise InputError(f"x must be a batch of images shaped N×C×H×W, got shape {tuple(x.shape)}")
    if x.device.type == "meta":  # (the checks below failed on it with a raw RuntimeError)
        raise InputError(
            "x is on the meta device (shapes without values); pass the images themselves, on "
            "the CPU or the model's device"
        )
    if not torch.isfinite(x).all():
        raise InputError("x contains NaN or infinite values; clean the inputs first")
    lo, hi = threat.box
    if x.numel() and (x.min().item() < lo or x.max().item() > hi):
        raise InputError(
            f"x must lie in [{lo:g}, {hi:g}] (got values in [{x.min().item():.4g}, "
            f"{x.max().item():.4g}]); feed unnormalised images and normalise inside the model"
        )
    y = _as_labels(y, "y", x.device)
    if y.dim() != 1 or y.shape[0] != x.shape[0] or y.is_floating_point() or y.dtype == torch.bool:
        raise InputError(
            f"y must be a 1-D integer tensor with one label per image ({x.shape[0]}), "
            f"got shape {tuple(y.shape)} and dtype {y.dtype}"
        )
    y = y.long()
    if threat.targeted:
        if target is None:
            raise InputError(
                "a targeted attack needs target labels: call attack(model, x, y, target)"
            )
        target = _as_labels(target, "target", x.device)
        if target.shape != y.shape or target.is_floating_point() or target.dtype == torch.bool:
            raise InputError(
                f"target must be a 1-D integer tensor shaped like y {tuple(y.shape)}, "
                f"got shape {tuple(target.shape)} and dtype {target.dtype}"
            )
        target = target.long()
        same = (target == y).nonzero().flatten().tolist()
        if same:
            raise InputError(
                f"target equals the true label for sample(s) {same[:5]}"
                f"{' …' if len(same) > 5 else ''}; choose targets different from y"
            )
    elif target is not None:
        raise InputError("targets were given to an untargeted attack; create it with targeted=True")
    # The attack's own graph starts at x: no history of the caller's (nor any leak back to it).
    return (
        _outside_inference(x.detach()).contiguous(),
        _outside_inference(y),
        _outside_inference(target) if target is not None else None,
    )


def _outside_inference(t: torch.Tensor) -> torch.Tensor:
    """``t``, or a copy of it where it was made under ``torch.inference_mode()``: such tensors
    cannot take part in autograd (FGSM failed on them with a raw RuntimeError)."""
    return t.clone() if t.is_inference() else t


def _as_labels(labels: object, what: str, device: torch.device) -> torch.Tensor:
    """``labels`` as a tensor on ``device``, or a one-line error for what is not numbers."""
    try:
        return torch.as_tensor(labels, device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(
            f"{what} must be integer class labels (a tensor, array or list of ints), got "
            f"{type(labels).__name__} ({first_line(exc)})"
        ) from exc


def check_seed(seed: object) -> int:
    """``seed`` as an int, or a one-line error: a seed of 1.9 was silently taken as 1, and one
    outside -2**63..2**63-1 (the store's 64-bit integers) crashed."""
    if not is_whole_number(seed) or not -(2**63) <= seed < 2**63:
        raise InputError(f"seed must be a whole number from -2**63 to 2**63-1, got {shown(seed)}")
    return int(seed)


def next_seed(seed: int) -> int:
    """Another seed than ``seed`` for a re-run of the same attack: ``seed + 1``, wrapping
    around at the top of the range :func:`check_seed` takes."""
    return seed + 1 if seed < 2**63 - 1 else -(2**63)


def looks_like_probabilities(logits: torch.Tensor) -> bool:
    """True when every row is non-negative and sums to 1: softmax outputs, not logits."""
    if logits.numel() == 0 or logits.shape[-1] < 2:
        return False
    sums = logits.sum(dim=-1)
    return bool((logits >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-3))


def prediction_votes(model: nn.Module) -> int:
    """Draws a prediction of ``model`` takes: the largest ``votes`` attribute among its modules
    (a randomized defense such as input-noise sets it, wherever it sits in a stack of
    wrappers), else 1. Only a whole number counts: a user's module may have a ``votes`` of
    its own (a method of a voting classifier, a tensor), which int() failed on in every attack."""
    counts = [getattr(m, "votes", None) for m in model.modules()]
    return max([int(c) for c in counts if is_whole_number(c)] + [1])


def predict(model: nn.Module, x: torch.Tensor, first: torch.Tensor | None = None) -> torch.Tensor:
    """The labels ``model`` gives ``x``: the top class; for a randomized model that asks for
    votes (:func:`prediction_votes`), the most frequent top class over that many draws (ties:
    the lowest class), so that a label, and whether a sample is correct or fooled, is a
    property of the input rather than of one noise draw. ``first``: logits of one draw
    already computed (counted as the first vote). Every draw is held to
    :func:`~robustkit.modelcheck.check_scores` (one finite row per image)."""
    votes, n = prediction_votes(model), x.shape[0]
    with torch.no_grad():
        logits = check_scores(model(x) if first is None else first, n)
        if votes == 1:
            return logits.argmax(dim=1)
        counts = torch.zeros(logits.shape, dtype=torch.long, device=logits.device)
        one = torch.ones((n, 1), dtype=torch.long, device=logits.device)
        counts.scatter_add_(1, logits.argmax(dim=1, keepdim=True), one)
        for _ in range(votes - 1):
            counts.scatter_add_(1, check_scores(model(x), n).argmax(dim=1, keepdim=True), one)
        return counts.argmax(dim=1)


def one_row_per_image(scores: object, n: int) -> torch.Tensor:
    """``scores``, a model's output for ``n`` images, where it is one row per image (a look at
    the shape: no device sync), else :func:`~robustkit.modelcheck.check_scores`'s one-line
    error. The model check sees two images; a model that squeezes its output returns one
    image's scores as a vector, which failed deep inside a loss once early stopping, a restart
    or the clean pass left one sample to attack."""
    if isinstance(scores, torch.Tensor) and scores.dim() == 2 and scores.shape[0] == n:
        return scores
    return check_scores(scores, n)


def logits_loss_grad(
    model: nn.Module, x: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits, per-sample loss and d(loss)/dx of ``model`` at ``x`` (one forward and one backward
    pass, nothing counted); ``loss_fn`` maps logits to a per-sample loss (shape ``[N]``)."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        try:
            out = model(xg)
        except RuntimeError as exc:
            # what the model check's pass, without gradients, could not meet: an in-place op
            # that left the values as they were (x.clamp_(0, 1) on images in [0, 1]), or a
            # preprocessing in NumPy (a JPEG-compression defense through PIL)
            if "leaf Variable that requires grad is being used in an in-place" in str(exc):
                raise InputError(
                    "the model writes into the images it is given in place (e.g. "
                    "x.clamp_(0, 1)), which gradient attacks cannot differentiate; compute on a "
                    "copy instead (x = x.clamp(0, 1))"
                ) from exc
            if "Can't call numpy() on Tensor that requires grad" in str(exc):
                raise InputError(
                    "the model takes its input through NumPy (x.numpy()), outside autograd, so "
                    "gradient attacks cannot run; use a label-only attack (cgba, hsja, geoda), "
                    "or BPDA (a forward through NumPy, a backward of the identity) for a "
                    "non-differentiable preprocessing"
                ) from exc
            raise
        logits = one_row_per_image(out, x.shape[0])
        loss = loss_fn(logits)
        if not loss.requires_grad:
            raise InputError(
                "the model's outputs have no gradient path to its input (it detaches it, or "
                "runs outside autograd), so gradient attacks cannot run; use a label-only attack "
                "(cgba, hsja, geoda), or BPDA for a non-differentiable defense"
            )
        (grad,) = torch.autograd.grad(loss.sum(), xg, allow_unused=True)
        if grad is None:  # the outputs depend on the input only through a detached path
            grad = torch.zeros_like(xg)
    return logits.detach(), loss.detach(), grad.detach()


# --------------------------------------------------------------------------------------------
# Per-call context: the model behind counters
# --------------------------------------------------------------------------------------------
class AttackContext:
    """What an attack may use while it runs: the model behind per-sample counters, a seeded
    generator and the threat model. ``idx`` arguments are positions among the attacked samples
    (``0 .. n-1``), so counts land on the right sample however the attack subsets its batch.
    """

    def __init__(
        self, model: nn.Module, n: int, device: torch.device, seed: int, threat: ThreatModel
    ):
        self.model = model
        self.n = n
        self.device = device
        self.threat = threat
        self.generator = make_generator(seed, device)
        #: Draws one of the model's labels takes (:func:`prediction_votes`): above 1 (a
        #: randomized defense judged by majority vote), one forward pass cannot tell whether a
        #: sample is fooled, so attacks must not stop or keep a point on one.
        self.votes = prediction_votes(model)
        self.queries = torch.zeros(n, dtype=torch.long, device=device)
        self.gradients = torch.zeros(n, dtype=torch.long, device=device)
        #: Per-sample extra outputs an attack wants in its result (e.g. ``trajectories``).
        self.extras: dict[str, Any] = {}
        #: Logits, loss and gradient at the clean images from the base class's clean pass
        #: (see :meth:`Attack.clean_gradient_loss`), until :meth:`take_clean_gradient` takes them.
        self.clean_gradient: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def _count(self, counter: torch.Tensor, idx: torch.Tensor | None, k: int = 1) -> None:
        if idx is None:
            counter += k
        else:
            counter.index_add_(0, idx, torch.full_like(idx, k, dtype=torch.long))

    def logits(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of ``x`` without gradients; counts one query per entry of ``idx`` (per row of
        ``x`` when None). Rows beyond ``idx`` (padding, see LabelOracle) are not counted."""
        self._count(self.queries, idx)
        with torch.no_grad():
            return one_row_per_image(self.model(x), x.shape[0])

    def labels(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Top-1 labels of ``x``; counts one query per row."""
        return self.logits(x, idx).argmax(dim=1)

    def verdict(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """The labels success is judged by (:func:`predict`: for a randomized model the
        majority of its draws), counting each draw as a query per row."""
        self._count(self.queries, idx, self.votes)
        return predict(self.model, x)

    def value_and_grad(
        self,
        x: torch.Tensor,
        loss_fn: Callable[[torch.Tensor], torch.Tensor],
        idx: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits, per-sample loss and d(loss)/dx for ``x``; counts one forward pass and one
        gradient per row. ``loss_fn`` maps logits to a per-sample loss (shape ``[N]``)."""
        self._count(self.queries, idx)
        self._count(self.gradients, idx)
        return logits_loss_grad(self.model, x, loss_fn)

    def take_clean_gradient(
        self, idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Logits, loss and gradient at the clean images of samples ``idx``, as
        :meth:`value_and_grad` would give them, taken from the pass that also gave the clean
        labels (:meth:`Attack.clean_gradient_loss`); counted here as one query and one gradient
        per sample, like any other. None when there is none; it can be taken once."""
        if self.clean_gradient is None:
            return None
        logits, loss, grad = self.clean_gradient
        self.clean_gradient = None
        self._count(self.queries, idx)
        self._count(self.gradients, idx)
        return logits[idx], loss[idx], grad[idx]


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------
@dataclass(repr=False)  # (the generated repr printed every tensor: thousands of characters)
class AttackResult:
    """What one attack did to one batch; per-sample tensors are on the CPU.

    ``success`` is decided by re-predicting ``x_adv``: misclassified (untargeted) or classified as
    ``target`` (targeted). Samples the model already got wrong are not attacked
    (``attacked`` False, zero queries); for them ``x_adv`` is ``x``. ``queries`` counts the forward
    passes (label queries for decision-based attacks) the attack spent on each sample, not the
    clean prediction or the final re-check. ``trajectories`` (decision-based attacks) holds per
    sample a ``[k, 2]`` tensor of (queries, L2 distance of the best adversarial so far).
    """

    attack: str
    params: dict[str, Any]
    threat: ThreatModel
    x_adv: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor | None
    clean_pred: torch.Tensor
    adv_pred: torch.Tensor
    attacked: torch.Tensor
    success: torch.Tensor
    norms: torch.Tensor
    l2: torch.Tensor
    linf: torch.Tensor
    queries: torch.Tensor
    gradients: torch.Tensor
    seconds: float
    trajectories: list[torch.Tensor] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    # -- derived per-sample views ------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of samples (attacked or not)."""
        return int(self.y.shape[0])

    @property
    def clean_correct(self) -> torch.Tensor:
        """Per sample: the model classified the clean image correctly (so it was attacked)."""
        return self.clean_pred == self.y

    @property
    def eps(self) -> float | None:
        """The budget success is judged at: the threat model's ε, or for a minimum-norm attack
        the ε it was given for reporting (None: success at any distance)."""
        if self.threat.eps is not None:
            return self.threat.eps
        eps = self.params.get("eps")
        return float(eps) if eps is not None else None

    @property
    def robust(self) -> torch.Tensor:
        """Per sample: classified correctly (:attr:`attacked`) and still at ``x_adv``, or
        (minimum-norm attacks given an ε) fooled only by a perturbation larger than ε. (A
        sample the attack left unchanged keeps its clean label; on a randomized model a sample
        the clean vote judged wrong is not robust even if a later vote on the same image says
        otherwise.)"""
        robust = self.attacked & (self.adv_pred == self.y)
        if self.threat.eps is None and self.eps is not None:
            # in float64, as the stored report and the trajectories compare (a float32 norm
            # and an ε such as 0.1 that rounds up onto it in float32 are not equal)
            robust = robust | (self.attacked & (self.norms.double() > self.eps))
        return robust

    def _threat_text(self) -> str:
        """The threat model as text (``linf 8/255``, ``l2 0.5 targeted``), at :attr:`eps`: a
        minimum-norm attack given an ε is judged at it, as the stored report describes it
        (``l2 min-norm`` only without one)."""
        return replace(self.threat, eps=self.eps).describe()

    # -- summaries ----------------------------------------------------------------------------
    @property
    def clean_accuracy(self) -> float:
        """Share of samples classified correctly (NaN for no samples)."""
        return float(self.clean_correct.double().mean()) if self.n else math.nan

    @property
    def robust_accuracy(self) -> float:
        """Share of samples that are :attr:`robust`. NaN for no samples, and for a minimum-norm
        attack run without an ε: it fools every sample it can at some distance and says nothing
        about robustness at a budget (as :attr:`robustkit.evaluation.Evaluation.robust_accuracy`)."""
        if not self.n or self.eps is None:
            return math.nan
        return float(self.robust.double().mean())

    @property
    def success_rate(self) -> float:
        """Fraction of attacked samples the attack fooled within the threat model: for a
        minimum-norm attack given an ε, by a perturbation of at most ε (as :attr:`robust`
        judges it); any distance when it has none."""
        k = int(self.attacked.sum())
        fooled = self.success & self.attacked
        if self.threat.eps is None and self.eps is not None:
            fooled &= self.norms.double() <= self.eps  # in float64, as robust compares
        return float(fooled.sum()) / k if k else math.nan

    def median_norm(self) -> float:
        """Median perturbation norm over attacked samples that were fooled, at any distance
        (NaN if none; the mean of the two middle values for an even count, as everywhere)."""
        sel = self.norms[self.success & self.attacked]
        return float(np.median(sel.double().numpy())) if sel.numel() else math.nan

    def max_norm(self) -> float:
        """Largest perturbation norm over attacked samples that were fooled (NaN if none)."""
        sel = self.norms[self.success & self.attacked]
        return float(sel.max()) if sel.numel() else math.nan

    def stage_robust_accuracy(self) -> list[float] | None:
        """For an ensemble of stages (``auto``): robust accuracy after each stage, cumulative,
        from ``extras["fooled_by"]`` (the stage that fooled each sample, -1: none); None for
        other attacks."""
        fooled_by, stages = self.extras.get("fooled_by"), self.params.get("stages")
        if fooled_by is None or not stages:
            return None
        correct = self.clean_correct
        return [
            float((correct & ((fooled_by < 0) | (fooled_by > k))).double().mean())
            if self.n
            else math.nan
            for k in range(len(stages))
        ]

    def summary(self) -> dict[str, Any]:
        """One row of numbers for tables and JSON (with ``stages``, robust accuracy after each
        stage, for an ensemble of stages, as ``robustkit evaluate`` reports it)."""
        row = {
            "attack": self.attack,
            "threat": self._threat_text(),
            "n": self.n,
            "clean_accuracy": self.clean_accuracy,
            "robust_accuracy": self.robust_accuracy,
            "success_rate": self.success_rate,
            "median_norm": self.median_norm(),
            "max_norm": self.max_norm(),
            "forwards": int(self.queries.sum()),
            "gradients": int(self.gradients.sum()),
            "seconds": self.seconds,
        }
        per_stage = self.stage_robust_accuracy()
        if per_stage is not None:
            row["stages"] = [
                {"stage": stage, "robust_accuracy": acc}
                for stage, acc in zip(self.params["stages"], per_stage, strict=True)
            ]
        return row

    def __repr__(self) -> str:
        """The attack, its threat model and headline numbers (not the tensors)."""
        return (
            f"AttackResult(attack={self.attack!r}, threat={self._threat_text()!r}, n={self.n}, "
            f"clean_accuracy={self.clean_accuracy:.4g}, robust_accuracy="
            f"{self.robust_accuracy:.4g}, success_rate={self.success_rate:.4g}, "
            f"forwards={int(self.queries.sum())}, seconds={self.seconds:.3g})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Per-sample results as a pandas DataFrame (one row per sample), with a column for each
        per-sample number in ``extras`` (``fooled_by`` of ``auto``: the stage that fooled the
        sample, -1 for none; ``step_queries`` of a decision-based attack)."""
        import pandas as pd

        data = {
            "y": self.y.numpy(),
            "clean_pred": self.clean_pred.numpy(),
            "adv_pred": self.adv_pred.numpy(),
            "attacked": self.attacked.numpy(),
            "success": self.success.numpy(),
            "robust": self.robust.numpy(),
            "norm": self.norms.numpy(),
            "l2": self.l2.numpy(),
            "linf": self.linf.numpy(),
            "queries": self.queries.numpy(),
            "gradients": self.gradients.numpy(),
        }
        if self.target is not None:
            data["target"] = self.target.numpy()
        for key, value in self.extras.items():
            if isinstance(value, torch.Tensor) and value.shape == (self.n,) and key not in data:
                data[key] = value.cpu().numpy()
        frame = pd.DataFrame(data)
        frame.insert(0, "attack", self.attack)
        return frame

    @classmethod
    def concat(cls, parts: Sequence[AttackResult]) -> AttackResult:
        """Join results of the same attack on consecutive batches."""
        if not parts:
            raise ValueError("nothing to concatenate")
        out: dict[str, Any] = {}
        for f in fields(cls):
            values = [getattr(p, f.name) for p in parts]
            if f.name in ("attack", "params", "threat"):
                out[f.name] = values[0]
            elif f.name == "seconds":
                out[f.name] = float(sum(values))
            elif f.name == "trajectories":
                # a part without them (nothing attacked) gets an empty trajectory per sample
                out[f.name] = (
                    None
                    if all(v is None for v in values)
                    else [
                        t
                        for v, p in zip(values, parts, strict=True)
                        for t in (v if v is not None else _empty_trajectories(p.n))
                    ]
                )
            elif f.name == "extras":
                merged: dict[str, Any] = {}
                keys = dict.fromkeys(k for p in parts for k in p.extras)
                for key in keys:
                    template = next(p.extras[key] for p in parts if key in p.extras)
                    vals = [
                        p.extras[key] if key in p.extras else _missing_extra(template, p.n)
                        for p in parts
                    ]
                    merged[key] = (
                        torch.cat(vals)
                        if isinstance(template, torch.Tensor)
                        else [v for part in vals for v in part]
                    )
                out[f.name] = merged
            elif values[0] is None:
                out[f.name] = None
            else:
                out[f.name] = torch.cat(values)
        return cls(**out)


def _empty_trajectories(n: int) -> list[torch.Tensor]:
    """The trajectories of ``n`` samples an attack did not attack: no (queries, L2) steps."""
    return [torch.zeros((0, 2)) for _ in range(n)]


def _missing_extra(template: Any, n: int) -> Any:
    """A per-sample extra for ``n`` samples of a part that lacks it (zeros, or empty steps)."""
    if isinstance(template, torch.Tensor):
        return torch.zeros((n,) + tuple(template.shape[1:]), dtype=template.dtype)
    return _empty_trajectories(n)


# --------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------
class Attack(ABC):
    """Base class of every attack.

    Subclasses set ``name`` and ``family`` (``"gradient"`` for white-box attacks,
    ``"decision"`` for label-only ones, which are L2 only: their trajectories and reports are
    L2 distances), accept their parameters as keyword arguments, keep each under an attribute
    of the same name (so :attr:`params` can report them), call
    ``super().__init__(norm=..., eps=..., targeted=..., seed=...)`` and implement
    :meth:`_attack`.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = "gradient"
    #: Norms the attack supports.
    norms: ClassVar[tuple[str, ...]] = NORMS
    #: False for minimum-norm attacks, where ε is optional (used only to report success at ε).
    requires_eps: ClassVar[bool] = True
    #: Every per-sample extra (``ctx.extras[key]``, an integer tensor) the attack reports, with
    #: its value for the samples it did not attack (already misclassified). Listed keys are in
    #: every result, even one where nothing was attacked; an unlisted key fills with 0.
    extras_fill: ClassVar[dict[str, int]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a label-only attack (``family = "decision"``) that declares another norm than
        L2: its trajectories (:class:`~robustkit.oracle.BestTracker`), :mod:`robustkit.budgets`
        and every report of it (median L2, success at L2 ≤ ε) take its distances as L2, so one
        run in L∞ was reported with its L∞ ε as an L2 one."""
        super().__init_subclass__(**kwargs)
        if cls.family == "decision" and tuple(cls.norms) != ("l2",):
            raise InputError(
                f"{cls.__name__} is a label-only attack (family 'decision') with norms = "
                f"{cls.norms!r}, but label-only trajectories and reports (median L2, success "
                "at L2 <= ε) are L2 distances: such an attack is L2 only; set norms = ('l2',)"
            )

    def __init__(
        self,
        norm: str = "linf",
        eps: float | str | None = 8 / 255,
        targeted: bool = False,
        seed: int = 0,
    ):
        if self.requires_eps and eps is None:
            raise InputError(f"{self.name} needs eps, the perturbation budget")
        self.threat = ThreatModel(norm=norm, eps=eps, targeted=targeted)
        if self.threat.norm not in self.norms:
            raise InputError(
                f"{self.name} does not support the {self.threat.norm} norm; "
                f"use {' or '.join(self.norms)}"
            )
        self.norm = self.threat.norm
        self.eps = self.threat.eps
        self.targeted = self.threat.targeted
        self.seed = check_seed(seed)

    @property
    def params(self) -> dict[str, Any]:
        """Every constructor parameter with its value (recorded with results)."""
        names = constructor_parameters(type(self))
        return {n: getattr(self, n) for n in names if hasattr(self, n)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def with_seed(self, seed: int) -> Attack:
        """A copy of this attack with another seed (used to give each shard its own seed)."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.seed = check_seed(seed)
        return clone

    def clean_gradient_loss(
        self, y: torch.Tensor, target: torch.Tensor | None
    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The per-sample loss of logits whose gradient at the clean images is this attack's
        first model call, when it is one (FGSM, PGD without a random start); else None (the
        default). The base class then takes the clean labels from that forward pass, which
        saves the separate clean pass, and hands the gradient to the attack through
        :meth:`AttackContext.take_clean_gradient`. Only for models that take one draw per
        label (:func:`prediction_votes`); ``y`` and ``target`` cover every sample."""
        return None

    def check_classes(self, classes: int) -> None:
        """Raise :class:`~robustkit.errors.InputError` where a model of ``classes`` classes is
        too small for this attack (its loss); the base class asks before any attack step, so
        the answer does not depend on which samples an earlier stage left. Default: any."""
        return None

    def check_image_shape(self, shape: tuple[int, ...]) -> None:
        """Raise :class:`~robustkit.errors.InputError` where images shaped ``shape`` (``C×H×W``)
        do not fit this attack's parameters (a DCT subspace larger than the images); asked
        with :meth:`check_classes`, and by the runner before it stores a run (an attack that
        found out in its first shard left an empty run marked running). Default: any."""
        return None

    @abstractmethod
    def _attack(
        self,
        ctx: AttackContext,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
    ) -> torch.Tensor:
        """Attack samples the model classifies correctly; return their adversarial candidates.

        ``x``, ``y`` (and ``target``) hold only those samples, on the model's device; use
        ``ctx`` for every model call so counts are kept. Return a tensor shaped like ``x``;
        the base class projects it onto the threat model and re-predicts it.
        """

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor | Sequence[int],
        target: torch.Tensor | Sequence[int] | None = None,
        *,
        clean_pred: torch.Tensor | None = None,
    ) -> AttackResult:
        """Attack ``model`` on images ``x`` (N×C×H×W in the box) with labels ``y``.

        ``target`` (per sample, a class other than its label) is required by an attack made with
        ``targeted=True`` and refused by any other (:class:`~robustkit.errors.InputError`, as
        are images or labels the model cannot take). Returns an :class:`AttackResult`.

        Samples the model gets wrong are not attacked. ``clean_pred``, the model's labels of
        ``x`` where the caller already has them (an evaluation with several attacks), decides
        which: every attack then judges the same samples correct, even on a randomized model.
        Labels come from :func:`predict` (majority votes for a randomized defense). It runs
        outside ``torch.inference_mode()``, as gradient attacks run outside ``no_grad``: under
        it they blamed the model for having no gradient path."""
        with torch.inference_mode(False):
            return self._call(model, x, y, target, clean_pred)

    def _call(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor | Sequence[int],
        target: torch.Tensor | Sequence[int] | None,
        clean_pred: torch.Tensor | None,
    ) -> AttackResult:
        """:meth:`__call__`, outside inference mode."""
        start = time.perf_counter()
        if (
            target is not None
            and not self.targeted
            and "targeted" not in constructor_parameters(type(self))
        ):
            # (validate_inputs would advise targeted=True, which this attack does not take; an
            # attack that fixes targeted=True itself takes targets)
            raise InputError(
                f"{self.name} has no targeted mode; drop target, or use an attack that takes "
                "targets (pgd, fgsm and the label-only attacks, made with targeted=True)"
            )
        x, y, target = validate_inputs(x, y, target, self.threat)
        if clean_pred is not None:
            given = _as_labels(clean_pred, "clean_pred", torch.device("cpu"))
            if given.is_floating_point() or given.dtype == torch.bool or given.is_complex():
                raise InputError(
                    f"clean_pred must be integer class labels (the model's predictions), got "
                    f"dtype {given.dtype}"
                )
            clean_pred = given.long().flatten()
            if clean_pred.shape != y.shape:
                raise InputError(
                    f"clean_pred has {counted(clean_pred.numel(), 'label')} for "
                    f"{counted(y.numel(), 'sample')}"
                )
        device = model_device(model)
        x, y = x.to(device), y.to(device)
        target = target.to(device) if target is not None else None
        # Two images first: a model that cannot classify such images gets a one-line error (and
        # a label-only attack's oracle learns from this pass how to size its batches).
        dropout_live, clean_logits = check_model_on(model, x, y, target)
        classes = clean_logits.shape[1]
        self.check_classes(classes)
        self.check_image_shape(tuple(x.shape[1:]))
        if clean_pred is not None and clean_pred.numel():
            if int(clean_pred.min()) < 0 or int(clean_pred.max()) >= classes:
                raise InputError(
                    f"clean_pred holds labels outside the model's {classes} classes "
                    f"({int(clean_pred.min())}..{int(clean_pred.max())}); pass the model's own "
                    "predictions of x"
                )
        if dropout_live:
            warnings.warn(dropout_live, RobustkitWarning, stacklevel=2)
        # (the model check's scores and the model's dtypes: no pass of the attack pays for this)
        half_weights = [p.dtype for p in model.parameters() if p.dtype in HALF_DTYPES]
        if clean_logits.dtype in HALF_DTYPES or half_weights:
            what = (
                f"returns {clean_logits.dtype} scores"
                if clean_logits.dtype in HALF_DTYPES
                # (images cast in, scores cast out: rounded inside all the same)
                else f"computes in {half_weights[0]} (its weights' dtype)"
            )
            harm = (
                "label-only attacks read labels from rounded scores (ties between classes are "
                "likely), so their distances differ from the model's in float32"
                if self.family == "decision"
                # float16 scores of a confident model: cross-entropy 0, its gradient exactly 0
                else "gradient attacks follow the loss of rounded scores, which saturates where "
                "the model is confident (in float16 its gradients underflow to exactly zero), so "
                "robust accuracy can be overstated"
            )
            warnings.warn(
                f"the model {what} for {x.dtype} images: {harm}; run the model in float32 (no "
                ".half() or autocast) unless that precision is what is evaluated",
                RobustkitWarning,
                stacklevel=2,
            )
        # The clean pass: shared with the attack's first gradient where that is taken at the
        # clean images; not needed at all when the caller has the labels (the images of the
        # model check then serve the probability check below).
        shared_loss = self.clean_gradient_loss(y, target) if prediction_votes(model) == 1 else None
        clean_gradient = None
        if shared_loss is not None:
            clean_gradient = logits_loss_grad(model, x, shared_loss)
            clean_logits = clean_gradient[0]
        elif clean_pred is None:
            with torch.no_grad():
                clean_logits = model(x)
        # (labels are the same either way: only gradient attacks lose by softmax)
        if self.family == "gradient" and looks_like_probabilities(clean_logits):
            warnings.warn(
                "the model's outputs look like probabilities (non-negative rows summing to 1), "
                "not logits; gradient attacks are weakened by softmax saturation: "
                "return the pre-softmax logits",
                RobustkitWarning,
                stacklevel=2,
            )
        if clean_pred is None:  # clean_logits then cover every image
            clean_pred = predict(model, x, first=clean_logits)
        clean_pred = clean_pred.to(device)
        attacked = clean_pred == y
        idx = attacked.nonzero().flatten()

        x_adv = x.clone()
        ctx = AttackContext(model, int(idx.numel()), device, self.seed, self.threat)
        if clean_gradient is not None:
            ctx.clean_gradient = tuple(t[idx] for t in clean_gradient)
        if idx.numel():
            t_sub = target[idx] if target is not None else None
            candidate = self._attack(ctx, x[idx], y[idx], t_sub)
            if candidate.shape != x[idx].shape:
                raise RuntimeError(f"{self.name} returned shape {tuple(candidate.shape)}")
            x_adv[idx] = self.threat.project(candidate.detach().to(x.dtype), x[idx])

        adv_pred = predict(model, x_adv)
        # An attacked sample whose example is its clean image found nothing: it keeps its clean
        # label. On a randomized model the re-check's vote on that image can disagree with the
        # clean vote, which reported an "adversarial example" at distance 0 (or, once success
        # was refused, a sample neither fooled nor robust); so can a deterministic model's
        # rounding where the caller's clean labels came from another batch.
        unchanged = attacked & (x_adv == x).flatten(1).all(1)
        adv_pred = torch.where(unchanged, clean_pred, adv_pred)
        success = (adv_pred == target) if target is not None else (adv_pred != y)

        queries = torch.zeros(x.shape[0], dtype=torch.long, device=device)
        gradients = torch.zeros_like(queries)
        queries[idx] = ctx.queries
        gradients[idx] = ctx.gradients
        delta = x_adv - x
        norms = flat_norm(delta, self.threat.norm)
        trajectories = None
        extras: dict[str, Any] = {}
        for key, value in ctx.extras.items():
            full = expand_per_sample(value, idx, x.shape[0], self.extras_fill.get(key, 0))
            if key == "trajectories":
                trajectories = full
            else:
                extras[key] = full
        for key, fill in self.extras_fill.items():  # nothing attacked: the same keys
            extras.setdefault(key, torch.full((x.shape[0],), fill, dtype=torch.long))
        if trajectories is None and self.family == "decision":
            trajectories = _empty_trajectories(x.shape[0])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return AttackResult(
            attack=self.name,
            params=self.params,
            threat=self.threat,
            x_adv=x_adv.cpu(),
            y=y.cpu(),
            target=target.cpu() if target is not None else None,
            clean_pred=clean_pred.cpu(),
            adv_pred=adv_pred.cpu(),
            attacked=attacked.cpu(),
            success=success.cpu(),
            norms=norms.cpu(),
            l2=flat_norm(delta, "l2").cpu(),
            linf=flat_norm(delta, "linf").cpu(),
            queries=queries.cpu(),
            gradients=gradients.cpu(),
            seconds=time.perf_counter() - start,
            trajectories=trajectories,
            extras=extras,
        )


def expand_per_sample(value: Any, idx: torch.Tensor, n: int, fill: int = 0) -> Any:
    """Spread a per-attacked-sample value (tensor or list) to all ``n`` samples of the batch;
    samples that were not attacked get ``fill`` (tensors) or an empty ``[0, 2]`` tensor (lists)."""
    positions = idx.tolist()
    if isinstance(value, torch.Tensor):
        full = torch.full((n,) + tuple(value.shape[1:]), fill, dtype=value.dtype)
        full[positions] = value.cpu()
        return full
    out: list[Any] = [torch.zeros((0, 2)) for _ in range(n)]
    for pos, item in zip(positions, value, strict=True):
        out[pos] = item.cpu() if isinstance(item, torch.Tensor) else item
    return out
