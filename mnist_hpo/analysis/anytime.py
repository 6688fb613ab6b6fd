"""What each protocol buys: the best value so far against the epochs and the time a study spent.

A study's *anytime curve*: its finished trials (complete, pruned, failed) in the order they
finished; after each, the epochs trained so far (every trial's reported epochs, i.e. its
intermediate values, pruned and failed trials included; a segment of population-based training:
the epochs it covers) and the trial time so far (the sum
of the trials' durations, ``datetime_complete - datetime_start``, or up to the last heartbeat
of a trial whose process died: busy time, so pauses between resumed runs and idle workers do
not count), and the best complete value so far.
``mnist-hpo compare`` draws several studies' curves, grouped into protocols by their stored
sampler and pruner, and says when each first reached a target value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import numpy.typing as npt
import optuna
from matplotlib.figure import Figure
from optuna.trial import TrialState

from ..errors import UserError
from ..hpo.objective import study_metric_names
from ..storages import OWNER, Studies

REPORT_TARGET = 0.0172  # the report's best validation MSE (Table 1)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass
class Curve:
    """One study's anytime curve: one point per finished trial, in the order they finished."""

    study: str
    protocol: str
    maximize: bool
    epochs: list[int]  # cumulative epochs trained after each trial
    seconds: list[float]  # cumulative trial time after each trial
    best: list[float]  # best complete value after each trial (inf / -inf before the first)
    metric: str | None = None  # the objective's stored name (e.g. "val_mse"); None if the study stored none

    @property
    def trials(self) -> int:
        return len(self.epochs)

    @property
    def best_value(self) -> float | None:
        return self.best[-1] if self.best and math.isfinite(self.best[-1]) else None

    def reached(self, target: float) -> int | None:
        """Index of the first trial after which the best value is at least as good as ``target``."""
        for i, b in enumerate(self.best):
            if (b >= target) if self.maximize else (b <= target):
                return i
        return None


def protocol_of(study: optuna.Study) -> str:
    """``sampler + pruner`` as stored with the study (its identity, else its creation config); population-based
    training: ``pbt (N members)``."""
    attrs = study.user_attrs
    identity = attrs.get("identity") or {}
    if "pbt.population" in identity:
        return f"pbt ({identity['pbt.population']} members)"
    cfg = attrs.get("config") or {}
    sampler = identity.get("sampler.type") or (cfg.get("sampler") or {}).get("type") or "?"
    pruner = identity.get("pruner.type") or (cfg.get("pruner") or {}).get("type") or "?"
    return f"{sampler} + {pruner}"


def searched(study: optuna.Study) -> bool:
    """Whether the sampler proposed any finished trial: a study of enqueued configurations only (the
    report's Table 1 re-trained, ``ae-table1``) is a check, not a search, and has no protocol to compare."""
    return any("fixed_params" not in t.system_attrs for t in study.get_trials(deepcopy=False, states=FINISHED))


def busy_seconds(t: optuna.trial.FrozenTrial) -> float:
    """How long ``t`` trained. A trial whose process died is marked FAIL only when the study is next
    opened, maybe hours later; its last heartbeat (the journal ``owner``'s ``beat``) says when it stopped."""
    if t.datetime_start is None or t.datetime_complete is None:
        raise ValueError(f"trial {t.number} has not finished")
    end = t.datetime_complete.timestamp()
    if t.state == TrialState.FAIL:
        beat = (t.user_attrs.get(OWNER) or {}).get("beat")
        if isinstance(beat, (int, float)):
            end = min(end, float(beat))
    return max(0.0, end - t.datetime_start.timestamp())


def study_curve(study: optuna.Study) -> Curve:
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=FINISHED)
        if t.datetime_start is not None and t.datetime_complete is not None
    ]
    trials.sort(key=lambda t: (t.datetime_complete, t.number))
    epochs, seconds, best = [], [], []
    e, s, b = 0, 0.0, -math.inf if maximize else math.inf
    for t in trials:
        # a segment of population-based training records the epochs it covers (a GAN's reports only some)
        first, stop = (t.user_attrs.get("pbt") or {}).get("epochs") or (0, len(t.intermediate_values))
        e += stop - first
        s += busy_seconds(t)
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value):
            b = max(b, t.value) if maximize else min(b, t.value)
        epochs.append(e)
        seconds.append(s)
        best.append(b)
    names = study_metric_names(study)
    metric = names[0] if names else None
    return Curve(study.study_name, protocol_of(study), maximize, epochs, seconds, best, metric)


def step_at(xs: list[float], ys: list[float], grid: npt.ArrayLike, worst: float) -> np.ndarray:
    """The step function (value after the last point at or before x) on ``grid``; ``worst`` before the first."""
    idx = np.searchsorted(np.asarray(xs, dtype=float), np.asarray(grid, dtype=float), side="right") - 1
    values = np.asarray(ys, dtype=float)
    return np.where(idx >= 0, values[np.clip(idx, 0, None)] if len(values) else worst, worst)


def median_curve(curves: list[Curve], axis: str) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """The protocol's median best-so-far, on the union of its seeds' points, up to where every seed has data."""
    curves = [c for c in curves if c.trials]
    if not curves:
        return None, None
    end = min(getattr(c, axis)[-1] for c in curves)
    grid = np.unique(np.concatenate([np.asarray(getattr(c, axis), dtype=float) for c in curves]))
    grid = grid[grid <= end]
    worst = -math.inf if curves[0].maximize else math.inf
    stack = np.vstack([step_at(getattr(c, axis), c.best, grid, worst) for c in curves])
    return grid, np.median(stack, axis=0)


def compare_figure(curves: list[Curve], path: Path, *, target: float | None = REPORT_TARGET) -> Path:
    """Two panels (epochs, trial time): each study a thin line, each protocol's median bold, the target dashed."""
    protocols = sorted({c.protocol for c in curves})
    colors = {p: matplotlib.colormaps["tab10"](i % 10) for i, p in enumerate(protocols)}
    fig = Figure(figsize=(13, 5))
    axes = fig.subplots(1, 2, sharey=True)
    longest = max((c.seconds[-1] for c in curves if c.seconds), default=0.0)
    unit, per = ("h", 3600.0) if longest > 2 * 3600 else ("min", 60.0)  # a 6-h random search beside 40-min ones
    scale = {"epochs": 1.0, "seconds": 1.0 / per}
    for ax, axis, label in (
        (axes[0], "epochs", "epochs trained (all trials, in order of completion)"),
        (axes[1], "seconds", f"trial time ({unit}, summed over the trials in order of completion)"),
    ):
        for c in curves:
            x, y = np.asarray(getattr(c, axis), dtype=float) * scale[axis], np.asarray(c.best, dtype=float)
            ok = np.isfinite(y)
            if ok.any():
                ax.step(x[ok], y[ok], where="post", color=colors[c.protocol], lw=0.8, alpha=0.55)
        for p in protocols:
            group = [c for c in curves if c.protocol == p]
            grid, med = median_curve(group, axis)
            if grid is None or med is None:  # (both or neither)
                continue
            ok = np.isfinite(med)
            if ok.any():
                ax.step(
                    grid[ok] * scale[axis],
                    med[ok],
                    where="post",
                    color=colors[p],
                    lw=2.6,
                    label=f"{p}: median of {len(group)} stud{'y' if len(group) == 1 else 'ies'}",
                )
        if target is not None:
            mark = " (the report's best)" if target == REPORT_TARGET else ""
            ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target:g}{mark}")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    values = [b for c in curves for b in c.best if math.isfinite(b)]
    if values and (min(values) > 0):
        axes[0].set_yscale("log")
    metrics = {c.metric for c in curves}
    named = next(iter(metrics)) if len(metrics) == 1 else None  # the studies' one stored metric name
    axes[0].set_ylabel(f"best {named or 'validation value'} so far")
    axes[0].legend(fontsize=8)
    fig.suptitle("Anytime performance: " + ", ".join(c.study for c in curves), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def load_curves(names: list[str], studies: Studies) -> list[Curve]:
    """The curves of the named studies from a :class:`mnist_hpo.storages.Studies`; a missing one is a user error."""
    seen: set[str] = set()
    curves = []
    for name in names:
        if name in seen:
            raise UserError(f"study {name!r} is named twice; name each study once")
        seen.add(name)
        study = studies.load(name)
        if study is not None and len(study.directions) > 1:
            raise UserError(
                f"study {name!r} has {len(study.directions)} objectives; anytime curves compare "
                "single-objective studies ('mnist-hpo show' prints its Pareto front)"
            )
        if study is None:
            known = studies.names()
            hint = f"; the studies there: {', '.join(known)}" if known else "; there are no studies there"
            if studies.journals is None:
                hint += "; the record's studies are read with --journals results/journals"
            raise UserError(f"no study {name!r} in {studies.label}{hint}")
        curves.append(study_curve(study))
    return curves
