"""The mean-image plateau of a reconstruction model: what answering the mean training image scores.

An autoencoder that stops learning early decodes every input to about the mean training
image, and its MSE then sits near the MSE of that mean image. A study's trials are counted
against it by :mod:`mnist_hpo.analysis.plateau`; an export's retrain is checked here.

A run too short to tell is not judged. Every model starts near the mean image, so after a
few hundred optimizer steps an untrained model and a stuck one look alike. In the record
(``results/journals/ae.log``: 50 epochs of 188 steps, 48,000 images at batch 256) every trial
that left the plateau did so within 9 epochs, about 1,700 steps; so a run of fewer than
:data:`MIN_STEPS` optimizer steps (epochs × batches per epoch) is "too short to tell": its
export records ``on_plateau: null`` with its step count, and ``show`` says why it counts nothing.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..core.schema import StudyConfig
from ..data.datasets import Dataset, load_data, split_indices, to_float

# A final validation MSE above this share of the mean image's means the trial learned next to
# nothing: in the record the stuck trials end at 0.89-0.92 of it, the others at 0.72 or below.
STUCK_SHARE = 0.85
# Fewer optimizer steps than this are too few to tell a stuck model from one still learning (see above).
MIN_STEPS = 2000
MODELS = ("autoencoder", "denoising")  # families whose metric is a reconstruction MSE of clean images


def mean_image_mse(cfg: StudyConfig) -> float:
    """Validation MSE of always answering the mean training image, on the study's own split."""
    data = load_data(cfg).subset(cfg.train_subset, cfg.test_subset)
    train_idx, val_idx = split_indices(len(data.train_images), cfg.val_fraction, cfg.seed)
    images = to_float(data.train_images)
    return _mse_to_mean(images[train_idx], images[val_idx])


def _mse_to_mean(train: torch.Tensor, other: torch.Tensor) -> float:
    """MSE on ``other`` of always answering the mean image of ``train`` (float images)."""
    return float(((other - train.mean(dim=0)) ** 2).mean())


def mean_image_test_mse(data: Dataset) -> float:
    """Test MSE of always answering the mean training image: the plateau's level for a retrained model."""
    return _mse_to_mean(to_float(data.train_images), to_float(data.test_images))


def optimizer_steps(images: int, batch_size: int, epochs: int) -> int:
    """The optimizer steps of ``epochs`` passes over ``images`` in batches of ``batch_size`` (the last one partial)."""
    return epochs * math.ceil(images / batch_size)


def too_short(steps: int) -> str:
    """Why a run of ``steps`` optimizer steps cannot be judged, for a message (empty when it can)."""
    if steps >= MIN_STEPS:
        return ""
    return (
        f"{steps:,} optimizer steps are too few to tell a model stuck on the mean image from one still "
        f"learning (at least {MIN_STEPS:,} are needed: in the record every trial that left the plateau "
        "did so within about 1,700)"
    )


def retrain_check(model: str, data: Dataset, metrics: dict[str, Any], *, steps: int) -> dict[str, Any]:
    """For a reconstruction model retrained on ``data`` for ``steps`` optimizer steps: the mean image's test
    MSE and whether the retrain ended near it (``on_plateau``; None when the run is too short to tell, see
    :data:`MIN_STEPS`). A trial can leave the plateau on its split and the retrain, with other batches, stay
    on it (the record's dae trial 25); the export says so rather than pass for a model."""
    if model not in MODELS or "test_mse" not in metrics:
        return {}
    baseline = mean_image_test_mse(data)
    judged = steps >= MIN_STEPS
    return {
        "mean_image_test_mse": baseline,
        "optimizer_steps": steps,
        "on_plateau": bool(metrics["test_mse"] >= STUCK_SHARE * baseline) if judged else None,
    }


def trial_steps(cfg: StudyConfig) -> int:
    """The optimizer steps of one trial of study ``cfg``: its epochs over its split's training part."""
    data = load_data(cfg).subset(cfg.train_subset, cfg.test_subset)
    train_idx, _ = split_indices(len(data.train_images), cfg.val_fraction, cfg.seed)
    return optimizer_steps(len(train_idx), cfg.batch_size, cfg.epochs)
