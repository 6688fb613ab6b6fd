"""Every noise against every denoiser: the cross table of the report's open rows, and its figure.

The report's conclusion asks for other noises and for one autoencoder that removes all of them.
Each model (an autoencoder or denoising autoencoder export) is tested on the 10,000 test images
under each noise, and on the clean images. The noisy images are drawn once from a fixed seed (the
one the record's denoising studies test with, seed 2020's "test noise"), so every model sees the
same inputs, and a model's own noise gives back its export's ``test_mse``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..artifacts.loading import load_export
from ..core.figures import image_rows_png
from ..core.seeds import derive_seed
from ..data.datasets import to_float
from ..data.noise import Noise, fixed_noisy_copy
from ..train.loops import evaluate_autoencoder

RECORD_SEED = 2020  # the record's study seed: its denoising exports were tested on this seed's noisy copy
# The noises the record's denoising studies train on (mnist_hpo/studies/dae*.toml), by the name a table shows.
NOISES = {
    "Gaussian": Noise("gaussian", std=0.1),
    "salt and pepper": Noise("salt_and_pepper", amount=0.1),
    "mix": Noise("mix", std=0.1, amount=0.1),
}
CLEAN = "clean"


@dataclass(frozen=True)
class Denoiser:
    """One model of the table: its label, the export it was loaded from, and the model."""

    label: str
    folder: Path
    model: nn.Module


def load_denoisers(exports: dict[str, Path]) -> list[Denoiser]:
    """The models of ``exports`` (label -> export folder), each checked against its recorded sha256."""
    return [Denoiser(label, Path(folder), load_export(folder)[0]) for label, folder in exports.items()]


def noisy_inputs(test_images: torch.Tensor, seed: int = RECORD_SEED) -> dict[str, torch.Tensor]:
    """Each noise's fixed noisy copy of ``test_images`` (uint8 N x 28 x 28), and the clean images as floats."""
    copies = {
        name: fixed_noisy_copy(test_images, noise, derive_seed(seed, "test noise")) for name, noise in NOISES.items()
    }
    return {**copies, CLEAN: to_float(test_images)}


def cross_table(
    models: list[Denoiser], test_images: torch.Tensor, seed: int = RECORD_SEED
) -> dict[str, dict[str, float]]:
    """``{model label: {noise: test MSE against the clean images}}``, the clean images included as a noise."""
    inputs = noisy_inputs(test_images, seed)
    with torch.no_grad():
        return {
            m.label: {name: evaluate_autoencoder(m.model, test_images, inputs=x) for name, x in inputs.items()}
            for m in models
        }


def table_rows(table: dict[str, dict[str, float]]) -> tuple[list[str], list[list[str]]]:
    """The table's columns and rows, each noise's best model marked with a star."""
    noises = [*NOISES, CLEAN]
    best = {n: min(table, key=lambda label: table[label][n]) for n in noises}
    rows = [
        [label, *(f"{values[n]:.4f}{' *' if best[n] == label else ''}" for n in noises)]
        for label, values in table.items()
    ]
    return ["model (trained on)", *(f"tested on {n}" for n in noises)], rows


def cross_figure(
    models: list[Denoiser], test_images: torch.Tensor, path: Path, *, count: int = 6, seed: int = RECORD_SEED
) -> Path:
    """Per noise: the noisy inputs, each model's output, and the clean targets, for ``count`` test images."""
    inputs = noisy_inputs(test_images[:count], seed)
    rows: list[tuple[str, np.ndarray]] = []
    with torch.no_grad():
        for name in NOISES:
            rows.append((f"{name} input", inputs[name][:, 0].numpy()))
            for m in models:
                out = m.model.eval()(inputs[name]).clamp(0, 1)
                rows.append((f"{m.label}", out[:, 0].numpy()))
        rows.append(("clean target", inputs[CLEAN][:, 0].numpy()))
    return image_rows_png(rows, path, title="Each noise, each model: noisy input, outputs, clean target")
