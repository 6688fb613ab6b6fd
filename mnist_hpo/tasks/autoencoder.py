"""The report's autoencoder study: reconstruct MNIST digits, objective = validation MSE."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from ..core.schema import StudyConfig
from ..data.datasets import Dataset
from ..models import Autoencoder
from ..train.loops import OPTIMIZERS, Corrupt, evaluate_autoencoder, fit_autoencoder, make_optimizer, seed_everything
from ..train.stacked import TrialSpec, fit_stacked
from .base import FitResult, OnEpoch, OnStackedEpoch, Task, Training
from .rules import Rule


class AutoencoderTask(Task):
    model_type = "autoencoder"
    direction = "minimize"
    metric = "val_mse"
    space_rules = {
        "latent_dim": Rule("int", low=1),
        "nh1": Rule("int", low=1),
        "optimizer": Rule("choice", choices=tuple(OPTIMIZERS)),
        "lr": Rule("float", low=0, low_open=True),
        "weight_decay": Rule("float", low=0),
    }
    stackable = True
    pbt_mutable = ("lr", "weight_decay")  # the optimizer's settings; the rest shapes the model or picks its optimizer

    # The encoder's input where it differs from the clean image (see the denoising task).
    corrupt: Corrupt | None = None  # per training batch: (clean, generator) -> input
    val_inputs: torch.Tensor | None = None  # fixed float inputs for the validation images
    test_inputs: torch.Tensor | None = None  # and for the test images

    def __init__(self, cfg: StudyConfig, data: Dataset) -> None:
        super().__init__(cfg, data)
        # Resident on the training device once, sliced per batch afterwards.
        self.train_all = self.data.train_images.to(self.device)
        self.train_images = self.train_all[self.train_idx.to(self.device)]
        self.val_images = self.train_all[self.val_idx.to(self.device)]
        self.test_images = self.data.test_images.to(self.device)

    def arch(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"latent_dim": int(params["latent_dim"]), "nh1": int(params["nh1"])}

    @classmethod
    def build(cls, arch: dict[str, Any]) -> nn.Module:
        return Autoencoder(**arch)

    def fit(
        self, params: dict[str, Any], *, seed: int, epochs: int, full: bool, on_epoch: OnEpoch | None = None
    ) -> FitResult:
        return self.train_epochs(
            self.start_training(params, seed=seed), params, epochs=epochs, full=full, on_epoch=on_epoch
        )

    def start_training(self, params: dict[str, Any], *, seed: int) -> Training:
        generator = seed_everything(seed)
        # channels_last: the small convolutions run ~1.5x faster on CPU (BENCHMARKS.md), same arithmetic.
        # (torch's stubs lack Module.to's device-and-memory_format form, which it documents and accepts)
        model = cast(Any, self.build(self.arch(params))).to(self.device, memory_format=torch.channels_last)
        optimizer = make_optimizer(
            params["optimizer"], model.parameters(), lr=float(params["lr"]), weight_decay=float(params["weight_decay"])
        )
        return Training(model, {"optimizer": optimizer}, generator)

    def train_epochs(
        self,
        training: Training,
        params: dict[str, Any],
        *,
        epochs: int,
        on_epoch: OnEpoch | None = None,
        full: bool = False,
    ) -> FitResult:
        """``full``: on all training images, evaluated on the test set (:meth:`fit`'s final retrain)."""
        history = fit_autoencoder(
            training.model,
            training.optimizers["optimizer"],
            self.train_all if full else self.train_images,
            self.test_images if full else self.val_images,
            epochs=epochs,
            batch_size=self.cfg.batch_size,
            generator=training.generator,
            on_epoch=on_epoch,
            corrupt=self.corrupt,
            val_inputs=self.test_inputs if full else self.val_inputs,
        )
        return FitResult(training.model, history.val_loss[-1], history.as_dict())

    def fit_stacked(
        self, params: list[dict[str, Any]], seeds: list[int], *, epochs: int, on_epoch: OnStackedEpoch | None = None
    ) -> list[dict[str, Any]]:
        specs = [
            TrialSpec(
                int(p["latent_dim"]), int(p["nh1"]), p["optimizer"], float(p["lr"]), float(p["weight_decay"]), seed
            )
            for p, seed in zip(params, seeds)
        ]
        _, histories = fit_stacked(
            specs, self.train_images, self.val_images, epochs=epochs, batch_size=self.cfg.batch_size, on_epoch=on_epoch
        )
        return histories

    def test(self, model: nn.Module) -> dict[str, float]:
        return {"test_mse": evaluate_autoencoder(model, self.test_images)}
