"""Exploit and explore: where a member's next segment starts, with which hyperparameters.

Once a generation has ended, each member's next segment is planned from its results alone
(Jaderberg et al. 2017, with Ray Tune's defaults):

* the members are ranked by the value their segment ended with; a segment that failed or
  diverged ranks last, whatever it reached before;
* a member in the bottom ``quantile`` (or whose segment failed) *exploits*: it starts from
  the checkpoint of a member of the top ``quantile``, drawn at random, and takes that
  member's parameters, then *explores*: each mutable parameter is drawn afresh from its space
  with probability ``resample_probability``, else multiplied by one of ``factors`` (kept in its
  range; a listed value moves to its neighbour in the list instead). Parameters not listed as
  mutable stay the parent's (they shape the weights it copies);
* every other member goes on from its own checkpoint with its own parameters.

The random draws come from a generator seeded by the study seed, the generation and the
member, so every worker plans the same segment the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial

from ...core.pbt import quantile_size
from ...core.schema import ParamSpec, PbtConfig
from ...core.seeds import seed_sequence
from ...core.space import Resolved
from ._records import Population


class NoParent(Exception):
    """Every member's segment of a generation failed: no checkpoint is left to go on from."""


@dataclass(frozen=True)
class Plan:
    """Segment ``(member, generation)``'s start: the trial whose checkpoint it loads, its parameters, and why."""

    parent: FrozenTrial
    params: dict[str, Any]
    exploited: bool = False
    explored: dict[str, list[Any]] = field(default_factory=dict)  # name -> [parent's value, new value]


def ranking(population: Population, generation: int, *, maximize: bool) -> list[int]:
    """The members, best first, by the value their segment of ``generation`` ended with (failed ones last)."""

    def key(m: int) -> tuple[int, float, int]:
        trial = population.canonical(m, generation)
        value = trial.value if trial is not None else None
        if value is not None and math.isfinite(value) and population.status(m, generation) == "done":
            return (0, -value if maximize else value, m)
        return (1, 0.0, m)

    return sorted(range(population.size), key=key)


def plan(
    population: Population,
    pbt: PbtConfig,
    resolved: Resolved,
    *,
    member: int,
    generation: int,
    study_seed: int,
    maximize: bool,
) -> Plan:
    """Where segment ``(member, generation)`` starts (``generation`` >= 1, the one before it ended)."""
    before = generation - 1
    order = ranking(population, before, maximize=maximize)
    usable = [m for m in order if population.status(m, before) == "done"]
    n = quantile_size(population.size, pbt.quantile)
    top, bottom = usable[:n], order[len(order) - n :]
    own = population.canonical(member, before)
    if member not in bottom and member in usable:
        assert own is not None  # a usable member's segment is done, so it has one
        return Plan(own, dict(own.params))
    if not top:
        raise NoParent(
            f"every member's segment of generation {before} failed or diverged, so no checkpoint is left to go on from"
        )
    rng = np.random.default_rng(seed_sequence(study_seed, "pbt", generation, member))
    parent = population.canonical(top[int(rng.integers(len(top)))], before)
    assert parent is not None  # the top members are usable ones
    params, explored = explore(parent.params, pbt, resolved, rng)
    return Plan(parent, params, exploited=True, explored=explored)


def explore(
    params: dict[str, Any], pbt: PbtConfig, resolved: Resolved, rng: np.random.Generator
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """``params`` with each mutable parameter perturbed or drawn afresh; the changes as name -> [old, new]."""
    new = dict(params)
    for name in pbt.mutable:
        space = resolved[name]
        if rng.random() < pbt.resample_probability:
            new[name] = _draw(space, rng)
        else:
            new[name] = _perturb(params[name], space, pbt.factors[int(rng.integers(len(pbt.factors)))])
    return new, {k: [params[k], new[k]] for k in pbt.mutable if new[k] != params[k]}


def _draw(space: list[Any] | ParamSpec, rng: np.random.Generator) -> Any:
    """A fresh value from the parameter's space (uniform, or log-uniform on a log scale)."""
    if not isinstance(space, ParamSpec):
        values = list(dict.fromkeys(space))
        return values[int(rng.integers(len(values)))]
    low, high = float(space.low), float(space.high)
    u = rng.random()
    x = math.exp(math.log(low) + u * (math.log(high) - math.log(low))) if space.log else low + u * (high - low)
    return min(max(int(round(x)), int(space.low)), int(space.high)) if space.kind == "int" else float(x)


def _perturb(value: Any, space: list[Any] | ParamSpec, factor: float) -> Any:
    """``value`` times ``factor`` in its range; in a list, the neighbouring value (down for a factor below 1)."""
    if not isinstance(space, ParamSpec):
        values = list(dict.fromkeys(space))
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            values.sort()
        i = values.index(value) + (1 if factor > 1 else -1)
        return values[min(max(i, 0), len(values) - 1)]
    x = min(max(value * factor, space.low), space.high)
    if space.kind == "int":
        stepped = int(round(x))
        if stepped == value:  # an integer too small to move by the factor moves by one
            stepped = value + (1 if factor > 1 else -1)
        return min(max(stepped, int(space.low)), int(space.high))
    return float(x)
