"""What a trial computes, the same for every model family: the objective of a trial trained alone, and
the training of a stack of trials (``batch_trials`` > 1); and the names of a study's objectives.

Suggest parameters from the study's declared space, train through the task, report the validation
metric each epoch, prune when told. A diverging trial ends as pruned with its reason stored; it is
never chosen as best. How a trial starts, is stored and is told is :mod:`.trials`' business.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Literal

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

from ..core.schema import EXTRA_OBJECTIVES, StudyConfig
from ..core.space import Resolved
from ..errors import shielded
from ..tasks import FitResult, Task
from ..tasks.known import REGISTRY
from ..train.loops import NonFiniteLoss
from .trials import Batch, start_trial, store_curves, store_history

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
    if not names and config.get("model") in REGISTRY:
        names = [REGISTRY[config["model"]].metric]
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


def objective_directions(cfg: StudyConfig, task: Task | type[Task]) -> list[Literal["minimize", "maximize"]]:
    return [task.direction if name == task.metric else EXTRA_OBJECTIVES[name] for name in objective_names(cfg, task)]


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def make_objective(
    task: Task,
    resolved: Resolved,
    *,
    epochs: int,
    progress: bool = True,
    after_fit: Callable[[optuna.Trial, FitResult], None] | None = None,
):
    """The objective of a trial trained alone: suggest, train, report each epoch, prune when told, return.

    ``after_fit(trial, result)``, if given, runs after a trial trained to the end (e.g. to attach a figure).
    With several objectives the objective returns a tuple (the metric, then the model's
    parameter count); Optuna cannot prune such trials, so per-epoch values are not reported.
    Why a trial failed is stored by its batch (:meth:`~.trials.Batch.fail`), as for a stack.
    """
    names = objective_names(task.cfg, task)
    multi = len(names) > 1

    def objective(trial: optuna.Trial) -> float | tuple[float, ...]:
        params, seed = start_trial(trial, task, resolved)
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
        finally:
            bar.close()
            store_curves(trial, train_loss=train_curve, val_loss=val_curve if multi else None)
        store_history(trial, result.history)
        if not math.isfinite(result.value):
            # Optuna would store inf as a COMPLETE value (and NaN as FAIL without a reason); neither may be best.
            # The documented signal is NonFiniteLoss raised from fit; this catches a family that returns the value.
            reason = f"objective became {result.value} (a family says so by raising NonFiniteLoss from fit)"
            trial.set_user_attr("fail_reason", reason)
            raise optuna.TrialPruned(reason)
        if after_fit is not None:
            after_fit(trial, result)
        if multi:
            extra = {"params": float(parameter_count(result.model))}
            return tuple(float(result.value) if name == task.metric else extra[name] for name in names)
        return float(result.value)

    return objective


def train_stack(batch: Batch, *, task: Task, resolved: Resolved, epochs: int, progress: bool = True) -> None:
    """Train the batch's trials together (``task.fit_stacked``) and tell each its result.

    Each is a separate Optuna trial: its own parameters, seed, per-epoch reports and pruning
    decision; a pruned, diverged or handed-over trial leaves the stack, the others go on.
    """
    trials = batch.trials
    started = [start_trial(trial, task, resolved, stacked=len(trials)) for trial in trials]
    curves: list[list[float]] = [[] for _ in trials]
    bar = tqdm(
        total=epochs,
        desc=f"trials {trials[0].number}-{trials[-1].number}",
        unit="epoch",
        leave=False,
        disable=not progress,
    )

    def on_epoch(i: int, epoch: int, train_loss: float, val_loss: float) -> bool:
        trial = trials[i]
        if trial is batch.unfinished[-1]:  # once an epoch: the last trial still training ends it
            bar.update(1)
        curves[i].append(train_loss)
        with batch.writing(trial):
            trial.report(val_loss, epoch)
            if trial.should_prune():
                store_curves(trial, train_loss=curves[i])
                batch.tell(trial, TrialState.PRUNED)
        return batch.running(trial)

    try:
        histories = task.fit_stacked([p for p, _ in started], [s for _, s in started], epochs=epochs, on_epoch=on_epoch)
    finally:
        bar.close()
        for trial, curve in zip(trials, curves):
            if batch.running(trial):
                store_curves(trial, train_loss=curve)
    with shielded():  # the stack's results are stored whole before an interrupt takes effect
        for trial, history in zip(trials, histories):
            if not batch.running(trial):
                continue
            with batch.writing(trial):
                if "error" in history:
                    trial.set_user_attr("fail_reason", history["error"])
                    batch.tell(trial, TrialState.PRUNED)
                else:
                    store_history(trial, history)
                    batch.tell(trial, values=history["val_loss"][-1])
