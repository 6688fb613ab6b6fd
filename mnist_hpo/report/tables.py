"""Text tables of a study's trials, laid out like the report's Tables 1-3."""

from __future__ import annotations

import math
import statistics
from typing import Any

import optuna
from optuna.trial import TrialState

from ..analysis.anytime import Curve
from ..analysis.importance import metric_value
from ..hpo.objective import study_metric_names
from ..hpo.queries import pareto_front
from .families import family, study_headers
from .formatting import count, fmt_seconds

# The objective's column, by the task's metric name (the report calls both "Valid. loss").
METRIC_HEADERS = {"val_mse": "Valid. loss (MSE)", "val_ce": "Valid. loss (CE)", "val_fid": "Valid. Fréchet distance"}
UNNAMED = "Value"  # the header of an objective whose study stored no name for it


def _task_columns(study: optuna.Study) -> tuple[str, dict[str, str]]:
    """The objective's header and the extra user-attribute columns of the study's model family.

    Both are read from what the study stored (its metric's name, its ``model``), never from the
    model's code: a plugin's study is shown without importing the plugin.
    """
    names = study_metric_names(study)
    header = METRIC_HEADERS.get(names[0], names[0]) if names else UNNAMED
    return header, dict(family(str(study.user_attrs.get("model", ""))).table_columns)


def _last(value: Any) -> Any:
    return value[-1] if isinstance(value, list) and value else value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        return f"{value:.1e}" if abs(value) < 1e-2 else f"{value:.4g}"
    return str(value)


def top_trials(study: optuna.Study, k: int = 5) -> list[optuna.trial.FrozenTrial]:
    """The ``k`` best complete trials; with several objectives, the Pareto front (by first objective)."""
    if len(study.directions) > 1:
        reverse = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        return sorted(pareto_front(study), key=lambda t: t.values[0], reverse=reverse)
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=metric_value, reverse=reverse)[:k]


def objective_headers(study: optuna.Study, metric: str | None = None) -> list[str]:
    """The objective columns: the family's metric, then (several objectives) the others by name."""
    default_metric, _ = _task_columns(study)
    names = study_metric_names(study) or []
    extra = [OBJECTIVE_HEADERS.get(n, n) for n in names[1:]] if len(study.directions) > 1 else []
    return [metric or default_metric, *extra]


OBJECTIVE_HEADERS = {"params": "Parameters"}


def _value(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() and abs(v) >= 100 else f"{v:.4f}"


def top_rows(
    study: optuna.Study, k: int = 5, *, metric: str | None = None, extra: dict[str, str] | None = None
) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of the best ``k`` complete trials, values unformatted; ``([], [])`` when there are none.

    Each row: trial number, each parameter, epochs trained, the objective value(s), then the
    last value of each ``extra`` user attribute (``{attribute: header}``). The one selection
    behind both the CLI's text table and the report's table.
    """
    trials = top_trials(study, k)
    if not trials:
        return [], []
    extra = extra or {}
    multi = len(study.directions) > 1
    names = list(trials[0].params)
    headers = study_headers(study)
    columns = [
        "Trial",
        *(headers.get(n, n) for n in names),
        "Epochs",
        *objective_headers(study, metric),
        *extra.values(),
    ]
    rows = [
        [
            t.number,
            *(t.params.get(n, "") for n in names),
            len(t.intermediate_values) or (multi and len(t.user_attrs.get("train_loss", []))) or "-",
            *t.values,
            *(_last(t.user_attrs.get(a, "")) for a in extra),
        ]
        for t in trials
    ]
    return columns, rows


def top_table(study: optuna.Study, *, k: int = 5, metric: str | None = None) -> str:
    """The best ``k`` complete trials: trial number, each parameter, epochs trained, objective value.

    The objective's header and any extra columns (e.g. the classifier's validation
    accuracy, the last epoch's) come from the study's model family. A study with
    several objectives lists its whole Pareto front, with each trial's values.
    """
    _, extra = _task_columns(study)
    header, raw = top_rows(study, k, metric=metric, extra=extra)
    if not raw:
        return f"study {study.study_name}: no complete trial yet"
    multi = len(study.directions) > 1
    n_params = len(header) - 2 - len(objective_headers(study, metric)) - len(extra)
    value = _value if multi else (lambda v: f"{v:.4f}")

    def cells(r: list[Any]) -> list[str]:
        n_values = len(r) - 2 - n_params - len(extra)
        return [f(v) for f, v in zip([str, *[_fmt] * n_params, str, *[value] * n_values, *[_fmt] * len(extra)], r)]

    rows = [cells(r) for r in raw]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if multi:
        lines.insert(
            0,
            f"Pareto front of study {study.study_name} ({count(len(rows), 'trial')}; "
            f"export one with 'mnist-hpo export {study.study_name} --trial N'):",
        )
    return "\n".join(lines)


def state_counts(study: optuna.Study) -> str:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "no trials"


# --- what each protocol buys (mnist-hpo compare, the report) -------------------------------------

COLUMNS = ["study", "protocol", "trials", "epochs to target", "time to target", "best value", "epochs", "time"]


def compare_rows(curves: list[Curve], target: float) -> list[list[str]]:
    rows = []
    for c in curves:
        i = c.reached(target)
        rows.append(
            [
                c.study,
                c.protocol,
                str(c.trials),
                "not reached" if i is None else str(c.epochs[i]),
                "not reached" if i is None else fmt_seconds(c.seconds[i]),
                "-" if c.best_value is None else f"{c.best_value:.4f}",
                str(c.epochs[-1] if c.epochs else 0),
                fmt_seconds(c.seconds[-1] if c.seconds else 0.0),
            ]
        )
    return rows


PROTOCOL_COLUMNS = [
    "protocol",
    "studies",
    "reached target",
    "median epochs to target",
    "median best value",
    "median epochs",
    "median time",
]


def protocol_rows(curves: list[Curve], target: float) -> list[list[str]]:
    """One row per protocol: the median over its studies (seeds). A study that never reached the
    target counts as infinitely late, so the median says "not reached" when half or more did not."""
    rows = []
    for protocol in dict.fromkeys(c.protocol for c in curves):
        group = [c for c in curves if c.protocol == protocol and c.trials]
        if not group:
            continue
        hits = [c.reached(target) for c in group]
        to_target = statistics.median(math.inf if i is None else c.epochs[i] for c, i in zip(group, hits))
        bests = [c.best_value for c in group if c.best_value is not None]
        rows.append(
            [
                protocol,
                str(len(group)),
                f"{sum(i is not None for i in hits)} of {len(group)}",
                "not reached" if math.isinf(to_target) else f"{to_target:g}",
                f"{statistics.median(bests):.4f}" if bests else "-",
                f"{statistics.median(c.epochs[-1] for c in group):g}",
                fmt_seconds(statistics.median(c.seconds[-1] for c in group)),
            ]
        )
    return rows


def _text_table(columns: list[str], rows: list[list[str]], left: int) -> str:
    widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in [columns, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def compare_table(curves: list[Curve], target: float) -> str:
    """The per-study table, then the per-protocol medians."""
    return (
        _text_table(COLUMNS, compare_rows(curves, target), 2)
        + "\n\n"
        + _text_table(PROTOCOL_COLUMNS, protocol_rows(curves, target), 1)
    )
