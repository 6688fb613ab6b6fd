"""A worker's loop over a population (mnist_hpo/hpo/pbt/_run.py), on stored trials made by hand, training nothing:
which trial it claims, what it queues when a worker died for good, and when it stops."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo.errors import UserError
from mnist_hpo.hpo.pbt import DISCARDED, PBT, queue_next, queue_population, run_population
from mnist_hpo.storages import open_storage


class Claimed(Exception):
    """What the stand-in for running a trial raises: the loop claimed this trial."""


def claimed(objective, trial):
    raise Claimed(trial.number)


def stored(tmp_path, trials) -> optuna.Study:
    study = optuna.create_study(study_name="pbt", storage=open_storage(f"sqlite:///{tmp_path / 'p.db'}"))
    for t in trials:
        study.add_trial(
            optuna.create_trial(state=t.state, value=t.value, user_attrs=t.user_attrs, system_attrs=t.system_attrs)
        )
    return study


def loop(study, cfg, **kwargs):
    return run_population(
        study, cfg, task=None, run_trial=claimed, after_trial=lambda t: None, stopped=lambda: False, **kwargs
    )


def test_the_lowest_generation_that_may_run_is_claimed_first(pbt_cfg, segment, tmp_path):
    W = TrialState.WAITING
    study = stored(
        tmp_path,
        [
            segment(0, 0),
            segment(1, 1),
            segment(2, 2),
            segment(3, 3, state=TrialState.FAIL),
            segment(4, 0, 1, W, started=False),
            segment(5, 3, 0, W, failed_trial=3),
        ],
    )
    with pytest.raises(Claimed) as e:
        loop(study, pbt_cfg)
    assert e.value.args == (5,)  # member 3's retry: generation 1 waits for it


def test_a_segment_nobody_queued_is_queued_and_run(pbt_cfg, segment, tmp_path):
    # member 0's segment ended with an error and its worker died before queueing the next; the others went on
    study = stored(
        tmp_path,
        [
            segment(0, 0, error="x", state=TrialState.FAIL),
            segment(1, 1),
            segment(2, 2),
            segment(3, 3),
            *[segment(3 + m, m, 1) for m in (1, 2, 3)],
        ],
    )
    with pytest.raises(Claimed) as e:
        loop(study, pbt_cfg)
    queued = study.get_trials()[e.value.args[0]]
    assert queued.number == 7 and queued.user_attrs[PBT] == {"member": 0, "generation": 1}
    # (and the others' next segments, which these hand-made trials did not queue either)
    assert [t.user_attrs[PBT] for t in study.get_trials()[8:]] == [{"member": m, "generation": 2} for m in (1, 2, 3)]
    before = len(study.get_trials())
    queue_next(study, pbt_cfg, 0, 0)  # asked again (as a retry of its predecessor would): queued once only
    assert len(study.get_trials()) == before


def test_a_generation_that_failed_whole_stops_the_study_in_one_line(pbt_cfg, segment, tmp_path):
    study = stored(tmp_path, [segment(m, m, state=TrialState.PRUNED) for m in range(4)])
    with pytest.raises(
        UserError,
        match=r"study pbt: every member's segment of generation 0 failed or diverged "
        r"\(last: no error recorded\), so no checkpoint is left",
    ):
        loop(study, pbt_cfg)


def test_a_surplus_member_is_discarded_unrun_and_the_queue_fills_generation_zero(pbt_cfg, segment, tmp_path):
    study = stored(
        tmp_path,
        [
            segment(0, 0, state=TrialState.RUNNING),
            segment(1, 1, state=TrialState.RUNNING),
            segment(2, 2, state=TrialState.RUNNING),
        ],
    )
    queue_population(study, pbt_cfg)  # the one missing member, queued
    assert [t.user_attrs[PBT] for t in study.get_trials()[3:]] == [{"member": 3, "generation": 0}]
    surplus = optuna.create_trial(state=TrialState.WAITING)  # a fifth trial of generation 0 (two workers at once)
    study.add_trial(surplus)
    with pytest.raises(Claimed) as e:
        loop(study, pbt_cfg)
    assert e.value.args == (3,)
    fifth = study.get_trials()[4]
    assert fifth.state == TrialState.FAIL and "surplus" in fifth.user_attrs[DISCARDED]


def test_a_finished_population_claims_nothing(pbt_cfg, segment, tmp_path):
    study = stored(tmp_path, [segment(4 * g + m, m, g) for g in range(3) for m in range(4)])
    assert loop(study, pbt_cfg) is None
