"""Running a study: everything that can be refused is checked, the study opened, then its trials run until
its target is met (:class:`~.trials.TrialLoop`, as ``optimize`` would run them).

Workers share nothing but storage (:mod:`mnist_hpo.hpo.storage`); how many trials to start,
stale trials and failures in a row are :mod:`mnist_hpo.hpo.supervision`'s business, how each
trial starts, is held and is told :mod:`mnist_hpo.hpo.trials`'.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from ..core.hardware import hardware
from ..core.pbt import planned_trials
from ..core.schema import StudyConfig
from ..core.space import resolve_space
from ..data.datasets import Dataset, load_data
from ..storages import attach_files, open_storage, quiet_interrupted_trials
from ..tasks import check_config, check_device, device_source, make_task, task_class
from .identity import open_study, refuse_new_trials_if_unrecorded
from .objective import make_objective, record_metric_names, train_stack
from .pbt import Population, run_population
from .progress import optuna_info_held_back, study_bar
from .supervision import fail_stale_trials, needs_trials
from .trials import Train, TrialLoop, tell_objective
from .warmstart import apply_warm_start, warm_start_trials


def _attach_reconstruction(task):
    """An objective ``after_fit`` hook: attach the trial's reconstructions of fixed validation images."""
    from ..measures import recon  # matplotlib: imported only by processes that run trials

    def after_fit(trial: optuna.Trial, result) -> None:
        if not recon.reconstructs(result.model):
            return
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = recon.reconstruction_png(
                    recon.validation_images(task),
                    [(f"trial {trial.number}", result.model)],
                    Path(tmp) / f"reconstruction-trial-{trial.number}.png",
                    corrupt=recon.task_corruption(task),
                    title=f"trial {trial.number}: validation images",
                )
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


@dataclass(frozen=True)
class WarmStart:
    """Another study in the same storage whose ``k`` best complete trials are queued first (:mod:`.warmstart`)."""

    study: str
    k: int = 5


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
        data = _checked(cfg, data)
        storage = open_storage(storage_url, patience=storage_patience)
        study = _open(cfg, storage, data, WarmStart(warm_start, warm_start_k) if warm_start else None, on_open)
        if not needs_more(study, cfg) and not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            return study
        task = _prepare(cfg, study, data, workers)
        bar = study_bar(cfg.name, planned_trials(cfg), study, progress=progress)
        with TrialLoop(study, storage, bar=bar, callbacks=extra_callbacks, max_trials=max_trials) as loop:
            if cfg.pbt is not None:  # population-based training: segments of members instead of independent trials
                run_population(
                    loop.study, cfg, task, run_trial=loop.run_trial, after_trial=loop.after_trial, stopped=loop.done
                )
            else:
                loop.optimize(cfg, _training(cfg, task, progress))
        return loop.study


def _checked(cfg: StudyConfig, data: Dataset | None) -> Dataset:
    """Refuse what can be refused before the study is created or changed; the data, loaded unless given."""
    check_config(cfg)  # a config built in Python is checked as a study file is
    quiet_interrupted_trials()
    task_class(cfg.model).check_resolved(cfg)  # not created with unresolved options
    check_device(cfg.device, device_source(cfg, None))
    return data if data is not None else load_data(cfg)  # its checksum is part of the study's identity


def _open(
    cfg: StudyConfig,
    storage: optuna.storages.BaseStorage,
    data: Dataset,
    warm: WarmStart | None,
    on_open: Callable[[optuna.Study], None] | None,
) -> optuna.Study:
    """Create or load the study (its warm start queued), show it to ``on_open``, fail its stale trials."""
    warm_trials = warm_start_trials(cfg, storage, warm.study, warm.k) if warm else None
    study = open_study(cfg, storage, dataset_checksum=data.checksum)
    apply_warm_start(study, cfg, warm_trials)
    if on_open is not None:
        on_open(study)
    fail_stale_trials(study)
    return study


def _prepare(cfg: StudyConfig, study: optuna.Study, data: Dataset, workers: int | None):
    """Ready the study and this process for training; the task its trials train through."""
    refuse_new_trials_if_unrecorded(cfg, study)
    # A study stored before metric names were recorded gets them now, as it is about to be written to
    # anyway (not on every open: a complete record, opened by `make reproduce`, stays as committed).
    record_metric_names(study)
    if workers:
        set_threads(workers)
    task = make_task(cfg, data)
    study.set_user_attr("hardware", hardware(str(task.device)))  # the machine of the latest run, for the report
    return task


def _training(cfg: StudyConfig, task, progress: bool) -> Train:
    """How a batch of trials trains: one alone through the objective, or up to ``batch_trials`` stacked."""
    resolved = resolve_space(cfg.space, cfg.seed)
    if cfg.batch_trials > 1:
        return functools.partial(train_stack, task=task, resolved=resolved, epochs=cfg.epochs, progress=progress)
    objective = make_objective(
        task,
        resolved,
        epochs=cfg.epochs,
        progress=progress,
        after_fit=_attach_reconstruction(task) if cfg.trial_figures else None,
    )
    return functools.partial(tell_objective, objective)
