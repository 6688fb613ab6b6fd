"""The figures written into an export folder: loss curves, and test images beside their reconstructions
after the first and the last epoch (the report's Figures 1 and 4).

The retrain keeps only final weights, so the first-epoch model is trained again for
one epoch with the same seed: training is seeded end to end, so this is the long
run's first epoch (on CPU exactly — the export records whether its loss matched).
"""

from __future__ import annotations

import math
from pathlib import Path

from ..measures import recon
from ..core.figures import curve_keys, history_png

LOSS_PNG = "loss.png"
RECON_PNG = "reconstructions.png"


def write_export_figures(task, params: dict, seed: int, result, history: dict, folder: Path,
                         title: str) -> tuple[list[Path], dict]:
    """Write the export's figures; returns their paths and what to record about them in export.json."""
    files: list[Path] = []
    info: dict = {}
    if curve_keys(history):
        files.append(history_png(history, folder / LOSS_PNG, title=f"{title}: per epoch (retrain)",
                                 evaluated=task.evaluated_curves(history)))
    if recon.reconstructs(result.model):
        losses: list[float] = []
        first = task.fit(params, seed=seed, epochs=1, full=True, on_epoch=lambda e, tr, va: losses.append(tr)).model
        first_loss = history.get("train_loss", [math.nan])[0]
        again = losses[0]
        info["first_epoch_rerun"] = {
            "train_loss": again, "history_train_loss": first_loss,
            "matches": bool(math.isclose(again, first_loss, rel_tol=1e-5)),
        }
        epochs = len(history.get("train_loss", [])) or "?"
        files.append(recon.reconstruction_png(
            recon.test_images(task), [("epoch 1", first), (f"epoch {epochs}", result.model)], folder / RECON_PNG,
            corrupt=recon.task_corruption(task), title=f"{title}: test images and reconstructions"))
    info["figures"] = [f.name for f in files]
    return files, info

