"""Turn attack specifications such as ``pgd:steps=20,restarts=2`` into configured attacks.

The CLI, the runner and presets all describe attacks as text; this module is the one place that
parses it. The run's threat model (``--norm``, ``--eps``) and query budget (``--queries``) fill in
every parameter the spec leaves out and the attack accepts.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from .attack import Attack
from .defense import Defense
from .errors import InputError, RobustkitError, first_line
from .naming import COMMAND_LINE, Naming
from .registry import ATTACKS, DEFENSES, Registry, constructor_parameters, constructor_signature
from .threat import check_norm, float_text, format_eps, parse_eps


def parse_value(text: str) -> Any:
    """``true``/``false`` -> bool, ``10`` -> int, ``0.5`` or ``8/255`` -> float, else the text."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    try:
        return int(low)
    except ValueError:
        pass
    try:
        return float(Fraction(low.replace(" ", ""))) if "/" in low else float(low)
    except (ValueError, ZeroDivisionError):
        return text.strip()


#: An example spec per kind, for the error on a malformed parameter.
_SPEC_EXAMPLES = {"attack": "pgd:steps=20", "defense": "bit-depth:bits=4"}
#: The hint for a comma inside auto's stages, which ends the stage list (a comma-joined stage,
#: or a stage's second parameter, then reads as one of auto's own parameters).
_STAGES_HINT = (
    "join auto's stages with + and a stage's own parameters with ; "
    "(auto:stages=pgd:steps=5;restarts=2+apgd-t)"
)


def parse_attack_spec(spec: str, kind: str = "attack") -> tuple[str, dict[str, Any]]:
    """Split ``NAME[:k=v,...]`` into the attack (or defense: ``kind="defense"``) name and its
    parameters."""
    name, _, rest = spec.strip().partition(":")
    name = name.strip()  # (`pgd : steps=3` was "unknown attack 'pgd '")
    if not name:
        raise InputError(f"empty name in {spec!r}; write NAME or NAME:key=value,...")
    if "=" in name:  # parameters without the colon (`pgd;steps=3` was an unknown attack)
        head = re.split(r"[\s;,]", name, maxsplit=1)[0]
        given = spec.strip()[len(head) :].lstrip(" \t;,")  # the parameters, as written
        if "stages=" not in given:  # (a ; joins an auto stage's own parameters)
            given = re.sub(r"\s*;\s*", ",", given)
        fix = f"{head}:{given}" if head != name and "=" not in head else "NAME:key=value,..."
        raise InputError(
            f"{kind} parameters go after a colon, but {spec!r} has none before them; write {fix}"
        )
    params: dict[str, Any] = {}
    items = [part.strip() for part in rest.split(",")] if rest.strip() else []
    if not all(items):  # (`pgd:,`, `pgd:steps=2,`: taken as a run apart from pgd, pgd:steps=2)
        given = ",".join(filter(None, items))
        fix = f"{name}:{given}" if given else name
        raise InputError(f"empty {kind} parameter in {spec!r} (a stray comma); write {fix!r}")
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            example = _SPEC_EXAMPLES.get(kind, _SPEC_EXAMPLES["attack"])
            if "stages=" in rest:  # (a comma ends auto's stage list)
                example += f"; {_STAGES_HINT}"
            raise InputError(
                f"bad {kind} parameter {item!r} in {spec!r}; write key=value, e.g. {example}"
            )
        key = key.strip().replace("-", "_")
        if key in params:
            raise InputError(f"{kind} parameter {key!r} is given twice in {spec!r}; give it once")
        params[key] = parse_value(value)
    return name, params


def canonical_spec(name: str, params: dict[str, Any], exact: bool = False) -> str:
    """``NAME:k=v,...`` with every parameter (defaults included) in the constructor's order:
    one text for one configuration (``bit-depth`` and ``bit-depth:bpda=false,bits=4`` are both
    ``bit-depth:bits=4,bpda=false``). Lists are joined with ``|``.

    Numbers have 6 significant digits (``%g``): ``sigma=0.1`` and ``sigma=0.1000001`` read
    alike. That text is part of a run's identity (with the parameters themselves, which tell
    the two apart), so it stays; ``exact=True`` is the text to show, with every digit that
    tells two values apart (:func:`~robustkit.threat.float_text`)."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (list, tuple)):
            return "|".join(text(v) for v in value)
        if isinstance(value, float):
            return float_text(value) if exact else f"{value:g}"
        return str(value)

    return name + "".join(
        f"{':' if i == 0 else ','}{k}={text(v)}" for i, (k, v) in enumerate(params.items())
    )


def registered_spec(spec: str, name: str) -> str:
    """``spec`` as a run's label and identity take it: under the registered ``name`` of what it
    builds (``PGD:steps=5`` is stored as ``pgd:steps=5``), auto's stages under theirs
    (``auto:stages=APGD-CE`` as ``auto:stages=apgd-ce``), with no space around its separators
    a parameter's name as the attack takes it (``pgd: step-size = 0.01`` is
    ``pgd:step_size=0.01``), its value in one spelling (``random_start=False`` is
    ``random_start=false``, :func:`_tidy_value`), and no empty auto stage or stage parameter list
    (``auto:stages=pgd:+fgsm`` is ``auto:stages=pgd+fgsm``): spellings of one attack were
    runs apart, so the same attack typed otherwise did not resume its run. A spec written so
    already is its own label (its runs keep their ids); a run stored under another spelling
    before is found by :func:`as_typed`."""
    rest = spec.strip().partition(":")[2]
    items = [_tidy_parameter(item) for item in rest.split(",")] if rest.strip() else []
    items = [
        f"stages={registered_stages(item[7:])}" if item.startswith("stages=") else item
        for item in items
    ]
    return f"{name}:{','.join(items)}" if items else name


def _tidy_parameter(item: str) -> str:
    """``key=value`` without the spaces around either, the key as parse_attack_spec takes it
    and the value in one spelling of what it parses to (:func:`_tidy_value`)."""
    key, sep, value = item.partition("=")
    return f"{key.strip().replace('-', '_')}{sep}{_tidy_value(value) if sep else ''}"


def _tidy_value(text: str) -> str:
    """A parameter's value in one spelling of what :func:`parse_value` makes of it, so the
    attack gets the same value from either: a switch as ``true``/``false`` (``False``, ``no``,
    ``off``), ``none`` (``None``, ``null``), a whole number as such (``010`` is ``10``), a
    decimal as :func:`~robustkit.threat.float_text` writes it with a short exponent (``0.010``
    and ``1e-2`` are ``0.01``, ``1e-05`` is ``1e-5``) and a fraction as written, without spaces
    (``8 / 255`` is ``8/255``: written as a fraction on purpose). Other text stays as written
    (``loss=CE``: whether it is ``ce`` is for the attack to say)."""
    value = parse_value(text)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if "/" in text:
            return text.replace(" ", "")
        return re.sub(r"e\+?(-?)0*(?=\d)", r"e\1", float_text(value))
    return text.strip()


def registered_stage(stage: str) -> str:
    """An auto stage's spec with its attack's name in its registered spelling (``APGD-CE:steps=5``
    is ``apgd-ce:steps=5``) and its parameters as :func:`registered_spec` has them (``pgd:
    steps=5`` is ``pgd:steps=5``, ``pgd:`` is ``pgd``). An unknown name stays as written, for
    the error that names it."""
    head, _, rest = stage.partition(":")
    name = head.strip()
    entry = ATTACKS.find(name) if name else None
    if entry is None:
        return stage
    # (a stage's parameters are joined by ; in a CLI spec, by , where auto is built in Python)
    parts = re.split(r"([;,])", rest) if rest.strip() else []
    tidy = "".join(part if part in ";," else _tidy_parameter(part) for part in parts)
    return f"{entry.name}:{tidy}" if tidy else entry.name


def registered_stages(stages: str) -> str:
    """Auto's ``stages`` text (specs joined by ``+``) with each stage registered
    (:func:`registered_stage`), less the empty ones (which auto skips)."""
    return "+".join(registered_stage(stage) for stage in stages.split("+") if stage.strip())


def as_typed(spec: str, name: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The label and parameters of ``spec`` (building attack ``name`` with ``params``) in a run's
    identity before :func:`registered_spec` made spellings one (2026-11-29): the spec's text
    under the registered name, auto's stages with their registered names, the rest as typed.
    A run stored so is resumed by the same command (``runner.adopt_stored_spelling``)."""

    def stage(text: str) -> str:
        head, colon, rest = text.partition(":")
        entry = ATTACKS.find(head.strip()) if head.strip() else None
        if entry is None or entry.name == head.strip():
            return text
        return head.replace(head.strip(), entry.name, 1) + colon + rest

    def stages(text: str) -> str:
        return "+".join(stage(s) for s in text.split("+"))

    rest = spec.strip().partition(":")[2]
    rest = re.sub(r"(\bstages\s*=)([^,]*)", lambda m: m[1] + stages(m[2]), rest)
    typed = parse_attack_spec(spec)[1].get("stages")
    if isinstance(typed, str) and isinstance(params.get("stages"), tuple):
        # auto kept its stages as typed (spaces, a stage's empty colon), skipping empty ones
        params = {**params, "stages": tuple(stage(s) for s in typed.split("+") if s.strip())}
    return (f"{name}:{rest}" if rest else name), params


def build_attack(
    spec: str,
    norm: str | None = None,
    eps: float | str | None = None,
    max_queries: int | None = None,
    targeted: bool | None = None,
    seed: int | None = None,
    named: Naming = COMMAND_LINE,
) -> Attack:
    """A configured attack from ``spec``; run-wide settings fill the parameters it leaves out.
    ``named``: how the errors name the run's settings (``--targeted``, or ``targeted=True``
    from Python, :class:`~robustkit.naming.Naming`).

    Decision-based attacks that support only L2 keep L2 when the run's norm is another; the
    run's ε is then not theirs, so they get none (they minimise the distance instead). An attack
    that needs an ε and runs in another norm than the one ``eps`` is given for (set in the spec,
    or the only one it supports) must set its own ε in the spec.
    """
    name, params = parse_attack_spec(spec)
    cls = ATTACKS.get(name)
    accepted = constructor_parameters(cls)
    try:
        check_parameters(ATTACKS.kind, name, params, accepted)
    except InputError as exc:
        if "stages" not in params or "stages" not in accepted:  # (pgd:stages=...: no hint)
            raise
        raise InputError(f"{exc}; {_STAGES_HINT}") from None
    if norm is not None:
        norm = check_norm(norm)
    if params.get("norm") is not None:
        # spelled as --norm takes it (L2, Linf, inf): compared with the run's norm below, where
        # norm=L2 in an l2 run was "another norm" and norm=l3 got advice to pass --norm l3
        try:
            params["norm"] = check_norm(params["norm"])
        except InputError:
            raise InputError(
                f"unknown norm {params['norm']!r} in attack {spec!r}; use norm=linf or norm=l2"
            ) from None
    chosen_norm = params.get("norm", norm)
    if chosen_norm is not None and "norm" in accepted and "norm" not in params:
        if chosen_norm in cls.norms:
            params["norm"] = chosen_norm
        else:
            chosen_norm = cls.norms[0]
            params["norm"] = chosen_norm
    if eps is not None and "eps" in accepted and "eps" not in params:
        if chosen_norm is None or chosen_norm == norm:
            params["eps"] = parse_eps(eps)
        elif cls.requires_eps:  # the ε given is one of another norm
            run = (
                f"--norm {chosen_norm} --eps ..."
                if named.options
                else f"norm={chosen_norm!r}, eps=..."
            )
            raise InputError(
                f"attack {name!r} runs in {chosen_norm} but the run's ε "
                f"({format_eps(parse_eps(eps))}) is one of {norm}; "
                f"evaluate it in a run of that norm ({run})"
            )
    if max_queries is not None and "max_queries" in accepted and "max_queries" not in params:
        params["max_queries"] = int(max_queries)
    if targeted and "targeted" not in accepted:
        raise InputError(
            f"attack {name!r} has no targeted mode; drop {named.dropped('targeted', True)} or "
            "that attack (pgd, fgsm and the label-only attacks take targets)"
        )
    if targeted is not None and "targeted" in accepted and "targeted" not in params:
        params["targeted"] = targeted
    if seed is not None and "seed" in accepted and "seed" not in params:
        params["seed"] = seed
    return instantiate(ATTACKS, name, params)


def takes_run_queries(spec: str) -> bool:
    """Whether the attack of ``spec`` takes its query budget from the run's (``--queries``):
    it has a budget (``max_queries``) that the spec leaves out."""
    name, params = parse_attack_spec(spec)
    return (
        "max_queries" in constructor_parameters(ATTACKS.get(name)) and "max_queries" not in params
    )


def build_defense(spec: str) -> Defense:
    """A configured defense from ``NAME[:key=value,...]``."""
    name, params = parse_attack_spec(spec, DEFENSES.kind)
    return instantiate(DEFENSES, name, params)


def check_parameters(kind: str, name: str, params: dict[str, Any], accepted: list[str]) -> None:
    """Refuse parameters the class does not take, naming the ones it does."""
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InputError(
            f"{kind} {name!r} has no parameter {unknown[0]!r}; its parameters are: "
            f"{', '.join(accepted) or 'none'}"
        )


def instantiate(registry: Registry, name: str, params: dict[str, Any]) -> Any:
    """The registered class ``name`` built with ``params``, with one-line errors."""
    cls = registry.get(name)
    signature = constructor_signature(cls)
    check_parameters(registry.kind, name, params, list(signature))
    for key, p in signature.items():
        # a switch takes true or false only (bool("maybe") would silently be True)
        if isinstance(p.default, bool) and key in params and not isinstance(params[key], bool):
            raise InputError(
                f"{registry.kind} {name!r}: {key} must be true or false, got {params[key]!r}"
            )
    try:
        return cls(**params)
    except RobustkitError:
        raise  # the constructor's own one-line error
    except (TypeError, ValueError) as exc:  # e.g. seed=abc: int("abc") in the constructor
        raise RobustkitError(
            f"bad parameters for {registry.kind} {name!r}: {first_line(exc)}"
        ) from None
