import json

import pytest
import torch

from mnist_hpo.artifacts.export import export_best, resolve_config
from mnist_hpo.artifacts.loading import load_export
from mnist_hpo.config import load_study_config
from mnist_hpo.data.datasets import to_float
from mnist_hpo.errors import UserError
from mnist_hpo.hpo.run import run_study
from mnist_hpo.tasks import make_task
from mnist_hpo.tasks.denoising import DenoisingTask
from mnist_hpo.train.loops import evaluate_autoencoder

from ..conftest import STUDIES


@pytest.fixture
def dae_cfg():
    cfg = load_study_config(STUDIES / "dae.toml")
    return cfg.with_overrides(name="dae-test", trials=1, epochs=1, train_subset=300, test_subset=100, batch_size=100)


def with_options(cfg, **options):
    import dataclasses

    return dataclasses.replace(cfg, model_options={**cfg.model_options, **options})


def test_validation_and_test_noise_are_fixed_and_seeded(dae_cfg, tiny):
    a, b = make_task(dae_cfg, tiny), make_task(dae_cfg, tiny)
    assert isinstance(a, DenoisingTask)
    assert torch.equal(a.val_inputs, b.val_inputs) and torch.equal(a.test_inputs, b.test_inputs)
    clean_val = to_float(a.val_images)
    diff = a.val_inputs - clean_val
    assert diff.abs().max() > 0.2  # noisy ...
    assert ((a.val_inputs >= 0) & (a.val_inputs <= 1)).all()  # ... and clipped, as dae.toml says
    other = make_task(dae_cfg.with_overrides(study_name="dae-seed1", seed=1), tiny)
    assert not torch.equal(other.test_inputs, a.test_inputs)


def test_trial_is_scored_on_noisy_inputs(dae_cfg, tiny):
    task = make_task(dae_cfg, tiny)
    params = {"latent_dim": 4, "nh1": 60, "optimizer": "Adam", "lr": 1e-3, "weight_decay": 0.0}
    result = task.fit(params, seed=3, epochs=1, full=False)
    assert result.value == pytest.approx(evaluate_autoencoder(result.model, task.val_images, inputs=task.val_inputs))
    torch.manual_seed(0)
    fresh = task.build(task.arch(params))  # untrained: its output still depends on its input
    metrics = task.test(fresh)
    assert set(metrics) == {"test_mse", "test_mse_clean"}
    assert metrics["test_mse"] == evaluate_autoencoder(fresh, task.test_images, inputs=task.test_inputs)
    assert metrics["test_mse"] != metrics["test_mse_clean"]


def test_bad_noise_setting_is_one_user_error(dae_cfg, storage):
    with pytest.raises(UserError, match="noise_std must be positive"):
        resolve_config(with_options(dae_cfg, noise_std=-1.0), storage)


@pytest.mark.slow
def test_dae_study_export_round_trip_records_the_noise(dae_cfg, tiny, storage):
    cfg = with_options(dae_cfg, noise="salt_and_pepper", noise_amount=0.2)
    run_study(cfg, storage_url=storage, data=tiny, progress=False)
    folder = export_best(cfg.name, storage_url=storage, data=tiny, progress=False)
    meta = json.loads((folder / "export.json").read_text())
    assert meta["model"]["type"] == "denoising"
    assert meta["model"]["options"]["noise"] == "salt_and_pepper"
    assert meta["model"]["options"]["noise_amount"] == 0.2
    assert set(meta["metrics"]) == {"val_mse", "test_mse", "test_mse_clean"}
    model, _ = load_export(folder)
    assert make_task(cfg, tiny).test(model)["test_mse"] == pytest.approx(meta["metrics"]["test_mse"], rel=1e-6)


def test_changed_noise_refuses_to_mix(dae_cfg, tiny, storage):
    run_study(dae_cfg, storage_url=storage, data=tiny, progress=False)
    with pytest.raises(UserError, match=r'model.noise: stored "gaussian", now "mix"'):
        run_study(with_options(dae_cfg, noise="mix"), storage_url=storage, data=tiny, progress=False)
