"""Worker supervision: how many trials a worker starts, stale and interrupted trials, failures in a row.

Several workers (processes, machines) run one study through shared storage; what keeps them
from doing a trial twice or losing one is here. The run loops (:mod:`.run`) use it; starting
worker processes is :mod:`.workers`'.
"""

from __future__ import annotations

import logging
import traceback
import warnings
from collections import Counter
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from .. import storages
from ..core.schema import StudyConfig
from ..errors import UserError
from .samplers import CoverGridSampler

MAX_CONSECUTIVE_FAILURES = 3
LOG = logging.getLogger(storages.OPTIMIZE_LOGGER)  # where Optuna's optimize() says a trial failed


class FailureGuard:
    """Stops the study when several trials in a row fail (every trial failing means a bug, not bad luck).

    It also says each failure (:meth:`failed`): the first of its kind with its traceback, which is what
    fixing the bug needs; a later one raised at the same place in one line that points back to it.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.run, self.last_error = limit, 0, ""
        self.traceback_of: dict[
            tuple[Any, ...], int
        ] = {}  # an error's kind -> the trial whose printed traceback shows it
        self.last_traceback: int | None = None  # the trial whose traceback shows the latest failure's error

    def failed(self, trial: optuna.Trial, error: Exception) -> None:
        """Say that ``trial`` failed with ``error``, as Optuna's ``optimize`` does (its logger, a warning)."""
        # Its kind: its type and the lines it passed through (the message may differ, e.g. with the shapes).
        kind = (type(error), *((f.filename, f.lineno) for f in traceback.extract_tb(error.__traceback__)))
        shown = self.traceback_of.get(kind)
        said = f"Trial {trial.number} failed with parameters: {trial.params} because of the following error: {error!r}"
        if shown is None:
            LOG.warning(f"{said}.", exc_info=error)
            if LOG.isEnabledFor(logging.WARNING):  # printed: later failures of its kind can point here
                self.traceback_of[kind] = shown = trial.number
        else:
            LOG.warning(f"{said} (raised where trial {shown}'s was; its traceback is above).")
        self.last_traceback = shown

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            self.run += 1
            self.last_error = trial.user_attrs.get("error", "unknown error")
            if self.run >= self.limit:
                study.stop()
        else:
            self.run = 0

    def raise_if_tripped(self) -> None:
        if self.run >= self.limit:
            where = (
                ""
                if self.last_traceback is None
                else f"; its full traceback is printed above, where trial {self.last_traceback} failed"
            )
            raise UserError(
                f"{self.limit} trials in a row failed, so the study stopped "
                f"(last error: {self.last_error}{where}); finished trials are kept; "
                "fix the cause and run again to resume"
            )


def trials_wanted(study: optuna.Study, cfg: StudyConfig) -> int:
    """How many trials a worker should start now (the stacked loop asks for up to that many at once).

    Queued (WAITING) retries always run. Beyond them, trials start only while the trials
    finished, running or queued fall short of the target (for a grid: while some point
    is neither covered nor being run), so workers sharing a study stop together instead
    of each running to its own count.
    """
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    waiting = states[TrialState.WAITING]
    sampler = study.sampler
    if isinstance(sampler, CoverGridSampler):
        # A trial just asked for has no point yet, but will take one (queued retries keep theirs).
        unplaced = sum(
            1
            for t in trials
            if t.state == TrialState.RUNNING
            and "grid_id" not in t.system_attrs
            and "fixed_params" not in t.system_attrs
        )
        taken = sampler.size - sampler.open_points(study) + unplaced
        return waiting + max(0, min(cfg.trials, sampler.size) - taken)
    taken = states[TrialState.COMPLETE] + states[TrialState.PRUNED] + states[TrialState.RUNNING] + waiting
    return waiting + max(0, cfg.trials - taken)


def needs_trials(study: optuna.Study, cfg: StudyConfig) -> bool:
    """Whether a worker should start another trial now (see :func:`trials_wanted`)."""
    return trials_wanted(study, cfg) > 0


def fail_stale_trials(study: optuna.Study) -> None:
    """Mark trials whose worker stopped sending heartbeats FAIL and queue their retries.

    RDB storage: Optuna's heartbeats. Journal storage has none: trials claimed by a process
    that is gone (see :mod:`mnist_hpo.storages`' journal); on RDB storage no trial is claimed that way.
    """
    grace = storages.stale_grace()
    if storages.recently_back(grace):
        return  # the other workers' beats could not be stored either: give them a grace period to beat again
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    if isinstance(storages.storage_of(study), optuna.storages.JournalStorage):
        # Only a journal's trials are claimed by a process; on RDB storage every trial would look unclaimed,
        # so stale once it ran longer than the grace period, and a live worker's long trial be failed.
        storages.fail_stale_trials(study, grace=grace)


def requeue_interrupted(study: optuna.Study, numbers: list[int]) -> None:
    """After Ctrl-C: queue this process's interrupted trials again (same parameters and seed), so no draw is lost."""
    for trial in study.get_trials(deepcopy=False):
        if trial.number in numbers and trial.state == TrialState.FAIL and "error" not in trial.user_attrs:
            storages.retry(study, trial, interrupted=True)


def taken_over(study: optuna.Study, number: int) -> bool:
    """Whether this worker's trial ``number`` was finished by someone else (marked stale while it still ran)."""
    # A trial's number is unique within its study, so it identifies the trial as well as its storage id.
    return any(t.number == number and t.state != TrialState.RUNNING for t in study.get_trials(deepcopy=False))
