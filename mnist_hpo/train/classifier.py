"""Training loops for classifiers, as plain functions (the classification side of :mod:`training`).

Inputs are either resident uint8 images [N, 28, 28] (converted per batch) or float
feature rows [N, D], e.g. the cached codes of a frozen encoder: the same loop
trains a whole encoder + head on images or just the head on codes. Nothing here
knows about Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..data.datasets import batches, to_float
from .loops import History, OnEpoch, optimize_epoch, run_epochs


def _as_input(x: torch.Tensor) -> torch.Tensor:
    return to_float(x) if x.dtype == torch.uint8 else x


def train_classifier_epoch(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One pass in shuffled batches; returns the mean cross-entropy."""
    return optimize_epoch(
        model,
        optimizer,
        lambda idx: F.cross_entropy(model(_as_input(inputs[idx])), labels[idx]),
        len(inputs),
        batch_size=batch_size,
        generator=generator,
        device=inputs.device,
    )


@torch.inference_mode()
def predict_logits(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
    model.eval()
    parts = [model(_as_input(inputs[idx])) for idx in batches(len(inputs), batch_size, shuffle=False)]
    return torch.cat(parts) if parts else torch.empty(0, 10)


def evaluate_classifier(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on ``inputs``."""
    logits = predict_logits(model, inputs)
    ce = F.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    return ce, accuracy


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, n_classes: int = 10) -> list[list[int]]:
    """Counts [true class][predicted class]."""
    flat = torch.bincount(labels.cpu() * n_classes + predicted.cpu(), minlength=n_classes * n_classes)
    return flat.view(n_classes, n_classes).tolist()


@torch.no_grad()
def encode(encoder: nn.Module, images: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
    """The codes [N, latent] of uint8 ``images`` [N, 28, 28], on the encoder's device (the images may be elsewhere)."""
    encoder.eval()
    device = next(encoder.parameters()).device
    parts = [encoder(to_float(images[idx].to(device))) for idx in batches(len(images), batch_size, shuffle=False)]
    # no_grad, not inference_mode: the codes are training data, and inference tensors cannot be.
    return torch.cat(parts) if parts else torch.empty(0, 0)


@dataclass
class ClassifierHistory(History):
    val_accuracy: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "val_accuracy": self.val_accuracy}


def fit_classifier(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    on_epoch: OnEpoch | None = None,
) -> ClassifierHistory:
    """Train for ``epochs`` on ``train`` = (inputs, labels); after each, evaluate on ``val`` and call ``on_epoch``.

    ``on_epoch(epoch, train_loss, val_loss)`` may raise (e.g. to prune) to stop early.
    """

    def evaluate() -> dict[str, float]:
        val_loss, val_accuracy = evaluate_classifier(model, *val)
        return {"val_loss": val_loss, "val_accuracy": val_accuracy}

    return run_epochs(
        ClassifierHistory(),
        epochs,
        train_one=lambda: train_classifier_epoch(model, *train, optimizer, batch_size=batch_size, generator=generator),
        evaluate=evaluate,
        on_epoch=on_epoch,
    )
