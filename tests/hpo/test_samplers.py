"""Per-trial seeded samplers: a study interrupted and resumed draws what an uninterrupted one draws."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo import storages
from mnist_hpo.hpo.samplers import TrialSeededGPSampler, TrialSeededRandomSampler, TrialSeededTPESampler, draw_index


def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0, 1) + trial.suggest_categorical("c", [1, 2, 3]) + trial.suggest_int("n", 0, 99)


def _configs(study) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in study.trials if t.state == TrialState.COMPLETE]


def _interrupted_run(sampler, n: int, *, interrupt_at: tuple[int, ...], crash: bool = False) -> optuna.Study:
    """``n`` complete trials; when ``k`` trials are complete for each ``k`` in ``interrupt_at``, a new trial
    draws its parameters and is cut off (FAIL), then queued again as a crash or an interrupt would be."""
    study = optuna.create_study(sampler=sampler)
    pending = list(interrupt_at)
    while len(_configs(study)) < n:
        if pending and pending[0] == len(_configs(study)):
            pending.pop(0)
            trial = study.ask()
            objective(trial)  # it drew its parameters, then its process was stopped
            study.tell(trial, state=TrialState.FAIL)
            storages.retry(study, study.trials[-1], interrupted=not crash)
        study.optimize(objective, n_trials=1)
    return study


@pytest.mark.parametrize("crash", [False, True])
def test_random_search_draws_the_same_configurations_however_often_it_was_interrupted(crash):
    plain = optuna.create_study(sampler=TrialSeededRandomSampler(7))
    plain.optimize(objective, n_trials=8)
    stopped = _interrupted_run(TrialSeededRandomSampler(7), 8, interrupt_at=(2, 5), crash=crash)
    assert len(stopped.trials) == 10 and sum(t.state == TrialState.FAIL for t in stopped.trials) == 2
    assert sorted(_configs(stopped)) == sorted(_configs(plain))  # the same 8 draws, none lost, none new
    assert len(set(_configs(stopped))) == 8


def test_draw_index_skips_retries_and_stays_distinct():
    study = _interrupted_run(TrialSeededRandomSampler(3), 6, interrupt_at=(1, 1, 4))
    fresh = [t for t in study.trials if "failed_trial" not in t.system_attrs]
    indices = [draw_index(study, t) for t in fresh]
    assert indices == list(range(len(fresh)))


@pytest.mark.parametrize("sampler", [TrialSeededTPESampler, TrialSeededGPSampler])
def test_model_based_samplers_startup_draws_survive_an_interruption(sampler):
    """Before the model takes over (n_startup_trials) the proposals are random draws: the same ones."""
    kwargs = {"n_startup_trials": 6}
    plain = optuna.create_study(sampler=sampler(5, **kwargs))
    plain.optimize(objective, n_trials=5)
    stopped = _interrupted_run(sampler(5, **kwargs), 5, interrupt_at=(2,))
    assert sorted(_configs(stopped)) == sorted(_configs(plain))
