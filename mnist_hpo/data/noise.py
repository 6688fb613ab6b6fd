"""Image corruptions for the denoising autoencoder: Gaussian, salt-and-pepper, and a mix of the two.

A :class:`Noise` maps a clean float batch ([B, 1, 28, 28], values in [0, 1]) and a
``torch.Generator`` to a new, noisy batch; the clean batch is never modified, so it
stays the training target. Every draw comes from the generator passed in: the same
generator state gives the same noise.

Clipping: by default the noisy image is clipped to [0, 1]. The encoder then always
sees a valid image (the range it sees for the plain autoencoder, and the range a
stored noisy image would have); salt-and-pepper is in range by construction. The
price is that Gaussian noise on the black background is half cut off, so there its
mean is positive (about 0.04 for std 0.1), not 0. ``clip = false`` in the study file
keeps the pure additive noise of the report's formula.

The mix: each image independently gets Gaussian or salt-and-pepper noise with
probability 1/2, so one model learns to remove both (the report's conclusion asks
for an autoencoder that removes all of them, not one at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .datasets import batches, to_float

KINDS = ("gaussian", "salt_and_pepper", "mix")


def gaussian(clean: torch.Tensor, generator: torch.Generator, *, std: float, mean: float = 0.0) -> torch.Tensor:
    """``clean`` plus Normal(mean, std) noise per pixel (not clipped)."""
    noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype).to(clean.device)
    return clean + (mean + std * noise)


def salt_and_pepper(clean: torch.Tensor, generator: torch.Generator, *, amount: float) -> torch.Tensor:
    """A fraction ``amount`` of the pixels (on average) set to 0 or 1, each with probability 1/2."""
    hit = (torch.rand(clean.shape, generator=generator) < amount).to(clean.device)
    salt = (torch.rand(clean.shape, generator=generator) < 0.5).to(clean.device, clean.dtype)
    return torch.where(hit, salt, clean)


@dataclass(frozen=True)
class Noise:
    """One corruption as a study configures it; call it as ``noise(clean, generator)``."""

    kind: str = "gaussian"
    std: float = 0.1
    mean: float = 0.0
    amount: float = 0.1  # salt-and-pepper: fraction of pixels replaced
    clip: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"noise must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.std > 0:
            raise ValueError(f"noise_std must be positive, got {self.std}")
        if not 0 < self.amount <= 1:
            raise ValueError(f"noise_amount must be in (0, 1], got {self.amount}")

    def __call__(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.kind == "gaussian":
            out = gaussian(clean, generator, std=self.std, mean=self.mean)
        elif self.kind == "salt_and_pepper":
            out = salt_and_pepper(clean, generator, amount=self.amount)
        else:
            # Draw both for every image, keep one per image: the draws do not depend on the choice.
            use_gauss = (torch.rand(clean.shape[0], generator=generator) < 0.5).to(clean.device)
            g = gaussian(clean, generator, std=self.std, mean=self.mean)
            sp = salt_and_pepper(clean, generator, amount=self.amount)
            out = torch.where(use_gauss.view(-1, *([1] * (clean.dim() - 1))), g, sp)
        return out.clamp_(0.0, 1.0) if self.clip else out

    def describe(self) -> dict[str, Any]:
        """What the export records: the noise the model was trained and tested on."""
        d: dict[str, Any] = {"kind": self.kind, "clip": self.clip}
        if self.kind in ("gaussian", "mix"):
            d.update(mean=self.mean, std=self.std)
        if self.kind in ("salt_and_pepper", "mix"):
            d.update(amount=self.amount)
        return d


def fixed_noisy_copy(images: torch.Tensor, noise: Noise, seed: int, *, batch_size: int = 4096) -> torch.Tensor:
    """A float noisy copy of uint8 ``images`` [N, 28, 28] drawn from ``seed``: the same on every call."""
    generator = torch.Generator().manual_seed(seed)
    parts = [noise(to_float(images[idx]), generator) for idx in batches(len(images), batch_size, shuffle=False)]
    if not parts:
        return torch.empty((0, 1, *images.shape[1:]), device=images.device)
    return torch.cat(parts)
