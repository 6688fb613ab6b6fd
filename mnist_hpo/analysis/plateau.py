"""Trials stuck on the mean image: why an autoencoder search can fall short of the report.

An autoencoder that stops learning early decodes every input to about the mean training
image, and its validation MSE then sits near the MSE of that mean image (0.0675 on the
report's split of MNIST). In the report's search space the L2 value decides this: with
weight decay above about 1.2e-4 most trials never leave that plateau, so a drawn L2 list
with many such values leaves fewer trials to find a good model. This module counts, per
L2 value, how many of a study's complete trials ended on the plateau, for ``mnist-hpo
show`` and the report. Whether an export's retrain ended there is :mod:`mnist_hpo.measures.mean_image`'s.

A run too short to tell (fewer than :data:`MIN_STEPS` optimizer steps) is not judged; why, and
what counts as too short, is in :mod:`mnist_hpo.measures.mean_image`.
"""

from __future__ import annotations

from typing import Any

import optuna

from ..hpo.queries import study_config
from ..measures.mean_image import MODELS, STUCK_SHARE, mean_image_mse, too_short, trial_steps
from .importance import complete_trials, metric_value

PARAM = "weight_decay"
PLATEAU_COLUMNS = ["L2", "complete trials", "on the plateau", "share", "best valid. value"]


def applies(study: optuna.Study) -> bool:
    """An autoencoder study made by mnist-hpo (its config names the data) with L2 among its parameters."""
    return (
        study.user_attrs.get("model") in MODELS
        and "config" in study.user_attrs
        and len(study.directions) == 1
        and any(PARAM in t.params for t in complete_trials(study))
    )


def plateau_rows(study: optuna.Study, baseline: float) -> list[list[Any]]:
    """Per L2 value tried: complete trials, how many ended on the plateau, their share, the best value."""
    trials = [t for t in complete_trials(study) if PARAM in t.params]
    rows = []
    for value in sorted({t.params[PARAM] for t in trials}):
        done = [t for t in trials if t.params[PARAM] == value]
        stuck = sum(1 for t in done if metric_value(t) >= STUCK_SHARE * baseline)
        rows.append([value, len(done), stuck, stuck / len(done), min(metric_value(t) for t in done)])
    return rows


def summary(rows: list[list[Any]], baseline: float) -> str:
    done, stuck = sum(r[1] for r in rows), sum(r[2] for r in rows)
    return (
        f"{stuck} of {done} complete trials ended on the mean-image plateau (validation MSE at least "
        f"{STUCK_SHARE:.0%} of the mean image's {baseline:.4f})"
    )


def plateau_lines(study: optuna.Study) -> list[str]:
    """The table as text for ``mnist-hpo show`` (nothing for a study it does not apply to)."""
    if not applies(study):
        return []
    cfg = study_config(study)
    if why := too_short(trial_steps(cfg)):
        return [f"mean-image plateau: not counted; each trial's {why}"]
    baseline = mean_image_mse(cfg)
    rows = plateau_rows(study, baseline)
    cells = [[fmt_l2(r[0]), str(r[1]), str(r[2]), f"{r[3]:.0%}", f"{r[4]:.4f}"] for r in rows]
    widths = [max(len(c[i]) for c in [PLATEAU_COLUMNS, *cells]) for i in range(len(PLATEAU_COLUMNS))]
    out = [summary(rows, baseline) + ", by L2:"]
    out += ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [PLATEAU_COLUMNS, *cells]]
    out.insert(2, "  " + "  ".join("-" * w for w in widths))
    return out


def fmt_l2(value: float) -> str:
    return "0" if value == 0 else f"{value:.2e}"
