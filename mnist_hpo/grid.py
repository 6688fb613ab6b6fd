"""Grid search that several workers can share: every point covered, failed points run again.

Optuna 5's ``GridSampler`` gives trial N the N-th point of its shuffled grid, and
afterwards a random point among those not yet finished. Two things make it fall
short for workers sharing one study:

* it counts a FAILED trial's point as visited, so a point whose trial raised (or
  whose worker was killed) is never run again, and it stops the study then;
* past the N-th trial, every process draws the "random" point from an identically
  seeded generator, so workers racing for the last points pick the same one.

:class:`CoverGridSampler` keeps Optuna's storage layout (system attributes
``grid_id`` and ``search_space``, so the dashboard and a plain ``GridSampler`` read the
same study) and changes the choice: a point is *covered* only by a COMPLETE or
PRUNED trial, *claimed* by a RUNNING or WAITING one (a retried trial inherits its
point), and a new trial takes an unclaimed, uncovered point picked by its trial
number, so two racing trials take different points whenever two remain.
Duplicates can still happen (two workers asking at the same instant for the last
point); :func:`grid_coverage` counts them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

COVERED = (TrialState.COMPLETE, TrialState.PRUNED)
CLAIMED = (TrialState.RUNNING, TrialState.WAITING)


class CoverGridSampler(optuna.samplers.GridSampler):
    """A ``GridSampler`` that re-runs failed points and spreads racing workers over the open points."""

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # A retried or enqueued trial keeps the point (or parameters) it was given.
        if "grid_id" in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return
        busy = self._points(study, COVERED + CLAIMED)
        if trial.number < self._n_min_trials and trial.number not in busy:
            grid_id = trial.number  # Optuna's own first pass: trial N takes point N
        else:
            open_points = [g for g in range(self._n_min_trials) if g not in busy]
            if not open_points:
                # Every point is covered or being run: re-run one being run (a bounded, counted duplicate).
                covered = self._points(study, COVERED)
                open_points = [g for g in range(self._n_min_trials) if g not in covered] or list(
                    range(self._n_min_trials))
            grid_id = open_points[trial.number % len(open_points)]
        study._storage.set_trial_system_attr(trial._trial_id, "search_space", self._search_space)
        study._storage.set_trial_system_attr(trial._trial_id, "grid_id", grid_id)

    def after_trial(self, study, trial, state, values) -> None:
        # Stopping is the study runner's job (it knows the target and waits for retries).
        return None

    def _points(self, study: optuna.Study, states) -> set[int]:
        return {
            t.system_attrs["grid_id"]
            for t in study.get_trials(deepcopy=False, states=states)
            if "grid_id" in t.system_attrs
            and self._same_search_space(t.system_attrs.get("search_space", {}))
        }

    @property
    def size(self) -> int:
        return self._n_min_trials

    def open_points(self, study: optuna.Study) -> int:
        """How many points are neither covered nor claimed."""
        return self._n_min_trials - len(self._points(study, COVERED + CLAIMED))


@dataclass(frozen=True)
class GridCoverage:
    points: int       # size of the grid
    covered: int      # points with a COMPLETE or PRUNED trial
    duplicates: int   # finished trials beyond the first on their point
    reruns: int       # points run again after a failed trial

    def __str__(self) -> str:
        return (f"grid: {self.covered}/{self.points} points covered, {self.duplicates} duplicate trials, "
                f"{self.reruns} points re-run after a failure")


def grid_coverage(study: optuna.Study) -> GridCoverage | None:
    """Coverage of a grid study (``None`` when the study is not a grid search)."""
    trials = [t for t in study.get_trials(deepcopy=False) if "grid_id" in t.system_attrs]
    if not trials:
        return None
    space = trials[0].system_attrs["search_space"]
    points = 1
    for values in space.values():
        points *= len(values)
    finished = Counter(t.system_attrs["grid_id"] for t in trials if t.state in COVERED)
    failed = {t.system_attrs["grid_id"] for t in trials if t.state == TrialState.FAIL}
    return GridCoverage(
        points=points,
        covered=len(finished),
        duplicates=sum(n - 1 for n in finished.values()),
        reruns=len(failed & set(finished)),
    )
