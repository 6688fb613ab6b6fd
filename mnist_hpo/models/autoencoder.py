"""The report's convolutional autoencoder (section 1), encoder and decoder as separate modules."""

from __future__ import annotations

import torch
from torch import nn

CONV_FLAT = 32 * 3 * 3  # the encoder's feature map after three convolutions: 288


def xavier_init(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every conv and linear layer (as the report)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Encoder(nn.Module):
    def __init__(self, latent_dim: int, nh1: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.nh1 = nh1
        self.conv = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=0),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.linear = nn.Sequential(nn.Linear(CONV_FLAT, nh1), nn.ReLU(), nn.Linear(nh1, latent_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.conv(x))


class Decoder(nn.Module):
    def __init__(self, latent_dim: int, nh1: int) -> None:
        super().__init__()
        self.linear = nn.Sequential(
            nn.Linear(latent_dim, nh1),
            nn.ReLU(),
            nn.Linear(nh1, CONV_FLAT),
            nn.ReLU(),
            nn.Unflatten(1, (32, 3, 3)),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=0),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.linear(z))


class Autoencoder(nn.Module):
    """Encoder + decoder; ``forward`` maps [B, 1, 28, 28] images to reconstructions of the same shape."""

    def __init__(self, latent_dim: int, nh1: int) -> None:
        super().__init__()
        self.encoder = Encoder(latent_dim, nh1)
        self.decoder = Decoder(latent_dim, nh1)
        xavier_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
