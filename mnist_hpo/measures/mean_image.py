"""The mean-image plateau of a reconstruction model: what answering the mean training image scores.

An autoencoder that stops learning early decodes every input to about the mean training
image, and its MSE then sits near the MSE of that mean image. A study's trials are counted
against it by :mod:`mnist_hpo.analysis.plateau`; an export's retrain is checked here.
"""

from __future__ import annotations

from ..data.datasets import load_data, split_indices, to_float

# A final validation MSE above this share of the mean image's means the trial learned next to
# nothing: in the record the stuck trials end at 0.89-0.92 of it, the others at 0.72 or below.
STUCK_SHARE = 0.85
MODELS = ("autoencoder", "denoising")  # families whose metric is a reconstruction MSE of clean images


def mean_image_mse(cfg) -> float:
    """Validation MSE of always answering the mean training image, on the study's own split."""
    data = load_data(cfg).subset(cfg.train_subset, cfg.test_subset)
    train_idx, val_idx = split_indices(len(data.train_images), cfg.val_fraction, cfg.seed)
    images = to_float(data.train_images)
    return _mse_to_mean(images[train_idx], images[val_idx])


def _mse_to_mean(train, other) -> float:
    """MSE on ``other`` of always answering the mean image of ``train`` (float images)."""
    return float(((other - train.mean(dim=0)) ** 2).mean())


def mean_image_test_mse(data) -> float:
    """Test MSE of always answering the mean training image: the plateau's level for a retrained model."""
    return _mse_to_mean(to_float(data.train_images), to_float(data.test_images))


def retrain_check(model: str, data, metrics: dict) -> dict:
    """For a reconstruction model retrained on ``data``: the mean image's test MSE and whether the
    retrain ended near it. A trial can leave the plateau on its split and the retrain, with other
    batches, stay on it (the record's dae trial 25); the export says so rather than pass for a model."""
    if model not in MODELS or "test_mse" not in metrics:
        return {}
    baseline = mean_image_test_mse(data)
    return {"mean_image_test_mse": baseline, "on_plateau": bool(metrics["test_mse"] >= STUCK_SHARE * baseline)}
