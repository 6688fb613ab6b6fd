"""Optuna's RDB storage as the workers use it (mnist_hpo/storages/_rdb.py): a trial that never beat is failed and queued
again, so no worker waits for it for ever; a queued retry whose reply was lost is queued once."""

from __future__ import annotations

import signal
import sqlite3
import time
import warnings

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from mnist_hpo.hpo.run import run_study
from mnist_hpo.hpo.supervision import fail_stale_trials
from mnist_hpo.storages import StackHeartbeat, open_storage, trial_id
from mnist_hpo.storages import _heartbeat as settings
from mnist_hpo.storages import _journal as journal
from mnist_hpo.storages import _outage as outage


@pytest.fixture(autouse=True)
def own_outage(monkeypatch):
    """This process's view of the storage's reachability, the test's own (the lost replies below are outages)."""
    monkeypatch.setattr(outage, "OUTAGE", outage._Outage())


@pytest.fixture
def rdb(tmp_path):
    return open_storage(f"sqlite:///{tmp_path / 'rdb.db'}", heartbeat_interval=1, grace_period=2)


def ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # heartbeats outside optimize(): beaten here by hand
        return study.ask()


def lose_the_reply_once(monkeypatch, *, queued: bool) -> None:
    """The next creation of a trial (``queued``: a retry queued with a template; else ``ask``'s) is stored, but its
    caller is told the storage could not be reached, as when the reply to the commit is lost in an outage."""
    real = optuna.storages.RDBStorage._create_new_trial
    armed = [True]

    def create(self, study_id, template_trial=None):
        made = real(self, study_id, template_trial)
        if armed[0] and (template_trial is not None) == queued:
            armed[0] = False
            raise sqlalchemy.exc.OperationalError("COMMIT", None, sqlite3.OperationalError("disk I/O error"))
        return made

    monkeypatch.setattr(optuna.storages.RDBStorage, "_create_new_trial", create)


def states(study: optuna.Study) -> dict[int, TrialState]:
    return {t.number: t.state for t in study.get_trials(deepcopy=False)}


def test_a_running_trial_that_never_beat_is_failed_and_queued_again(rdb):
    study = optuna.create_study(storage=rdb, study_name="never-beat")
    orphan, alive = ask(study), ask(study)
    with StackHeartbeat(rdb, [trial_id(alive)]):
        fail_stale_trials(study)  # first seen without a heartbeat: its worker may be about to beat
        assert states(study)[orphan.number] == TrialState.RUNNING
        time.sleep(2.5)  # past the grace period (2 s)
        fail_stale_trials(study)
        now = states(study)
        retries = [t for t in study.get_trials(deepcopy=False) if t.system_attrs.get("failed_trial") == orphan.number]
    assert now[orphan.number] == TrialState.FAIL and now[alive.number] == TrialState.RUNNING
    assert [t.state for t in retries] == [TrialState.WAITING]


def test_a_retry_whose_reply_was_lost_is_queued_once(rdb, monkeypatch):
    study = optuna.create_study(storage=rdb, study_name="retry-once")
    trial = ask(study)
    trial.suggest_float("x", 0, 1)
    study.tell(trial, state=TrialState.FAIL)
    lose_the_reply_once(monkeypatch, queued=True)
    journal.retry(study, study.get_trials(deepcopy=False)[0])  # retried once by the storage layer, found stored
    waiting = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].params == trial.params
    assert outage.OUTAGE.count == 1


def test_a_lost_reply_to_a_trial_creation_does_not_hold_the_study_up(ae_cfg, tiny, storage, monkeypatch):
    """A worker's ask: the trial is created but the reply lost, the retried call creates another, and the first
    stays RUNNING without a heartbeat. Before, the worker then waited for it for ever (a CI run timed out so)."""
    monkeypatch.setattr(settings, "HEARTBEAT_INTERVAL", 1)  # grace 3 s
    lose_the_reply_once(monkeypatch, queued=False)

    def still_waiting(*_):
        raise AssertionError("run_study still waits for a trial nobody runs")

    previous = signal.signal(signal.SIGALRM, still_waiting)
    signal.alarm(600)  # a guard against the wait without end, not a measure (shared CI machines are slow)
    try:
        study = run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    trials = study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.state for t in trials].count(TrialState.COMPLETE) == ae_cfg.trials
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert len(failed) == 1 and not failed[0].params  # the trial nobody ran, failed and queued again
    assert any(t.system_attrs.get("failed_trial") == failed[0].number for t in trials)
