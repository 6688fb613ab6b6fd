"""Population-based training with real worker processes, on a journal and on PostgreSQL: two workers share a
population; a worker killed mid-segment loses only that segment.

The workers are ``python -m mnist_hpo`` processes on a tiny population (tests/conftest.py:
``TINY_PBT``). Each test prints one ``RELIABILITY`` line, as tests/hpo/test_workers.py's do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo.artifacts.rerun import rerun_trial
from mnist_hpo.config import load_study_config
from mnist_hpo.hpo.pbt import DISCARDED, END, PBT, Population
from mnist_hpo.storages import open_storage

from ..conftest import DATA, ROOT, tiny_pbt_file

pytestmark = pytest.mark.processes


@pytest.fixture(params=["journal", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path):
    if request.param == "journal":
        (tmp_path / "journals").mkdir()  # an explicit storage's folder is never made for it
        return f"journal:{tmp_path / 'journals' / 'pbt.log'}"
    return request.getfixturevalue("pg_url")


def mnist_hpo(tmp_path, *args: str, heartbeat: int | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MNIST_HPO_DATA": str(DATA),
        "MNIST_HPO_STORAGE_DIR": str(tmp_path / "storage"),
        "MNIST_HPO_WORKERS": "2",
    }  # one torch thread each
    if heartbeat:
        env["MNIST_HPO_HEARTBEAT"] = str(heartbeat)
    return subprocess.Popen(
        [sys.executable, "-m", "mnist_hpo", *args, "--quiet"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(proc: subprocess.Popen, timeout: float = 300) -> str:
    out = proc.communicate(timeout=timeout)[0]
    assert proc.returncode == 0, out
    return out


def test_two_workers_train_one_population(backend, tmp_path, request, tiny_population):
    name = f"pbt2-{request.node.callspec.id}"
    path = tiny_pbt_file(tmp_path, name)
    out = finished(mnist_hpo(tmp_path, "study", str(path), "--workers", "2", "--storage", backend))
    assert "starting 2 workers" in out and "best member" in out, out
    cfg = load_study_config(path)
    trials = optuna.load_study(study_name=name, storage=open_storage(backend)).get_trials()
    pop = Population(cfg, trials)
    assert pop.finished and [t.state for t in trials] == [TrialState.COMPLETE] * 12  # nothing discarded or lost
    assert sorted(pop.key(t) for t in trials) == [(m, g) for m in range(4) for g in range(3)]
    # members 0-3 are the study's first trials, as in one process: the sampler drew the same population
    _, alone_url, alone_cfg, _ = tiny_population
    alone = Population(alone_cfg, optuna.load_study(study_name=alone_cfg.name, storage=open_storage(alone_url)).trials)
    assert [pop.canonical(m, 0).params for m in range(4)] == [alone.canonical(m, 0).params for m in range(4)]
    for t in trials:
        if t.user_attrs[PBT]["generation"]:
            assert (
                t.user_attrs[PBT]["start"]
                == pop.canonical(t.user_attrs[PBT]["parent_member"], t.user_attrs[PBT]["generation"] - 1).user_attrs[
                    END
                ]
            )
    print(
        f"\nRELIABILITY pbt-workers backend={request.node.callspec.id} workers=2 segments=12 "
        f"complete={len(trials)} discarded=0 lost=0"
    )


def test_a_worker_killed_mid_segment_loses_only_that_segment(backend, tmp_path, request, mnist):
    name = f"pbtkill-{request.node.callspec.id}"
    path = tiny_pbt_file(tmp_path, name, epochs=6, interval=3, subset=1000)
    cfg = load_study_config(path)
    victim = mnist_hpo(tmp_path, "worker", str(path), "--storage", backend, heartbeat=1)
    storage, killed, deadline = open_storage(backend), None, time.time() + 240
    while killed is None and time.time() < deadline and victim.poll() is None:
        time.sleep(0.1)
        try:
            trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        except KeyError:
            continue
        running = [
            t
            for t in trials
            if t.state == TrialState.RUNNING
            and t.intermediate_values
            and t.user_attrs.get(PBT, {}).get("generation") == 1
        ]
        if running:  # mid-segment, one that started from a checkpoint: it has reported an epoch
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed = running[0].number
    assert killed is not None, "the worker never got mid-segment"
    before = {t.number: t for t in optuna.load_study(study_name=name, storage=storage).get_trials()}
    assert before[killed].state == TrialState.RUNNING

    finished(mnist_hpo(tmp_path, "worker", str(path), "--storage", backend, heartbeat=1))
    after = {t.number: t for t in optuna.load_study(study_name=name, storage=open_storage(backend)).get_trials()}
    for n, t in before.items():  # nothing finished is lost or trained again
        if t.state == TrialState.COMPLETE:
            assert after[n].state == TrialState.COMPLETE and after[n].value == t.value
            assert after[n].datetime_complete == t.datetime_complete
    assert after[killed].state == TrialState.FAIL
    retries = [t for t in after.values() if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    retry, original = retries[0], before[killed]
    assert retry.params == original.params and retry.user_attrs["seed"] == original.user_attrs["seed"]
    assert retry.user_attrs[PBT] == original.user_attrs[PBT]  # the same segment: member, epochs, start checkpoint
    pop = Population(cfg, list(after.values()))
    assert pop.finished and pop.canonical(*pop.key(retry)).number == retry.number
    assert not [
        t for t in after.values() if t.state in (TrialState.RUNNING, TrialState.WAITING) or DISCARDED in t.user_attrs
    ]
    # the retry trained exactly the segment the killed worker was training: its rerun is identical
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
        r = rerun_trial(name, retry.number, storage_url=backend, data=mnist.subset(1000, 50))
    assert r.identical and r.same_checkpoint, r.describe()
    print(
        f"\nRELIABILITY pbt-kill backend={request.node.callspec.id} killed_trial={killed} retried_as={retry.number} "
        f"same_params=True same_seed=True same_start_checkpoint=True rerun_identical=True lost=0 running=0"
    )
