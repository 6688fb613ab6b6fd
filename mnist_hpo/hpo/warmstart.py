"""Warm start: configurations a study runs before its sampler proposes any.

Two sources: the study file's ``[study] enqueue = [{...}, ...]`` (validated against the
space in :mod:`mnist_hpo.config`), and ``--warm-start OTHER``: the best complete trials
of another study in the same storage. Each source is queued once per study (Optuna's
``enqueue_trial(..., skip_if_exists=True)``) and recorded in the study's user attribute
``warm_start``, so a resume or a joining worker does not queue it again.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..core.schema import ParamSpec, StudyConfig
from ..core.space import Resolved, resolve_space
from ..errors import UserError

WarmStart = tuple[str, list[dict[str, Any]]]  # (the key recorded once applied, the configurations)


def _fits(values: list[Any] | ParamSpec, value: Any) -> bool:
    if isinstance(values, ParamSpec):
        types = (int,) if values.kind == "int" else (int, float)
        return not isinstance(value, bool) and isinstance(value, types) and values.low <= value <= values.high
    return value in values


def _best(study: optuna.Study, k: int) -> list[FrozenTrial]:
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and all(math.isfinite(v) for v in t.values)
    ]
    if len(study.directions) > 1:  # no single ranking: the Pareto front, best first objective first
        front = {t.number for t in study.best_trials}
        trials = [t for t in trials if t.number in front]
    reverse = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=lambda t: t.values[0], reverse=reverse)[:k]


def warm_start_trials(cfg: StudyConfig, storage: optuna.storages.BaseStorage, source: str, k: int = 5) -> WarmStart:
    """The parameters of the ``k`` best complete trials of study ``source``, as far as ``cfg``'s space holds them.

    A parameter the space lacks, or a value it cannot suggest, is left to the sampler.
    Every problem is one :class:`UserError` before anything is stored.
    """
    if source == cfg.name:
        raise UserError(f"--warm-start {source}: a study cannot warm-start from itself; name another stored study")
    if cfg.pbt is not None:
        raise UserError(f"--warm-start {source}: a population-based study draws its own population; leave it out")
    try:
        other = optuna.load_study(study_name=source, storage=storage)
    except KeyError:
        names = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage)) or "none"
        raise UserError(f"--warm-start {source}: no such study in this storage (studies there: {names})") from None
    best = _best(other, k)
    if not best:
        raise UserError(f"--warm-start {source}: that study has no complete trial yet; run it first")
    resolved: Resolved = resolve_space(cfg.space, cfg.seed)
    configs = [{n: v for n, v in t.params.items() if n in resolved and _fits(resolved[n], v)} for t in best]
    configs = [c for c in configs if c]
    if not configs:
        raise UserError(
            f"--warm-start {source}: none of its best trials' values fit the space of study "
            f"{cfg.name!r} ({', '.join(resolved)}); warm-start from a study with a matching space"
        )
    return f"study {source}, best {k}", configs


def _file_key(entries: tuple[Any, ...]) -> str:
    digest = hashlib.sha256(json.dumps(list(entries), sort_keys=True).encode()).hexdigest()[:12]
    return f"study file enqueue {digest}"


def apply_warm_start(study: optuna.Study, cfg: StudyConfig, warm: WarmStart | None = None) -> int:
    """Queue the study file's configurations and ``warm``'s, each source once per study; returns how many."""
    sources = ([(_file_key(cfg.enqueue), [dict(e) for e in cfg.enqueue])] if cfg.enqueue else []) + (
        [warm] if warm else []
    )
    applied = list(study.user_attrs.get("warm_start", []))
    queued = 0
    for key, configs in sources:
        if key in applied:
            continue
        for params in configs:
            study.enqueue_trial(params, user_attrs={"warm_start": key}, skip_if_exists=True)
            queued += 1
        applied.append(key)
        study.set_user_attr("warm_start", applied)
    return queued
