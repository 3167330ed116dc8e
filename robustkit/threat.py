"""Threat models: a norm, a budget ε, targeted or not, and the input box.

Also the norm arithmetic every attack shares (per-sample norms, exact projections onto the
ε-ball and the box), so that no attack re-implements it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from .checks import flag, shown
from .errors import InputError

NORMS = ("linf", "l2")


def parse_eps(value: str | float | int, name: str = "eps") -> float:
    """Parse an ε such as ``0.03``, ``8/255`` or ``8 / 255`` into a positive float; ``name``
    is the parameter the error names (another amount in pixel units, e.g. PGD's step size)."""
    message = f"{name} must be a positive number such as 0.03 or 8/255, got {shown(value)}"
    if isinstance(value, bool):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    try:
        if isinstance(value, (int, float)):
            eps = float(value)
        else:
            text = str(value).replace(" ", "")
            if "/" in text:
                num, den = text.split("/")  # one slash: "8/255/2" is refused
                eps = float(Fraction(num) / Fraction(den)) if den else float("nan")
            else:
                eps = float(text)
    except (ValueError, ZeroDivisionError, OverflowError):  # (an int too large for a float)
        raise InputError(message) from None
    if not math.isfinite(eps) or eps <= 0:
        raise InputError(message)
    return eps


def check_norm(norm: str) -> str:
    """Return ``norm`` normalised (``Linf`` -> ``linf``) or raise a clear error."""
    key = str(norm).lower().replace("-", "").replace("_", "")
    key = {"inf": "linf", "linfinity": "linf", "2": "l2"}.get(key, key)
    if key not in NORMS:
        raise InputError(f"unknown norm {norm!r}; use one of {', '.join(NORMS)}")
    return key


def flat_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-sample norm of a batch of perturbations (first dimension is the batch)."""
    flat = delta.flatten(1) if delta.dim() > 1 else delta.unsqueeze(1)
    if norm == "linf":
        return flat.abs().amax(dim=1) if flat.shape[1] else flat.new_zeros(flat.shape[0])
    return torch.linalg.vector_norm(flat, dim=1)  # (Tensor.norm adds 10 µs of Python per call)


def _view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape((-1,) + (1,) * (like.dim() - 1))


def _finite_gradient(g: torch.Tensor) -> torch.Tensor:
    """``g`` with NaN entries as 0 and, in a sample with infinite entries, those as ±1 and the
    others as 0: the direction of the same sign-wise limit (see :func:`normalize_direction`)."""
    inf = g.isinf()
    return torch.where(_view(inf.flatten(1).any(1), g), inf * g.sign(), g.nan_to_num(nan=0.0))


def normalize_direction(g: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent direction of unit ``norm`` for gradient ``g`` (sign for L∞).

    Non-finite entries are taken as the sign takes them: NaN as 0, and ±inf as entries so large
    that the direction is along them alone (their limit). An L2 step divided by a NaN or
    infinite norm made every pixel of the image NaN. A norm below 1e-12 (or one that
    overflowed) is taken in units of the largest entry: a confident model's cross-entropy
    gradient (1e-20 per pixel and less in float32) had a norm that underflowed to 0 (or fell
    below the 1e-12 that guards against a zero gradient), and its step shrank to nothing."""
    if norm == "linf":
        return g.sign()
    n = flat_norm(g, "l2")
    plain = (n >= 1e-12) & n.isfinite()
    if bool(plain.all()):  # (the usual case: one host sync, no more work than the division)
        return g / _view(n, g)
    g = _finite_gradient(g)
    n = flat_norm(g, "l2")
    direction = g / _view(n.clamp_min(1e-12), g)
    # Where the norm is below 1e-12 or overflowed, in units of the largest entry. (Only there:
    # elsewhere the plain norm is exact to rounding, and taking every norm in those units would
    # move every L2 result by a few float32 units.)
    unit = g / _view(flat_norm(g, "linf").clamp_min(torch.finfo(g.dtype).tiny), g)
    rescaled = unit / _view(flat_norm(unit, "l2").clamp_min(1e-12), g)
    return torch.where(_view((n >= 1e-12) & n.isfinite(), g), direction, rescaled)


def project(x_adv: torch.Tensor, x: torch.Tensor, norm: str, eps: float, box=(0.0, 1.0)):
    """Project ``x_adv`` onto the ε-ball around ``x`` intersected with the box.

    For L∞ the result is exact (a clamp). For L2 the ball projection is exact and is followed by
    the box clamp, which can only shrink the norm, so the result is inside both sets: exactly in
    real arithmetic; in float32 the norm measured afterwards may exceed ε by a rounding step
    (about 1e-8 for ε = 0.05), which is why checks of the ball allow 1e-6.
    """
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        n = flat_norm(delta, "l2")
        factor = torch.where(n > eps, eps / n.clamp_min(1e-12), torch.ones_like(n))
        delta = delta * _view(factor, delta)
    return (x + delta).clamp(box[0], box[1])


def inside_as_measured(p: torch.Tensor, x: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """``p`` (a projection onto the ball and the box) with each sample whose distance to ``x``,
    measured in ``p``'s dtype (``(p - x).abs().max()``, the L2 norm), exceeds ``eps`` moved
    toward ``x`` by rounding steps until it does not: ``x + ε`` rounds in float32 to a point up
    to half a unit beyond ε (every L∞ result measured 3e-8 beyond 8/255), and an L2 projection
    (its pixels rounded, or the box clamp after it) can leave a norm a rounding step above ε
    (on 3×32×32 images, a quarter of the samples at 0.5). Samples already inside are
    returned bitwise unchanged; moving toward ``x`` keeps the box (an element beyond ε lies
    beyond its box edge's distance from ``x`` too, or the clamp would have made it nearer)."""
    bound = torch.tensor(eps, dtype=p.dtype, device=p.device)
    if bound.item() > eps:  # the largest value of the dtype not above ε
        bound = torch.nextafter(bound, torch.zeros_like(bound))
    for _ in range(8):  # (one pass in practice)
        if norm == "linf":
            over = (p - x).abs() > bound
            if not bool(over.any()):
                return p
            # ε from x on p's side (one rounding step nearer x where x ± ε rounded away; a
            # step of p itself was a denormal one near 0)
            edge = x + (p - x).sign() * bound
            edge = torch.where((edge - x).abs() > bound, torch.nextafter(edge, x), edge)
            p = torch.where(over, edge, p)
        else:
            over = flat_norm(p - x, "l2") > bound
            if not bool(over.any()):
                return p
            shrunk = x + (p - x) * (1 - 4 * torch.finfo(p.dtype).eps)
            # A pixel whose share of ε is small does not move by that fraction of itself
            # (0.5 over a 3×32×32 image: 9e-3 · 5e-7, far below half a unit of a pixel near
            # 0.6), and the whole sample came back unchanged, beyond ε: such a pixel moves
            # one unit toward x instead.
            shrunk = torch.where(shrunk == p, torch.nextafter(p, x), shrunk)
            p = torch.where(_view(over, p), shrunk, p)
    return p


def random_in_ball(
    x: torch.Tensor, norm: str, eps: float, generator: torch.Generator | None
) -> torch.Tensor:
    """A random perturbation inside the ε-ball: uniform per coordinate for L∞; for L2 uniform
    in the ball (Gaussian direction, radius ε·U^(1/d))."""
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (2 * u - 1) * eps
    d = x[0].numel()
    g = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    g = g / _view(flat_norm(g, "l2").clamp_min(1e-12), g)
    r = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype) ** (1.0 / d)
    return g * _view(r * eps, g)


@dataclass(frozen=True)
class ThreatModel:
    """What the adversary may do: perturb within ``eps`` in ``norm``, inside ``box``.

    ``eps=None`` means a minimum-norm setting (decision-based attacks look for the smallest
    adversarial perturbation; success at a given ε is read off afterwards).
    """

    norm: str = "linf"
    eps: float | None = 8 / 255
    targeted: bool = False
    box: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", check_norm(self.norm))
        # (bool("false") is True: a switch given as text was silently on)
        object.__setattr__(self, "targeted", flag("targeted", self.targeted))
        if self.eps is not None:
            object.__setattr__(self, "eps", parse_eps(self.eps))
        lo, hi = self.box
        if not lo < hi:
            raise InputError(f"box must be (low, high) with low < high, got {self.box}")
        if self.norm == "linf" and self.eps is not None and self.eps > hi - lo:
            raise InputError(
                f"an L∞ eps of {float_text(self.eps)} is wider than the [{lo:g}, {hi:g}] box "
                "pixels live in, so any image would be allowed; give it on that scale (e.g. "
                f"{float_text(self.eps)}/255)"
            )

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Project onto the threat model's feasible set (the box alone when ``eps`` is None),
        inside the ball as measured in ``x_adv``'s dtype (:func:`inside_as_measured`): what
        every attack returns passes ``(x_adv - x).abs().max() <= eps`` with no tolerance."""
        if self.eps is None:
            return x_adv.clamp(*self.box)
        p = project(x_adv, x, self.norm, self.eps, self.box)
        return inside_as_measured(p, x, self.norm, self.eps)

    def norm_of(self, delta: torch.Tensor) -> torch.Tensor:
        """Per-sample norm of perturbations in this threat model's norm."""
        return flat_norm(delta, self.norm)

    def describe(self) -> str:
        """Short text such as ``linf 8/255`` or ``l2 0.5 targeted``."""
        eps = "min-norm" if self.eps is None else format_eps(self.eps)
        return f"{self.norm} {eps}" + (" targeted" if self.targeted else "")


def format_eps(eps: float) -> str:
    """ε as text: a short decimal where one is exact (``0.2``, ``0.5``), else ``8/255`` where ε
    is a whole number of 255ths (``0.0313725…``, :func:`shown_255ths`), else :func:`float_text`."""
    short = f"{eps:.4g}"
    if float(short) == eps:
        return short
    k = shown_255ths(eps)
    return f"{k}/255" if k is not None else float_text(eps)


def shown_255ths(eps: float) -> int | None:
    """The whole number k where :func:`format_eps` shows ε as ``k/255`` (ε below 1 and within
    1e-6 of k 255ths, with no exact short decimal: 8/255 as a float32 is 8 too), else None."""
    if float(f"{eps:.4g}") == eps or not eps < 1:
        return None
    k = round(eps * 255)
    return k if k > 0 and abs(eps * 255 - k) < 1e-6 else None


def float_text(value: float) -> str:
    """``value`` as ``%g`` (6 significant digits) where that is exact, else with every digit
    that tells it from its neighbours (``0.1000001``; ``%g`` showed ``0.1``, as for 0.1)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))
