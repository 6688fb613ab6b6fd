"""The report's classifier (section 4): the autoencoder's encoder with a small head instead of the decoder."""

from __future__ import annotations

import torch
from torch import nn

from .autoencoder import Encoder, xavier_init


class Head(nn.Module):
    """Linear(latent, nh1) - ReLU - Dropout(p) - Linear(nh1, 10): logits from a latent code."""

    def __init__(self, latent_dim: int, nh1: int, dropout: float, n_classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, nh1), nn.ReLU(), nn.Dropout(dropout), nn.Linear(nh1, n_classes))
        xavier_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class EncoderClassifier(nn.Module):
    """Images [B, 1, 28, 28] -> class logits [B, 10]; ``encoder`` is the autoencoder's (weights loaded separately)."""

    def __init__(self, latent_dim: int, encoder_nh1: int, nh1: int, dropout: float) -> None:
        super().__init__()
        self.encoder = Encoder(latent_dim, encoder_nh1)
        self.head = Head(latent_dim, nh1, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))
