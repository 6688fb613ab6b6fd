"""A member as an export and a segment as a rerun: its weights, curves and lineage, or its training again.

An export of population-based training holds the member's own weights, the checkpoint its
last segment ended with (checked against its sha256), not a retrain: the weights grew from
other members' checkpoints, so no single run replays them. ``verify`` recomputes the test
metrics from these weights as from any export's. Its curves are those of its lineage, epoch
by epoch, and ``export.json`` records the lineage itself (:func:`~._lineage.lineage_record`).

A rerun trains one segment again from the checkpoint it started from: the same parameters,
seed and epochs give the same value and the same end checkpoint, byte for byte, on a CPU.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from ...core.figures import EVAL_EPOCHS
from ...core.schema import StudyConfig
from ...errors import UserError
from ...tasks import FitResult, Task
from ...train.state import state_bytes
from ..queries import study_config
from ._checkpoints import load_checkpoint, train_segment
from ._figure import attach_figure, schedule_figure
from ._lineage import lineage, lineage_record
from ._records import END, PBT


def member_export(
    study: optuna.Study, trial: FrozenTrial, task: Task, folder: Path, cfg: StudyConfig | None = None
) -> tuple[FitResult, dict[str, Any], list[Path]]:
    """The member whose last segment is ``trial``: (its weights and its lineage's curves as a result,
    what ``export.json`` records of it under ``pbt``, the figure written into ``folder``)."""
    cfg = cfg or study_config(study)
    state = load_checkpoint(trial.user_attrs[END], f"study {study.study_name} trial {trial.number}")
    model = task.build(task.arch(trial.params)).to(task.device)
    model.load_state_dict(state.model_weights())
    trials = study.get_trials(deepcopy=False)
    chain = lineage(trials, trial)
    history: dict[str, list[Any]] = {}
    for t in chain:
        first = t.user_attrs[PBT]["epochs"][0]
        for key in t.user_attrs[END].get("curves", []):
            values = t.user_attrs.get(key, [])
            history.setdefault(key, []).extend([first + e for e in values] if key == EVAL_EPOCHS else values)
    metric = (study.metric_names or [task.metric])[0]
    figure = attach_figure(study, schedule_figure(cfg, trials, trial, metric), folder)
    assert trial.value is not None  # a member's last segment, complete
    return FitResult(model, float(trial.value), history), lineage_record(cfg, trials, trial), [figure]


def rerun_segment(task: Task, trial: FrozenTrial, *, where: str) -> tuple[float, bool]:
    """Train segment ``trial`` again from its start checkpoint (checked against its sha256): the value it
    ends with, and whether its end checkpoint is the recorded one, byte for byte."""
    info = trial.user_attrs[PBT]
    if trial.state != optuna.trial.TrialState.COMPLETE or END not in trial.user_attrs:
        raise UserError(
            f"{where} is a population-based training segment that did not complete "
            f"({trial.state.name}), so it has no end checkpoint to compare; rerun a complete one"
        )
    start = load_checkpoint(info["start"], where) if info.get("start") else None
    first, stop = info["epochs"]
    result, end = train_segment(
        task, trial.params, seed=int(trial.user_attrs["seed"]), start=start, epochs=stop - first
    )
    return float(result.value), hashlib.sha256(state_bytes(end)).hexdigest() == trial.user_attrs[END]["sha256"]
