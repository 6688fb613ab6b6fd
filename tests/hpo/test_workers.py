"""Many workers on one study, on PostgreSQL and SQLite: counts, kills, grids, non-finite values.

The workers are real ``python -m mnist_hpo worker`` processes on a tiny study (20
images, 1 batch per epoch), so what is tested is the storage behaviour, not the
training. Each test prints one ``RELIABILITY`` line; RELIABILITY.md collects them
(``pytest tests/hpo/test_workers.py -s | grep RELIABILITY``).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo.cli import main
from mnist_hpo.hpo.queries import best_trial
from mnist_hpo.hpo.run import run_study
from mnist_hpo.hpo.samplers import grid_coverage
from mnist_hpo.storages import open_storage
from mnist_hpo.tasks.autoencoder import AutoencoderTask

from ..conftest import DATA, ROOT, check_killed_trial_retried

pytestmark = pytest.mark.processes  # real worker processes, killed and resumed: make test-fast leaves them out

TINY = """
[study]
name = "{name}"
seed = 7
trials = {trials}
epochs = {epochs}
batch_size = 16
train_subset = {subset}
test_subset = 10
retrain = false

[model]
type = "autoencoder"

[space.latent_dim]
choices = [2, 3, 4]

[space.weight_decay]
choices = [0.0]

[space.optimizer]
choices = ["Adam", "RMSprop"]

[space.lr]
{lr}

[space.nh1]
choices = [50]
"""
RANDOM_LR = 'draw = "normal"\nmean = 1e-3\nstd = 1e-3\nsize = 10'
GRID_LR = "choices = [1e-3]"
GRID_POINTS = 3 * 2


def tiny_study(tmp_path, name, *, trials, epochs=2, subset=20, grid=False):
    path = tmp_path / f"{name}.toml"
    text = TINY.format(name=name, trials=trials, epochs=epochs, subset=subset, lr=GRID_LR if grid else RANDOM_LR)
    if grid:
        text = text.replace("[model]", '[sampler]\ntype = "grid"\n\n[model]')
    path.write_text(text)
    return path


def worker(study_file, storage, *extra, heartbeat=None, workers=4):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MNIST_HPO_WORKERS": str(workers), "MNIST_HPO_DATA": str(DATA)}
    if heartbeat:
        env["MNIST_HPO_HEARTBEAT"] = str(heartbeat)
    return subprocess.Popen(
        [sys.executable, "-m", "mnist_hpo", "worker", str(study_file), "--storage", storage, "--quiet", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_all(procs, timeout=240):
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out
    return outs


def trials_of(name, storage):
    return optuna.load_study(study_name=name, storage=open_storage(storage)).get_trials()


@pytest.fixture(params=["sqlite", "journal", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    if request.param == "journal":
        (tmp_path / "journals").mkdir()
        return f"journal:{tmp_path / 'journals' / 'shared.log'}"
    return request.getfixturevalue("pg_url")


def test_four_workers_ten_trials_each(backend, tmp_path, request):
    name = f"four-{request.node.callspec.id}"
    study_file = tiny_study(tmp_path, name, trials=40)
    wait_all([worker(study_file, backend, "--max-trials", "10") for _ in range(4)])
    trials = trials_of(name, backend)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(trials) == len(complete) == 40
    assert sorted(t.number for t in trials) == list(range(40))
    for t in complete:
        assert math.isfinite(t.value) and sorted(t.intermediate_values) == [0, 1]
        assert t.value == t.intermediate_values[1]
        assert len(t.user_attrs["train_loss"]) == 2 and "seed" in t.user_attrs
    print(
        f"\nRELIABILITY workers backend={request.node.callspec.id} workers=4 trials=40 "
        f"complete={len(complete)} distinct_numbers={len({t.number for t in trials})} running=0 lost=0"
    )


def test_sigkilled_worker_is_retried_with_same_params(backend, tmp_path, request, monkeypatch):
    name = f"kill-{request.node.callspec.id}"
    study_file = tiny_study(tmp_path, name, trials=4, epochs=3, subset=400)
    victim = worker(study_file, backend, heartbeat=1, workers=2)
    storage = open_storage(backend)
    deadline = time.time() + 180
    killed = None
    while time.time() < deadline and killed is None:
        time.sleep(0.2)
        try:
            trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        except KeyError:
            continue
        running = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
        if any(t.state == TrialState.COMPLETE for t in trials) and running:
            victim.send_signal(signal.SIGKILL)  # mid-trial: it has reported at least one epoch
            victim.wait()
            killed = running[0].number
    assert killed is not None, "the worker never got mid-trial"
    before = {t.number: t for t in optuna.load_study(study_name=name, storage=storage).get_trials()}
    assert before[killed].state == TrialState.RUNNING
    finished_before = {n: t for n, t in before.items() if t.state == TrialState.COMPLETE}

    # Resume: another worker (here in-process) fails the stale trial, re-runs it and finishes the study.
    monkeypatch.setattr("mnist_hpo.storages._heartbeat.HEARTBEAT_INTERVAL", 1)
    assert main(["worker", str(study_file), "--storage", backend, "--quiet"]) == 0
    after = {t.number: t for t in optuna.load_study(study_name=name, storage=open_storage(backend)).get_trials()}
    retries = [check_killed_trial_retried(before, after, killed)]
    states = [t.state for t in after.values()]
    assert states.count(TrialState.RUNNING) == 0 and states.count(TrialState.COMPLETE) == 4
    print(
        f"\nRELIABILITY kill backend={request.node.callspec.id} workers=2 kills=1 killed_trial={killed} "
        f"retried_as={retries[0].number} same_params=True same_seed=True "
        f"finished_before={len(finished_before)} lost=0 running=0 complete={states.count(TrialState.COMPLETE)}"
    )


@pytest.mark.postgres
def test_grid_over_three_workers_covers_every_point(pg_url, tmp_path, capsys):
    # PostgreSQL only: the grid logic is the same on SQLite (test_failed_grid_point_is_run_again), processes are not cheap.
    backend, name = pg_url, "grid-postgres"
    study_file = tiny_study(tmp_path, name, trials=100, grid=True)  # trials above the grid size: the grid bounds it
    wait_all([worker(study_file, backend, workers=3) for _ in range(3)])
    trials = trials_of(name, backend)
    coverage = grid_coverage(optuna.load_study(study_name=name, storage=open_storage(backend)))
    assert coverage.points == GRID_POINTS and coverage.covered == GRID_POINTS
    points = {(t.params["latent_dim"], t.params["optimizer"]) for t in trials if t.state == TrialState.COMPLETE}
    assert len(points) == GRID_POINTS
    # Duplicates are bounded: at most one per worker racing for the last points.
    assert coverage.duplicates == len(trials) - GRID_POINTS <= 2
    capsys.readouterr()
    assert main(["show", name, "--storage", backend]) == 0
    assert f"{GRID_POINTS}/{GRID_POINTS} points covered, {coverage.duplicates} duplicate" in capsys.readouterr().out
    with capsys.disabled():
        print(
            f"\nRELIABILITY grid backend=postgres workers=3 points={GRID_POINTS} "
            f"covered={coverage.covered} trials={len(trials)} duplicates={coverage.duplicates} lost=0"
        )


def test_failed_grid_point_is_run_again(tmp_path, storage, tiny, monkeypatch):
    from mnist_hpo.config import load_study_config

    cfg = load_study_config(tiny_study(tmp_path, "grid-fail", trials=GRID_POINTS, grid=True))
    real = AutoencoderTask.fit
    calls = {"n": 0}

    def first_raises(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderTask, "fit", first_raises)
    study = run_study(cfg, storage_url=storage, data=tiny, progress=False)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["error"] == "RuntimeError: disk on fire"
    coverage = grid_coverage(study)
    assert (coverage.covered, coverage.duplicates, coverage.reruns) == (GRID_POINTS, 0, 1)
    assert len(study.trials) == GRID_POINTS + 1


def test_non_finite_values_are_never_best(backend, tmp_path, tiny, monkeypatch, request):
    from mnist_hpo.config import load_study_config

    name = f"nonfinite-{request.node.callspec.id}"
    cfg = load_study_config(tiny_study(tmp_path, name, trials=6, epochs=1))
    real = AutoencoderTask.fit
    bad = {0: float("nan"), 2: float("inf"), 4: float("-inf")}  # by call: trials 0, 2, 4
    calls = {"n": -1}

    def sometimes_bad(self, *args, **kwargs):
        calls["n"] += 1
        result = real(self, *args, **kwargs)
        result.value = bad.get(calls["n"], result.value)
        return result

    monkeypatch.setattr(AutoencoderTask, "fit", sometimes_bad)
    study = run_study(cfg, storage_url=backend, data=tiny, progress=False)
    states = [t.state for t in study.trials]
    assert states == [TrialState.PRUNED, TrialState.COMPLETE] * 3  # the study went on after each
    for t in study.trials[0::2]:
        assert t.user_attrs["fail_reason"].startswith("objective became")
    best = best_trial(study)
    assert math.isfinite(best.value) and best.number in (1, 3, 5)
    assert study.best_trial.number == best.number  # Optuna's own choice agrees
    print(
        f"\nRELIABILITY nonfinite backend={request.node.callspec.id} trials=6 nan_inf_-inf=3 pruned=3 "
        f"complete=3 best_finite=True"
    )


def test_study_command_starts_workers_and_waits(tmp_path, capsys):
    """What ``make study-ae WORKERS=3`` runs: N worker processes on one SQLite file, one shared target."""
    storage = f"sqlite:///{tmp_path / 'mnist_hpo.db'}"
    study_file = tiny_study(tmp_path, "spawned", trials=9)
    code = main(["study", str(study_file), "--workers", "3", "--storage", storage, "--quiet", "--no-retrain"])
    out = capsys.readouterr().out
    assert code == 0 and "starting 3 workers" in out
    trials = trials_of("spawned", storage)
    states = [t.state for t in trials]
    complete = states.count(TrialState.COMPLETE)
    # Workers stop together on the shared target; two finishing at the same instant may each start one more.
    assert 9 <= complete <= 9 + 2 and states.count(TrialState.RUNNING) == 0
    with capsys.disabled():
        print(
            f"\nRELIABILITY spawned backend=sqlite workers=3 target=9 complete={complete} "
            f"extra={complete - 9} running=0 lost=0"
        )


def test_stacked_workers_share_one_grid(backend, tmp_path, request):
    """Two workers training stacks of 4 trials (``batch_trials`` = 4, like clf-stacked) share one 6-point grid.

    The second starts while the first trains its stack of 4: it asks only for the 2 points nobody
    covers or runs (not for 4, re-running the grid), then waits for the first's stack before it returns.
    """
    name = f"stacked-{request.node.callspec.id}"
    study_file = tiny_study(tmp_path, name, trials=100, epochs=3, subset=1200, grid=True)
    first = worker(study_file, backend, "--batch-trials", "4", workers=2)
    storage = open_storage(backend)
    deadline, running = time.time() + 180, []
    while time.time() < deadline and len(running) < 4:
        time.sleep(0.2)
        try:
            trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        except KeyError:
            continue
        running = [t for t in trials if t.state == TrialState.RUNNING and "grid_id" in t.system_attrs]
    assert len(running) == 4, "the first worker never started its stack"
    second = worker(study_file, backend, "--batch-trials", "4", workers=2)
    wait_all([first, second])
    trials = trials_of(name, backend)
    coverage = grid_coverage(optuna.load_study(study_name=name, storage=open_storage(backend)))
    states = [t.state for t in trials]
    assert coverage.covered == GRID_POINTS and states.count(TrialState.RUNNING) == 0
    assert coverage.duplicates == 0 and len(trials) == GRID_POINTS
    print(
        f"\nRELIABILITY stacked-grid backend={request.node.callspec.id} workers=2 batch_trials=4 "
        f"points={GRID_POINTS} covered={coverage.covered} trials={len(trials)} "
        f"duplicates={coverage.duplicates} running={states.count(TrialState.RUNNING)} lost=0"
    )


def test_study_command_prepares_data_before_spawning_workers(tmp_path, monkeypatch, capsys):
    """``study --workers N`` builds the data cache itself, so N workers do not all build it at once."""
    import numpy as np

    from mnist_hpo.data import datasets as D
    from mnist_hpo.hpo import workers

    from ..data.test_datasets import _idx_folder

    rng = np.random.default_rng(0)
    idx = _idx_folder(
        tmp_path / "idx",
        rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
    )
    monkeypatch.setenv("MNIST_HPO_DATA", str(tmp_path / "cache"))
    study_file = tiny_study(tmp_path, "prepared", trials=2)
    study_file.write_text(study_file.read_text().replace("[study]\n", f'[study]\nidx_dir = "{idx}"\n'))
    cache = D.cache_path("mnist", tmp_path / "cache", idx)
    seen = []

    class NoWorker:  # stands in for a worker process: records what it would find
        def __init__(self, settings):
            seen.append(cache.exists() and cache.with_suffix(".json").exists())

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(workers, "start_worker", NoWorker)  # where spawn_workers looks it up
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["study", str(study_file), "--workers", "2", "--storage", storage, "--quiet", "--no-retrain"]) == 0
    assert seen == [True, True]


def test_several_workers_show_one_progress_bar_read_from_the_storage(tmp_path, monkeypatch, capsys):
    """``--workers N`` runs its workers quiet; the parent polls the storage for the study's bar,
    so another process's trials (here a stand-in writing through its own journal handle) show up."""
    from optuna.distributions import CategoricalDistribution

    from mnist_hpo.hpo import workers

    study_file = tiny_study(tmp_path, "watched", trials=2)
    url = f"journal:{tmp_path / 'watched.log'}"
    values = iter([0.031, 0.027])

    class SilentWorker:  # finishes one trial through its own storage handle, then exits
        def __init__(self, settings):
            self.done = False

        def wait(self, timeout=None):
            if self.done:
                return 0
            assert timeout is not None  # the parent polls rather than blocking on the worker
            self.done = True
            other = optuna.load_study(study_name="watched", storage=open_storage(url))
            other.add_trial(
                optuna.trial.create_trial(
                    params={"latent_dim": 2},
                    distributions={"latent_dim": CategoricalDistribution([2, 3, 4])},
                    value=next(values),
                )
            )
            raise subprocess.TimeoutExpired("mnist-hpo worker", timeout)

    monkeypatch.setattr(workers, "start_worker", SilentWorker)
    assert main(["study", str(study_file), "--workers", "2", "--storage", url, "--no-retrain"]) == 0
    bars = capsys.readouterr().err.replace("\r", "\n").splitlines()
    shown = [b for b in bars if b.startswith("study watched")]
    assert any("1/2" in b and "best=0.031" in b for b in shown), shown
    assert "2/2" in shown[-1] and "best=0.027" in shown[-1], shown
