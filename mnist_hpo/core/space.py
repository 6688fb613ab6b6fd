"""What a study file's search space stands for: the report's drawn lists made reproducible.

The report builds its lists with numpy draws (``np.random.normal(1e-3, 1e-3, 10)``
and the like). Here each list is drawn from a generator seeded by the study seed
and the parameter's name, so the same study file always yields the same lists.
A normal draw can be zero or negative, which is no valid learning rate or weight
decay: such draws are redrawn until positive (the lists are therefore draws from
the normal truncated at zero). Explicit ``include`` values (the report's ``[0] +``)
are kept as given. Numpy only: the checks of a study file use it as the search does
(:mod:`mnist_hpo.hpo.suggestions` suggests from it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .schema import Checker, ParamSpec, StudyConfig
from .seeds import seed_sequence

Resolved = dict[str, list[Any] | ParamSpec]  # categorical lists, or range specs left for the sampler


def draw_list(spec: ParamSpec, seed: int) -> list[Any]:
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
        return [int(v) for v in rng.integers(int(spec.low), int(spec.high), size=spec.size)]
    raise ValueError(f"{spec.name}: {spec.kind} is a range, not a list")


def resolve_space(space: dict[str, ParamSpec], seed: int) -> Resolved:
    return {name: (spec if spec.kind in ("float", "int") else draw_list(spec, seed)) for name, spec in space.items()}


def grid_space(resolved: Resolved) -> dict[str, list[Any]]:
    """The search space as GridSampler wants it; duplicates inside a drawn list are dropped."""
    grid: dict[str, list[Any]] = {}
    for name, values in resolved.items():
        if isinstance(values, ParamSpec):
            raise ValueError(f"{name} is a range and cannot be gridded")
        grid[name] = list(dict.fromkeys(values))
    return grid


def check_enqueue(cfg: StudyConfig, c: Checker) -> None:
    """Every enqueued value a value the study's space can suggest (Optuna refuses any other categorical value)."""
    for i, entry in enumerate(cfg.enqueue):
        where = f"study.enqueue[{i}]"
        if not isinstance(entry, dict) or not entry:
            c.fail(where, f"must be a table of parameter values, e.g. {{lr = 0.001}}, got {entry!r}")
        for name, value in entry.items():
            spec = cfg.space.get(name)
            if spec is None:
                c.fail(f"{where}.{name}", f"is not a parameter of the study's space; it has {', '.join(cfg.space)}")
            if spec.kind in ("float", "int"):
                types = (int,) if spec.kind == "int" else (int, float)
                if isinstance(value, bool) or not isinstance(value, types) or not spec.low <= value <= spec.high:
                    c.fail(
                        f"{where}.{name}",
                        f"must be {'an integer' if spec.kind == 'int' else 'a number'} in the "
                        f"range [{spec.low:g}, {spec.high:g}], got {value!r}",
                    )
                continue
            allowed = list(dict.fromkeys(draw_list(spec, cfg.seed)))
            if (isinstance(value, bool) and not any(isinstance(v, bool) for v in allowed)) or value not in allowed:
                c.fail(
                    f"{where}.{name}",
                    f"is {value!r}, which the space's list does not hold (the sampler can only "
                    f"suggest {', '.join(map(repr, allowed))}); pick one of them, or make "
                    f"space.{name} a range",
                )
