"""The network: a fully connected variational autoencoder (Kingma & Welling, 2014) for 28x28 images.

``forward(x)`` is the deterministic reconstruction (the decoder's mean at the code's mean),
so mnist-hpo's reconstruction figures work on it as on its own autoencoders (a model with
an ``encoder`` and a ``decoder``); training uses :meth:`Vae.negative_elbo`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PIXELS = 28 * 28


class Vae(nn.Module):
    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(PIXELS, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim)
        )
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, PIXELS))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images float32 [B, 1, 28, 28] in [0, 1] -> the code's mean and log-variance, [B, latent_dim] each."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encode(x)
        return torch.sigmoid(self.decoder(mu)).view(-1, 1, 28, 28)

    def negative_elbo(self, x: torch.Tensor, generator: torch.Generator, beta: float = 1.0) -> torch.Tensor:
        """Sum over the batch of -ELBO (nats): Bernoulli reconstruction loss + beta * KL(q(z|x) || N(0, I)).

        One code drawn per image with ``generator`` (a CPU generator: the same draws on every device).
        """
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        z = mu + eps * torch.exp(0.5 * logvar)
        logits = self.decoder(z)
        recon = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return recon + beta * kl
