"""Worker processes: ``study --workers N`` starts N workers on this machine with typed settings and waits.

Each worker runs :func:`mnist_hpo.hpo.run.run_study` in a fresh interpreter; what keeps workers from
doing a trial twice or losing one is :mod:`.supervision`.
"""

from __future__ import annotations

import math
import multiprocessing
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import optuna

from ..core.pbt import planned_trials
from ..core.schema import StudyConfig
from ..data.datasets import load_data
from ..errors import EX_TEMPFAIL, Fault, StorageUnavailable, Terminated, UserError, report, terminate_as_interrupt
from ..storages import load_existing_study, open_storage
from ..tasks import check_config, registry
from .identity import open_study, refuse_new_trials_if_unrecorded
from .pbt import queue_population
from .progress import study_bar, update_bar
from .run import needs_more, run_study
from .warmstart import apply_warm_start, warm_start_trials

PROGRESS_POLL_SECONDS = 10.0


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker process started by :func:`spawn_workers` runs: typed, not a command line rebuilt from settings.

    ``config`` is the study exactly as the parent resolved it (overrides applied, exports pinned),
    so a worker cannot disagree with its parent; it reaches the child through multiprocessing's
    ``spawn`` start method (a fresh interpreter, nothing inherited from the parent's threads).
    ``trusted_plugins`` are the modules the parent trusts (:func:`mnist_hpo.tasks.registry.trusted`):
    running a study file that names an import path trusts it, and the parent's workers run that file too.
    """

    config: StudyConfig
    storage: str | None
    workers: int  # how many share this machine: each takes its share of the cores
    max_trials: int | None = None
    storage_patience: float | None = None
    trusted_plugins: tuple[str, ...] = ()


def run_worker(settings: WorkerSettings) -> int:
    """One worker: run the study until its target is met; the exit status (each fault its one line)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the parent's bar says what INFO lines would
    registry.trust(settings.trusted_plugins)  # before the study's model type is resolved
    try:
        with terminate_as_interrupt():
            run_study(
                settings.config,
                storage_url=settings.storage,
                progress=False,
                workers=settings.workers,
                max_trials=settings.max_trials,
                storage_patience=settings.storage_patience,
            )
        return 0
    except (UserError, Fault, KeyboardInterrupt) as e:
        return report(e)


def _worker_main(settings: WorkerSettings) -> None:  # the target of a spawned worker process
    sys.exit(run_worker(settings))


class WorkerProcess:
    """A worker started on this machine; ``wait`` as ``subprocess.Popen.wait`` (exit status, or TimeoutExpired)."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.process = multiprocessing.get_context("spawn").Process(
            target=_worker_main, args=(settings,), name=f"mnist-hpo worker {settings.config.name}"
        )
        self.process.start()

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            # (timeout is set here: without one, join returns only once the process has ended)
            raise subprocess.TimeoutExpired(self.process.name, timeout if timeout is not None else math.inf)
        return self.process.exitcode

    def terminate(self) -> None:
        self.process.terminate()


def _wait_showing_progress(procs: list[Any], cfg: StudyConfig, study: optuna.Study, progress: bool) -> list[int]:
    """Wait for every worker; meanwhile update the bar from the storage every few seconds."""
    bar = study_bar(cfg.name, planned_trials(cfg), study, progress=progress)
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


def spawn_workers(
    cfg: StudyConfig,
    workers: int,
    *,
    storage: str | None,
    max_trials: int | None = None,
    warm_start: str | None = None,
    warm_start_k: int = 5,
    progress: bool = True,
    storage_patience: float | None = None,
) -> optuna.Study:
    """Start ``workers`` worker processes on this machine (:class:`WorkerSettings`) and wait for them.

    ``warm_start``: another study whose best trials are queued here first (see :mod:`.warmstart`).
    The workers run quiet; this process shows the study's progress bar, read from the storage.
    """
    check_config(cfg)  # as run_study does first: a mistake is one line here, not one per worker
    # Build the data cache, create the study and queue its warm start once, before the workers race
    # to (or refuse it once, if its settings differ).
    checksum = load_data(cfg).checksum
    opened = open_storage(storage, patience=storage_patience)
    warm = warm_start_trials(cfg, opened, warm_start, warm_start_k) if warm_start else None
    study = open_study(cfg, opened, dataset_checksum=checksum)
    apply_warm_start(study, cfg, warm)
    if needs_more(study, cfg):
        refuse_new_trials_if_unrecorded(cfg, study)
        if cfg.pbt is not None:
            queue_population(study, cfg)  # from here, once: the workers do not race to make the first members
    settings = WorkerSettings(
        config=cfg,
        storage=storage,
        workers=workers,
        max_trials=max_trials,
        storage_patience=storage_patience,
        trusted_plugins=registry.trusted(),
    )
    print(f"starting {workers} workers for study {cfg.name}")
    procs = [start_worker(settings) for _ in range(workers)]
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
        if all(c == EX_TEMPFAIL for c in codes):
            raise StorageUnavailable(
                f"the storage stayed unreachable past --storage-patience for all {workers} "
                "workers; the trials they were running will be retried with their parameters "
                "and seeds; run the same command again once the storage is back"
            )
        study = open_study(cfg, open_storage(storage, patience=storage_patience), dataset_checksum=checksum)
        if not needs_more(study, cfg):
            # A killed worker's trial was failed and re-run by the others: the study is complete.
            print(
                f"mnist-hpo: {sum(1 for c in codes if c)} of {workers} workers ended abnormally "
                f"(exit codes {codes}); the others finished the study",
                file=sys.stderr,
            )
            return study
        raise UserError(
            f"{sum(1 for c in codes if c)} of {workers} workers failed (exit codes {codes}); "
            "finished trials are kept; run again to resume"
        )
    return load_existing_study(cfg.name, storage)


start_worker = WorkerProcess  # tests put a stand-in here
