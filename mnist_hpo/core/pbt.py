"""A study file's ``[pbt]`` table: population-based training's settings, and the checks that need no model family.

With a ``[pbt]`` table a study trains a population side by side instead of independent trials
(see :mod:`mnist_hpo.hpo.pbt` and docs/pbt.md)::

    [pbt]
    population = 8              # members trained side by side
    interval = 5                # epochs between two perturbations (one segment: one Optuna trial)
    mutable = ["lr_d", "lr_g"]  # what explore may change; every other parameter is fixed at the start
    quantile = 0.25             # the bottom quarter copies the top quarter (exploit)
    resample_probability = 0.25 # explore: draw a mutable value afresh from its space ...
    factors = [0.8, 1.2]        # ... or multiply it by one of these

Each member trains ``study.epochs`` epochs in all, in segments of ``interval`` epochs.
The table's shape is read here (:func:`pbt_table`); its values are checked against the rest of
the study with the family's checks (:func:`check_pbt`, from :func:`mnist_hpo.tasks.check_config`).
"""

from __future__ import annotations

import math
from typing import Any

from .schema import Checker, PbtConfig, StudyConfig

PBT_KEYS = {"population", "interval", "mutable", "quantile", "resample_probability", "factors"}


def generations(cfg: StudyConfig) -> int:
    """How many segments each member trains: ``study.epochs`` cut into ``interval``-epoch pieces."""
    return math.ceil(cfg.epochs / pbt_settings(cfg).interval)


def segment_epochs(cfg: StudyConfig, generation: int) -> tuple[int, int]:
    """The epochs segment ``generation`` covers, 0-based, as ``range(start, stop)``."""
    interval = pbt_settings(cfg).interval
    start = generation * interval
    return start, min(start + interval, cfg.epochs)


def pbt_settings(cfg: StudyConfig) -> PbtConfig:
    """The ``[pbt]`` table of a study known to be population-based (a ValueError for any other)."""
    if cfg.pbt is None:
        raise ValueError(f"study {cfg.name!r} has no [pbt] table")
    return cfg.pbt


def planned_trials(cfg: StudyConfig) -> int:
    """The trials a study runs to: ``study.trials``, or for population-based training one per segment."""
    return cfg.pbt.population * generations(cfg) if cfg.pbt is not None else cfg.trials


def quantile_size(population: int, fraction: float) -> int:
    """How many members the top and the bottom quantile hold (at least one each, at most half)."""
    n = math.ceil(population * fraction)
    return n if n <= population / 2 else population // 2


def pbt_table(c: Checker, doc: dict[str, Any]) -> PbtConfig | None:
    """The ``[pbt]`` table of a study file, its keys and types checked; None when the file has none."""
    if "pbt" not in doc:
        return None
    if "trials" in c.table(doc, "study"):
        c.fail(
            "study.trials",
            "is not used with [pbt]: the study runs population x ceil(epochs / interval) segments; leave trials out",
        )
    t = c.table(doc, "pbt")
    c.unknown(t, PBT_KEYS, "pbt")
    mutable = c.get(t, "mutable", (list,), "pbt")
    for name in mutable:
        if not isinstance(name, str):
            c.fail("pbt.mutable", f"must list parameter names, got {name!r}")
    factors = c.get(t, "factors", (list,), "pbt", [0.8, 1.2])
    if len(factors) != 2 or any(isinstance(f, bool) or not isinstance(f, (int, float)) for f in factors):
        c.fail("pbt.factors", f"must be two numbers, e.g. [0.8, 1.2], got {factors!r}")
    return PbtConfig(
        population=c.get(t, "population", (int,), "pbt"),
        interval=c.get(t, "interval", (int,), "pbt"),
        mutable=tuple(mutable),
        quantile=float(c.get(t, "quantile", (int, float), "pbt", 0.25)),
        resample_probability=float(c.get(t, "resample_probability", (int, float), "pbt", 0.25)),
        factors=tuple(float(f) for f in factors),
    )


def check_pbt(cfg: StudyConfig, c: Checker) -> None:
    """The values of ``[pbt]`` against the rest of the study, for any model family."""
    p = cfg.pbt
    if p is None:
        return
    if p.population < 2:
        c.fail("pbt.population", f"must be at least 2 (members copy each other), got {p.population}")
    if not 1 <= p.interval <= cfg.epochs:
        c.fail("pbt.interval", f"must be between 1 and study.epochs ({cfg.epochs}), got {p.interval}")
    if not 0 < p.quantile <= 0.5:
        c.fail("pbt.quantile", f"must be in (0, 0.5] (the share of the top and of the bottom), got {p.quantile}")
    if not 0 <= p.resample_probability <= 1:
        c.fail("pbt.resample_probability", f"must be between 0 and 1, got {p.resample_probability}")
    if not (0 < p.factors[0] < 1 < p.factors[1]):
        c.fail("pbt.factors", f"must be [a, b] with 0 < a < 1 < b (one shrinks, one grows), got {list(p.factors)}")
    if not p.mutable:
        c.fail("pbt.mutable", "must name at least one parameter of [space] that explore may change")
    for name in p.mutable:
        if name not in cfg.space:
            c.fail("pbt.mutable", f"names {name!r}, which is not in [space] (it has {', '.join(cfg.space)})")
    if len(set(p.mutable)) != len(p.mutable):
        c.fail("pbt.mutable", f"names a parameter twice: {list(p.mutable)}")
    if cfg.pruner.type != "none":
        c.fail(
            "pruner.type", f'must be "none" with [pbt] (exploit replaces the worst members), got {cfg.pruner.type!r}'
        )
    if cfg.sampler.type == "grid":
        c.fail("sampler.type", 'cannot be "grid" with [pbt]: the population is drawn, then explored')
    for key, bad, what in (
        ("batch_trials", cfg.batch_trials > 1, "1"),
        ("objectives", len(cfg.objectives) > 1, "one"),
        ("enqueue", bool(cfg.enqueue), "empty"),
    ):
        if bad:
            c.fail(f"study.{key}", f"must be {what} with [pbt] (members train one by one, on one metric)")
