"""Plain-text tables for the terminal (the leaderboard renders its own formats)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def fmt(value: Any, percent: bool = False, digits: int = 4) -> str:
    """Format one cell: percentages with one decimal, floats short, NaN/None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if percent:
            return f"{100 * value:.1f}%"
        return f"{value:.{digits}g}"
    return str(value)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun`` in the number it takes: "1 sample", "0 samples", "2 samples"
    (``plural`` where adding an s is not the plural)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def render(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Left-aligned columns separated by two spaces, with a rule under the header."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def names_text(values: list[str], limit: int = 12) -> str:
    """Names for a one-line error: the first ``limit`` of them, then how many more (or none)."""
    if not values:
        return "none"
    shown = ", ".join(values[:limit])
    return shown + (f" (and {len(values) - limit} more)" if len(values) > limit else "")
