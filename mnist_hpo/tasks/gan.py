"""The report's GAN as a study: objective = Fréchet distance of generated digits (lower is better).

Parameters a study may search (any left out take the report's values, Table 4):
``lr_d``, ``lr_g`` (Adam), ``dropout``, ``slope`` (LeakyReLU), ``batch_size``.
Model options (``[model]`` in the study file): ``arch`` ("mlp" = the report's,
"dcgan" = convolutional), ``latent_dim``, ``eval_every`` (score every k epochs),
``eval_samples`` (generated images per intermediate score; the last epoch and the
test use ``final_samples``, 10000 by default, against the 10k test images).

During the search the generator trains on the train split and is scored against
the validation split; the final retrain trains on all training images and is
scored against the 10k test images. ``on_epoch`` is called at the scored epochs
only, with (epoch, discriminator loss, Fréchet distance): that distance is what a
trial reports and is pruned on.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from ..core.parse import Option
from ..core.schema import StudyConfig
from ..core.space import resolve_space
from ..data.datasets import Dataset
from ..errors import UserError
from ..measures.frechet import Scorer, judge_record, load_fidnet
from ..models.gan import GAN
from ..train.gan import Evaluate, GanHistory, fit_gan
from ..train.loops import seed_everything
from .base import FitResult, OnEpoch, Task, Training
from .checks import check_config
from .rules import Rule

REPORT_PARAMS = {"lr_d": 5e-4, "lr_g": 2e-4, "dropout": 0.3, "slope": 0.2, "batch_size": 256}
SCORE_SEED = 20200  # the noise that scored samples are drawn from: the same for every trial


class GanTask(Task):
    model_type = "gan"
    direction = "minimize"
    metric = "val_fid"
    # Architecture, and how often / on how many samples the Fréchet distance is measured.
    option_schema = {
        "arch": Option((str,), "mlp", ("mlp", "dcgan")),
        "latent_dim": Option((int,), 100, None),
        "eval_every": Option((int,), 1, None),
        "eval_samples": Option((int,), 2000, None),
        "final_samples": Option((int,), 10000, None),
    }
    # Every parameter is optional: one left out takes the report's value (REPORT_PARAMS).
    space_rules = {
        "lr_d": Rule("float", low=0, low_open=True, required=False),
        "lr_g": Rule("float", low=0, low_open=True, required=False),
        "dropout": Rule("float", low=0, high=1, high_open=True, required=False),
        "slope": Rule("float", low=0, high=1, high_open=True, required=False),  # LeakyReLU's negative slope
        "batch_size": Rule("int", low=1, required=False),
    }
    # Population-based training may change these between segments; dropout and slope shape the networks.
    pbt_mutable = ("lr_d", "lr_g", "batch_size")
    option_rules = {
        "latent_dim": Rule("int", low=1),
        "eval_every": Rule("int", low=1),
        "eval_samples": Rule("int", low=2),  # a covariance needs two samples
        "final_samples": Rule("int", low=2),
    }

    def __init__(self, cfg: StudyConfig, data: Dataset) -> None:
        check_config(cfg)  # a config built in Python, not loaded from a file, is checked here too
        super().__init__(cfg, data)
        self.options = cfg.model_options
        self.train_all = self.data.train_images.to(self.device)
        self.train_images = self.train_all[self.train_idx.to(self.device)]
        self.fidnet, self.judge = load_fidnet(self.data.name, dataset_checksum=self.data.checksum)
        self.fidnet.to(self.device)
        self._references = {"val": self.data.train_images[self.val_idx], "test": self.data.test_images}
        self._scorers: dict[str, Scorer] = {}

    def scorer(self, which: str) -> Scorer:
        """Scores against the validation split ("val") or the test set ("test"); built once per process."""
        if which not in self._scorers:
            self._scorers[which] = Scorer(self.fidnet, self._references[which])
        return self._scorers[which]

    @staticmethod
    def with_report_defaults(params: dict[str, Any]) -> dict[str, Any]:
        """A trial's parameters with the report's values for any the study does not search."""
        return {**REPORT_PARAMS, **params}

    def arch(self, params: dict[str, Any]) -> dict[str, Any]:
        p = self.with_report_defaults(params)
        return {
            "arch": self.options["arch"],
            "latent_dim": int(self.options["latent_dim"]),
            "slope": float(p["slope"]),
            "dropout": float(p["dropout"]),
        }

    @classmethod
    def build(cls, arch: dict[str, Any]) -> GAN:
        return GAN(**arch)

    @staticmethod
    def optimizers(model: GAN, params: dict[str, Any]) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """(generator's, discriminator's) Adam optimizers."""
        p = GanTask.with_report_defaults(params)
        return (
            torch.optim.Adam(model.generator.parameters(), lr=float(p["lr_g"])),
            torch.optim.Adam(model.discriminator.parameters(), lr=float(p["lr_d"])),
        )

    def evaluator(self, model: GAN, which: str, *, epochs: int) -> Evaluate:
        """``evaluate(epoch)`` for :func:`fit_gan`: every ``eval_every`` epochs, and always at the last."""
        every, n_eval, n_final = (self.options[k] for k in ("eval_every", "eval_samples", "final_samples"))
        scorer = self.scorer(which)

        def evaluate(epoch: int) -> dict[str, Any] | None:
            last = epoch == epochs - 1
            if not last and (epoch + 1) % every:
                return None
            return scorer.score_generator(
                lambda n, g: model.sample(n, generator=g), n_final if last else n_eval, seed=SCORE_SEED
            )

        return evaluate

    def fit(
        self, params: dict[str, Any], *, seed: int, epochs: int, full: bool, on_epoch: OnEpoch | None = None
    ) -> FitResult:
        return self.train_epochs(
            self.start_training(params, seed=seed), params, epochs=epochs, full=full, on_epoch=on_epoch
        )

    def start_training(self, params: dict[str, Any], *, seed: int) -> Training:
        p = self.with_report_defaults(params)
        rng = seed_everything(seed)
        model = self.build(self.arch(p))
        model.to(self.device)  # in place
        opt_g, opt_d = self.optimizers(model, p)
        return Training(model, {"generator": opt_g, "discriminator": opt_d}, rng)

    def train_epochs(
        self,
        training: Training,
        params: dict[str, Any],
        *,
        epochs: int,
        on_epoch: OnEpoch | None = None,
        full: bool = False,
    ) -> FitResult:
        """``full``: on all training images, scored against the test set (:meth:`fit`'s final retrain)."""
        model, split = cast(GAN, training.model), "test" if full else "val"  # start_training's
        history = fit_gan(
            model.generator,
            model.discriminator,
            training.optimizers["generator"],
            training.optimizers["discriminator"],
            self.train_all if full else self.train_images,
            epochs=epochs,
            batch_size=int(self.with_report_defaults(params)["batch_size"]),
            latent_dim=model.latent_dim,
            rng=training.generator,
            evaluate=self.evaluator(model, split, epochs=epochs),
            on_epoch=on_epoch,
        )
        return FitResult(model, history.fid[-1], curves(history, split))

    def evaluated_curves(self, history: dict[str, Any]) -> dict[str, str]:
        return {k: label for k in history for name, label in EVALUATED.items() if k.endswith(f"_{name}")}

    def test(self, model: nn.Module) -> dict[str, Any]:
        gan = cast(GAN, model)  # build's
        s = self.scorer("test").score_generator(
            lambda n, g: gan.sample(n, generator=g), self.options["final_samples"], seed=SCORE_SEED
        )
        return {
            "test_fid": s["fid"],
            "test_coverage_tv": s["coverage_tv"],
            "test_class_histogram": s["class_histogram"],
        }

    @classmethod
    def identity_extras(cls, cfg: StudyConfig, dataset_checksum: str) -> dict[str, Any]:
        # A trial's distance is the judge's: trials scored by two judges are not comparable.
        _, meta = load_fidnet(cfg.dataset, dataset_checksum=dataset_checksum)
        return {"judge.sha256": meta["sha256"]}

    def provenance(self) -> dict[str, Any]:
        # Another judge gives distances a few percent apart: a score is only checked against its own.
        return {"judge": judge_record(self.judge)}


def curves(history: GanHistory, split: str) -> dict[str, list[Any]]:
    """The history as the objective and the export store it, each series named by what it measured.

    ``d_loss``, ``g_loss`` and ``seconds`` have one value per epoch; ``<split>_fid`` and
    ``<split>_coverage_tv`` (scored against the validation split or the test images) one
    per evaluated epoch, listed (0-based) in ``eval_epochs``.
    """
    d = history.as_dict()
    return {
        "d_loss": d["d_loss"],
        "g_loss": d["g_loss"],
        "seconds": d["seconds"],
        "eval_epochs": d["eval_epochs"],
        f"{split}_fid": d["fid"],
        f"{split}_coverage_tv": d["coverage_tv"],
    }


EVALUATED = {"fid": "Fréchet distance (lower is better)", "coverage_tv": "class coverage TV (0 = uniform)"}


def single_point(cfg: StudyConfig) -> dict[str, Any]:
    """The one configuration a GAN study file names (each parameter one value), for ``mnist-hpo gan``."""
    params: dict[str, Any] = {}
    for name, values in resolve_space(cfg.space, cfg.seed).items():
        if not isinstance(values, list) or len(set(values)) != 1:
            raise UserError(
                f"{cfg.source}: space.{name} has several values; 'mnist-hpo gan' trains one "
                f"configuration, so give it one (choices = [x]) or run it as a study"
            )
        params[name] = values[0]
    unknown = sorted(set(params) - set(REPORT_PARAMS))
    if unknown:
        raise UserError(
            f"{cfg.source}: space.{unknown[0]} is not a GAN parameter; the GAN has {', '.join(REPORT_PARAMS)}"
        )
    return GanTask.with_report_defaults(params)
