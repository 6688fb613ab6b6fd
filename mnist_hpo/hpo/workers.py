"""Worker supervision: how many trials a worker starts, stale and interrupted trials, failures in a row.

Several workers (processes, machines) run one study through shared storage; what keeps them
from doing a trial twice or losing one is here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from collections import Counter

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..core.schema import StudyConfig
from ..errors import Terminated, UserError
from . import journal, storage
from .samplers import CoverGridSampler


MAX_CONSECUTIVE_FAILURES = 3


class FailureGuard:
    """Stops the study when several trials in a row fail (every trial failing means a bug, not bad luck)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.run, self.last_error = limit, 0, ""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            self.run += 1
            self.last_error = trial.user_attrs.get("error", "unknown error")
            if self.run >= self.limit:
                study.stop()
        else:
            self.run = 0

    def raise_if_tripped(self) -> None:
        if self.run >= self.limit:
            raise UserError(
                f"{self.limit} trials in a row failed, so the study stopped "
                f"(last error: {self.last_error}); finished trials are kept; "
                "fix the cause and run again to resume"
            )


def trials_wanted(study: optuna.Study, cfg: StudyConfig) -> int:
    """How many trials a worker should start now (the stacked loop asks for up to that many at once).

    Queued (WAITING) retries always run. Beyond them, trials start only while the trials
    finished, running or queued fall short of the target (for a grid: while some point
    is neither covered nor being run), so workers sharing a study stop together instead
    of each running to its own count.
    """
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    waiting = states[TrialState.WAITING]
    sampler = study.sampler
    if isinstance(sampler, CoverGridSampler):
        # A trial just asked for has no point yet, but will take one (queued retries keep theirs).
        unplaced = sum(1 for t in trials if t.state == TrialState.RUNNING
                       and "grid_id" not in t.system_attrs and "fixed_params" not in t.system_attrs)
        taken = sampler.size - sampler.open_points(study) + unplaced
        return waiting + max(0, min(cfg.trials, sampler.size) - taken)
    taken = states[TrialState.COMPLETE] + states[TrialState.PRUNED] + states[TrialState.RUNNING] + waiting
    return waiting + max(0, cfg.trials - taken)


def needs_trials(study: optuna.Study, cfg: StudyConfig) -> bool:
    """Whether a worker should start another trial now (see :func:`trials_wanted`)."""
    return trials_wanted(study, cfg) > 0


def fail_stale_trials(study: optuna.Study) -> None:
    """Mark trials whose worker stopped sending heartbeats FAIL and queue their retries.

    RDB storage: Optuna's heartbeats. Journal storage has none: trials claimed by a process
    that is gone (see :mod:`mnist_hpo.hpo.journal`); on RDB storage no trial is claimed that way.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    journal.fail_stale_trials(study, grace=storage.GRACE_BEATS * storage.HEARTBEAT_INTERVAL)


def requeue_interrupted(study: optuna.Study, numbers: list[int]) -> None:
    """After Ctrl-C: queue this process's interrupted trials again (same parameters and seed), so no draw is lost."""
    for trial in study.get_trials(deepcopy=False):
        if trial.number in numbers and trial.state == TrialState.FAIL and "error" not in trial.user_attrs:
            journal.retry(study, trial, interrupted=True)


def taken_over(study: optuna.Study, current: dict) -> bool:
    """Whether this worker's trial was finished by someone else (marked stale while it still ran)."""
    if "number" not in current:
        return False
    # A trial's number is unique within its study, so it identifies the trial as well as its storage id.
    return any(t.number == current["number"] and t.state != TrialState.RUNNING
               for t in study.get_trials(deepcopy=False))


PROGRESS_POLL_SECONDS = 10.0


def _wait_showing_progress(procs: list, cfg: StudyConfig, study: optuna.Study, progress: bool) -> list[int]:
    """Wait for every worker; meanwhile update the bar from the storage every few seconds."""
    from .progress import study_bar, update_bar

    bar = study_bar(cfg.name, cfg.trials, study, progress=progress)
    try:
        codes = []
        for p in procs:
            while True:
                try:
                    codes.append(p.wait(timeout=PROGRESS_POLL_SECONDS if progress else None))
                    break
                except subprocess.TimeoutExpired:
                    update_bar(bar, study)
        update_bar(bar, study)
        return codes
    finally:
        bar.close()


def spawn_workers(cfg: StudyConfig, workers: int, *, study_file: Path, storage: str | None, flags: dict,
                  warm_start: str | None = None, warm_start_k: int = 5, progress: bool = True):
    """Start ``workers`` ``mnist-hpo worker`` processes on this machine and wait for them.

    ``flags``: command-line options passed on to each worker (``{"--trials": 5}``; None = left out).
    ``warm_start``: another study whose best trials are queued here first (see :mod:`.warmstart`).
    The workers run quiet; this process shows the study's progress bar, read from the storage.
    """
    from ..data.datasets import load_data
    from .identity import open_study, refuse_new_trials_if_unrecorded
    from .storage import load_existing_study, open_storage
    from .warmstart import apply_warm_start, warm_start_trials

    # Build the data cache, create the study and queue its warm start once, before the workers race
    # to (or refuse it once, if its settings differ).
    checksum = load_data(cfg).checksum
    opened = open_storage(storage)
    warm = warm_start_trials(cfg, opened, warm_start, warm_start_k) if warm_start else None
    study = open_study(cfg, opened, dataset_checksum=checksum)
    apply_warm_start(study, cfg, warm)
    if needs_trials(study, cfg):
        refuse_new_trials_if_unrecorded(cfg, study)
    cmd = [sys.executable, "-m", "mnist_hpo", "worker", str(study_file), "--quiet"]
    for flag, value in {**flags, "--storage": storage}.items():
        if value is True:  # a switch
            cmd.append(flag)
        elif value is not None:
            cmd += [flag, str(value)]
    env = {**os.environ, "MNIST_HPO_WORKERS": str(workers)}
    print(f"starting {workers} workers for study {cfg.name}")
    procs = [subprocess.Popen(cmd, env=env) for _ in range(workers)]
    try:
        codes = _wait_showing_progress(procs, cfg, study, progress)
    except KeyboardInterrupt as e:
        # Ctrl-C reached the workers too (one process group); a SIGTERM came to this process alone.
        if isinstance(e, Terminated):
            for p in procs:
                p.terminate()
        for p in procs:
            p.wait()
        raise
    if any(codes):
        study = open_study(cfg, open_storage(storage), dataset_checksum=checksum)
        if not needs_trials(study, cfg):
            # A killed worker's trial was failed and re-run by the others: the study is complete.
            print(f"mnist-hpo: {sum(1 for c in codes if c)} of {workers} workers ended abnormally "
                  f"(exit codes {codes}); the others finished the study", file=sys.stderr)
            return study
        raise UserError(f"{sum(1 for c in codes if c)} of {workers} workers failed (exit codes {codes}); "
                        "finished trials are kept; run again to resume")
    return load_existing_study(cfg.name, storage)
