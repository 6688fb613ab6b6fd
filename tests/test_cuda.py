"""Each model family end to end on a CUDA device: a tiny study (1 epoch), then retrain and export the best.

Marked ``cuda``; they run wherever ``torch.cuda.is_available()`` and skip, saying so,
elsewhere. What they guard is device placement: data resident on the GPU, CPU
generators for shuffling and noise (drawn on the CPU and moved), models brought to the
CPU to be saved, figures drawn from models wherever they are.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from mnist_hpo.artifacts.export import export_best
from mnist_hpo.artifacts.loading import load_export
from mnist_hpo.config import load_study_config
from mnist_hpo.hpo.run import run_study

from .conftest import STUDIES

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (torch.cuda.is_available() is False)"),
]
DEVICE = "cuda"


def tiny_cfg(study: str, name: str, **options):
    cfg = load_study_config(STUDIES / study).with_overrides(
        name=name, trials=2, epochs=1, train_subset=300, test_subset=100, batch_size=100
    )
    return dataclasses.replace(cfg, device=DEVICE, model_options={**cfg.model_options, **options})


def study_and_export(cfg, storage, data):
    study = run_study(cfg, storage_url=storage, data=data, progress=False)
    assert sum(t.state.name == "COMPLETE" for t in study.trials) >= 1, [t.user_attrs for t in study.trials]
    assert study.user_attrs["hardware"]  # the run recorded its device
    folder = export_best(cfg.name, storage_url=storage, data=data, progress=False)
    meta = json.loads((folder / "export.json").read_text())
    assert meta["retrain"]["device"].startswith("cuda")
    model, _ = load_export(folder)
    assert all(p.device.type == "cpu" for p in model.parameters())  # saved from the CPU, loads anywhere
    return folder, meta


def test_autoencoder_on_cuda(storage, tiny):
    study_and_export(tiny_cfg("ae.toml", "ae-cuda"), storage, tiny)


def test_autoencoder_stacked_on_cuda(storage, tiny):
    study_and_export(tiny_cfg("ae.toml", "ae-stacked-cuda").with_overrides(batch_trials=2), storage, tiny)


@pytest.mark.parametrize("noise", ["gaussian", "salt_and_pepper", "mix"])
def test_denoising_on_cuda(storage, tiny, noise):
    # The export draws the figure's noise: the generator must fill CPU tensors (it once was a CUDA one).
    folder, meta = study_and_export(tiny_cfg("dae.toml", f"dae-cuda-{noise}", noise=noise), storage, tiny)
    assert set(meta["metrics"]) == {"val_mse", "test_mse", "test_mse_clean"}


def test_classifier_on_cuda(storage, tiny):
    encoder, _ = study_and_export(tiny_cfg("ae.toml", "ae-for-clf-cuda"), storage, tiny)
    study_and_export(tiny_cfg("clf.toml", "clf-cuda", encoder_export=str(encoder)), storage, tiny)
    stacked = tiny_cfg("clf.toml", "clf-stacked-cuda", encoder_export=str(encoder), finetune=False)
    study_and_export(stacked.with_overrides(batch_trials=2), storage, tiny)


def test_gan_on_cuda(gan_cfg, storage, tiny):
    cfg = dataclasses.replace(gan_cfg.with_overrides(name="gan-cuda", trials=2, epochs=1), device=DEVICE)
    study_and_export(cfg, storage, tiny)
