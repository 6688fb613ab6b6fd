"""The Optuna objective, the same for every model family.

Suggest parameters from the study's declared space, train through the task,
report the validation metric each epoch, prune when told. A diverging trial ends
as pruned with its reason stored; it is never chosen as best.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import optuna
from tqdm.auto import tqdm

from .spaces import Resolved, suggest
from .tasks import FitResult, Task
from .training import NonFiniteLoss


def trial_seed(study_seed: int, trial_number: int) -> int:
    """A trial's seed, derived from the study seed and the trial number (stable across machines)."""
    return int(np.random.SeedSequence([study_seed, trial_number]).generate_state(1)[0])


def record_conditions(trial: optuna.Trial, task: Task, *, stacked: int = 0) -> None:
    """Store what a rerun must reproduce besides the seed: torch's thread count, the device, the stack size.

    ``stacked``: the number of trials trained together (``run_stacked_trials``), 0 = alone.

    The thread count changes how sums are split, so the last digits of a loss; a rerun
    uses the stored one to compare exactly (see :mod:`mnist_hpo.rerun`).
    """
    import torch

    trial.set_user_attr("threads", torch.get_num_threads())
    trial.set_user_attr("device", task.device.type)
    trial.set_user_attr("stacked", stacked)


def make_objective(task: Task, resolved: Resolved, *, epochs: int, progress: bool = True,
                   after_fit: Callable[[optuna.Trial, FitResult], None] | None = None):
    """``after_fit(trial, result)``, if given, runs after a trial trained to the end (e.g. to attach a figure)."""

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, resolved)
        # A retried trial inherits its original's user attributes, so it reuses the same seed.
        seed = trial.user_attrs.get("seed")
        if seed is None:
            seed = trial_seed(task.cfg.seed, trial.number)
            trial.set_user_attr("seed", seed)
        record_conditions(trial, task)
        train_curve: list[float] = []
        bar = tqdm(total=epochs, desc=f"trial {trial.number}", unit="epoch", leave=False, disable=not progress)

        def on_epoch(epoch: int, train_loss: float, val_loss: float) -> None:
            train_curve.append(train_loss)
            trial.set_user_attr("train_loss", train_curve)
            trial.report(val_loss, epoch)
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
            if trial.should_prune():
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
        for key, values in result.history.items():
            if key not in ("train_loss", "val_loss"):
                trial.set_user_attr(key, values)
        if not math.isfinite(result.value):
            # Optuna would store inf as a COMPLETE value (and NaN as FAIL without a reason); neither may be best.
            trial.set_user_attr("fail_reason", f"objective became {result.value}")
            raise optuna.TrialPruned(f"objective became {result.value}")
        if after_fit is not None:
            after_fit(trial, result)
        return float(result.value)

    return objective


def run_stacked_trials(study: optuna.Study, task: Task, resolved: Resolved, *, epochs: int, k: int,
                       progress: bool = True) -> list[int]:
    """Ask Optuna for ``k`` trials, train them together (``task.fit_stacked``), tell each its result.

    Returns the numbers of the trials it ran.

    Each is a separate Optuna trial: its own parameters, seed, per-epoch reports and
    pruning decision; a pruned or diverged trial leaves the stack, the others go on.
    """
    import contextlib
    import warnings

    from optuna.storages._heartbeat import get_heartbeat_thread  # the same heartbeat optimize() runs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
        # ask() warns that heartbeats are meant for optimize(); we run the same heartbeat thread below.
        warnings.simplefilter("ignore", UserWarning)
        trials = [study.ask() for _ in range(k)]
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

    def on_epoch(i: int, epoch: int, train_loss: float, val_loss: float) -> bool:
        trial = trials[i]
        curves[i].append(train_loss)
        trial.set_user_attr("train_loss", curves[i])
        trial.report(val_loss, epoch)
        if i == max(set(range(len(trials))) - told):
            bar.update(1)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            told.add(i)
            return False
        return True

    with contextlib.ExitStack() as beats:
        for trial in trials:
            beats.enter_context(get_heartbeat_thread(trial._trial_id, study._storage))
        try:
            histories = task.fit_stacked(params, seeds, epochs=epochs, on_epoch=on_epoch)
        except BaseException as e:  # Ctrl-C or a crash: no trial may stay RUNNING
            for i, trial in enumerate(trials):
                if i not in told:
                    trial.set_user_attr("error", f"{type(e).__name__}: {e}")
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        finally:
            bar.close()
    for i, (trial, history) in enumerate(zip(trials, histories)):
        if i in told:
            continue
        if "error" in history:
            trial.set_user_attr("fail_reason", history["error"])
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            for key, values in history.items():
                if key not in ("train_loss", "val_loss"):
                    trial.set_user_attr(key, values)
            study.tell(trial, history["val_loss"][-1])
    return [t.number for t in trials]
