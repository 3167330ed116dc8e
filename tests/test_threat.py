"""Threat-model arithmetic: ε parsing, norms, exact projections, random starts."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustkit.errors import InputError
from robustkit.threat import (
    ThreatModel,
    check_norm,
    flat_norm,
    format_eps,
    normalize_direction,
    parse_eps,
    project,
    random_in_ball,
)


@pytest.mark.parametrize(
    "text, value",
    [("8/255", 8 / 255), ("8 / 255", 8 / 255), ("0.5", 0.5), (0.3, 0.3), (2, 2.0), ("1e-2", 0.01)],
)
def test_parse_eps(text, value):
    assert parse_eps(text) == pytest.approx(value)


@pytest.mark.parametrize(
    "bad",
    ["0", "-1", "abc", "8/0", "nan", "inf", "", True, -0.1, "1/"]
    + [pytest.param(v, id=i) for v, i in [(10**400, "1e400"), (-(10**400), "-1e400")]],
)
def test_parse_eps_rejects(bad):
    with pytest.raises(InputError, match="eps must be a positive number"):
        parse_eps(bad)
    with pytest.raises(InputError, match="eps must be a positive number"):
        parse_eps(f"{bad}/255")  # (a fraction too large for a float: OverflowError too)


def test_norm_names():
    assert check_norm("Linf") == "linf" and check_norm("L2") == "l2" and check_norm("inf") == "linf"
    with pytest.raises(InputError, match="unknown norm 'l1'; use one of linf, l2"):
        check_norm("l1")
    with pytest.raises(InputError):
        ThreatModel(norm="l3")


def test_format_eps():
    assert format_eps(8 / 255) == "8/255" and format_eps(0.5) == "0.5" and format_eps(0.3) == "0.3"
    # a short decimal wins where it is exact: 0.2 and 0.4 are whole 255ths (51, 102) too
    assert format_eps(0.2) == "0.2" and format_eps(0.4) == "0.4" and format_eps(0.6) == "0.6"
    assert format_eps(2 / 255) == "2/255" and format_eps(1e-6) == "1e-06"
    assert ThreatModel("l2", 0.2).describe() == "l2 0.2"


@settings(max_examples=60, deadline=None)
@given(
    eps=st.floats(1e-3, 2.0),
    scale=st.floats(0.0, 5.0),
    seed=st.integers(0, 2**16),
    norm=st.sampled_from(["linf", "l2"]),
)
def test_projection_is_inside_ball_and_box(eps, scale, seed, norm):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 3, 5, 5, generator=gen)
    x_adv = x + scale * torch.randn(4, 3, 5, 5, generator=gen)
    p = project(x_adv, x, norm, eps)
    assert p.min() >= 0 and p.max() <= 1
    assert (flat_norm(p - x, norm) <= eps * (1 + 1e-6) + 1e-7).all()


@settings(max_examples=60, deadline=None)
@given(eps=st.floats(1e-2, 3.0), seed=st.integers(0, 2**16))
def test_l2_projection_is_exact(eps, seed):
    """Without the box, the L2 projection of a point outside the ball lands on the sphere along
    the same ray, and a point inside is unchanged."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(3, 10)
    delta = torch.randn(3, 10, generator=gen)
    p = project(x + delta, x, "l2", eps, box=(-1e9, 1e9))
    n = delta.norm(dim=1)
    for i in range(3):
        if n[i] > eps:
            assert p[i].norm().item() == pytest.approx(eps, rel=1e-5)
            cos = torch.dot(p[i], delta[i]) / (p[i].norm() * n[i])
            assert cos.item() == pytest.approx(1.0, abs=1e-5)
        else:
            assert torch.allclose(p[i], delta[i])


def test_random_in_ball():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    for norm, eps in (("linf", 8 / 255), ("l2", 0.5)):
        d = random_in_ball(x, norm, eps, gen)
        assert (flat_norm(d, norm) <= eps * (1 + 1e-6)).all()
        assert flat_norm(d, norm).mean() > 0.5 * eps  # not degenerate


@pytest.mark.parametrize("scale", [1e-30, 1e-21, 1.0, 1e25])
def test_the_l2_direction_does_not_depend_on_the_gradient_s_scale(scale):
    # A confident model's cross-entropy gradient can be 1e-25 per pixel in float32: its norm
    # underflowed to 0 and the step vanished (and one of 1e20 overflowed to inf, likewise).
    g = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    d = normalize_direction(g * scale, "l2")
    assert torch.allclose(flat_norm(d, "l2"), torch.ones(4))
    assert torch.allclose(d, g / flat_norm(g, "l2").view(-1, 1, 1, 1), atol=1e-6)


def test_threat_model_describe_and_box():
    tm = ThreatModel("linf", "8/255", targeted=True)
    assert tm.eps == pytest.approx(8 / 255) and tm.describe() == "linf 8/255 targeted"
    assert ThreatModel("l2", None).describe() == "l2 min-norm"
    with pytest.raises(InputError, match="box"):
        ThreatModel(box=(1.0, 0.0))
    assert math.isclose(ThreatModel("l2", 0.5).eps, 0.5)


@pytest.mark.parametrize("bad", ["8/255/2", "1/2/3", "8//255"])
def test_parse_eps_refuses_more_than_one_slash(bad):
    """ "8/255/2" was read as 8/(255/2) = 16/255, because a Fraction parses "255/2"."""
    with pytest.raises(InputError, match="such as 0.03 or 8/255"):
        parse_eps(bad)


def test_an_linf_eps_wider_than_the_box_is_refused():
    """An L∞ ε above 1 on [0, 1] images allows any image: always a mistake (8 for 8/255)."""
    with pytest.raises(InputError, match="wider than the \\[0, 1\\] box.*8/255"):
        ThreatModel("linf", 8)
    assert ThreatModel("linf", 1.0).eps == 1.0 and ThreatModel("l2", 8).eps == 8


def test_an_linf_eps_just_wider_than_the_box_is_shown_as_given():
    """An ε of 1.0000001 was refused as "an L∞ eps of 1 is wider than the [0, 1] box", though
    an ε of 1 is allowed: the message printed ε to 6 digits."""
    with pytest.raises(InputError, match="an L∞ eps of 1.0000001 is wider"):
        ThreatModel("linf", 1.0000001)


@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("linf", 0.3), ("l2", 0.5), ("l2", 0.1)])
def test_the_threat_model_s_projection_is_inside_the_ball_in_float32_as_measured(norm, eps):
    """What a user checks, ``(x_adv - x).abs().max() <= eps`` (or the L2 norm), holds exactly:
    pixels of k/255 plus ε rounded in float32 to a point 3e-8 beyond ε (every L∞ result
    did), and an L2 projection clamped to the box could measure a rounding step beyond ε."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 8, 8), generator=gen) / 255.0
    far = x + torch.randn(x.shape, generator=gen)
    p = ThreatModel(norm=norm, eps=eps).project(far, x)
    assert p.min() >= 0 and p.max() <= 1
    measured = flat_norm(p - x, norm).double()
    assert measured.max().item() <= eps
    if norm == "linf":  # still a full step where there is room: only rounding steps given up
        assert measured.max().item() > eps - 1e-7


@pytest.mark.parametrize(
    "shape, eps", [((3, 32, 32), 0.5), ((3, 64, 64), 0.25), ((3, 224, 224), 3.0)]
)
def test_an_l2_projection_of_image_size_is_inside_the_ball_as_measured(shape, eps):
    """Found checking the white-box attacks on CIFAR-sized images: the L2 correction shrank
    p − x by 4 float32 epsilons, which moves no pixel of p when each pixel's share of ε is
    small (0.5 over 3,072 pixels: 9e-3 · 5e-7 is far below half a unit of a pixel near 0.6),
    so p came back unchanged, 6e-8 beyond ε: a quarter to half the samples here, and a
    user's check of the norm failed on the attacks' results. The correction moves only the
    samples beyond ε, by a unit or so per pixel."""
    gen = torch.Generator().manual_seed(0)
    x = 0.55 + 0.2 * torch.rand((32,) + shape, generator=gen)  # ε never reaches the box
    d = torch.randn(x.shape, generator=gen)
    on_sphere = x + eps * d / flat_norm(d, "l2").view(-1, 1, 1, 1)
    p = ThreatModel(norm="l2", eps=eps).project(on_sphere, x)
    measured = flat_norm(p - x, "l2").double()
    assert measured.max().item() <= eps
    # only rounding steps given up: a unit (2**-23 at most, for pixels below 1) per pixel
    assert measured.min().item() >= eps - x[0].numel() ** 0.5 * 2**-23
    assert (p - on_sphere).abs().max().item() < 1e-6
    # a sample already inside is returned as it was
    inside = x + 0.5 * (on_sphere - x)
    assert torch.equal(ThreatModel(norm="l2", eps=eps).project(inside, x), inside)
