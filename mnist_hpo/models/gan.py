"""The report's GAN (section 5) and a convolutional (DCGAN-style) variant, plus the noise they eat.

Both generators map 100-d noise to [B, 1, 28, 28] images in [-1, 1] (Tanh); both
discriminators map such images to one logit per image (the sigmoid lives in the
loss, ``BCEWithLogits``, which is the report's sigmoid + BCE computed stably).
"""

from __future__ import annotations

import math

import torch
from torch import nn

IMAGE_PIXELS = 28 * 28
ARCHS = ("mlp", "dcgan")


def sample_sphere(
    n: int, dim: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """``n`` points uniform on the sphere of radius sqrt(dim): normal vectors scaled to that norm."""
    z = torch.randn(n, dim, generator=generator)
    z = z * (math.sqrt(dim) / z.norm(dim=1, keepdim=True).clamp_min(1e-12))
    return z.to(device) if device is not None else z


class MLPGenerator(nn.Module):
    """100 - 256 - 512 - 784, LeakyReLU and dropout after each hidden layer, Tanh output (Table 4)."""

    def __init__(
        self, latent_dim: int = 100, hidden: tuple[int, int] = (256, 512), slope: float = 0.2, dropout: float = 0.3
    ) -> None:
        super().__init__()
        h1, h2 = hidden
        self.net = nn.Sequential(
            nn.Linear(latent_dim, h1),
            nn.LeakyReLU(slope),
            nn.Dropout(dropout),
            nn.Linear(h1, h2),
            nn.LeakyReLU(slope),
            nn.Dropout(dropout),
            nn.Linear(h2, IMAGE_PIXELS),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """784 - 512 - 256 - 1, LeakyReLU and dropout after each hidden layer (Table 4); returns logits [B]."""

    def __init__(self, hidden: tuple[int, int] = (512, 256), slope: float = 0.2, dropout: float = 0.3) -> None:
        super().__init__()
        h1, h2 = hidden
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(IMAGE_PIXELS, h1),
            nn.LeakyReLU(slope),
            nn.Dropout(dropout),
            nn.Linear(h1, h2),
            nn.LeakyReLU(slope),
            nn.Dropout(dropout),
            nn.Linear(h2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class DCGenerator(nn.Module):
    """Noise -> 128x7x7 -> 64x14x14 -> 1x28x28 by transposed convolutions with batch norm (Radford et al.).

    No dropout: batch norm already regularises it, and dropout in a DCGAN generator
    mostly adds noise to the samples.
    """

    def __init__(self, latent_dim: int = 100, slope: float = 0.2, channels: int = 128) -> None:
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Linear(latent_dim, c * 7 * 7, bias=False),
            nn.BatchNorm1d(c * 7 * 7),
            nn.LeakyReLU(slope),
            nn.Unflatten(1, (c, 7, 7)),
            nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c // 2),
            nn.LeakyReLU(slope),
            nn.ConvTranspose2d(c // 2, 1, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class DCDiscriminator(nn.Module):
    """1x28x28 -> 64x14x14 -> 128x7x7 -> logit, strided convolutions, LeakyReLU and dropout."""

    def __init__(self, slope: float = 0.2, dropout: float = 0.3, channels: int = 64) -> None:
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1),
            nn.LeakyReLU(slope),
            nn.Dropout(dropout),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),
            nn.LeakyReLU(slope),
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(2 * c * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class GAN(nn.Module):
    """A generator and its discriminator, kept together so one state dict (one export) holds both.

    ``forward(z)`` is the generator: an exported GAN is used as ``gan(sample_sphere(n, gan.latent_dim))``.
    """

    def __init__(self, arch: str = "mlp", latent_dim: int = 100, slope: float = 0.2, dropout: float = 0.3) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown GAN architecture {arch!r}; choose one of {', '.join(ARCHS)}")
        self.arch = arch
        self.latent_dim = latent_dim
        if arch == "mlp":
            self.generator: nn.Module = MLPGenerator(latent_dim, slope=slope, dropout=dropout)
            self.discriminator: nn.Module = MLPDiscriminator(slope=slope, dropout=dropout)
        else:
            self.generator = DCGenerator(latent_dim, slope=slope)
            self.discriminator = DCDiscriminator(slope=slope, dropout=dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [-1, 1] from the generator in eval mode (no dropout, running batch-norm stats)."""
        was_training = self.generator.training
        self.generator.eval()
        device = next(self.generator.parameters()).device
        try:
            return self.generator(sample_sphere(n, self.latent_dim, generator=generator, device=device))
        finally:
            self.generator.train(was_training)
