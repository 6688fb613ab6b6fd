"""Re-run one stored trial as it ran, and compare the metric it reported with the new one.

A trial's seed is derived from the study seed and the trial number and stored as the
trial's user attribute ``seed`` (a retried trial inherits it). Every trial also stores
the conditions that change the last digits of a loss (``threads``: torch's thread count,
``device``, ``stacked``: the size of the stack it trained in, 0 = alone; ``flush_denormal``:
whether CPU arithmetic flushed denormals, see :mod:`mnist_hpo.train.numerics`; see
``mnist_hpo.hpo.trials.record_conditions``). Like is compared with like:

* a COMPLETE trial is trained for the study's epochs and its objective compared;
* a PRUNED trial is trained up to the epoch it last reported (the same run, stopped
  where the pruner stopped it) and that epoch's value compared with its last
  intermediate value, not with a full-length run;
* the rerun uses the stored thread count and denormal mode; a stacked trial is trained through the
  stacked path (a stack of one);
* a segment of population-based training is trained from the checkpoint it started from
  (checked against its recorded sha256) for the epochs it covered, and the checkpoint it ends
  with is compared too: byte for byte, when the value is compared exactly.

On a CPU, alone (or in a stack of one), with the stored thread count, training is
bit-reproducible, so the values must be identical. Otherwise (a stack of several, whose
padding and shared batched kernels round differently; a CUDA device; a trial stored
before these conditions were recorded) they must agree within :data:`UNLIKE_REL_TOL`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna
import torch

from ..core.schema import StudyConfig
from ..data.datasets import Dataset, load_data
from ..errors import UserError
from ..hpo.pbt import PBT, is_segment, rerun_segment
from ..hpo.queries import study_config
from ..storages import load_existing_study
from ..tasks import make_task, registry
from ..train.loops import NonFiniteLoss
from ..train.numerics import denormals_flushed, flush_denormals
from .export import study_provider

# When the rerun cannot reproduce the original arithmetic exactly: 1 % of the stored value.
# Rounding differences grow over the epochs but stay well below this (0.01 % after 2 epochs
# for stacked against alone, tests/train/test_stacked.py); another seed or other parameters do not.
UNLIKE_REL_TOL = 1e-2


@dataclass(frozen=True)
class Rerun:
    trial: int
    seed: int
    metric: str  # e.g. val_mse
    compared: str  # which value: "after epoch 3 of 3" / "at epoch 2, where it was pruned"
    conditions: str  # how the rerun was trained
    stored: float
    value: float | None  # None: the rerun diverged first
    tolerance: float = 0.0  # relative; 0 = must be identical
    diverged: str = ""
    warning: str = ""  # e.g. the study's plugin is installed here in another version
    same_checkpoint: bool | None = None  # a population-based segment: whether it ended with its recorded checkpoint

    @property
    def identical(self) -> bool:
        same = self.value == self.stored or (
            self.value is not None and math.isnan(self.value) and math.isnan(self.stored)
        )
        return same and self.same_checkpoint is not False

    @property
    def holds(self) -> bool:
        if self.value is None:
            return False
        return self.identical or (
            self.tolerance > 0 and abs(self.value - self.stored) <= self.tolerance * abs(self.stored)
        )

    def verdict(self) -> str:
        if self.value is None:
            return f"the rerun diverged before that epoch ({self.diverged})"
        if self.identical and self.same_checkpoint:
            return "identical, and so is the checkpoint it ended with"
        if self.identical:
            return "identical"
        if self.value == self.stored and not self.tolerance:
            return "the same value, but DIFFERS: the checkpoint it ended with is not the recorded one"
        diff = abs(self.value - self.stored)
        bound = "exact match expected" if not self.tolerance else f"tolerance {self.tolerance:.0%} of the stored value"
        return f"{'within' if self.holds else 'DIFFERS, beyond'} {bound}: differs by {diff:.3g}"

    def describe(self) -> str:
        rerun = "diverged" if self.value is None else f"{self.value:.6g}"
        return (
            f"trial {self.trial} (seed {self.seed}), {self.metric} {self.compared}: stored {self.stored:.6g}, "
            f"rerun {rerun} ({self.verdict()}); rerun {self.conditions}"
        )

    def difference(self) -> str:
        rerun = "diverged" if self.value is None else f"{self.value:.6g}"
        return f"trial {self.trial} {self.metric} {self.compared}: stored {self.stored:.6g}, rerun {rerun}: {self.verdict()}"


class _Stop(Exception):
    """Raised from the epoch callback once the epoch to compare has been reported."""


def rerun_trial(study_name: str, number: int, *, storage_url: str | None = None, data: Dataset | None = None) -> Rerun:
    """Train trial ``number`` of ``study_name`` again as it ran; the stored and the new value."""
    study = load_existing_study(study_name, storage_url)
    trial = _finished_trial(study, study_name, number)
    cfg = study_config(study)
    # A plugin family: installed (or trusted) first; another version than the study's is a warning.
    _, warning = registry.check_recorded(cfg.model, study_provider(study), f"study {study_name}")
    saved_threads, saved_flush = torch.get_num_threads(), denormals_flushed()  # make_task sets the mode
    task = make_task(cfg, data if data is not None else load_data(cfg))
    seed = int(trial.user_attrs["seed"])
    stop, stored, compared = _what_to_compare(trial, cfg)
    how = _Conditions.of(trial.user_attrs, cfg, task)
    torch.set_num_threads(how.threads)
    flush_denormals(how.flush)
    try:
        value, diverged, same_checkpoint = _train_again(
            task, trial, cfg.epochs, seed, stop, how.stacked, where=f"study {study_name} trial {number}"
        )
    finally:
        torch.set_num_threads(saved_threads)
        flush_denormals(saved_flush)
    return Rerun(
        trial.number,
        seed,
        task.metric,
        compared,
        how.describe(task),
        stored,
        value,
        UNLIKE_REL_TOL if how.unlike else 0.0,
        diverged,
        warning,
        same_checkpoint,
    )


def _finished_trial(study: optuna.Study, study_name: str, number: int) -> optuna.trial.FrozenTrial:
    """Trial ``number``, finished with a value and a seed; any other is one :class:`UserError` line."""
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    state = trial.state if trial else None
    usable = (
        trial is not None
        and "seed" in trial.user_attrs
        and (
            (state == optuna.trial.TrialState.COMPLETE and trial.value is not None)
            or (state == optuna.trial.TrialState.PRUNED and trial.intermediate_values)
        )
    )
    if trial is None or not usable:
        raise UserError(
            f"study {study_name!r} has no finished trial {number} with a value and a seed "
            f"(a complete trial, or a pruned one that reported a value); "
            f"'mnist-hpo show {study_name}' lists its trials"
        )
    return trial


def _what_to_compare(trial: optuna.trial.FrozenTrial, cfg: StudyConfig) -> tuple[int | None, float, str]:
    """The epoch to stop after (None: train them all), the stored value to compare with, and which value it is."""
    if is_segment(trial):
        first, stop_epoch = trial.user_attrs[PBT]["epochs"]
        if trial.value is None:  # pruned: it diverged, after reporting some epochs
            raise UserError(
                f"trial {trial.number} is a segment of population-based training that stopped without "
                f"a value ({trial.user_attrs.get('fail_reason', 'pruned')}); nothing to compare a "
                "rerun with"
            )
        return (
            None,
            float(trial.value),
            (
                f"after epoch {stop_epoch} (the segment of epochs {first + 1}-{stop_epoch} of member "
                f"{trial.user_attrs[PBT]['member']}, from the checkpoint it started from)"
            ),
        )
    if trial.state == optuna.trial.TrialState.PRUNED:
        stop = max(trial.intermediate_values)
        return stop, float(trial.intermediate_values[stop]), f"at epoch {stop + 1} of {cfg.epochs}, where it was pruned"
    assert trial.value is not None  # complete (_finished_trial)
    return None, float(trial.value), f"after epoch {cfg.epochs} of {cfg.epochs}"


@dataclass(frozen=True)
class _Conditions:
    """How the trial trained, as recorded: torch's threads, the denormal mode, the stack; and why the
    rerun cannot be compared exactly (``unlike``, empty when it can)."""

    threads: int
    flush: bool
    stacked: int
    unlike: tuple[str, ...]

    @classmethod
    def of(cls, attrs: dict, cfg: StudyConfig, task) -> _Conditions:
        recorded = "threads" in attrs
        threads = int(attrs["threads"]) if recorded else torch.get_num_threads()
        # Trials from before the mode was recorded trained with denormals kept (torch's default).
        flush = bool(attrs.get("flush_denormal", False))
        stacked = int(attrs.get("stacked", 0)) if recorded else (cfg.batch_trials if cfg.batch_trials > 1 else 0)
        unlike = []
        if not recorded:
            unlike.append("the trial's thread count and device were not recorded")
        if stacked > 1:
            unlike.append(f"it trained in a stack of {stacked}")
        if task.device.type != "cpu":
            unlike.append(f"{task.device.type} kernels are not bit-reproducible")
        elif recorded and attrs.get("device", "cpu") != "cpu":
            unlike.append(f"it trained on {attrs['device']}")
        return cls(threads, flush, stacked, tuple(unlike))

    def describe(self, task) -> str:
        path = "through the stacked path (a stack of one)" if self.stacked else "alone"
        return (
            f"{path} with {self.threads} torch thread{'s' if self.threads != 1 else ''} on {task.device.type}"
            + (", denormals flushed" if self.flush else "")
            + (
                f", compared within a tolerance because {'; '.join(self.unlike)}"
                if self.unlike
                else ", compared exactly"
            )
        )


def _train_again(
    task, trial: optuna.trial.FrozenTrial, epochs: int, seed: int, stop: int | None, stacked: int, where: str
) -> tuple[float | None, str, bool | None]:
    """Train the trial again up to ``stop`` (None: all ``epochs``): its value (None: it diverged first), why it
    diverged, and for a population-based segment whether it ended with its recorded checkpoint."""
    reported: dict[int, float] = {}
    value: float | None = None
    diverged, same_checkpoint = "", None
    try:
        if is_segment(trial):
            value, same_checkpoint = rerun_segment(task, trial, where=where)
        elif stacked:

            def on_stacked_epoch(i: int, epoch: int, train_loss: float, val_loss: float) -> bool:
                reported[epoch] = val_loss
                return stop is None or epoch < stop

            (history,) = task.fit_stacked([trial.params], [seed], epochs=epochs, on_epoch=on_stacked_epoch)
            if "error" in history:
                diverged = history["error"]
            else:
                value = reported[stop] if stop is not None else float(history["val_loss"][-1])
        else:

            def on_epoch(epoch: int, train_loss: float, val_loss: float) -> None:
                reported[epoch] = val_loss
                if stop is not None and epoch >= stop:
                    raise _Stop

            try:
                value = float(task.fit(trial.params, seed=seed, epochs=epochs, full=False, on_epoch=on_epoch).value)
            except _Stop:
                assert stop is not None  # on_epoch stops only at a stop
                value = float(reported[stop])
    except NonFiniteLoss as e:
        diverged = str(e)
    if stop is not None and value is not None and stop not in reported:
        value, diverged = None, f"it never reported epoch {stop + 1}"
    return value, diverged, same_checkpoint
