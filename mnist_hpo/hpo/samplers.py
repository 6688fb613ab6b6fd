"""Samplers and pruners: a study's sampler and pruner from its config, per-trial seeded samplers, and grid
search that several workers can share.

Grid search that several workers can share: every point covered, failed points run again.

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

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from ..core.schema import StudyConfig
from ..core.seeds import derive_seed, seed_sequence
from ..core.space import Resolved, grid_space
from ..errors import UserError
from ..storages import set_trial_system_attr

COVERED = (TrialState.COMPLETE, TrialState.PRUNED)
CLAIMED = (TrialState.RUNNING, TrialState.WAITING)


class CoverGridSampler(optuna.samplers.GridSampler):
    """A ``GridSampler`` that re-runs failed points and spreads racing workers over the open points.

    It keeps its own copy of the shuffled grid (built exactly as ``GridSampler`` builds it,
    so point N is the same parameters for both) instead of reading ``GridSampler``'s private
    fields; tests/storages/test_optuna_compat.py checks that the two orders still agree.
    """

    def __init__(self, search_space: Mapping[str, Sequence[Any]], seed: int | None = None) -> None:
        super().__init__(search_space, seed=seed)
        self.search_space = {name: list(values) for name, values in sorted(search_space.items())}
        self.param_names = list(self.search_space)
        self.grid = list(itertools.product(*self.search_space.values()))
        np.random.RandomState(seed or 0).shuffle(self.grid)  # GridSampler's shuffle, same seed, same order

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # A retried or enqueued trial keeps the point (or parameters) it was given.
        if "grid_id" in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return
        busy = self._points(study, COVERED + CLAIMED)
        if trial.number < self.size and trial.number not in busy:
            grid_id = trial.number  # Optuna's own first pass: trial N takes point N
        else:
            open_points = [g for g in range(self.size) if g not in busy]
            if not open_points:
                # Every point is covered or being run: re-run one being run (a bounded, counted duplicate).
                covered = self._points(study, COVERED)
                open_points = [g for g in range(self.size) if g not in covered] or list(range(self.size))
            grid_id = open_points[trial.number % len(open_points)]
        set_trial_system_attr(study, trial, "search_space", self.search_space)
        set_trial_system_attr(study, trial, "grid_id", grid_id)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        if "grid_id" not in trial.system_attrs:
            raise ValueError("All parameters must be specified when using GridSampler with enqueue_trial.")
        if param_name not in self.search_space:
            raise ValueError(f"The parameter name, {param_name}, is not found in the given grid.")
        return self.grid[trial.system_attrs["grid_id"]][self.param_names.index(param_name)]

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        # Stopping is the study runner's job (it knows the target and waits for retries).
        return None

    def _same_space(self, space: Mapping[str, Sequence[Any]]) -> bool:
        def same(a: Any, b: Any) -> bool:
            return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))

        return set(space) == set(self.search_space) and all(
            len(space[k]) == len(self.search_space[k]) and all(map(same, space[k], self.search_space[k])) for k in space
        )

    def _points(self, study: optuna.Study, states: tuple[TrialState, ...]) -> set[int]:
        return {
            t.system_attrs["grid_id"]
            for t in study.get_trials(deepcopy=False, states=states)
            if "grid_id" in t.system_attrs and self._same_space(t.system_attrs.get("search_space", {}))
        }

    @property
    def size(self) -> int:
        return len(self.grid)

    def open_points(self, study: optuna.Study) -> int:
        """How many points are neither covered nor claimed."""
        return self.size - len(self._points(study, COVERED + CLAIMED))


@dataclass(frozen=True)
class GridCoverage:
    points: int  # size of the grid
    covered: int  # points with a COMPLETE or PRUNED trial
    duplicates: int  # finished trials beyond the first on their point
    reruns: int  # points run again after a failed trial

    def __str__(self) -> str:
        return (
            f"grid: {self.covered}/{self.points} points covered, {self.duplicates} duplicate "
            f"trial{'s' if self.duplicates != 1 else ''}, {self.reruns} point{'s' if self.reruns != 1 else ''} "
            "re-run after a failure"
        )


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


def draw_index(study: optuna.Study, trial: FrozenTrial) -> int:
    """Which draw of the study's sequence a new trial makes: its number, less the retries numbered before it.

    A retry (a trial queued again after a crash or an interrupt, system attribute
    ``failed_trial``) takes a trial number but repeats an earlier draw, so counting it
    would shift every later draw: a study interrupted once would explore other
    configurations than an uninterrupted run with the same seed. Skipping them, a study
    makes the same draws however often it was stopped. Every trial numbered below this
    one exists already, so the index is fixed, and two new trials never share one.
    """
    retries = sum(
        1 for t in study.get_trials(deepcopy=False) if t.number < trial.number and "failed_trial" in t.system_attrs
    )
    return trial.number - retries


class TrialSeededRandomSampler(optuna.samplers.RandomSampler):
    """Random search where the N-th draw of a study is always the same parameters.

    The draw depends only on (seed, draw index, parameter name), the draw index being the
    trial number less the retries before it (:func:`draw_index`), so a resumed study, an
    interrupted one, or one run by several workers, explores exactly the sequence a single
    uninterrupted run would. It draws as Optuna's ``RandomSampler`` does (one uniform
    number per parameter in its transformed space, one per choice for a categorical)
    from a generator of its own for each (draw, parameter), using only the
    distributions' public fields; tests/storages/test_optuna_compat.py checks the draws agree.
    """

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self._base_seed = seed
        self._index: dict[int, int] = {}  # trial number -> draw index, set in before_trial

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._index[trial.number] = draw_index(study, trial)
        super().before_trial(study, trial)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        index = self._index.get(trial.number)
        if index is None:  # asked outside Study.optimize/ask, without before_trial
            index = draw_index(study, trial)
        seed = derive_seed(self._base_seed, index, param_name)
        return _uniform_draw(np.random.RandomState(seed), param_distribution)


def _uniform_draw(rng: np.random.RandomState, d: optuna.distributions.BaseDistribution) -> Any:
    """One draw of ``RandomSampler`` from ``d``: uniform in log space for log ranges, rounded to steps."""
    if isinstance(d, CategoricalDistribution):
        return d.choices[int(rng.uniform(np.zeros(len(d.choices)), np.ones(len(d.choices))).argmax())]
    if isinstance(d, FloatDistribution):
        if d.log:
            x = math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
            return x if d.low == d.high else float(np.clip(x, d.low, np.nextafter(d.high, d.high - 1)))
        if d.step is not None:
            x = rng.uniform(d.low - 0.5 * d.step, d.high + 0.5 * d.step)
            return float(np.clip(np.round((x - d.low) / d.step) * d.step + d.low, d.low, d.high))
        x = rng.uniform(d.low, d.high)
        return x if d.low == d.high else min(x, np.nextafter(d.high, d.high - 1))
    if isinstance(d, IntDistribution):
        if d.log:
            x = rng.uniform(math.log(d.low - 0.5 * d.step), math.log(d.high + 0.5 * d.step))
            return min(max(int(round(math.exp(x))), d.low), d.high)
        x = rng.uniform(d.low - 0.5 * d.step, d.high + 0.5 * d.step)
        return min(max(math.floor((x - d.low) / d.step + 0.5) * d.step + d.low, d.low), d.high)
    raise TypeError(f"unsupported distribution {d!r}")


class _ReseededPerTrial:
    """Mixin for a model-based sampler: its random streams restart from (seed, draw index) at each trial.

    Workers started together see the same history; seeded once per process, they would
    all propose the same first trials. The trial number is handed out by the storage, one
    per trial, so each trial's stream is distinct by construction, in however many workers
    (the draw index, :func:`draw_index`, is the number less the retries before it, as
    distinct), and a trial's proposal depends only on (seed, its draw index, the trials
    finished before it).
    """

    _inner: str  # the attribute holding the sampler's own RandomSampler (startup and fallback draws)
    _rng: Any  # the sampler's own random state (Optuna's private LazyRandomState)

    def __init__(self, seed: int, **options: Any) -> None:
        super().__init__(seed=seed, **options)  # type: ignore[call-arg]  # a mixin: the sampler after it takes these
        self._base_seed = seed
        # Optuna's private attributes, checked here so that a renamed one fails loudly, not silently.
        assert hasattr(self, "_rng") and isinstance(getattr(self, self._inner), optuna.samplers.RandomSampler)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        model_state, random_state = seed_sequence(self._base_seed, draw_index(study, trial)).generate_state(2)
        self._rng.rng.seed(int(model_state))
        getattr(self, self._inner)._rng.rng.seed(int(random_state))
        super().before_trial(study, trial)  # type: ignore[misc]  # a mixin: the sampler after it has one


class TrialSeededTPESampler(_ReseededPerTrial, optuna.samplers.TPESampler):
    """TPE whose draws for trial N come from (seed, N) and the history (see :class:`_ReseededPerTrial`)."""

    _inner = "_random_sampler"


class TrialSeededGPSampler(_ReseededPerTrial, optuna.samplers.GPSampler):
    """The GP sampler, reseeded per trial like :class:`TrialSeededTPESampler`."""

    _inner = "_independent_sampler"


def make_sampler(cfg: StudyConfig, resolved: Resolved) -> optuna.samplers.BaseSampler:
    opts = dict(cfg.sampler.options)
    seed = int(opts.pop("seed", cfg.seed))
    kind = cfg.sampler.type
    if kind == "random":
        return TrialSeededRandomSampler(seed)
    if kind == "grid":
        return CoverGridSampler(grid_space(resolved), seed=seed)
    if kind == "tpe":
        return TrialSeededTPESampler(seed, **opts)
    if kind == "gp":
        try:
            return TrialSeededGPSampler(seed, **opts)
        except ImportError as e:
            raise UserError(f"the GP sampler needs an extra package ({e}); pip install scipy, or use tpe") from None
    raise UserError(f"{cfg.source}: unknown sampler {kind!r}")


def make_pruner(cfg: StudyConfig) -> optuna.pruners.BasePruner:
    opts = dict(cfg.pruner.options)
    kind = cfg.pruner.type
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner(**opts)
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**opts)
    if kind == "hyperband":
        opts.setdefault("max_resource", cfg.epochs)
        return optuna.pruners.HyperbandPruner(**opts)
    raise UserError(f"{cfg.source}: unknown pruner {kind!r}")
