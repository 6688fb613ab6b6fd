"""The Optuna objective, the same for every model family.

Suggest parameters from the study's declared space, train through the task,
report the validation metric each epoch, prune when told. A diverging trial ends
as pruned with its reason stored; it is never chosen as best.
"""

from __future__ import annotations

import contextlib
import math
import sys
import warnings
from collections.abc import Callable

import optuna
import torch
from tqdm.auto import tqdm

from ..core.schema import EXTRA_OBJECTIVES
from ..core.seeds import derive_seed
from ..errors import Fault, shielded
from ..tasks import TASKS, FitResult, Task
from ..train.loops import NonFiniteLoss
from ..train.numerics import denormals_flushed
from ..core.space import Resolved
from ..storages import StackHeartbeat, trial_id
from ..storages import _outage as outage  # as the body names it (public: storages.impatient)
from .suggestions import suggest


METRIC_NAMES = "study:metric_names"  # the system attribute Optuna's set_metric_names writes


def objective_names(cfg, task: Task | type[Task]) -> list[str]:
    """What a study's trials return, in order: the family's metric alone, or ``cfg.objectives``."""
    return list(cfg.objectives) or [task.metric]


def stored_metric_names(user_attrs: dict, n_objectives: int) -> list[str] | None:
    """The objective names of a study mnist-hpo made, from the config it stored (``objectives``, else its
    family's metric); None for a study without one, or whose config does not match its directions."""
    config = user_attrs.get("config")
    if not isinstance(config, dict):
        return None
    names = list(config.get("objectives") or [])
    if not names and config.get("model") in TASKS:
        names = [TASKS[config["model"]].metric]
    return names if names and len(names) == n_objectives else None


def study_metric_names(study) -> list[str] | None:
    """A stored study's objective names, read without its model's code (a plugin's may not be imported).

    ``study``: an ``optuna.Study``, or a storage's frozen study (``storage.get_all_studies()``).
    The names stored with it (``set_metric_names``, when it was created or next run), else those its
    stored config implies (a study made before names were stored); None when neither says.
    """
    names = study.metric_names if isinstance(study, optuna.Study) else study.system_attrs.get(METRIC_NAMES)
    return names or stored_metric_names(study.user_attrs, len(study.directions))


def record_metric_names(study: optuna.Study) -> None:
    """Name the study's objectives (``study.set_metric_names``) when it has no names yet.

    optuna-dashboard then says "val_mse" rather than "Objective 0", and a Pareto study's axes
    "val_mse" and "params" rather than "0" and "1". The names are a system attribute, not part of
    the study's identity, so a study stored before they existed gets them, unchanged otherwise, the
    next time trials are run in it (``run_study``, a worker, a resume that adds trials). Opening a
    study does not write them (``make reproduce`` opens every part of a complete record), nor does a
    command that only reads (``mnist-hpo dashboard`` shows them from :func:`study_metric_names`).
    """
    if study.metric_names is None and (names := stored_metric_names(study.user_attrs, len(study.directions))):
        set_metric_names(study, names)


def set_metric_names(study: optuna.Study, names: list[str]) -> None:
    with warnings.catch_warnings():
        # "Experimental" since Optuna 3.2; optuna-dashboard reads these names, so they are what we want.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(names)


def objective_directions(cfg, task: Task | type[Task]) -> list[str]:
    return [task.direction if name == task.metric else EXTRA_OBJECTIVES[name] for name in objective_names(cfg, task)]


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def trial_seed(study_seed: int, trial_number: int) -> int:
    """A trial's seed, derived from the study seed and the trial number (stable across machines)."""
    return derive_seed(study_seed, trial_number)


def record_conditions(trial: optuna.Trial, task: Task, *, stacked: int = 0) -> None:
    """Store what a rerun must reproduce besides the seed: torch's thread count, the device, the stack size,
    whether denormals were flushed.

    ``stacked``: the number of trials trained together (``run_stacked_trials``), 0 = alone.

    The thread count changes how sums are split, so the last digits of a loss; a rerun
    uses the stored one to compare exactly (see :mod:`mnist_hpo.artifacts.rerun`).
    """
    trial.set_user_attr("threads", torch.get_num_threads())
    trial.set_user_attr("flush_denormal", denormals_flushed())
    trial.set_user_attr("device", task.device.type)
    trial.set_user_attr("stacked", stacked)


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


def make_objective(task: Task, resolved: Resolved, *, epochs: int, progress: bool = True,
                   after_fit: Callable[[optuna.Trial, FitResult], None] | None = None):
    """``after_fit(trial, result)``, if given, runs after a trial trained to the end (e.g. to attach a figure).

    With several objectives the objective returns a tuple (the metric, then the model's
    parameter count); Optuna cannot prune such trials, so per-epoch values are not reported.
    """
    names = objective_names(task.cfg, task)
    multi = len(names) > 1

    def objective(trial: optuna.Trial) -> float | tuple[float, ...]:
        params = suggest(trial, resolved)
        # A retried trial inherits its original's user attributes, so it reuses the same seed.
        seed = trial.user_attrs.get("seed")
        if seed is None:
            seed = trial_seed(task.cfg.seed, trial.number)
            trial.set_user_attr("seed", seed)
        record_conditions(trial, task)
        train_curve: list[float] = []
        val_curve: list[float] = []  # kept as an attribute where Optuna takes no intermediate values
        bar = tqdm(total=epochs, desc=f"trial {trial.number}", unit="epoch", leave=False, disable=not progress)

        def on_epoch(epoch: int, train_loss: float, val_loss: float) -> None:
            train_curve.append(train_loss)
            if multi:
                val_curve.append(val_loss)
            else:
                trial.report(val_loss, epoch)
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
            if not multi and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch + 1}")

        try:
            result = task.fit(params, seed=seed, epochs=epochs, full=False, on_epoch=on_epoch)
        except NonFiniteLoss as e:
            trial.set_user_attr("fail_reason", str(e))
            raise optuna.TrialPruned(str(e)) from None
        except optuna.TrialPruned:
            raise
        except Exception as e:
            # Optuna does not store why a trial failed; keep it with the trial for 'show' and the dashboard.
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            raise
        finally:
            bar.close()
            store_curves(trial, train_loss=train_curve, val_loss=val_curve if multi else None)
        for key, values in result.history.items():
            if key not in ("train_loss", "val_loss"):
                trial.set_user_attr(key, values)
        if not math.isfinite(result.value):
            # Optuna would store inf as a COMPLETE value (and NaN as FAIL without a reason); neither may be best.
            trial.set_user_attr("fail_reason", f"objective became {result.value}")
            raise optuna.TrialPruned(f"objective became {result.value}")
        if after_fit is not None:
            after_fit(trial, result)
        if multi:
            extra = {"params": float(parameter_count(result.model))}
            return tuple(float(result.value) if name == task.metric else extra[name] for name in names)
        return float(result.value)

    return objective


def run_stacked_trials(study: optuna.Study, task: Task, resolved: Resolved, *, epochs: int, k: int,
                       storage: optuna.storages.BaseStorage, progress: bool = True,
                       started: list[int] | None = None, claim: Callable | None = None) -> list[int]:
    """Ask Optuna for ``k`` trials, train them together (``task.fit_stacked``), tell each its result.

    Returns the numbers of the trials it ran. ``storage`` is the study's storage (the one
    it was opened with): one heartbeat thread beats there for the whole stack.

    Each is a separate Optuna trial: its own parameters, seed, per-epoch reports and
    pruning decision; a pruned or diverged trial leaves the stack, the others go on.
    A trial that another worker failed meanwhile (its heartbeats stalled, so it was
    retried elsewhere) also leaves the stack; the others go on.

    ``started``, if given, receives the trials' numbers as soon as they exist (so the caller
    can queue them again after Ctrl-C); ``claim(trials)``, if given, is a context manager held
    while they train (the journal storage's stand-in for heartbeats). Ctrl-C fails the stack's
    trials without an ``error``: they were cut off, not broken.
    """
    with warnings.catch_warnings():
        # ask() warns that heartbeats are meant for optimize(); the stack's heartbeat runs below.
        warnings.simplefilter("ignore", UserWarning)
        trials = [study.ask() for _ in range(k)]
    if started is not None:
        started.extend(t.number for t in trials)
    params, seeds, told = [], [], set()
    for trial in trials:
        params.append(suggest(trial, resolved))
        seed = trial.user_attrs.get("seed")
        if seed is None:
            seed = trial_seed(task.cfg.seed, trial.number)
            trial.set_user_attr("seed", seed)
        seeds.append(seed)
        record_conditions(trial, task, stacked=k)
    bar = tqdm(total=epochs, desc=f"trials {trials[0].number}-{trials[-1].number}", unit="epoch", leave=False,
               disable=not progress)
    curves: list[list[float]] = [[] for _ in trials]

    def taken_over(i: int) -> None:
        told.add(i)
        heartbeat.discard(trial_id(trials[i]))
        print(f"mnist-hpo: trial {trials[i].number} missed its heartbeats and was failed by another worker "
              "(this machine is overloaded?); it is retried, this worker goes on", file=sys.stderr)

    def on_epoch(i: int, epoch: int, train_loss: float, val_loss: float) -> bool:
        trial = trials[i]
        if i == max(set(range(len(trials))) - told):
            bar.update(1)
        curves[i].append(train_loss)
        try:
            trial.report(val_loss, epoch)
            if trial.should_prune():
                store_curves(trial, train_loss=curves[i])
                study.tell(trial, state=optuna.trial.TrialState.PRUNED, skip_if_finished=True)
                told.add(i)
                heartbeat.discard(trial_id(trial))
                return False
        except optuna.exceptions.UpdateFinishedTrialError:
            taken_over(i)
            return False
        return True

    with contextlib.ExitStack() as hold:
        heartbeat = hold.enter_context(StackHeartbeat(storage, [trial_id(t) for t in trials]))
        if claim is not None:
            hold.enter_context(claim(trials))
        try:
            histories = task.fit_stacked(params, seeds, epochs=epochs, on_epoch=on_epoch)
        except BaseException as e:  # Ctrl-C or a crash: no trial may stay RUNNING
            cut_off = isinstance(e, (KeyboardInterrupt, Fault))  # not broken: queued again without an 'error'
            for i, trial in enumerate(trials):
                if i not in told:
                    try:
                        # At once or not at all when cut off (the next run's stale check fails what is left).
                        with outage.impatient() if cut_off else contextlib.nullcontext(), shielded():
                            if not cut_off:
                                trial.set_user_attr("error", f"{type(e).__name__}: {e}")
                            store_curves(trial, train_loss=curves[i])
                            study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                    except optuna.exceptions.UpdateFinishedTrialError:
                        pass  # already failed by another worker
                    except (Exception, Fault):
                        if not cut_off:
                            raise
            raise
        finally:
            bar.close()
        with shielded():  # the stack's results are stored whole before an interrupt takes effect
            for i, (trial, history) in enumerate(zip(trials, histories)):
                if i in told:
                    continue
                try:
                    store_curves(trial, train_loss=curves[i])
                    if "error" in history:
                        trial.set_user_attr("fail_reason", history["error"])
                        study.tell(trial, state=optuna.trial.TrialState.PRUNED, skip_if_finished=True)
                    else:
                        for key, values in history.items():
                            if key not in ("train_loss", "val_loss"):
                                trial.set_user_attr(key, values)
                        study.tell(trial, history["val_loss"][-1], skip_if_finished=True)
                except optuna.exceptions.UpdateFinishedTrialError:
                    taken_over(i)
    return [t.number for t in trials]
