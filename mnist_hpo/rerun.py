"""Re-run one stored trial: its parameters, its stored seed, the study's config; compare the metric.

A trial's seed is derived from the study seed and the trial number and stored as
the trial's user attribute ``seed`` (a retried trial inherits it), so training the
same configuration again on the same machine must give the same validation metric.
"""

from __future__ import annotations

from dataclasses import dataclass

from .data import Dataset
from .errors import UserError
from .export import study_config
from .study import load_data, load_existing_study
from .tasks import make_task


@dataclass(frozen=True)
class Rerun:
    trial: int
    seed: int
    stored: float
    value: float

    @property
    def identical(self) -> bool:
        return self.value == self.stored


def rerun_trial(study_name: str, number: int, *, storage_url: str | None = None, data: Dataset | None = None) -> Rerun:
    """Train trial ``number`` of ``study_name`` again with its stored seed; the stored and new metric."""
    study = load_existing_study(study_name, storage_url)
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not trials or trials[0].value is None or "seed" not in trials[0].user_attrs:
        raise UserError(f"study {study_name!r} has no finished trial {number} with a value and a seed; "
                        f"'mnist-hpo show {study_name}' lists its trials")
    trial = trials[0]
    cfg = study_config(study)
    task = make_task(cfg, data if data is not None else load_data(cfg))
    seed = int(trial.user_attrs["seed"])
    result = task.fit(trial.params, seed=seed, epochs=cfg.epochs, full=False)
    return Rerun(trial.number, seed, float(trial.value), float(result.value))
