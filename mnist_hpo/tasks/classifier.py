"""The report's classifier (section 4): a trained autoencoder's encoder plus a small head.

The encoder comes from an exported autoencoder (model option ``encoder_export``; by
default the latest export of study ``encoder_study``, pinned with its sha256 when the
study starts, see :meth:`ClassifierTask.resolve`). The decoder is dropped and
Linear(latent, nh1)-ReLU-Dropout(p)-Linear(nh1, 10) trained with cross-entropy.

Frozen encoder (the default, as in the report): its codes do not change during
training, so every image is encoded once per process and the heads train on the
cached codes, which makes a 20-epoch grid point cost seconds instead of minutes.
``finetune = true`` trains encoder and head together on the images instead.
The objective is the validation cross-entropy; the validation accuracy of every
epoch is stored with the trial. The exported model is the whole encoder + head,
tested on the test images end to end.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from ..core.parse import Option
from ..core.schema import StudyConfig
from ..data.datasets import Dataset
from ..data.integrity import check_sha256
from ..errors import UserError
from ..models import Autoencoder, EncoderClassifier
from ..train.classifier import confusion_matrix, encode, fit_classifier, predict_logits
from ..train.loops import OPTIMIZERS, make_optimizer, seed_everything
from ..train.stacked_heads import HeadSpec, fit_stacked_heads
from .base import FitResult, OnEpoch, OnStackedEpoch, Task
from .rules import Rule

# Exports whose model has an ``encoder`` of the autoencoder's shape.
ENCODER_SOURCES = ("autoencoder", "denoising")
# Codes of the frozen encoder per (weights, dataset, subset, device): computed once per process.
_CODES: dict[tuple[str, str, int, int, str], tuple[torch.Tensor, torch.Tensor]] = {}


def read_encoder_export(path: str | Path) -> tuple[dict[str, Any], Path]:
    """The export.json of an autoencoder export folder, checked; and the weights file."""
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    try:
        meta = json.loads((folder / "export.json").read_text())
    except FileNotFoundError:
        raise UserError(
            f"encoder export {folder} not found (no export.json); "
            "set model.encoder_export to a folder under storage/exports/"
        ) from None
    except ValueError as e:
        raise UserError(f"{folder / 'export.json'} is corrupt ({e}); export the autoencoder again") from None
    info = meta.get("model", {})
    if info.get("type") not in ENCODER_SOURCES:
        raise UserError(
            f"{folder} holds a {info.get('type')!r} model, not an autoencoder; "
            "model.encoder_export must point at an autoencoder export"
        )
    return meta, folder / meta["weights"]["file"]


def load_encoder(path: str | Path, expect_sha256: str = "") -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    """(encoder state dict, autoencoder arch, weights sha256) of an export; nothing is unpickled.

    The weights are checked against the sha256 recorded at export time, and against
    ``expect_sha256`` (the one a study was started with) when given.
    """
    meta, weights = read_encoder_export(path)
    sha = check_sha256(
        weights,
        meta["weights"]["sha256"],
        where="the sha256 recorded at export time",
        hint="export the autoencoder again",
    )
    if expect_sha256 and sha != expect_sha256:
        raise UserError(
            f"encoder export {weights.parent} changed since this study started (sha256 {sha[:12]}… "
            f"instead of {expect_sha256[:12]}…); start a new study with --study-name"
        )
    arch = meta["model"]["arch"]
    autoencoder = Autoencoder(**arch)
    try:
        autoencoder.load_state_dict(load_file(weights))
    except (RuntimeError, OSError) as e:
        raise UserError(f"{weights} does not fit an autoencoder {arch} ({str(e).splitlines()[0]})") from None
    return autoencoder.encoder.state_dict(), arch, sha


class ClassifierTask(Task):
    model_type = "classifier"
    direction = "minimize"
    metric = "val_ce"
    stackable = True
    # encoder_export "" = the latest export of encoder_study.
    option_schema = {
        "encoder_export": Option((str,), "", None),
        "encoder_study": Option((str,), "ae", None),
        "encoder_sha256": Option((str,), "", None),  # filled in when the study starts; checked afterwards
        "finetune": Option((bool,), False, None),
    }
    space_rules = {
        "nh1": Rule("int", low=1),
        "dropout": Rule("float", low=0, high=1, high_open=True),
        "optimizer": Rule("choice", choices=tuple(OPTIMIZERS)),
        "lr": Rule("float", low=0, low_open=True),
        "weight_decay": Rule("float", low=0),
    }

    @classmethod
    def resolve(
        cls, cfg: StudyConfig, *, latest_export: Callable[[str], Path], pinned: dict[str, Any] | None = None
    ) -> StudyConfig:
        opts = dict(cfg.model_options)
        if not opts.get("encoder_export"):
            if pinned and pinned.get("encoder_export"):
                # A resumed study keeps the encoder it started with, even if a newer export exists.
                opts["encoder_export"] = pinned["encoder_export"]
                opts["encoder_sha256"] = opts.get("encoder_sha256") or pinned.get("encoder_sha256", "")
            else:
                opts["encoder_export"] = str(latest_export(opts.get("encoder_study", "ae")))
        if not opts.get("encoder_sha256"):
            opts["encoder_sha256"] = load_encoder(opts["encoder_export"])[2]
        return dataclasses.replace(cfg, model_options=opts)

    @classmethod
    def check_resolved(cls, cfg: StudyConfig) -> None:
        if not cfg.model_options.get("encoder_export"):
            raise UserError(
                f"{cfg.source}: model.encoder_export is not resolved; the command line does this, "
                "from Python call mnist_hpo.artifacts.export.resolve_config(cfg) first"
            )

    def __init__(self, cfg: StudyConfig, data: Dataset) -> None:
        self.check_resolved(cfg)
        opts = cfg.model_options
        self.encoder_state, self.encoder_arch, self.encoder_sha256 = load_encoder(
            opts["encoder_export"], opts.get("encoder_sha256", "")
        )
        super().__init__(cfg, data)
        self.finetune = bool(opts.get("finetune", False))
        dev = self.device
        d = self.data
        self.train_all_y = d.train_labels.to(dev)
        self.test_y = d.test_labels.to(dev)
        if self.finetune:
            self.train_all_x = d.train_images.to(dev)
            self.test_x = d.test_images.to(dev)
        else:
            key = (self.encoder_sha256, d.checksum, len(d.train_images), len(d.test_images), str(dev))
            if key not in _CODES:
                encoder = self._encoder().to(dev)
                _CODES.clear()  # one encoder per process is the normal case; do not accumulate
                _CODES[key] = (encode(encoder, d.train_images.to(dev)), encode(encoder, d.test_images.to(dev)))
            self.train_all_x, self.test_x = _CODES[key]
        self.train_x = self.train_all_x[self.train_idx.to(dev)]
        self.train_y = self.train_all_y[self.train_idx.to(dev)]
        self.val_x = self.train_all_x[self.val_idx.to(dev)]
        self.val_y = self.train_all_y[self.val_idx.to(dev)]
        self.test_images = d.test_images.to(dev)

    def _encoder(self) -> nn.Module:
        model = self.build(self.arch({"nh1": 1, "dropout": 0.0}))
        model.encoder.load_state_dict(self.encoder_state)
        return model.encoder

    def arch(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "latent_dim": int(self.encoder_arch["latent_dim"]),
            "encoder_nh1": int(self.encoder_arch["nh1"]),
            "nh1": int(params["nh1"]),
            "dropout": float(params["dropout"]),
        }

    @classmethod
    def build(cls, arch: dict[str, Any]) -> EncoderClassifier:
        return EncoderClassifier(**arch)

    def fit(
        self, params: dict[str, Any], *, seed: int, epochs: int, full: bool, on_epoch: OnEpoch | None = None
    ) -> FitResult:
        generator = seed_everything(seed)
        model = self.build(self.arch(params)).to(self.device)
        model.encoder.load_state_dict(self.encoder_state)
        if self.finetune:
            trainee: nn.Module = model
        else:
            model.encoder.requires_grad_(False)
            trainee = model.head  # trained on the cached codes; the encoder is the same for every trial
        optimizer = make_optimizer(
            params["optimizer"],
            trainee.parameters(),
            lr=float(params["lr"]),
            weight_decay=float(params["weight_decay"]),
        )
        train = (self.train_all_x, self.train_all_y) if full else (self.train_x, self.train_y)
        val = (self.test_x, self.test_y) if full else (self.val_x, self.val_y)
        threads = torch.get_num_threads()
        if not self.finetune:
            # The head's matmuls are tiny: a second intra-op thread only adds synchronisation
            # (measured 16x slower per epoch on the shared 2-core machine, see BENCHMARKS.md).
            torch.set_num_threads(1)
        try:
            history = fit_classifier(
                trainee,
                optimizer,
                train,
                val,
                epochs=epochs,
                batch_size=self.cfg.batch_size,
                generator=generator,
                on_epoch=on_epoch,
            )
        finally:
            torch.set_num_threads(threads)
        return FitResult(model, history.val_loss[-1], history.as_dict())

    def fit_stacked(
        self, params: list[dict[str, Any]], seeds: list[int], *, epochs: int, on_epoch: OnStackedEpoch | None = None
    ) -> list[dict[str, Any]]:
        if self.finetune:
            raise NotImplementedError("stacked trials need the frozen encoder; set batch_trials = 1 with finetune")
        a = self.encoder_arch
        specs = [
            HeadSpec(
                int(a["latent_dim"]),
                int(a["nh1"]),
                int(p["nh1"]),
                float(p["dropout"]),
                p["optimizer"],
                float(p["lr"]),
                float(p["weight_decay"]),
                seed,
            )
            for p, seed in zip(params, seeds)
        ]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in fit(): small matmuls gain nothing from a second thread
        try:
            _, histories = fit_stacked_heads(
                specs,
                (self.train_x, self.train_y),
                (self.val_x, self.val_y),
                epochs=epochs,
                batch_size=self.cfg.batch_size,
                on_epoch=on_epoch,
            )
        finally:
            torch.set_num_threads(threads)
        return histories

    def test(self, model: nn.Module) -> dict[str, Any]:
        """Accuracy, cross-entropy and confusion matrix of the whole model on the test images."""
        device = next(model.parameters()).device  # wherever the caller keeps it; not moved
        labels = self.test_y.to(device)
        logits = predict_logits(model, self.test_images.to(device))
        predicted = logits.argmax(1)
        return {
            "test_accuracy": (predicted == labels).float().mean().item(),
            "test_ce": torch.nn.functional.cross_entropy(logits, labels).item(),
            "confusion_matrix": confusion_matrix(labels, predicted),
        }

    def write_files(self, model: nn.Module, metrics: dict[str, Any], folder: Path) -> list[str]:
        from ..core.figures import confusion_figure  # matplotlib (~0.3 s): only an export draws

        name = "confusion_matrix.png"
        confusion_figure(metrics["confusion_matrix"], metrics["test_accuracy"], folder / name)
        return [name]
