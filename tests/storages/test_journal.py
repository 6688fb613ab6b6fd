"""Journal storage (``--storage journal:PATH``): opening, repair after a crash, stale trials, Ctrl-C.

The multi-process cases (4 workers, SIGKILL mid-trial) run on the journal too, in
tests/hpo/test_workers.py (its ``backend`` fixture).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from mnist_hpo.cli import main
from mnist_hpo.hpo.run import run_study
from mnist_hpo.storages import _journal as journal
from mnist_hpo.storages import open_storage
from mnist_hpo.tasks.autoencoder import AutoencoderTask


def _one_error_line(capsys) -> str:
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mnist-hpo: error: "), err
    return lines[0]


def test_a_file_that_is_not_a_journal_is_refused_unchanged(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n")
    assert main(["list", "--storage", f"journal:{path}"]) == 2
    assert "not an Optuna journal" in _one_error_line(capsys)
    assert path.read_text() == "my notes\n"


def test_a_folder_or_an_empty_path_is_refused(tmp_path, capsys):
    assert main(["list", "--storage", f"journal:{tmp_path}"]) == 2
    assert "is a folder" in _one_error_line(capsys)
    assert main(["list", "--storage", "journal:"]) == 2
    assert "needs a file path" in _one_error_line(capsys)


def test_a_half_written_last_line_is_cut_off_and_the_study_reads(tmp_path, ae_cfg, tiny, capsys):
    url = f"journal:{tmp_path / 'ae.log'}"
    run_study(ae_cfg.with_overrides(trials=1), storage_url=url, data=tiny, progress=False)
    path = journal.journal_path(url)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"op_code": 5, "worker_id": "x", "trial_id"')  # a write cut short by power loss
    storage = open_storage(url)
    assert path.read_bytes() == whole
    assert "half-written" in capsys.readouterr().err
    trials = optuna.load_study(study_name=ae_cfg.name, storage=storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE]
    print("\nRELIABILITY half-line backend=journal cut_bytes=45 study_reads=True")


def test_a_half_line_still_being_written_by_another_process_is_not_cut(tmp_path, ae_cfg, tiny, capsys):
    """A worker joining a running study opens the journal while another may be appending: a file
    seen ending mid-line is judged again under the writers' lock, once that write has ended."""
    import threading

    url = f"journal:{tmp_path / 'ae.log'}"
    run_study(ae_cfg.with_overrides(trials=1), storage_url=url, data=tiny, progress=False)
    path = journal.journal_path(url)
    whole = path.read_bytes()
    line = next(ln for ln in whole.splitlines(keepends=True) if b'"op_code":2' in ln.replace(b" ", b""))
    opened = []
    with journal.journal_lock(path):  # a writer holds the lock, half-way through its line
        path.write_bytes(whole + line[:20])
        opener = threading.Thread(target=lambda: opened.append(open_storage(url)))
        opener.start()
        opener.join(timeout=1.0)
        assert opener.is_alive() and path.read_bytes() == whole + line[:20]
        with open(path, "ab") as f:
            f.write(line[20:])
    opener.join(timeout=30)
    assert opened and path.read_bytes() == whole + line
    assert "half-written" not in capsys.readouterr().err
    trials = optuna.load_study(study_name=ae_cfg.name, storage=opened[0]).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE]
    print("\nRELIABILITY half-line-live backend=journal waited_for_writer=True cut_bytes=0 study_reads=True")


def test_stale_rules(monkeypatch):
    now = time.time()
    me = journal.this_process()

    def running(owner, started=None):
        return optuna.trial.FrozenTrial(
            number=0,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=started or datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={journal.OWNER: owner} if owner else {},
            system_attrs={},
            intermediate_values={},
            trial_id=0,
        )

    assert not journal.is_stale(running(me), grace=60)  # this very process
    assert journal.is_stale(running({**me, "pid": 2**22 + 7}), grace=60)  # same machine, no such process
    assert journal.is_stale(running({**me, "start": "1"}), grace=60)  # our pid, but a different process
    elsewhere = {**me, "host": "another-host", "beat": now - 30}
    assert not journal.is_stale(running(elsewhere), grace=60, now=now)  # another machine, recent beat
    assert journal.is_stale(running({**elsewhere, "beat": now - 61}), grace=60, now=now)
    assert not journal.is_stale(running(None), grace=60)  # just started, not claimed yet
    assert journal.is_stale(running(None, started=datetime.now() - timedelta(seconds=120)), grace=60)


@pytest.mark.parametrize("backend", ["journal", "sqlite"])
def test_ctrl_c_requeues_the_interrupted_trial_with_its_parameters_and_seed(
    backend, tmp_path, ae_cfg, tiny, monkeypatch
):
    url = f"journal:{tmp_path / 'ae.log'}" if backend == "journal" else f"sqlite:///{tmp_path / 'ae.db'}"
    real_fit = AutoencoderTask.fit
    calls = []

    def interrupted_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderTask, "fit", interrupted_second)
    with pytest.raises(KeyboardInterrupt):
        run_study(ae_cfg, storage_url=url, data=tiny, progress=False)
    trials = optuna.load_study(study_name=ae_cfg.name, storage=open_storage(url)).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    cut, queued = trials[1], trials[2]
    assert queued.params == cut.params and queued.user_attrs["seed"] == cut.user_attrs["seed"]
    assert journal.OWNER not in queued.user_attrs

    run_study(ae_cfg, storage_url=url, data=tiny, progress=False)  # resume: the queued trial runs first
    trials = optuna.load_study(study_name=ae_cfg.name, storage=open_storage(url)).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == ae_cfg.trials
    assert trials[2].state == TrialState.COMPLETE and trials[2].params == cut.params
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    print(
        f"\nRELIABILITY ctrl-c backend={backend} interrupted=1 requeued_same_params=True same_seed=True "
        f"complete={len(complete)} running=0"
    )


def test_ctrl_c_requeues_a_whole_stack_on_the_journal(tmp_path, ae_cfg, tiny, monkeypatch):
    url = f"journal:{tmp_path / 'ae.log'}"
    cfg = ae_cfg.with_overrides(batch_trials=2)
    real = AutoencoderTask.fit_stacked
    seen_owner = []

    def interrupted(self, params, seeds, *, epochs, on_epoch=None):
        study = optuna.load_study(study_name=cfg.name, storage=open_storage(url))
        seen_owner.extend(journal.OWNER in t.user_attrs for t in study.get_trials(states=(TrialState.RUNNING,)))
        raise KeyboardInterrupt

    monkeypatch.setattr(AutoencoderTask, "fit_stacked", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, storage_url=url, data=tiny, progress=False)
    assert seen_owner == [True, True]  # both trials of the stack were claimed while they trained
    trials = optuna.load_study(study_name=cfg.name, storage=open_storage(url)).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 2 + [TrialState.WAITING] * 2
    assert [t.params for t in trials[2:]] == [t.params for t in trials[:2]]

    monkeypatch.setattr(AutoencoderTask, "fit_stacked", real)
    run_study(cfg, storage_url=url, data=tiny, progress=False)
    trials = optuna.load_study(study_name=cfg.name, storage=open_storage(url)).get_trials()
    assert [t.state for t in trials].count(TrialState.COMPLETE) == cfg.trials
    assert trials[2].params == trials[0].params and trials[2].state == TrialState.COMPLETE
    print(
        f"\nRELIABILITY ctrl-c-stack backend=journal stack=2 claimed=2 requeued=2 "
        f"complete={[t.state for t in trials].count(TrialState.COMPLETE)} running=0"
    )


@pytest.mark.parametrize("callback", ["journal", "rdb"])
def test_only_crashes_use_up_retries_interruptions_never_do(callback, capsys):
    """A record resumed over many sessions is interrupted again and again; its draws must survive that."""
    from optuna.distributions import IntDistribution

    from mnist_hpo.storages import MAX_RETRY, RetryStaleTrials

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    crash = (lambda s, t: RetryStaleTrials(max_retry=MAX_RETRY)(s, t)) if callback == "rdb" else journal.retry
    dist = {"x": IntDistribution(0, 9)}
    study.add_trial(
        optuna.create_trial(state=TrialState.FAIL, params={"x": 7}, distributions=dist, user_attrs={"seed": 11})
    )

    def fail_and_retry(interrupted: bool) -> FrozenTrial | None:
        before = len(study.trials)
        if interrupted:
            journal.retry(study, study.trials[-1], interrupted=True)
        else:
            crash(study, study.trials[-1])
        if len(study.trials) == before:
            return None
        queued = study.trials[-1]
        assert queued.state == TrialState.WAITING and queued.params == {"x": 7} and queued.user_attrs["seed"] == 11
        # the retry runs and ends the same way: a FAIL trial with the queued one's attributes
        study.add_trial(
            optuna.create_trial(
                state=TrialState.FAIL,
                params=queued.params,
                distributions=dist,
                user_attrs=queued.user_attrs,
                system_attrs=queued.system_attrs,
            )
        )
        return study.trials[-1]

    for _ in range(6):  # many more interruptions than MAX_RETRY
        assert fail_and_retry(interrupted=True) is not None
    for _ in range(MAX_RETRY):
        assert fail_and_retry(interrupted=False) is not None
    last = study.trials[-1]
    assert last.system_attrs["failed_trial"] == 0 and len(last.system_attrs["retry_history"]) == 6 + MAX_RETRY
    capsys.readouterr()
    assert fail_and_retry(interrupted=False) is None  # the crash after MAX_RETRY crashes is not retried
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"its process died {MAX_RETRY + 1} times" in err[0] and "not retried again" in err[0]
    print(
        f"\nRELIABILITY retries {callback} interruptions=6 queued_again=6 crashes_retried={MAX_RETRY} "
        f"crash_{MAX_RETRY + 1}_retried=no"
    )
