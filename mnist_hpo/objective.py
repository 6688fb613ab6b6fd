"""The Optuna objective, the same for every model family.

Suggest parameters from the study's declared space, train through the task,
report the validation metric each epoch, prune when told. A diverging trial ends
as pruned with its reason stored; it is never chosen as best.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
from tqdm.auto import tqdm

from .spaces import Resolved, suggest
from .tasks import Task
from .training import NonFiniteLoss


def trial_seed(study_seed: int, trial_number: int) -> int:
    """A trial's seed, derived from the study seed and the trial number (stable across machines)."""
    return int(np.random.SeedSequence([study_seed, trial_number]).generate_state(1)[0])


def make_objective(task: Task, resolved: Resolved, *, epochs: int, progress: bool = True):
    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, resolved)
        # A retried trial inherits its original's user attributes, so it reuses the same seed.
        seed = trial.user_attrs.get("seed")
        if seed is None:
            seed = trial_seed(task.cfg.seed, trial.number)
            trial.set_user_attr("seed", seed)
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
        return float(result.value)

    return objective
