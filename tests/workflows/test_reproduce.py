"""``mnist-hpo reproduce``: a tiny record built through the real code path, killed mid-trial, resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo.cli import main
from mnist_hpo.errors import UserError
from mnist_hpo.storages import open_storage
from mnist_hpo.workflows.record import journal_url

from ..conftest import DATA, ROOT, check_killed_trial_retried


def _reproduce(out, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MNIST_HPO_DATA": str(DATA)}
    cmd = [
        sys.executable,
        "-m",
        "mnist_hpo",
        "reproduce",
        "--only",
        "ae",
        "--out",
        str(out),
        "--trials",
        "3",
        "--epochs",
        "3",
        "--subset",
        "400",
        "--workers",
        "1",
        "--quiet",
        *extra,
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _trials(out):
    storage = open_storage(journal_url(out, "ae"))
    return {t.number: t for t in optuna.load_study(study_name="ae", storage=storage).get_trials()}


@pytest.mark.slow
def test_killed_record_resumes_without_training_anything_twice(tmp_path):
    out = tmp_path / "results"
    victim = _reproduce(out)
    deadline, killed = time.time() + 240, None
    while time.time() < deadline and killed is None:
        time.sleep(0.2)
        if not (out / "journals" / "ae.log").exists():
            continue
        try:
            trials = _trials(out)
        except KeyError:
            continue
        running = [t for t in trials.values() if t.state == TrialState.RUNNING and t.intermediate_values]
        if any(t.state == TrialState.COMPLETE for t in trials.values()) and running:
            victim.send_signal(signal.SIGKILL)  # mid-trial, like a power loss
            victim.wait()
            killed = running[0].number
    assert killed is not None, victim.communicate()[0] if victim.poll() is not None else "never got mid-trial"
    before = _trials(out)
    finished_before = {n: t for n, t in before.items() if t.state == TrialState.COMPLETE}

    resumed = _reproduce(out)
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, log
    after = _trials(out)
    retries = [check_killed_trial_retried(before, after, killed)]
    states = [t.state for t in after.values()]
    assert states.count(TrialState.COMPLETE) == 3 and len(states) == 4  # 3 trials + the one cut off
    best = min((t for t in after.values() if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    export = out / "exports" / "ae" / f"trial-{best.number}"
    assert (export / "model.safetensors").exists() and (export / "explore" / "explore.json").exists()

    # A complete record: a third start trains nothing and writes nothing to the journal.
    size = (out / "journals" / "ae.log").stat().st_size
    export_time = (export / "model.safetensors").stat().st_mtime
    again = _reproduce(out)
    log = again.communicate(timeout=120)[0]
    assert again.returncode == 0 and "3/3 trials in the record, complete" in log, log
    assert (out / "journals" / "ae.log").stat().st_size == size
    assert (export / "model.safetensors").stat().st_mtime == export_time
    print(
        f"\nRELIABILITY reproduce kill=1 killed_trial={killed} retried_as={retries[0].number} "
        f"finished_before={len(finished_before)} complete=3 trials_in_journal={len(states)} "
        "third_start_writes=0"
    )


def test_unknown_part_is_one_line(tmp_path, capsys):
    assert main(["reproduce", "--only", "ae,tables", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--only tables: unknown part" in err[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_record_with_several_workers(tmp_path):
    """The default on a multi-core machine: the study part is run by worker processes."""
    out = tmp_path / "results"
    proc = _reproduce(out, "--workers", "2", "--trials", "2", "--epochs", "1", "--subset", "200")
    log = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, log
    assert "(2 workers)" in log, log
    states = [t.state for t in _trials(out).values()]
    assert states.count(TrialState.COMPLETE) == 2, (states, log)
    assert list((out / "exports" / "ae").glob("trial-*/model.safetensors")), log


@pytest.mark.slow
def test_sigterm_stops_the_workers_and_queues_their_trials_again(tmp_path):
    """``kill PID`` (a scheduler, ``docker stop``) on the parent alone acts as Ctrl-C does: nothing is left RUNNING."""
    out = tmp_path / "results"
    proc = _reproduce(out, "--workers", "2", "--trials", "4", "--epochs", "30")
    deadline, running = time.time() + 240, []
    while time.time() < deadline and not running:
        time.sleep(0.2)
        if proc.poll() is not None:
            break
        try:
            trials = _trials(out)
        except (KeyError, FileNotFoundError, UserError):  # the record's folders are not made yet
            continue
        running = [t for t in trials.values() if t.state == TrialState.RUNNING and t.intermediate_values]
    assert running, proc.communicate()[0] if proc.poll() is not None else "never got mid-trial"
    proc.send_signal(signal.SIGTERM)
    log = proc.communicate(timeout=120)[0]
    assert proc.returncode == 143, log
    assert "mnist-hpo: terminated; finished trials are stored" in log and "Traceback" not in log, log
    after = _trials(out)
    assert not [t for t in after.values() if t.state == TrialState.RUNNING], log
    for t in running:
        assert after[t.number].state == TrialState.FAIL
        retry = [
            r
            for r in after.values()
            if r.state == TrialState.WAITING
            and r.params == t.params
            and r.user_attrs.get("seed") == t.user_attrs["seed"]
        ]
        assert retry, f"trial {t.number} was not queued again"
    print(
        f"\nRELIABILITY reproduce sigterm workers=2 interrupted={len(running)} exit={proc.returncode} "
        f"queued_again={len(running)} running_at_end=0 tracebacks=0"
    )


def test_the_estimate_creates_no_journal_for_parts_not_started(tmp_path):
    from mnist_hpo.workflows.record import Options, estimate, study_parts

    out = tmp_path / "results"
    (out / "journals").mkdir(parents=True)
    opts = Options(out=out, workers=1)
    rows = estimate(opts, study_parts())
    assert rows and not list((out / "journals").iterdir())


def _record_study(out, name, epochs_each, seconds_per_epoch, n=4):
    import datetime

    from optuna.distributions import CategoricalDistribution

    study = optuna.create_study(study_name=name, storage=open_storage(journal_url(out, name)))
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    for i in range(n):
        study.add_trial(
            optuna.trial.FrozenTrial(
                number=i,
                trial_id=i,
                state=TrialState.PRUNED,
                value=None,
                values=None,
                params={"latent_dim": 2},
                distributions={"latent_dim": CategoricalDistribution([2, 3])},
                user_attrs={},
                system_attrs={},
                intermediate_values={e: 0.05 for e in range(epochs_each)},
                datetime_start=start,
                datetime_complete=start + datetime.timedelta(seconds=epochs_each * seconds_per_epoch),
            )
        )


def test_the_estimate_of_a_part_not_started_borrows_its_protocols_record(tmp_path):
    """Hyperband trains ~30 epochs a trial in the record, successive halving ~12: a part not started
    takes its epochs per trial (and speed) from the same protocol on another seed, else from a study
    of the same pruner, and the guess only where the record has neither."""
    from mnist_hpo.workflows.record import DEFAULT_SECONDS_PER_EPOCH, Options, estimate, study_parts

    out = tmp_path / "results"
    (out / "journals").mkdir(parents=True)
    _record_study(out, "ae-hyperband", epochs_each=30, seconds_per_epoch=2.0)
    _record_study(out, "ae-tpe", epochs_each=10, seconds_per_epoch=3.0)
    parts = {p.name: p for p in study_parts()}
    rows = dict(
        estimate(
            Options(out=out, workers=2), [parts[n] for n in ("ae-hyperband", "ae-hyperband-2021", "ae-gp", "ae-pareto")]
        )
    )
    default = DEFAULT_SECONDS_PER_EPOCH["autoencoder"]
    assert rows["ae-hyperband"] == pytest.approx(46 * 30 * 2.0 / 2)  # its own 4 trials, its own speed
    assert rows["ae-hyperband-2021"] == pytest.approx(50 * 30 * 2.0 / 2)  # the same file on seed 2020
    # ae-gp: ae-tpe's pruner (successive halving), the default speed (another file's speed is not its own)
    assert rows["ae-gp"] == pytest.approx(50 * 10 * default / 2)
    assert rows["ae-pareto"] == pytest.approx(50 * 50 * default / 2)  # no pruner: every epoch
