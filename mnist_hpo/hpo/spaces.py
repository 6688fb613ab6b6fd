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


import numpy as np
import optuna

from ..config import ParamSpec
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
          f"{cfg.trials} trials x {cfg.epochs} epochs, seed {cfg.seed}")
    for name, values in resolved.items():
        if isinstance(values, list):
            print(f"  {name}: {values}")
        else:  # a range, left to the sampler
            print(f"  {name}: {values.kind} in [{values.low}, {values.high}]{' (log scale)' if values.log else ''}")
