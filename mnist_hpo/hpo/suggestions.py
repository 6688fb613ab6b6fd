"""Suggesting a study's search space to Optuna, and printing it.

What each entry of the space stands for (the report's drawn lists, made reproducible from
the study seed) is :mod:`mnist_hpo.core.space`'s.
"""

from __future__ import annotations

from typing import Any

import optuna

from ..core.pbt import planned_trials
from ..core.schema import ParamSpec, StudyConfig
from ..core.space import Resolved


def suggest(trial: optuna.Trial, resolved: Resolved) -> dict[str, Any]:
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


def distributions(resolved: Resolved) -> dict[str, optuna.distributions.BaseDistribution]:
    """The distribution :func:`suggest` gives each parameter (for values set without a suggestion)."""
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for name, values in resolved.items():
        if isinstance(values, ParamSpec) and values.kind == "float":
            out[name] = optuna.distributions.FloatDistribution(values.low, values.high, log=values.log)
        elif isinstance(values, ParamSpec):
            out[name] = optuna.distributions.IntDistribution(int(values.low), int(values.high), log=values.log)
        else:
            out[name] = optuna.distributions.CategoricalDistribution(list(dict.fromkeys(values)))
    return out


def print_space(cfg: StudyConfig, resolved: Resolved) -> None:
    """The study and its resolved space, as a study or worker prints them at start."""
    runs = f"{cfg.trials} trial{'s' if cfg.trials != 1 else ''} x {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}"
    if cfg.pbt is not None:
        runs = (
            f"population-based training: {cfg.pbt.population} members x {cfg.epochs} epochs in segments of "
            f"{cfg.pbt.interval} ({planned_trials(cfg)} trials), mutable: {', '.join(cfg.pbt.mutable)}"
        )
    print(f"study {cfg.name}: {cfg.model} on {cfg.dataset}, {cfg.sampler.type} sampler, {runs}, seed {cfg.seed}")
    for name, values in resolved.items():
        if isinstance(values, list):
            print(f"  {name}: {values}")
        else:  # a range, left to the sampler
            print(f"  {name}: {values.kind} in [{values.low}, {values.high}]{' (log scale)' if values.log else ''}")
