"""Trial bookkeeping, each part with one owner: how a trial starts (its parameters, seed and conditions),
how its history is stored, how it is held (heartbeat, a journal's claim) and told, the hand-over of a
trial another worker took over, and the retry of one cut off.

A worker runs its trials in batches (:class:`Batch`): one trial trained by an objective, or a stack of k
trained together (``batch_trials`` > 1). Both go through :meth:`TrialLoop.run`; population-based training
claims its own trials and runs each the same way (:meth:`TrialLoop.run_trial`). What a trial computes is
the objective's business (:mod:`.objective`); this module never trains.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
import warnings
from collections.abc import Callable, Iterator

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from ..core.seeds import derive_seed
from ..core.space import Resolved
from ..errors import Fault, shielded
from ..storages import StackHeartbeat, heartbeat_interval, impatient, keep_alive, storage_of, trial_id
from ..train.numerics import denormals_flushed
from .progress import update_bar
from .suggestions import suggest
from .supervision import (
    MAX_CONSECUTIVE_FAILURES,
    FailureGuard,
    fail_stale_trials,
    requeue_interrupted,
    taken_over,
    trials_wanted,
)

CURVES = ("train_loss", "val_loss")  # stored by store_curves; a history's other series by store_history


def trial_seed(study_seed: int, trial_number: int) -> int:
    """A trial's seed, derived from the study seed and the trial number (stable across machines)."""
    return derive_seed(study_seed, trial_number)


def claim_seed(trial: optuna.Trial, default: int) -> int:
    """The trial's seed, stored on it: a retry's is its original's (inherited with the user attributes), else
    ``default``."""
    seed = trial.user_attrs.get("seed")
    if seed is None:
        seed = default
        trial.set_user_attr("seed", seed)
    return int(seed)


def record_conditions(trial: optuna.Trial, task, *, stacked: int = 0) -> None:
    """Store what a rerun must reproduce besides the seed: torch's thread count, the device, the stack size,
    whether denormals were flushed.

    ``stacked``: the number of trials trained together, 0 = alone.

    The thread count changes how sums are split, so the last digits of a loss; a rerun
    uses the stored one to compare exactly (see :mod:`mnist_hpo.artifacts.rerun`).
    """
    trial.set_user_attr("threads", torch.get_num_threads())
    trial.set_user_attr("flush_denormal", denormals_flushed())
    trial.set_user_attr("device", task.device.type)
    trial.set_user_attr("stacked", stacked)


def start_trial(trial: optuna.Trial, task, resolved: Resolved, *, stacked: int = 0) -> tuple[dict, int]:
    """Where every trial of a search starts, alone or stacked: its parameters, its seed and its conditions."""
    params = suggest(trial, resolved)
    seed = claim_seed(trial, trial_seed(task.cfg.seed, trial.number))
    record_conditions(trial, task, stacked=stacked)
    return params, seed


def store_curves(trial: optuna.Trial, **curves: list[float] | None) -> None:
    """Store a trial's per-epoch curves once, when it ends (completed, pruned, failed or cut off).

    Not per epoch: a journal keeps every write, so re-storing the growing list each epoch
    made its size grow with the square of the epochs (two thirds of a 50-epoch study's log).
    """
    try:
        for key, values in curves.items():
            if values is not None:
                trial.set_user_attr(key, list(values))
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # another worker failed it meanwhile (stale heartbeat); its retry stores its own


def store_history(trial: optuna.Trial, history: dict, *, besides: tuple[str, ...] = CURVES) -> None:
    """Store a trained trial's per-epoch series other than ``besides`` (those are :func:`store_curves`')."""
    for key, values in history.items():
        if key not in besides:
            trial.set_user_attr(key, values)


class RunningStudy(optuna.Study):
    """The study as a run and its callbacks see it: ``stop()`` ends the run after the trials under way.

    The run asks for and tells its trials itself (a stack shares one heartbeat, a journal claims its
    trials), outside ``optimize``, where Optuna's own ``stop`` refuses to work; so a callback's
    ``stop()`` is recorded here and the run honours it, as ``optimize`` would. It is the same study on
    the same storage object (``optuna.load_study`` builds its study with the same constructor).
    """

    def __init__(self, study: optuna.Study) -> None:
        super().__init__(study.study_name, storage_of(study), study.sampler, study.pruner)
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


class Batch:
    """Trials this worker trains together (one, or a stack): asked for, held while they train, each told once.

    A trial another worker failed meanwhile (its heartbeats stalled, so it is retried elsewhere) is
    handed over: said in one line, no longer this worker's; the others go on.
    """

    def __init__(self, study: RunningStudy, storage: optuna.storages.BaseStorage) -> None:
        self.study, self.storage = study, storage
        self.trials: list[optuna.Trial] = []
        self.finished: dict[int, FrozenTrial] = {}  # trial number -> the trial as told
        self.handed_over: set[int] = set()
        self._heartbeat: StackHeartbeat | None = None

    def ask(self, k: int) -> None:
        with warnings.catch_warnings():
            # ask() warns that heartbeats are meant for optimize(); the batch's heartbeat runs in held().
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(k):
                self.trials.append(self.study.ask())

    def running(self, trial: optuna.Trial) -> bool:
        return trial.number not in self.finished and trial.number not in self.handed_over

    @property
    def unfinished(self) -> list[optuna.Trial]:
        return [t for t in self.trials if self.running(t)]

    @contextlib.contextmanager
    def held(self) -> Iterator[Batch]:
        """One heartbeat thread for the whole batch (and, on a journal, its claim) while the block runs."""
        with contextlib.ExitStack() as hold:
            self._heartbeat = hold.enter_context(StackHeartbeat(self.storage, [trial_id(t) for t in self.trials]))
            if isinstance(self.storage, optuna.storages.JournalStorage):  # the journal's stand-in for heartbeats
                hold.enter_context(keep_alive(self.trials, interval=heartbeat_interval()))
            yield self

    @contextlib.contextmanager
    def writing(self, trial: optuna.Trial) -> Iterator[None]:
        """Write to ``trial`` within; if another worker failed it meanwhile, the trial is handed over instead."""
        try:
            yield
        except Exception as e:
            if not self.hand_over(trial, e):
                raise

    def hand_over(self, trial: optuna.Trial, error: Exception) -> bool:
        """Whether ``error`` came from ``trial`` having been failed by another worker (stale heartbeats); says so."""
        if not isinstance(error, (optuna.exceptions.UpdateFinishedTrialError, ValueError, AssertionError)):
            return False
        if not taken_over(self.study, trial.number):
            return False
        self.handed_over.add(trial.number)
        self._stop_beating(trial)
        print(
            f"mnist-hpo: trial {trial.number} missed its heartbeats and was failed by another worker "
            "(this machine is overloaded?); it is retried, this worker goes on",
            file=sys.stderr,
        )
        return True

    def tell(self, trial: optuna.Trial, state: TrialState = TrialState.COMPLETE, values=None) -> None:
        """End ``trial`` with ``state`` (and ``values`` when COMPLETE); an interrupt waits until it is stored."""
        with self.writing(trial), shielded():
            if state == TrialState.COMPLETE:
                self.finished[trial.number] = self.study.tell(trial, values)
            else:
                self.finished[trial.number] = self.study.tell(trial, state=state)
            self._stop_beating(trial)

    def fail(self, error: Exception, guard: FailureGuard) -> None:
        """The training raised: every trial still running FAIL with its ``error`` (broken, not retried); say so."""
        for trial in self.unfinished:
            if self.hand_over(trial, error):
                continue
            with self.writing(trial):
                # Optuna does not store why a trial failed; keep it with the trial for 'show' and the dashboard.
                trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            if self.running(trial):
                guard.failed(trial, error)
                self.tell(trial, TrialState.FAIL)

    def cut_off(self) -> None:
        """After Ctrl-C, SIGTERM or a fault of the storage or the disk: the trials still running FAIL without
        an 'error' (cut off, not broken) and are queued again with their parameters and seeds.

        At once or not at all: if the storage cannot be reached now, they stay RUNNING and the next
        run's stale check does the same.
        """
        cut = self.unfinished
        with contextlib.suppress(Exception, Fault), impatient(), shielded():
            for trial in cut:
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            requeue_interrupted(self.study, [t.number for t in cut])

    def _stop_beating(self, trial: optuna.Trial) -> None:
        if self._heartbeat is not None:
            self._heartbeat.discard(trial_id(trial))


Train = Callable[[Batch], None]  # trains a batch's trials and tells each (Batch.tell) as it ends


def tell_objective(objective: Callable[[optuna.Trial], object], batch: Batch) -> None:
    """Train a batch of one with an objective as ``optimize`` takes one: what it returns is the trial's value."""
    (trial,) = batch.trials
    batch.tell(trial, values=objective(trial))


class TrialLoop:
    """A worker's loop: batches of trials run through :class:`Batch` until the target is met, the study is
    stopped or this worker has run ``max_trials``; after each, the progress bar, the failure guard and
    the callbacks (``(study, frozen_trial)``, as ``optimize`` calls them) see each finished trial.

    Optuna's ``optimize`` does the same, but here every fault has its one line: a trial that another
    worker failed meanwhile is handed over without Optuna's logged tracebacks; Ctrl-C, SIGTERM or a
    fault of the storage or the disk fail the trials and queue them again (:meth:`Batch.cut_off`),
    then propagate. Asking and telling are shielded: an interrupt takes effect after a write, never
    half-way through.
    """

    def __init__(
        self,
        study: optuna.Study,
        storage: optuna.storages.BaseStorage,
        *,
        bar,
        callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
        max_trials: int | None = None,
    ) -> None:
        self.study, self.storage, self.bar = RunningStudy(study), storage, bar
        self.guard = FailureGuard(MAX_CONSECUTIVE_FAILURES)
        self.callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [self.guard, *(callbacks or [])]
        self.max_trials, self.ran = max_trials, 0

    def done(self) -> bool:
        return self.study.stopped or bool(self.max_trials and self.ran >= self.max_trials)

    def optimize(self, cfg, train: Train) -> None:
        """Run batches of up to ``cfg.batch_trials`` trials while the shared target lacks any
        (:func:`trials_wanted`: queued retries first); then wait for trials running elsewhere (or their
        retries), so that when this returns no trial of the study is RUNNING."""
        while not self.done():
            fail_stale_trials(self.study)
            k = min(cfg.batch_trials, trials_wanted(self.study, cfg))
            if self.max_trials:
                k = min(k, self.max_trials - self.ran)
            if k > 0:
                self.after(self.run(train, k=k))
            elif self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(min(heartbeat_interval(), 2))  # trials running elsewhere: wait for them or their retries
            else:
                return

    def run(self, train: Train, *, k: int = 1, claimed: optuna.Trial | None = None) -> list[FrozenTrial]:
        """Ask for ``k`` trials (or take the ``claimed`` one), train them, tell each; those told here, in order."""
        batch = Batch(self.study, self.storage)
        try:
            # An interrupt during ask takes effect once the batch holds the trials, so that they are cut off.
            with shielded():
                if claimed is None:
                    batch.ask(k)
                else:
                    batch.trials.append(claimed)
            with batch.held():
                try:
                    train(batch)
                except optuna.TrialPruned:
                    for trial in batch.unfinished:
                        batch.tell(trial, TrialState.PRUNED)
                except Exception as e:
                    batch.fail(e, self.guard)
        except (KeyboardInterrupt, Fault):
            batch.cut_off()
            raise
        finished = [batch.finished[t.number] for t in batch.trials if t.number in batch.finished]
        self.ran += len(finished)
        return finished

    def run_trial(self, objective: Callable[[optuna.Trial], float], trial: optuna.Trial) -> FrozenTrial | None:
        """Run a claimed trial with ``objective``; the finished trial, or None if another worker took it over."""
        finished = self.run(functools.partial(tell_objective, objective), claimed=trial)
        return finished[0] if finished else None

    def after(self, finished: list[FrozenTrial]) -> None:
        for trial in finished:
            update_bar(self.bar, self.study)
            for callback in self.callbacks:
                callback(self.study, trial)
        self.guard.raise_if_tripped()

    def after_trial(self, trial: FrozenTrial) -> None:
        self.after([trial])

    def __enter__(self) -> TrialLoop:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
