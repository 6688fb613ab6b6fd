"""The report's block for a study with several objectives: its Pareto front as a table and a scatter."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from ..core.figures import pareto_png
from ..core.names import file_stem
from ..hpo.queries import pareto_front
from .document import Image, Table
from .families import study_headers
from .tables import objective_headers


def is_multi(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def pareto_table(study: optuna.Study) -> Table | None:
    front = sorted(pareto_front(study), key=lambda t: t.values[0])
    if not front:
        return None
    names = list(front[0].params)
    headers = study_headers(study)
    columns = ["Trial", *(headers.get(n, n) for n in names), *objective_headers(study, "Valid. loss")]
    rows = [[t.number, *(t.params.get(n, "") for n in names), *t.values] for t in front]
    return Table(
        f"This project: the Pareto front of study {study.study_name!r} ({len(front)} of its complete trials "
        "that no other trial beats in every objective)",
        columns,
        rows,
    )


def pareto_image(study: optuna.Study, folder: Path) -> Image | None:
    """All complete trials' first two objectives, the front highlighted; written under ``folder``."""
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and all(math.isfinite(v) for v in t.values)
    ]
    if not trials:
        return None
    front = {t.number for t in pareto_front(study)}
    points = np.array([t.values[:2] for t in trials], dtype=float)
    mask = np.array([t.number in front for t in trials])
    labels = objective_headers(study, "validation loss")[:2]
    path = pareto_png(
        points,
        mask,
        folder / f"{file_stem(study.study_name)}-pareto.png",
        labels=(labels[0], labels[1]),
        numbers=[t.number for t in trials],
        title=f"{study.study_name}: {len(trials)} complete trials",
    )
    return Image(
        path,
        f"Study {study.study_name!r}: every complete trial's objectives, the Pareto front in red "
        "(labelled with trial numbers)",
    )


def pareto_blocks(study: optuna.Study, folder: Path) -> list[Any]:
    return [b for b in (pareto_table(study), pareto_image(study, folder)) if b is not None]
