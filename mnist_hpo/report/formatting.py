"""How every number in a table or a report is written: one formatter for values, one for durations, one for lists."""

from __future__ import annotations

import math




def fmt(value) -> str:
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



def fmt_list(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return str(v)


