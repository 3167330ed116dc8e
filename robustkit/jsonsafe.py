"""Strict JSON for reports and leaderboards: one encoding of the floats JSON cannot hold."""

from __future__ import annotations

import math
from typing import Any


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN as None (no value) and ±infinity as ``"inf"``/``"-inf"`` (for
    instance a median distance where no adversarial example was found), in nested dicts, lists
    and tuples, so that ``json.dumps`` writes strict JSON that keeps the two apart."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
