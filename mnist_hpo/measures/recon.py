"""Reconstructions of a few fixed images by an autoencoder-like model, as arrays and as a figure.

Used for a trial's artifact (validation images) and an export's "first and final
epoch" figure (test images). A model reconstructs when it has an ``encoder`` and a
``decoder``; a task with a ``corrupt`` function (a denoising task, see
:data:`mnist_hpo.train.loops.Corrupt`) gets its corrupted inputs shown as a row too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ..core.figures import image_rows_png
from ..data.datasets import Dataset, to_float
from ..train.loops import Corrupt

N_IMAGES = 8
SEED = 0


def reconstructs(model: nn.Module) -> bool:
    return hasattr(model, "encoder") and hasattr(model, "decoder")


@torch.inference_mode()
def reconstruct(
    model: nn.Module, images: torch.Tensor, *, corrupt: Corrupt | None = None, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 28, 28] -> (encoder inputs, reconstructions), both float [N, 28, 28] in [0, 1]."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    clean = to_float(images.to(device))
    # A CPU generator: the noise functions draw on the CPU and move the noise to the images' device
    # (a CUDA generator cannot fill CPU tensors), so the figure's noise is the same on every device.
    inputs = corrupt(clean, torch.Generator().manual_seed(seed)) if corrupt is not None else clean
    out = model(inputs)
    model.train(was_training)
    return inputs.reshape(-1, 28, 28).clamp(0, 1).cpu().numpy(), out.reshape(-1, 28, 28).cpu().numpy()


def reconstruction_rows(
    images: torch.Tensor, snapshots: list[tuple[str, nn.Module]], *, corrupt: Corrupt | None = None
) -> list[tuple[str, np.ndarray]]:
    """Rows for :func:`image_rows_png`: the images, their corrupted versions (if any), one row per model."""
    rows = [("images", images.float().numpy() / 255.0)]
    for i, (label, model) in enumerate(snapshots):
        inputs, out = reconstruct(model, images, corrupt=corrupt)
        if corrupt is not None and i == 0:
            rows.append(("noisy input", inputs))
        rows.append((label, out))
    return rows


def reconstruction_png(
    images: torch.Tensor,
    snapshots: list[tuple[str, nn.Module]],
    path: Path,
    *,
    corrupt: Corrupt | None = None,
    title: str = "",
) -> Path:
    return image_rows_png(reconstruction_rows(images, snapshots, corrupt=corrupt), path, title=title)


class TaskData(Protocol):
    """What these helpers read of a task (:class:`mnist_hpo.tasks.Task`, a stage above this one)."""

    data: Dataset
    val_idx: torch.Tensor


def task_corruption(task: object) -> Corrupt | None:
    """The task's input corruption (a denoising task), or None."""
    corrupt = getattr(task, "corrupt", None)
    return corrupt if callable(corrupt) else None


def validation_images(task: TaskData, n: int = N_IMAGES) -> torch.Tensor:
    """The first ``n`` validation images of a task (the same for every trial of a study)."""
    return task.data.train_images[task.val_idx[:n]].cpu()


def test_images(task: TaskData, n: int = N_IMAGES) -> torch.Tensor:
    return task.data.test_images[:n].cpu()
