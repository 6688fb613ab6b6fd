"""Training loops as plain functions: model, data and optimizer in, metrics out.

Data arrives as resident uint8 image tensors; batches are index slices of them
(see :mod:`mnist_hpo.data.datasets`). Nothing here knows about Optuna: an objective passes
an ``on_epoch`` callback to report and prune, a test calls the same functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn import functional as F

from ..data.datasets import batches, to_float

OPTIMIZERS = {"Adam": torch.optim.Adam, "RMSprop": torch.optim.RMSprop}

# A corruption maps a clean float batch to the encoder's input (identity for a plain autoencoder).
Corrupt = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
OnEpoch = Callable[[int, float, float], None]


class NonFiniteLoss(ArithmeticError):
    """Training diverged: a loss became NaN or infinite."""


def make_optimizer(
    name: str, params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}") from None
    return cls(params, lr=lr, weight_decay=weight_decay)


def epoch_mean(total: torch.Tensor, n: int) -> float:
    """A loss summed on the device over an epoch of ``n`` examples, read once, as a finite mean."""
    value = total.item() / max(n, 1)
    if not math.isfinite(value):
        raise NonFiniteLoss(f"training loss became {value}")
    return value


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (weight init, dropout) and return a generator for shuffling."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def train_autoencoder_epoch(
    model: nn.Module,
    images: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    batch_size: int,
    generator: torch.Generator,
    corrupt: Corrupt | None = None,
) -> float:
    """One pass over ``images`` (uint8 [N, 28, 28]) in shuffled batches; returns the mean MSE."""

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        clean = to_float(images[idx])
        inputs = corrupt(clean, generator) if corrupt is not None else clean
        return F.mse_loss(model(inputs), clean)

    return optimize_epoch(
        model, optimizer, batch_loss, len(images), batch_size=batch_size, generator=generator, device=images.device
    )


def optimize_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    *,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
) -> float:
    """One optimisation pass over ``n`` examples in shuffled batches; ``batch_loss(indices)`` gives each batch's mean loss."""
    model.train()
    # Summed on the device and read once per epoch: a per-batch .item() would stall a GPU every step.
    total = torch.zeros((), device=device)
    for idx in batches(n, batch_size, shuffle=True, generator=generator):
        loss = batch_loss(idx)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(idx)
    return epoch_mean(total, n)


@torch.inference_mode()
def evaluate_autoencoder(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 2048,
    inputs: torch.Tensor | None = None,
) -> float:
    """Mean per-pixel MSE of the reconstruction of ``images``; ``inputs`` (float) replaces them as encoder input."""
    model.eval()
    total = 0.0
    for idx in batches(len(images), batch_size, shuffle=False):
        clean = to_float(images[idx])
        x = inputs[idx] if inputs is not None else clean
        total += F.mse_loss(model(x), clean, reduction="sum").item()
    return total / max(images.numel(), 1)


@dataclass
class History:
    """Per-epoch losses of one training run."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"train_loss": self.train_loss, "val_loss": self.val_loss, "seconds": self.seconds}


HistoryT = TypeVar("HistoryT", bound=History)


def fit_autoencoder(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_images: torch.Tensor,
    val_images: torch.Tensor | None,
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    corrupt: Corrupt | None = None,
    val_inputs: torch.Tensor | None = None,
    on_epoch: OnEpoch | None = None,
) -> History:
    """Train for ``epochs``; after each, evaluate on ``val_images`` (if given) and call ``on_epoch``.

    ``on_epoch(epoch, train_loss, val_loss)`` may raise (e.g. to prune) to stop early.
    """
    return run_epochs(
        History(),
        epochs,
        train_one=lambda: train_autoencoder_epoch(
            model, train_images, optimizer, batch_size=batch_size, generator=generator, corrupt=corrupt
        ),
        evaluate=None
        if val_images is None
        else lambda: {"val_loss": evaluate_autoencoder(model, val_images, inputs=val_inputs)},
        on_epoch=on_epoch,
    )


def run_epochs(
    history: HistoryT,
    epochs: int,
    *,
    train_one: Callable[[], float],
    evaluate: Callable[[], dict[str, float]] | None,
    on_epoch: OnEpoch | None,
) -> HistoryT:
    """The epoch loop every ``fit_*`` shares: train, evaluate, record, call ``on_epoch``.

    ``evaluate`` returns ``val_loss`` and any further per-epoch metrics, each appended to the
    history field of that name; without it ``val_loss`` is NaN. A non-finite validation loss
    raises :class:`NonFiniteLoss`; ``on_epoch(epoch, train_loss, val_loss)`` may raise to stop early.
    """
    for epoch in range(epochs):
        start = time.perf_counter()
        train_loss = train_one()
        metrics = evaluate() if evaluate is not None else {"val_loss": float("nan")}
        val_loss = metrics["val_loss"]
        if evaluate is not None and not math.isfinite(val_loss):
            raise NonFiniteLoss(f"validation loss became {val_loss}")
        history.train_loss.append(train_loss)
        for key, value in metrics.items():
            getattr(history, key).append(value)
        history.seconds.append(time.perf_counter() - start)
        if on_epoch is not None:
            on_epoch(epoch, train_loss, val_loss)
    return history
