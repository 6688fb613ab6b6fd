"""An export's final retrain, and what is done when it ends on the mean-image plateau.

The report's protocol comes first: the chosen trial's configuration, trained with the trial's
own seed on every training image. A reconstruction model whose retrain stays on the mean-image
plateau (:mod:`mnist_hpo.measures.mean_image`) is no model, although its trial left the plateau
on its split (the record's ``dae`` trial 25). Such a retrain is tried again with the next seeds
(:data:`SEEDS_PER_TRIAL` in all), and, when the trial is the study's best, with the next-best
trials (:data:`FALLBACK_TRIALS`). An attempt is given up as soon as it is clearly stuck: still on
the plateau after twice the epochs its trial needed to leave it, and after enough optimizer steps
to judge. Every attempt is recorded in ``export.json`` (``retrain.attempts``). When all of them
are stuck, the first is trained to the end and exported, marked ``on_plateau``.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from ..core.hardware import hardware
from ..core.schema import StudyConfig
from ..data.datasets import Dataset
from ..measures import mean_image as plateau
from ..tasks import FitResult, Task

SEEDS_PER_TRIAL = 3  # the trial's own seed, then the next two
FALLBACK_TRIALS = 2  # then the study's next-best trials, each with its seeds
MODELS = ("autoencoder", "denoising")  # whose test MSE can be judged against the mean image


@dataclass
class Retrained:
    """The retrain an export is made of: which trial and seed, the trained result, its test metrics and record."""

    trial: FrozenTrial
    seed: int
    result: FitResult
    history: dict
    record: dict  # export.json's "retrain"
    test_metrics: dict = field(default_factory=dict)


class _Stuck(Exception):
    """Raised from an epoch's callback: this attempt is still on the plateau its trial had left by then."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(epoch, loss)
        self.epoch, self.loss = epoch, loss


def trial_seed(trial: FrozenTrial, cfg: StudyConfig) -> int:
    return int(trial.user_attrs.get("seed", cfg.seed))


def retrain(
    study: optuna.Study, trial: FrozenTrial, cfg: StudyConfig, data: Dataset, task: Task, *, progress: bool, best: bool
) -> Retrained:
    """Retrain ``trial`` for its export; off the plateau if another seed (or, ``best``: another trial) gets there."""
    train_images = len(data.subset(cfg.train_subset).train_images)
    steps = plateau.optimizer_steps(train_images, cfg.batch_size, cfg.epochs)
    if cfg.model not in MODELS or len(study.directions) > 1 or steps < plateau.MIN_STEPS:
        return _finish(_run(task, trial, cfg, data, trial_seed(trial, cfg), progress), cfg, data, task, [])
    baseline = plateau.mean_image_test_mse(data.subset(cfg.train_subset, cfg.test_subset))
    attempts: list[dict] = []
    first: Retrained | None = None
    for candidate, seed in _candidates(study, trial, cfg, best):
        limit = _give_up_epoch(candidate, baseline, cfg, train_images)
        if limit is None and attempts:  # a trial that never left the plateau: no seed of it is tried again
            continue
        try:
            done = _run(task, candidate, cfg, data, seed, progress, stuck=(limit or cfg.epochs, baseline))
        except _Stuck as e:
            attempts.append(_attempt(candidate, seed, epochs=e.epoch, test_mse=e.loss, on_plateau=True))
            _say_given_up(study, candidate, seed, e, baseline)
            continue
        done.test_metrics = task.test(done.result.model)
        stuck = done.test_metrics["test_mse"] >= plateau.STUCK_SHARE * baseline
        attempts.append(
            _attempt(candidate, seed, epochs=cfg.epochs, test_mse=done.test_metrics["test_mse"], on_plateau=stuck)
        )
        if not stuck:
            return _finish(done, cfg, data, task, attempts, asked=trial)
        if len(attempts) == 1:  # the report's protocol, trained to its end: kept should every other attempt stick
            first = done
    if first is None:  # every attempt stuck: the report's protocol, trained to the end, marked as such
        first = _run(task, trial, cfg, data, trial_seed(trial, cfg), progress)
        first.test_metrics = task.test(first.result.model)
    return _finish(first, cfg, data, task, attempts, asked=trial)


def _candidates(study: optuna.Study, trial: FrozenTrial, cfg: StudyConfig, best: bool):
    """(trial, seed) in the order they are tried: the trial's seeds, then the next-best trials' (``best`` only)."""
    trials = [trial]
    if best:
        sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
        others = [
            (t.value, t)
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.number != trial.number and t.value is not None and math.isfinite(t.value)
        ]
        trials += [t for _, t in sorted(others, key=lambda vt: (sign * vt[0], vt[1].number))[:FALLBACK_TRIALS]]
    for t in trials:
        for k in range(SEEDS_PER_TRIAL):
            yield t, trial_seed(t, cfg) + k


def _give_up_epoch(trial: FrozenTrial, baseline: float, cfg: StudyConfig, train_images: int) -> int | None:
    """The epoch after which an attempt still on the plateau is given up: twice the epochs the trial needed
    to leave it on its split, and no fewer than judging needs (``MIN_STEPS``); None: the trial never left it."""
    share = plateau.STUCK_SHARE * baseline
    left = next((e + 1 for e, v in sorted(trial.intermediate_values.items()) if v < share), None)
    if left is None:
        return None
    judged = math.ceil(plateau.MIN_STEPS / max(1, plateau.optimizer_steps(train_images, cfg.batch_size, 1)))
    return min(cfg.epochs, max(2 * left, judged))


def _run(
    task: Task,
    trial: FrozenTrial,
    cfg: StudyConfig,
    data: Dataset,
    seed: int,
    progress: bool,
    stuck: tuple[int, float] | None = None,
) -> Retrained:
    """One retrain of ``trial``'s configuration with ``seed``; ``stuck=(epoch, baseline)`` gives it up early."""
    bar = tqdm(total=cfg.epochs, desc=f"retrain trial {trial.number}", unit="epoch", disable=not progress)

    def on_epoch(epoch: int, train_loss: float, test_loss: float) -> None:
        bar.update(1)
        bar.set_postfix(train=f"{train_loss:.4f}", test=f"{test_loss:.4f}")
        if (
            stuck is not None
            and epoch + 1 >= stuck[0] > 0
            and epoch + 1 < cfg.epochs
            and test_loss >= plateau.STUCK_SHARE * stuck[1]
        ):
            raise _Stuck(epoch + 1, float(test_loss))

    start = time.perf_counter()
    try:
        result = task.fit(trial.params, seed=seed, epochs=cfg.epochs, full=True, on_epoch=on_epoch)
    finally:
        bar.close()
    # With full=True the per-epoch evaluation was on the test set: name it so (val_loss -> test_loss,
    # the classifier's val_accuracy -> test_accuracy).
    history = {(f"test_{k[4:]}" if k.startswith("val_") else k): v for k, v in result.history.items()}
    record = {
        "epochs": cfg.epochs,
        "seconds": round(time.perf_counter() - start, 2),
        "device": str(task.device),
        "train_images": len(data.subset(cfg.train_subset).train_images),
    }
    return Retrained(trial, seed, result, history, record)


def _attempt(trial: FrozenTrial, seed: int, *, epochs: int, test_mse: float, on_plateau: bool) -> dict:
    return {
        "trial": trial.number,
        "seed": seed,
        "epochs": epochs,
        "test_mse": round(test_mse, 6),
        "on_plateau": on_plateau,
    }


def _finish(
    done: Retrained, cfg: StudyConfig, data: Dataset, task: Task, attempts: list[dict], asked: FrozenTrial | None = None
) -> Retrained:
    """``done``'s record: hardware, the plateau check, and (after retries) every attempt and what was asked."""
    if not done.test_metrics:
        done.test_metrics = task.test(done.result.model)
    record = done.record
    record["hardware"] = hardware(str(task.device))
    steps = plateau.optimizer_steps(record["train_images"], cfg.batch_size, cfg.epochs)
    record.update(
        plateau.retrain_check(cfg.model, data.subset(cfg.train_subset, cfg.test_subset), done.test_metrics, steps=steps)
    )
    if len(attempts) > 1 and asked is not None:
        record["attempts"] = attempts
        if (done.trial.number, done.seed) != (asked.number, trial_seed(asked, cfg)):
            record["fallback"] = {"from_trial": asked.number, "from_seed": trial_seed(asked, cfg)}
    return done


def _say_given_up(study: optuna.Study, trial: FrozenTrial, seed: int, e: _Stuck, baseline: float) -> None:
    print(
        f"mnist-hpo: the retrain of {study.study_name} trial {trial.number} with seed {seed} is still on the "
        f"mean-image plateau after {e.epoch} epochs (test MSE {e.loss:.4f}, the mean image's {baseline:.4f}); "
        "given up, trying the next seed or trial",
        file=sys.stderr,
    )


def say_outcome(study: optuna.Study, asked: FrozenTrial, done: Retrained) -> None:
    """One line when the export is not ``asked``'s retrain with its own seed, or when it is on the plateau."""
    record, tried = done.record, len(done.record.get("attempts", [])) or 1
    attempts = f"{tried} {'attempt' if tried == 1 else 'attempts'}"
    if record.get("on_plateau"):
        print(
            f"mnist-hpo: warning: the retrain of {study.study_name} trial {done.trial.number} ended on the "
            f"mean-image plateau (test MSE {done.test_metrics['test_mse']:.4f}; the mean image's is "
            f"{record['mean_image_test_mse']:.4f}; the trial reached {done.trial.values[0]:.4f} on its split; "
            f"{attempts}): the export is kept and marked so; `mnist-hpo show {study.study_name}` counts such "
            f"runs by L2, `mnist-hpo export {study.study_name} --trial N` exports another trial",
            file=sys.stderr,
        )
    elif record.get("fallback"):
        print(
            f"mnist-hpo: the retrain of {study.study_name} trial {asked.number} stayed on the mean-image "
            f"plateau; exported trial {done.trial.number} with seed {done.seed} instead (test MSE "
            f"{done.test_metrics['test_mse']:.4f}; {attempts}, listed in export.json's retrain.attempts)",
            file=sys.stderr,
        )
