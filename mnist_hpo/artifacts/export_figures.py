"""The figures written into an export folder: loss curves, and test images beside their reconstructions
after the first and the last epoch (the report's Figures 1 and 4).

The retrain keeps only final weights, so the first-epoch model is trained again for
one epoch with the same seed: training is seeded end to end, so this is the long
run's first epoch (on CPU exactly — the export records whether its loss matched).
A member of population-based training was not retrained (its weights grew from other
members' too): its curves are its lineage's, and its reconstructions those of its final weights.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..core.figures import curve_keys, history_png
from ..measures import recon
from ..tasks.base import FitResult, Task

LOSS_PNG = "loss.png"
RECON_PNG = "reconstructions.png"


def write_export_figures(
    task: Task,
    params: dict[str, Any],
    seed: int,
    result: FitResult,
    history: dict[str, Any],
    folder: Path,
    title: str,
    retrained: bool = True,
) -> tuple[list[Path], dict[str, Any]]:
    """Write the export's figures; returns their paths and what to record about them in export.json.

    ``retrained``: ``result`` is a retrain from the seed (False: a member of population-based training).
    """
    files: list[Path] = []
    info: dict[str, Any] = {}
    if curve_keys(history):
        files.append(
            history_png(
                history,
                folder / LOSS_PNG,
                evaluated=task.evaluated_curves(history),
                title=f"{title}: per epoch ({'retrain' if retrained else 'its lineage'})",
            )
        )
    if recon.reconstructs(result.model):
        shown = [_first_epoch(task, params, seed, history, info)] if retrained else []
        epochs = len(history.get("train_loss", [])) or "?"
        files.append(
            recon.reconstruction_png(
                recon.test_images(task),
                [*shown, (f"epoch {epochs}", result.model)],
                folder / RECON_PNG,
                corrupt=recon.task_corruption(task),
                title=f"{title}: test images and reconstructions",
            )
        )
    info["figures"] = [f.name for f in files]
    return files, info


def _first_epoch(
    task: Task, params: dict[str, Any], seed: int, history: dict[str, Any], info: dict[str, Any]
) -> tuple[Any, ...]:
    """The retrain's first epoch, trained again from the seed; whether its loss matched is recorded in ``info``."""
    losses: list[float] = []
    first = task.fit(params, seed=seed, epochs=1, full=True, on_epoch=lambda e, tr, va: losses.append(tr)).model
    first_loss = history.get("train_loss", [math.nan])[0]
    info["first_epoch_rerun"] = {
        "train_loss": losses[0],
        "history_train_loss": first_loss,
        "matches": bool(math.isclose(losses[0], first_loss, rel_tol=1e-5)),
    }
    return "epoch 1", first
