"""How every number in a table or a report is written: one formatter for values, one for durations, one for lists."""

from __future__ import annotations

import math
from typing import Any


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in agreement: ``count(1, "trial")`` is "1 trial", ``count(3, "trial")`` "3 trials".

    >>> count(1, "objective"), count(2, "objective"), count(0, "study", "studies")
    ('1 objective', '2 objectives', '0 studies')
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        if not math.isfinite(value):
            return str(value)
        return f"{value:.1e}" if abs(value) < 1e-3 else f"{value:.4g}"
    return str(value)


def fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def fmt_list(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return str(v)


def count_read(n: object, noun: str) -> str:
    """``count`` for a value read from a file, which may be missing ("? epochs")."""
    return count(n, noun) if isinstance(n, int) and not isinstance(n, bool) else f"? {noun}s"
