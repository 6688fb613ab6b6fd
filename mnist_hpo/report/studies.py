"""The report's section on what the studies show beyond its tables ("Beyond the report"): which settings mattered
in each study (parameter importances, best value per latent size, the mean-image plateau table) and what each
protocol bought (the autoencoder studies' anytime curves)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from ..analysis.anytime import REPORT_TARGET, compare_figure, searched, study_curve
from ..analysis.importance import LATENT_COLUMNS, importance_figure, latent_rows, param_importance, too_few
from ..analysis.plateau import PLATEAU_COLUMNS, applies, fmt_l2, plateau_rows, summary
from ..hpo.queries import study_config
from ..measures.mean_image import mean_image_mse, too_short, trial_steps
from ..storages import Studies
from .document import Heading, Image, Para, Table
from .families import study_headers
from .tables import COLUMNS, PROTOCOL_COLUMNS, compare_rows, protocol_rows


def beyond_blocks(studies: Studies, first: list[str], figures: Path) -> list[Any]:
    """Beyond the report, what it did not measure: which settings mattered in each study, and what each protocol bought.

    Per study with a finished trial: the parameter importances (a figure, or one line when
    there are too few complete trials) and the best value per latent size; then, with at
    least two autoencoder studies, their anytime curves beside the report's best (figures
    written under ``figures``).
    """
    candidates = [(n, studies.load(n)) for n in dict.fromkeys([*first, *studies.names()])]
    loaded = [(n, s) for n, s in candidates if s is not None and s.get_trials(deepcopy=False, states=FINISHED_STATES)]
    if not loaded:
        return []
    blocks: list[Any] = [Heading(2, "Beyond the report: which settings matter, what each protocol buys")]
    for name, study in loaded:
        blocks.extend(settings_blocks(name, study, figures))
    curves = [
        study_curve(s)
        for _, s in loaded
        if s.user_attrs.get("model") == "autoencoder" and len(s.directions) == 1 and searched(s)
    ]
    if len(curves) >= 2:
        blocks.append(Heading(3, "What each protocol buys: the autoencoder studies' anytime curves"))
        path = compare_figure(curves, figures / "anytime.png", target=REPORT_TARGET)
        blocks.append(
            Image(
                path,
                "Best validation MSE so far against the epochs trained and the trial time spent "
                "(each trial in order of completion, pruned ones included); each study a thin line, "
                f"each protocol's median bold, the report's best {REPORT_TARGET} dashed "
                "(`mnist-hpo compare` draws the same for any studies)",
            )
        )
        blocks.append(
            Table(
                f"Epochs and trial time until the best value first reached {REPORT_TARGET}",
                COLUMNS,
                compare_rows(curves, REPORT_TARGET),
            )
        )
        blocks.append(
            Table(
                "Each protocol over its seeds: medians (a study that never reached the target counts "
                "as infinitely late)",
                PROTOCOL_COLUMNS,
                protocol_rows(curves, REPORT_TARGET),
            )
        )
    return blocks


def settings_blocks(name: str, study: optuna.Study, figures: Path) -> list[Any]:
    """Which settings mattered in one study: its parameter importances, plateau table and latent sizes."""
    blocks: list[Any] = [Heading(3, f"Which settings matter in study {name!r}")]
    imp = param_importance(study)
    if imp is None:
        line = too_few(study)
        blocks.append(Para(line[0].upper() + line[1:] + ".", "missing"))
    else:
        path = importance_figure(imp, figures / f"importance-{name}.png", f"study {name!r}", study_headers(study))
        blocks.append(
            Image(
                path,
                f"Parameter importance in study {name!r}, on its {imp.trials} complete trials: "
                "fANOVA (share of the validation value's variance a parameter explains) and "
                f"PED-ANOVA (how differently a parameter is spread among the best "
                f"{imp.ped_quantile:.0%} of the trials than among all)",
            )
        )
    blocks.extend(plateau_blocks(study))
    rows = latent_rows(study)
    if rows:
        blocks.append(
            Table(
                f"The latent size against the best validation value reached with it (study {name!r}; "
                "the report's Table 1 has latent sizes 8 and 9 only)",
                LATENT_COLUMNS,
                [["-" if v is None else v for v in r] for r in rows],
            )
        )
    return blocks


def plateau_blocks(study: optuna.Study) -> list[Any]:
    """How many trials ended on the mean-image plateau, per L2 value (autoencoder studies)."""
    if not applies(study) or too_short(trial_steps(study_config(study))):  # a short run cannot be judged
        return []
    baseline = mean_image_mse(study_config(study))
    rows = plateau_rows(study, baseline)
    return [
        Table(
            f"Trials stuck on the mean image, by L2 value (study {study.study_name!r}): {summary(rows, baseline)}",
            PLATEAU_COLUMNS,
            [[fmt_l2(r[0]), r[1], r[2], f"{r[3]:.0%}", r[4]] for r in rows],
        )
    ]


FINISHED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
