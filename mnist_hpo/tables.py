"""Text tables of a study's trials, laid out like the report's Tables 1-3."""

from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState

# The report's column names for the parameters it tuned.
HEADERS = {
    "latent_dim": "Enc. Space Dim.",
    "weight_decay": "L2",
    "optimizer": "Optimizer",
    "lr": "Learn. Rate",
    "nh1": "Nh_1",
    "dropout": "Dropout p",
}


def _fmt(value) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        return f"{value:.1e}" if abs(value) < 1e-2 else f"{value:.4g}"
    return str(value)


def top_trials(study: optuna.Study, k: int = 5) -> list[optuna.trial.FrozenTrial]:
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.value is not None and math.isfinite(t.value)]
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=lambda t: t.value, reverse=reverse)[:k]


def top_table(study: optuna.Study, *, k: int = 5, metric: str = "Valid. loss") -> str:
    """The best ``k`` complete trials: trial number, each parameter, epochs trained, objective value."""
    trials = top_trials(study, k)
    if not trials:
        return f"study {study.study_name}: no complete trial yet"
    names = list(trials[0].params)
    header = ["Trial", *(HEADERS.get(n, n) for n in names), "Epochs", metric]
    rows = [
        [str(t.number), *(_fmt(t.params.get(n, "")) for n in names),
         str(len(t.intermediate_values) or "-"), f"{t.value:.4f}"]
        for t in trials
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def state_counts(study: optuna.Study) -> str:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "no trials"
