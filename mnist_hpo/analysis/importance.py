"""Which settings matter: hyperparameter importance of a finished study, and the latent-size table.

Two of Optuna's evaluators, side by side: fANOVA (a random forest fitted to the complete
trials; how much of the value's variance each parameter explains) and PED-ANOVA (how
differently a parameter is distributed among the best trials than among all of them).
Both rest on the complete trials only (a pruned trial has no final value), so the number
of those is always shown with them. ``mnist-hpo show`` prints them, the report draws them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from matplotlib.figure import Figure
from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator
from optuna.trial import TrialState

MIN_TRIALS = 5  # below this, a ranking says more about the draws than about the parameters
FANOVA_SEED = 0  # the forest's seed: the same study always gives the same numbers


@dataclass(frozen=True)
class Importance:
    """Normalised importances (each evaluator's sum to 1), highest first, and what they rest on."""

    trials: int  # complete trials with a finite value
    fanova: dict[str, float]
    ped_anova: dict[str, float]
    ped_quantile: float  # PED-ANOVA's "best trials": this top fraction of the complete ones

    def ranking(self) -> list[str]:
        """Parameters by fANOVA importance, ties broken by PED-ANOVA."""
        return sorted(self.fanova, key=lambda p: (-self.fanova[p], -self.ped_anova.get(p, 0.0), p))


def first_value(trial: optuna.trial.FrozenTrial) -> float | None:
    """The trial's value, or its first objective's in a study of several (the model's own metric)."""
    return trial.values[0] if trial.values else None


def metric_value(trial: optuna.trial.FrozenTrial) -> float:
    """:func:`first_value` of a trial that has one (any of :func:`complete_trials`)."""
    value = first_value(trial)
    if value is None:
        raise ValueError(f"trial {trial.number} has no value")
    return value


def complete_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if (v := first_value(t)) is not None and math.isfinite(v)
    ]


def ped_quantile(n: int) -> float:
    """PED-ANOVA's top fraction: its default 10%, widened so it holds about 5 trials (at most half)."""
    return min(0.5, max(0.1, MIN_TRIALS / n))


def param_importance(study: optuna.Study) -> Importance | None:
    """The study's importances, or None with fewer than :data:`MIN_TRIALS` complete trials."""
    trials = complete_trials(study)
    if no_ranking(study, trials):
        return None
    q = ped_quantile(len(trials))
    with warnings.catch_warnings():
        # Optuna warns when every parameter comes out equal (e.g. a constant objective); the numbers show it.
        warnings.simplefilter("ignore")
        target = metric_value if len(study.directions) > 1 else None  # several objectives: the model's metric
        fanova = optuna.importance.get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=FANOVA_SEED), target=target
        )
        ped = optuna.importance.get_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator(target_quantile=q), target=target
        )
    return Importance(len(trials), {k: float(v) for k, v in fanova.items()}, {k: float(v) for k, v in ped.items()}, q)


def no_ranking(study: optuna.Study, trials: list[Any] | None = None) -> str | None:
    """Why the study's parameters cannot be ranked (one line), or None when they can."""
    trials = complete_trials(study) if trials is None else trials
    n = len(trials)
    if n < MIN_TRIALS:
        return (
            f"importance: {n} complete trial{'s' if n != 1 else ''}, too few to rank the parameters "
            f"(needs at least {MIN_TRIALS})"
        )
    if len({first_value(t) for t in trials}) == 1:  # fANOVA has no variance to share out
        return f"importance: all {n} complete trials have the same value; there is nothing to rank"
    if not any(len({repr(t.params.get(p)) for t in trials}) > 1 for p in trials[0].params):
        return f"importance: no parameter takes more than one value in the {n} complete trials; nothing to rank"
    return None


def too_few(study: optuna.Study) -> str:
    """The one line shown instead of a ranking."""
    return no_ranking(study) or "importance: cannot rank the parameters"


def importance_lines(study: optuna.Study, headers: dict[str, str] | None = None) -> list[str]:
    """The ranked list ``mnist-hpo show`` prints (or one line saying there are too few trials).

    ``headers``: the report's name of each parameter, shown beside it (:func:`mnist_hpo.report.families.study_headers`).
    """
    imp = param_importance(study)
    if imp is None:
        return [too_few(study)]
    lines = [
        f"importance on {imp.trials} complete trials (fANOVA, seed {FANOVA_SEED}: share of the value's variance; "
        f"PED-ANOVA: what sets the best {imp.ped_quantile:.0%} apart):"
    ]
    width = max(len(_label(p, headers)) for p in imp.fanova)
    for i, p in enumerate(imp.ranking(), 1):
        lines.append(
            f"  {i}. {_label(p, headers).ljust(width)}  fANOVA {imp.fanova[p]:5.3f}  "
            f"PED-ANOVA {imp.ped_anova.get(p, 0.0):5.3f}"
        )
    return lines


def _label(param: str, headers: dict[str, str] | None) -> str:
    header = (headers or {}).get(param)
    return f"{param} ({header})" if header and header != param else param


def importance_figure(imp: Importance, path: Path, title: str, headers: dict[str, str] | None = None) -> Path:
    """A horizontal bar chart of both evaluators' importances, the ranking top to bottom."""
    names = imp.ranking()[::-1]
    y = np.arange(len(names))
    fig = Figure(figsize=(6.4, 0.45 * len(names) + 1.4))
    ax = fig.subplots()
    ax.barh(y + 0.2, [imp.fanova[n] for n in names], height=0.4, label=f"fANOVA (seed {FANOVA_SEED})")
    ax.barh(
        y - 0.2, [imp.ped_anova.get(n, 0.0) for n in names], height=0.4, label=f"PED-ANOVA (top {imp.ped_quantile:.0%})"
    )
    ax.set_yticks(y, [_label(n, headers) for n in names])
    ax.set_xlabel("importance (each evaluator sums to 1)")
    ax.set_title(f"{title}: {imp.trials} complete trials", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


# --- the report's claim about the latent size ------------------------------------------

LATENT_COLUMNS = ["Enc. Space Dim.", "best valid. value", "trial", "complete trials", "pruned trials"]


def latent_rows(study: optuna.Study) -> list[list[Any]] | None:
    """Per latent size tried: the best complete value, its trial, and how many trials ran at that size.

    None when the study has no ``latent_dim`` parameter. A size whose trials were all
    pruned has no best value (``None``).
    """
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    sizes = sorted({t.params["latent_dim"] for t in trials if "latent_dim" in t.params})
    if not sizes:
        return None
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    rows = []
    for size in sizes:
        done = [t for t in complete_trials(study) if t.params.get("latent_dim") == size]
        pruned = sum(1 for t in trials if t.state == TrialState.PRUNED and t.params.get("latent_dim") == size)
        best = (max if maximize else min)(done, key=metric_value) if done else None
        rows.append([size, first_value(best) if best else None, best.number if best else None, len(done), pruned])
    return rows


def latent_lines(study: optuna.Study) -> list[str]:
    """The latent-size table as text (nothing for a study without ``latent_dim``)."""
    rows = latent_rows(study)
    if rows is None:
        return []
    cells = [
        [str(r[0]), "-" if r[1] is None else f"{r[1]:.4f}", "-" if r[2] is None else str(r[2]), str(r[3]), str(r[4])]
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [LATENT_COLUMNS, *cells]) for i in range(len(LATENT_COLUMNS))]
    out = ["best value per latent size (complete trials; '-': none finished at that size):"]
    out += ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [LATENT_COLUMNS, *cells]]
    out.insert(2, "  " + "  ".join("-" * w for w in widths))
    return out
