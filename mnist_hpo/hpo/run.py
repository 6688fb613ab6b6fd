"""Running a study: the one-trial-at-a-time loop and the stacked loop (``batch_trials`` > 1).

Workers share nothing but storage (:mod:`mnist_hpo.hpo.storage`); how many trials to start,
stale trials and failures in a row are :mod:`mnist_hpo.hpo.supervision`'s business.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from ..core.pbt import planned_trials
from ..core.schema import StudyConfig
from ..tasks import check_config
from ..data.datasets import Dataset
from ..errors import Fault, shielded
from ..storages import StackHeartbeat, attach_files, open_storage, quiet_interrupted_trials, trial_id
from ..storages import _heartbeat as settings  # looked up at call time: tests shorten the heartbeat
from ..storages import _journal as journal, _outage as outage  # as the body names them (storages.keep_alive, ...)
from .identity import open_study, refuse_new_trials_if_unrecorded
from .progress import optuna_info_held_back, study_bar, update_bar
from .warmstart import apply_warm_start, warm_start_trials
from .supervision import (
    MAX_CONSECUTIVE_FAILURES, FailureGuard, fail_stale_trials, needs_trials, requeue_interrupted, taken_over,
    trials_wanted,
)
from ..data.datasets import load_data
from ..core.hardware import hardware
from .objective import make_objective, record_metric_names, run_stacked_trials
from .pbt import Population, run_population
from ..core.space import resolve_space
from ..tasks import check_device, device_source, make_task, task_class


def _attach_reconstruction(task):
    """An objective ``after_fit`` hook: attach the trial's reconstructions of fixed validation images."""
    from ..measures import recon  # matplotlib: imported only by processes that run trials

    def after_fit(trial: optuna.Trial, result) -> None:
        if not recon.reconstructs(result.model):
            return
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = recon.reconstruction_png(
                    recon.validation_images(task), [(f"trial {trial.number}", result.model)],
                    Path(tmp) / f"reconstruction-trial-{trial.number}.png",
                    corrupt=recon.task_corruption(task), title=f"trial {trial.number}: validation images")
                attach_files(trial, [path])
        except Exception as e:  # a figure is not worth losing a trained trial for
            trial.set_user_attr("artifact_error", f"{type(e).__name__}: {e}")

    return after_fit



def needs_more(study: optuna.Study, cfg: StudyConfig) -> bool:
    """Whether a worker has anything to run: trials short of the target, or a population still training."""
    if cfg.pbt is not None:
        return not Population(cfg, study.get_trials(deepcopy=False)).finished
    return needs_trials(study, cfg)


def set_threads(workers: int) -> int:
    """Split the machine's cores among the workers so that workers × threads does not oversubscribe them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // max(1, workers))
    torch.set_num_threads(threads)
    return threads



def run_study(
    cfg: StudyConfig,
    *,
    storage_url: str | None = None,
    data: Dataset | None = None,
    progress: bool = True,
    workers: int | None = None,
    max_trials: int | None = None,
    extra_callbacks: list[Callable] | None = None,
    on_open: Callable[[optuna.Study], None] | None = None,
    warm_start: str | None = None,
    warm_start_k: int = 5,
    storage_patience: float | None = None,
    optuna_logs: bool = False,
) -> optuna.Study:
    """Run (or resume) the study until ``cfg.trials`` trials have finished; returns the study.

    Only missing trials are run, and any number of these calls (workers) may share
    one storage. When the target is reached, a worker waits for the trials still
    running elsewhere: those of live workers end normally, those of dead workers
    miss their heartbeats, are marked FAIL and re-run here with the same parameters
    and seed. So when this returns, no trial of the study is RUNNING.

    ``on_open(study)`` is called once the study is created or its settings are found to
    match (the command line prints the search space then, not before a refusal).

    ``max_trials`` caps the trials this call runs (a worker with a time slot); such a
    worker returns as soon as it has run them. ``extra_callbacks`` are called as
    ``optimize`` calls its callbacks, ``(study, frozen_trial)`` after each trial; one that calls
    ``study.stop()`` ends this call.

    ``warm_start``: the name of another study in the same storage whose ``warm_start_k``
    best complete trials are queued first (like ``cfg.enqueue``; each only once per study,
    see :mod:`mnist_hpo.hpo.warmstart`).

    ``storage_patience``: how long, in seconds, a storage outage is ridden out before the run
    stops with :class:`~mnist_hpo.errors.StorageUnavailable` (see :mod:`.outage`).

    A config with ``pbt`` (a study file's ``[pbt]``) trains a population instead, one trial per
    segment, until every member has trained ``cfg.epochs`` epochs (:mod:`.pbt`, docs/pbt.md).

    Ctrl-C (SIGTERM inside :func:`~mnist_hpo.errors.terminate_as_interrupt`) propagates as
    KeyboardInterrupt after the interrupted trial is marked failed and queued again; finished
    trials are in storage. A :class:`~mnist_hpo.errors.Fault` propagates the same way.

    Optuna's INFO lines ("A new study created in RDB …") are held back while it runs, as on the command
    line (``progress`` shows a bar instead); ``optuna_logs=True`` shows them, at the verbosity set with
    ``optuna.logging.set_verbosity``. Optuna's warnings are always shown.

    The study is stored under ``cfg.name`` in ``storage_url`` (default: ``$MNIST_HPO_STORAGE``,
    else ``storage/mnist_hpo.db``); running it again resumes it. After the example of
    :mod:`mnist_hpo`, one more trial of ``ae-quick``::

        >>> from mnist_hpo import load_study_config
        >>> cfg = load_study_config("ae").with_overrides(
        ...     study_name="ae-quick", trials=3, epochs=1, subset=1000, test_subset=500)
        >>> len(run_study(cfg, progress=False).trials)    # trials 0 and 1 kept, trial 2 run
        3
    """
    with optuna_info_held_back(not optuna_logs):
        return _run_study(cfg, storage_url=storage_url, data=data, progress=progress, workers=workers,
                          max_trials=max_trials, extra_callbacks=extra_callbacks, on_open=on_open,
                          warm_start=warm_start, warm_start_k=warm_start_k, storage_patience=storage_patience)


def _run_study(cfg: StudyConfig, *, storage_url, data, progress, workers, max_trials, extra_callbacks, on_open,
               warm_start, warm_start_k, storage_patience) -> optuna.Study:
    """:func:`run_study`, given all its options."""
    # Everything that can be refused is, before the study is created or changed.
    check_config(cfg)  # a config built in Python is checked as a study file is
    quiet_interrupted_trials()
    task_class(cfg.model).check_resolved(cfg)  # not created with unresolved options
    check_device(cfg.device, device_source(cfg, None))
    data = data if data is not None else load_data(cfg)  # its checksum is part of the study's identity
    storage = open_storage(storage_url, patience=storage_patience)
    warm = warm_start_trials(cfg, storage, warm_start, warm_start_k) if warm_start else None
    study = open_study(cfg, storage, dataset_checksum=data.checksum)
    apply_warm_start(study, cfg, warm)
    if on_open is not None:
        on_open(study)
    fail_stale_trials(study)
    if not needs_more(study, cfg) and not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        return study
    refuse_new_trials_if_unrecorded(cfg, study)
    # A study stored before metric names were recorded gets them now, as it is about to be written to
    # anyway (not on every open: a complete record, opened by `make reproduce`, stays as committed).
    record_metric_names(study)
    if workers:
        set_threads(workers)
    task = make_task(cfg, data)
    objective = make_objective(task, resolve_space(cfg.space, cfg.seed), epochs=cfg.epochs, progress=progress,
                               after_fit=_attach_reconstruction(task) if cfg.trial_figures else None)

    bar = study_bar(cfg.name, planned_trials(cfg), study, progress=progress)

    def on_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        update_bar(bar, study)

    study.set_user_attr("hardware", hardware(str(task.device)))  # the machine of the latest run, for the report
    guard = FailureGuard(MAX_CONSECUTIVE_FAILURES)
    if cfg.batch_trials > 1:
        return _run_stacked(cfg, study, task, bar, progress, storage=storage, guard=guard,
                            callbacks=[on_trial, guard, *(extra_callbacks or [])], max_trials=max_trials)
    view = _StudyView(study)
    callbacks = [on_trial, guard, *(extra_callbacks or [])]
    uses_journal = isinstance(storage, optuna.storages.JournalStorage)
    if cfg.pbt is not None:  # population-based training: segments of members instead of independent trials
        try:
            return _run_population(study, cfg, task, storage=storage, view=view, callbacks=callbacks, guard=guard,
                                   max_trials=max_trials)
        finally:
            bar.close()
    ran = 0
    try:
        while not (max_trials and ran >= max_trials) and not view.stopped:
            fail_stale_trials(study)
            if needs_trials(study, cfg):
                finished = _run_trial(study, objective, storage=storage, uses_journal=uses_journal,
                                      on_failure=guard.failed)
                if finished is None:
                    continue  # taken over by another worker (said so): not one of this worker's trials
                ran += 1
                for callback in callbacks:
                    callback(view, finished)
                guard.raise_if_tripped()
            elif study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(min(settings.HEARTBEAT_INTERVAL, 2))  # trials running elsewhere: wait for them or their retries
            else:
                break
        return study
    finally:
        bar.close()


def _run_population(study: optuna.Study, cfg: StudyConfig, task, *, storage: optuna.storages.BaseStorage,
                    view: "_StudyView", callbacks: list[Callable], guard: FailureGuard,
                    max_trials: int | None) -> optuna.Study:
    """The loop of a population-based study (:func:`~.pbt.run_population`), its trials run and told as any other."""
    uses_journal = isinstance(storage, optuna.storages.JournalStorage)

    def after_trial(finished: FrozenTrial) -> None:
        for callback in callbacks:
            callback(view, finished)
        guard.raise_if_tripped()

    def run_trial(objective: Callable, trial: optuna.Trial) -> FrozenTrial | None:
        return _run_trial(study, objective, storage=storage, uses_journal=uses_journal, on_failure=guard.failed,
                          ask=lambda: trial)

    run_population(study, cfg, task, run_trial=run_trial, after_trial=after_trial, stopped=lambda: view.stopped,
                   max_trials=max_trials)
    return study


def _run_trial(study: optuna.Study, objective: Callable, *, storage: optuna.storages.BaseStorage,
               uses_journal: bool, on_failure: Callable[[optuna.Trial, Exception], None],
               ask: Callable[[], optuna.Trial] | None = None) -> FrozenTrial | None:
    """Ask for one trial (``ask()`` if given: population-based training claims its own), run the objective
    under a heartbeat, tell its result; the finished trial.

    ``on_failure(trial, error)`` says that the objective raised (:meth:`FailureGuard.failed`).

    Optuna's ``optimize`` does the same, but here every fault has its one line: a trial that
    another worker failed meanwhile (its heartbeats stalled) returns None after one line, without
    Optuna's logged tracebacks; Ctrl-C, SIGTERM or a fault of the storage or the disk fail the
    trial and queue it again with its parameters and seed (if the storage can be reached at once),
    then propagate. Asking and telling are :func:`~mnist_hpo.errors.shielded`: an interrupt
    takes effect after the trial is stored, never half-way through.
    """
    trial, state, values = None, TrialState.COMPLETE, None
    try:
        with warnings.catch_warnings():
            # ask() warns that heartbeats are meant for optimize(); this trial's heartbeat runs below.
            warnings.simplefilter("ignore", UserWarning)
            with shielded():  # an interrupt during ask takes effect with `trial` set, so it is cleaned up
                trial = (ask or study.ask)()
        with contextlib.ExitStack() as hold:
            hold.enter_context(StackHeartbeat(storage, [trial_id(trial)]))
            if uses_journal:  # the journal's stand-in for heartbeats
                hold.enter_context(journal.keep_alive(trial, interval=settings.HEARTBEAT_INTERVAL))
            try:
                values = objective(trial)
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except Exception as e:
                if _taken_over(study, trial, e):
                    return None
                state = TrialState.FAIL
                on_failure(trial, e)
        try:
            with shielded():
                if state == TrialState.COMPLETE:
                    return study.tell(trial, values)
                return study.tell(trial, state=state)
        except Exception as e:
            if _taken_over(study, trial, e):
                return None
            raise
    except (KeyboardInterrupt, Fault):
        # Cut off (not broken): FAIL without an 'error', queued again now; if the storage cannot be
        # reached at once, the trial stays RUNNING and the next run's stale check does the same.
        if trial is None:
            raise
        with contextlib.suppress(Exception, Fault), outage.impatient(), shielded():
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            requeue_interrupted(study, [trial.number])
        raise


def _taken_over(study: optuna.Study, trial: optuna.Trial, error: Exception) -> bool:
    """Whether ``error`` came from this worker's trial having been failed by another (stale heartbeats); says so."""
    if not isinstance(error, (optuna.exceptions.UpdateFinishedTrialError, ValueError, AssertionError)):
        return False
    if not taken_over(study, trial.number):
        return False
    print(f"mnist-hpo: trial {trial.number} missed its heartbeats and was failed by another worker "
          "(this machine is overloaded?); it is retried, this worker goes on", file=sys.stderr)
    return True


class _StudyView:
    """The study as ``run_study``'s callbacks see it: ``stop()`` ends ``run_study``'s loop.

    Both loops (one trial at a time, :func:`_run_trial`; stacked, :func:`_run_stacked`) ask for
    and tell trials themselves, where ``optuna.Study.stop`` does not work; so a callback's
    ``stop()`` is recorded here and honoured by both. Everything else is the study's.
    """

    def __init__(self, study: optuna.Study) -> None:
        self._study, self.stopped = study, False

    def stop(self) -> None:
        self.stopped = True

    def __getattr__(self, name: str):
        return getattr(self._study, name)


def _run_stacked(cfg: StudyConfig, study: optuna.Study, task, bar, progress: bool, *,
                 storage: optuna.storages.BaseStorage, guard: FailureGuard, callbacks: list[Callable],
                 max_trials: int | None) -> optuna.Study:
    """The study loop when ``batch_trials`` > 1: ask for up to that many trials at a time, train them together.

    The same rules as the single-trial loop in :func:`run_study`: a stack holds only the
    trials the shared target still lacks (:func:`trials_wanted`, which for a grid counts
    the points neither covered nor being run), queued retries first; once nothing is
    lacking, the worker waits for trials running elsewhere (or their retries) instead of
    returning while they run. After each stack, the callbacks see each of its trials as
    ``optimize`` would show them.
    """
    resolved = resolve_space(cfg.space, cfg.seed)
    view, ran = _StudyView(study), 0
    claim = (lambda trials: journal.keep_alive(trials, interval=settings.HEARTBEAT_INTERVAL)) \
        if isinstance(storage, optuna.storages.JournalStorage) else None
    try:
        while not view.stopped and not (max_trials and ran >= max_trials):
            fail_stale_trials(study)
            k = min(cfg.batch_trials, trials_wanted(study, cfg), (max_trials - ran) if max_trials else cfg.batch_trials)
            if k > 0:
                started: list[int] = []
                try:
                    numbers = run_stacked_trials(study, task, resolved, epochs=cfg.epochs, k=k, storage=storage,
                                                 progress=progress, started=started, claim=claim)
                except (KeyboardInterrupt, Fault):
                    with contextlib.suppress(Exception, Fault), outage.impatient(), shielded():
                        requeue_interrupted(study, started)
                    raise
                ran += len(numbers)
                for trial in study.get_trials(deepcopy=False):
                    if trial.number in numbers:
                        for callback in callbacks:
                            callback(view, trial)
                guard.raise_if_tripped()
                update_bar(bar, study)
            elif study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(min(settings.HEARTBEAT_INTERVAL, 2))  # trials running elsewhere: wait for them or their retries
            else:
                break
    finally:
        bar.close()
    return study
