"""A member's lineage: the segments its final weights grew from, and the schedule of hyperparameters they held.

The weights a segment ends with grew from exactly one checkpoint (its ``parent``'s), so
following ``parent`` back from the best member's last segment gives one chain of segments,
one per generation, hopping to another member at each exploit. That chain is the schedule
population-based training found: which hyperparameters held from which epoch, and whose
weights the member took, when. ``export`` records it, ``show`` prints it.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial

from ...core.pbt import generations, pbt_settings
from ...core.schema import StudyConfig
from ...errors import UserError
from ..queries import best_trial, study_config
from ._records import END, PBT, Population, is_segment


def lineage(trials: list[FrozenTrial], last: FrozenTrial) -> list[FrozenTrial]:
    """The segments ``last``'s weights grew from, generation 0 first, ``last`` last."""
    by_number = {t.number: t for t in trials}
    chain = [last]
    while (parent := chain[-1].user_attrs[PBT].get("parent")) is not None:
        chain.append(by_number[parent])
    return chain[::-1]


def lineage_record(cfg: StudyConfig, trials: list[FrozenTrial], last: FrozenTrial) -> dict[str, Any]:
    """What an export records of a member: its segments, the schedule of each parameter, the checkpoint it ends with.

    ``segments``: one per generation, with the epochs it covered (1-based, both ends included),
    its parameters and value, and ``took_weights_of`` (the member whose checkpoint it started from
    when that was another's: an exploit) and ``explored`` (the parameters explore changed).
    ``schedule``: for each parameter, the values it held, each ``from_epoch`` on.
    """
    segments: list[dict[str, Any]] = []
    schedule: dict[str, list[dict[str, Any]]] = {}
    for t in lineage(trials, last):
        info = t.user_attrs[PBT]
        first, stop = info["epochs"]
        segments.append(
            {
                "trial": t.number,
                "member": info["member"],
                "generation": info["generation"],
                "first_epoch": first + 1,
                "last_epoch": stop,
                "params": t.params,
                "value": t.value,
                "took_weights_of": info["parent_member"] if info.get("exploited") else None,
                "parent_trial": info.get("parent"),
                "explored": info.get("explored", {}),
                "start_sha256": (info.get("start") or {}).get("sha256"),
                "end_sha256": t.user_attrs[END]["sha256"],
            }
        )
        for name, value in t.params.items():
            held = schedule.setdefault(name, [])
            if not held or held[-1]["value"] != value:
                held.append({"from_epoch": first + 1, "value": value})
    p = pbt_settings(cfg)
    return {
        "member": last.user_attrs[PBT]["member"],
        "population": p.population,
        "interval": p.interval,
        "epochs": cfg.epochs,
        "mutable": list(p.mutable),
        "quantile": p.quantile,
        "resample_probability": p.resample_probability,
        "factors": list(p.factors),
        "checkpoint": last.user_attrs[END],
        "segments": segments,
        "schedule": schedule,
    }


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def schedule_lines(study: optuna.Study) -> list[str]:
    """``show``'s account of a population-based study: its size, its exploits, and the best member's schedule."""
    if not (study.user_attrs.get("config") or {}).get("pbt"):
        return []  # not population-based (or not made by mnist-hpo at all)
    cfg = study_config(study)
    try:
        best = best_trial(study)  # among the segments that end a member's training
    except UserError:
        return []
    if not is_segment(best):
        return []
    trials = study.get_trials(deepcopy=False)
    population = Population(cfg, trials)
    pbt = pbt_settings(cfg)
    exploits = sum(
        1
        for t in population.trials
        if t.user_attrs.get(PBT, {}).get("exploited")
        and population.duplicate_of(t) is None
        and population.key(t) is not None
    )
    metric = (study.metric_names or ["value"])[0]
    member = best.user_attrs[PBT]["member"]
    lines = [
        f"population-based training: {pbt.population} members x {generations(cfg)} segments of "
        f"{pbt.interval} epochs ({cfg.epochs} epochs each); {exploits} exploits; mutable: "
        f"{', '.join(pbt.mutable)}",
        f"best member {member}: trial {best.number}, {metric} {best.value:.6g} after epoch "
        f"{best.user_attrs[PBT]['epochs'][1]}; the schedule its weights grew from:",
    ]
    for seg in lineage_record(cfg, trials, best)["segments"]:
        shown = " ".join(f"{k}={_fmt(v)}" for k, v in seg["params"].items() if k in pbt.mutable)
        took = (
            f", took member {seg['took_weights_of']}'s weights (trial {seg['parent_trial']})"
            if seg["took_weights_of"] is not None
            else ""
        )
        explored = (
            "; explored " + ", ".join(f"{k} {_fmt(a)} -> {_fmt(b)}" for k, (a, b) in seg["explored"].items())
            if seg["explored"]
            else ""
        )
        lines.append(
            f"  epochs {seg['first_epoch']}-{seg['last_epoch']}: member {seg['member']}, trial "
            f"{seg['trial']}{took}{explored}; {shown}; {metric} {_fmt(seg['value'])}"
        )
    fixed = {k: v for k, v in best.params.items() if k not in pbt.mutable}
    if fixed:
        lines.append("  fixed from the start: " + ", ".join(f"{k}={_fmt(v)}" for k, v in fixed.items()))
    return lines
