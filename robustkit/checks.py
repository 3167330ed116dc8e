"""Checks of numeric parameters shared by attacks, defenses and the runner: one rule for what
counts as a whole number or a number, so NumPy scalars (``np.int64(100)``, ``np.float32(0.1)``)
are taken like Python's and ``True`` or ``1.9`` are not, each with a one-line error that names
the parameter."""

from __future__ import annotations

import math
import numbers
import sys
from decimal import Decimal

from .errors import InputError


def is_whole_number(value: object) -> bool:
    """An integer of any kind (Python's, NumPy's), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real_number(value: object) -> bool:
    """A real number of any kind (int, float, NumPy scalars), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


#: The largest finite float: a larger integer overflows float() (it rounds to 2**1024).
_LARGEST_FLOAT = sys.float_info.max


def shown(value: object) -> str:
    """``value`` as an error message shows it: its repr, but an integer too large for a float
    in three digits (``1.00e+400``: its repr is hundreds of digits, or an error past 4300)."""
    if is_whole_number(value) and abs(value) > _LARGEST_FLOAT:  # (2**1024 - 1 overflows too)
        return f"{Decimal(int(value)):.3g}"
    return repr(value)


def positive_int(name: str, value: object) -> int:
    """``value`` as a positive Python int, or a one-line error naming the parameter."""
    if not is_whole_number(value) or value < 1:
        raise InputError(f"{name} must be a positive whole number, got {shown(value)}")
    return int(value)


def flag(name: str, value: object) -> bool:
    """``value`` as a Python bool where it is one (NumPy's too), or a one-line error naming the
    parameter: ``bool("false")`` is True, so a switch given as text was silently on."""
    if isinstance(value, bool):
        return value
    import numpy as np  # (only here: the CLI starts without NumPy)

    if not isinstance(value, np.bool_):
        raise InputError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def positive_float(name: str, value: object) -> float:
    """``value`` as a positive, finite Python float, or a one-line error naming the parameter."""
    if not is_real_number(value) or not (value > 0 and math.isfinite(_float(value))):
        raise InputError(f"{name} must be a positive number, got {shown(value)}")
    return float(value)


def _float(value: numbers.Real) -> float:
    """``float(value)``, infinite for a number too large for a float (an int: OverflowError)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def given(value: object) -> str:
    """What a one-line error says a wrong argument was: ``None``, ``a Series of 4 values``
    (a column passed where one value is meant; a DataFrame's length is in rows), ``int 5``."""
    if value is None:
        return "None"
    if not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):
        try:
            n = len(value)  # type: ignore[arg-type]
        except TypeError:  # (a 0-d array)
            n = None
        if n is not None:
            unit = "row" if type(value).__name__ == "DataFrame" else "value"
            return f"a {type(value).__name__} of {n} {unit}{'s' if n != 1 else ''}"
    return f"{type(value).__name__} {value!r:.40}"
