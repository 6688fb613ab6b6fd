"""GAN training as plain functions: the networks, their optimizers and the data in; per-epoch losses out.

The report's routine (section 5): for every batch of real images the discriminator
takes one step on that real batch (target 1), then one step on an equally large
batch of generated images (target 0) — never a mixed batch — and then the
generator takes one step to make the discriminator call its images real
(the non-saturating loss). The discriminator loss of an epoch is the mean of
``BCE(real) + BCE(fake)``, the convention under which the report's final values
(D 0.81, G 1.20) are consistent with each other.

Nothing here knows Optuna, files or the quality classifier: evaluation and
bookkeeping arrive as callbacks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..data.datasets import batches
from ..models.gan import sample_sphere
from .loops import NonFiniteLoss


def to_tanh_range(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 28, 28] -> float32 [B, 1, 28, 28] in [-1, 1] (the report's normalisation)."""
    return images_u8.unsqueeze(1).to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)


def train_gan_epoch(
    gen: nn.Module,
    disc: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    images: torch.Tensor,
    *,
    batch_size: int,
    latent_dim: int,
    rng: torch.Generator,
) -> tuple[float, float]:
    """One pass over ``images`` (uint8 [N, 28, 28]); returns the mean (discriminator, generator) losses.

    ``rng`` (a CPU generator) shuffles the batches and draws the noise, so a run is
    reproducible from its seed and resumable from the generator's saved state.
    """
    gen.train()
    disc.train()
    device = images.device
    # Summed on the device and read once per epoch: per-batch .item() calls would stall a GPU every step.
    d_total = torch.zeros((), device=device)
    g_total = torch.zeros((), device=device)
    for idx in batches(len(images), batch_size, shuffle=True, generator=rng):
        real = to_tanh_range(images[idx.to(device)])
        n = len(real)
        ones = torch.ones(n, device=device)
        zeros = torch.zeros(n, device=device)

        opt_d.zero_grad(set_to_none=True)
        loss_real = F.binary_cross_entropy_with_logits(disc(real), ones)
        loss_real.backward()
        opt_d.step()

        fake = gen(sample_sphere(n, latent_dim, generator=rng, device=device))
        opt_d.zero_grad(set_to_none=True)
        loss_fake = F.binary_cross_entropy_with_logits(disc(fake.detach()), zeros)
        loss_fake.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        loss_g = F.binary_cross_entropy_with_logits(disc(fake), ones)
        loss_g.backward()
        opt_g.step()

        d_total += (loss_real.detach() + loss_fake.detach()) * n
        g_total += loss_g.detach() * n
    count = max(len(images), 1)
    d_value, g_value = d_total.item() / count, g_total.item() / count
    if not (math.isfinite(d_value) and math.isfinite(g_value)):
        raise NonFiniteLoss(f"GAN loss became non-finite (D {d_value}, G {g_value})")
    return d_value, g_value


@dataclass
class GanHistory:
    """Per-epoch losses (every epoch) and quality scores (at the evaluated epochs, 0-based)."""

    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    eval_epochs: list[int] = field(default_factory=list)
    fid: list[float] = field(default_factory=list)
    coverage_tv: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GanHistory:
        return cls(**{k: list(d.get(k, [])) for k in cls.__dataclass_fields__})

    def record(self, epoch: int, scores: dict[str, Any]) -> None:
        self.eval_epochs.append(epoch)
        self.fid.append(float(scores["fid"]))
        self.coverage_tv.append(float(scores["coverage_tv"]))


Evaluate = Callable[
    [int], "dict[str, Any] | None"
]  # epoch -> scores with "fid" and "coverage_tv", or None: not this epoch


def fit_gan(
    gen: nn.Module,
    disc: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    images: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    latent_dim: int,
    rng: torch.Generator,
    start_epoch: int = 0,
    history: GanHistory | None = None,
    evaluate: Evaluate | None = None,
    on_epoch: Callable[[int, float, float], None] | None = None,
    after_epoch: Callable[[int, GanHistory], None] | None = None,
) -> GanHistory:
    """Train from ``start_epoch`` up to ``epochs`` (a total, so a resumed run passes its saved epoch).

    After each epoch ``evaluate(epoch)`` may return scores; when it does they are
    recorded and ``on_epoch(epoch, d_loss, fid)`` is called (it may raise to prune).
    ``after_epoch(epoch, history)`` then runs every epoch (checkpoints, image grids).
    """
    history = history if history is not None else GanHistory()
    for epoch in range(start_epoch, epochs):
        start = time.perf_counter()
        d_loss, g_loss = train_gan_epoch(
            gen, disc, opt_g, opt_d, images, batch_size=batch_size, latent_dim=latent_dim, rng=rng
        )
        history.d_loss.append(d_loss)
        history.g_loss.append(g_loss)
        history.seconds.append(time.perf_counter() - start)
        scores = evaluate(epoch) if evaluate is not None else None
        if scores is not None:
            if not math.isfinite(scores["fid"]):
                raise NonFiniteLoss(f"Fréchet distance became {scores['fid']}")
            history.record(epoch, scores)
            if on_epoch is not None:
                on_epoch(epoch, d_loss, float(scores["fid"]))
        if after_epoch is not None:
            after_epoch(epoch, history)
    return history
