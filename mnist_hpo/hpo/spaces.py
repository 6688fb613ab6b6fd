"""Search spaces: the report's drawn lists made reproducible, and suggesting from them.

The report builds its lists with numpy draws (``np.random.normal(1e-3, 1e-3, 10)``
and the like). Here each list is drawn from a generator seeded by the study seed
and the parameter's name, so the same study file always yields the same lists.
A normal draw can be zero or negative, which is no valid learning rate or weight
decay: such draws are redrawn until positive (the lists are therefore draws from
the normal truncated at zero). Explicit ``include`` values (the report's ``[0] +``)
are kept as given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna

from ..config import Checker, ParamSpec
from ..train.seeds import seed_sequence

Resolved = dict[str, list | ParamSpec]  # categorical lists, or range specs left for the sampler


def draw_list(spec: ParamSpec, seed: int) -> list:
    """The concrete list of values for a ``choices``/``normal``/``randint`` parameter."""
    if spec.kind == "choices":
        return list(spec.choices)
    rng = np.random.default_rng(seed_sequence(seed, spec.name))
    if spec.kind == "normal":
        values: list[float] = []
        while len(values) < spec.size:
            v = float(rng.normal(spec.mean, spec.std))
            if v > 0:
                values.append(float(f"{v:.6g}"))  # 6 significant digits: readable, still distinct
        return [*spec.include, *values]
    if spec.kind == "randint":
        return [int(v) for v in rng.integers(spec.low, spec.high, size=spec.size)]
    raise ValueError(f"{spec.name}: {spec.kind} is a range, not a list")


def resolve_space(space: dict[str, ParamSpec], seed: int) -> Resolved:
    return {name: (spec if spec.kind in ("float", "int") else draw_list(spec, seed)) for name, spec in space.items()}


def grid_space(resolved: Resolved) -> dict[str, list]:
    """The search space as GridSampler wants it; duplicates inside a drawn list are dropped."""
    grid = {}
    for name, values in resolved.items():
        if isinstance(values, ParamSpec):
            raise ValueError(f"{name} is a range and cannot be gridded")
        grid[name] = list(dict.fromkeys(values))
    return grid


def suggest(trial: optuna.Trial, resolved: Resolved) -> dict:
    """Ask the trial for every parameter of the space; returns name -> value."""
    params = {}
    for name, values in resolved.items():
        if isinstance(values, ParamSpec):
            if values.kind == "float":
                params[name] = trial.suggest_float(name, values.low, values.high, log=values.log)
            else:
                params[name] = trial.suggest_int(name, int(values.low), int(values.high), log=values.log)
        else:
            params[name] = trial.suggest_categorical(name, list(dict.fromkeys(values)))
    return params


def print_space(cfg, resolved: Resolved) -> None:
    """The study and its resolved space, as a study or worker prints them at start."""
    print(f"study {cfg.name}: {cfg.model} on {cfg.dataset}, {cfg.sampler.type} sampler, "
          f"{cfg.trials} trial{'s' if cfg.trials != 1 else ''} x {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}, "
          f"seed {cfg.seed}")
    for name, values in resolved.items():
        if isinstance(values, list):
            print(f"  {name}: {values}")
        else:  # a range, left to the sampler
            print(f"  {name}: {values.kind} in [{values.low}, {values.high}]{' (log scale)' if values.log else ''}")


def parse_param(c: Checker, name: str, t: Any) -> ParamSpec:
    """A study file's ``[space.NAME]`` table as a :class:`ParamSpec`; any mistake is one ``c.fail`` line."""
    prefix = f"space.{name}"
    if not isinstance(t, dict):
        c.fail(prefix, "must be a table, e.g. choices = [1, 2, 3]")
    if "choices" in t:
        c.unknown(t, {"choices"}, prefix)
        choices = c.get(t, "choices", (list,), prefix)
        if not choices:
            c.fail(f"{prefix}.choices", "must not be empty")
        for v in choices:
            if not isinstance(v, (int, float, str, bool)):
                c.fail(f"{prefix}.choices", f"may hold numbers, strings or booleans, not {v!r}")
        return ParamSpec(name, "choices", choices=tuple(choices))
    kind = c.get(t, "draw", (str,), prefix, default=None) or c.get(t, "range", (str,), prefix, default=None)
    if "draw" in t:
        if kind == "normal":
            c.unknown(t, {"draw", "mean", "std", "size", "include"}, prefix)
            std = float(c.get(t, "std", (int, float), prefix))
            if std <= 0:
                c.fail(f"{prefix}.std", f"must be positive, got {std}")
            size = _positive_int(c, t, "size", prefix)
            include = c.get(t, "include", (list,), prefix, default=[])
            for v in include:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    c.fail(f"{prefix}.include", f"must hold numbers, got {v!r}")
            return ParamSpec(name, "normal", mean=float(c.get(t, "mean", (int, float), prefix)), std=std,
                             size=size, include=tuple(float(v) for v in include))
        if kind == "randint":
            c.unknown(t, {"draw", "low", "high", "size"}, prefix)
            low = c.get(t, "low", (int,), prefix)
            high = c.get(t, "high", (int,), prefix)
            if high <= low:
                c.fail(f"{prefix}.high", f"must be greater than low ({low}), got {high}")
            return ParamSpec(name, "randint", low=low, high=high, size=_positive_int(c, t, "size", prefix))
        c.fail(f"{prefix}.draw", f"must be 'normal' or 'randint', got {kind!r}")
    if "range" in t:
        if kind not in ("float", "int"):
            c.fail(f"{prefix}.range", f"must be 'float' or 'int', got {kind!r}")
        c.unknown(t, {"range", "low", "high", "log"}, prefix)
        types = (int, float) if kind == "float" else (int,)
        low = c.get(t, "low", types, prefix)
        high = c.get(t, "high", types, prefix)
        log = c.get(t, "log", (bool,), prefix, default=False)
        if high <= low:
            c.fail(f"{prefix}.high", f"must be greater than low ({low}), got {high}")
        if log and low <= 0:
            c.fail(f"{prefix}.low", f"must be positive on a log scale, got {low}")
        return ParamSpec(name, kind, low=low, high=high, log=log)
    c.fail(prefix, "needs one of: choices = [...], draw = 'normal'|'randint', range = 'float'|'int'")
    raise AssertionError  # unreachable


def _positive_int(c: Checker, t: dict, key: str, prefix: str) -> int:
    value = c.get(t, key, (int,), prefix)
    if value < 1:
        c.fail(f"{prefix}.{key}", f"must be at least 1, got {value}")
    return value
