"""The report's denoising autoencoder (section 3): noisy image in, clean image as the target.

The model and the search are the autoencoder's; only the encoder's input changes.
Training draws fresh noise for every batch from the trial's generator (so a trial
is reproducible from its seed); validation and test use one fixed noisy copy each,
drawn from the study seed, so every trial is compared on the same inputs. The
objective and ``test_mse`` compare the reconstruction of the noisy image with the
clean one; ``test_mse_clean`` is the same model fed clean images, for reference.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from ..core.parse import Option
from ..core.schema import StudyConfig
from ..core.seeds import derive_seed
from ..data.datasets import Dataset
from ..data.noise import Noise, fixed_noisy_copy
from ..errors import UserError
from ..train.loops import evaluate_autoencoder
from .autoencoder import AutoencoderTask
from .rules import Rule


def noise_from_options(options: dict[str, Any], source: str = "model") -> Noise:
    """The study file's ``[model]`` noise settings as a :class:`Noise`; a bad value is a UserError."""
    try:
        return Noise(
            kind=options.get("noise", "gaussian"),
            std=float(options.get("noise_std", 0.1)),
            mean=float(options.get("noise_mean", 0.0)),
            amount=float(options.get("noise_amount", 0.1)),
            clip=bool(options.get("clip", True)),
        )
    except ValueError as e:
        raise UserError(f"{source}: model.{e}") from None


def _seed(study_seed: int, purpose: str) -> int:
    return derive_seed(study_seed, purpose)


class DenoisingTask(AutoencoderTask):
    model_type = "denoising"
    direction = "minimize"
    metric = "val_mse"
    stackable = False  # its trials corrupt their inputs one at a time
    # The noise the encoder's input gets (see mnist_hpo/data/noise.py).
    option_schema = {
        "noise": Option((str,), "gaussian", ("gaussian", "salt_and_pepper", "mix")),
        "noise_mean": Option((int, float), 0.0, None),
        "noise_std": Option((int, float), 0.1, None),
        "noise_amount": Option((int, float), 0.1, None),  # salt-and-pepper: fraction of pixels replaced
        "clip": Option((bool,), True, None),  # clip the noisy image to [0, 1]
    }
    # The noise options' ranges, as mnist_hpo.data.noise.Noise checks them (their kinds: option_schema).
    option_rules = {
        "noise_mean": Rule("float"),
        "noise_std": Rule("float", low=0, low_open=True),
        "noise_amount": Rule("float", low=0, high=1, low_open=True),
    }

    @classmethod
    def resolve(
        cls, cfg: StudyConfig, *, latest_export: Callable[[str], Path], pinned: dict[str, Any] | None = None
    ) -> StudyConfig:
        noise_from_options(cfg.model_options, cfg.source)  # a bad noise setting fails before the study is stored
        return cfg

    def __init__(self, cfg: StudyConfig, data: Dataset) -> None:
        self.noise = noise_from_options(cfg.model_options, cfg.source)
        super().__init__(cfg, data)
        self.corrupt = self.noise
        self.val_inputs = fixed_noisy_copy(self.val_images, self.noise, _seed(cfg.seed, "validation noise"))
        self.test_inputs = fixed_noisy_copy(self.test_images, self.noise, _seed(cfg.seed, "test noise"))

    def test(self, model: nn.Module) -> dict[str, float]:
        return {
            "test_mse": evaluate_autoencoder(model, self.test_images, inputs=self.test_inputs),
            "test_mse_clean": evaluate_autoencoder(model, self.test_images),
        }
