"""What a stored study says: the config it was made with, its finished trials, its best trial, its Pareto front.

Reading, never opening: these take an open ``optuna.Study`` (opening one is
:mod:`mnist_hpo.storages`'). Every "there is none" is one clear line.
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..core.schema import StudyConfig
from ..errors import UserError

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def study_config(study: optuna.Study) -> StudyConfig:
    """The config a study was created with (stored as its ``config`` user attribute)."""
    try:
        return StudyConfig.from_dict(study.user_attrs["config"])
    except (KeyError, TypeError) as e:
        raise UserError(f"study {study.study_name!r} was not created by mnist-hpo (no usable config: {e})") from None


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that ran to their end: complete, or pruned by the pruner."""
    return study.get_trials(deepcopy=False, states=FINISHED)


def is_multi_objective(study: optuna.Study) -> bool:
    """Whether the study has several objectives (a Pareto front, no single best trial)."""
    return len(study.directions) > 1


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """The complete trials no other complete trial beats in every objective (finite values only), by number."""
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values is not None and all(math.isfinite(v) for v in t.values)
    ]
    signs = [-1 if d == optuna.study.StudyDirection.MAXIMIZE else 1 for d in study.directions]
    keys = [[s * v for s, v in zip(signs, t.values)] for t in trials]

    def dominated(a: list[float]) -> bool:
        return any(all(x <= y for x, y in zip(b, a)) and b != a for b in keys)

    return [t for t, k in zip(trials, keys) if not dominated(k)]


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The best complete trial with a finite value; a clear error when there is none.

    Of a population-based study: the best of the segments that end a member's training.

    A study with several objectives has no single best trial: the error names its Pareto front.
    """
    if is_multi_objective(study):
        front = pareto_front(study)
        if not front:
            raise UserError(f"study {study.study_name!r} has no complete trial yet; run the study first")
        raise UserError(
            f"study {study.study_name!r} has several objectives, so no single best trial; choose one "
            f"of its Pareto front with --trial N (trials {', '.join(str(t.number) for t in front)})"
        )
    # Population-based training: a member is judged where its training ends (its last segment; hpo.pbt).
    scored = [
        (t.value, t)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value) and t.user_attrs.get("pbt", {}).get("final", True)
    ]
    if not scored:
        raise UserError(f"study {study.study_name!r} has no complete trial yet; run the study first")
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(scored, key=lambda vt: vt[0], reverse=reverse)[0][1]


def chosen_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial ``number`` of the study, which must have completed; one clear error line otherwise."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        last = f"0 to {max(trials)}" if trials else "none yet"
        raise UserError(
            f"study {study.study_name!r} has no trial {number} (its trials: {last}); "
            f"see 'mnist-hpo show {study.study_name}'"
        )
    trial = trials[number]
    if trial.state != TrialState.COMPLETE:
        raise UserError(
            f"trial {number} of study {study.study_name!r} is {trial.state.name}, not COMPLETE; "
            "only a complete trial can be exported; see 'mnist-hpo show " + study.study_name + "'"
        )
    return trial
