import json

import pytest
import torch

from mnist_hpo import study as S
from mnist_hpo.errors import UserError
from mnist_hpo.export import export_best, latest_export, load_export
from mnist_hpo.tasks import make_task


def test_export_load_round_trip(ae_cfg, tiny, storage, tmp_path):
    S.run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    folder = export_best(ae_cfg.name, storage_url=storage, data=tiny, progress=False)
    assert latest_export(ae_cfg.name) == folder
    meta = json.loads((folder / "export.json").read_text())
    for key in ("study", "trial", "params", "metrics", "seed", "dataset", "versions", "config", "weights"):
        assert key in meta
    assert meta["dataset"]["checksum"] == tiny.checksum
    assert set(meta["metrics"]) == {"val_mse", "test_mse"}
    assert len(meta["history"]["train_loss"]) == ae_cfg.epochs

    model, loaded = load_export(folder)
    task = make_task(ae_cfg, tiny)
    assert task.test(model)["test_mse"] == pytest.approx(meta["metrics"]["test_mse"], rel=1e-6)
    assert isinstance(model, torch.nn.Module) and not model.training


def test_tampered_weights_are_refused(ae_cfg, tiny, storage):
    S.run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
    folder = export_best(ae_cfg.name, storage_url=storage, data=tiny, progress=False)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match the sha256"):
        load_export(folder)


def test_no_export_yet(storage):
    with pytest.raises(UserError, match="no export of study"):
        latest_export("never-run")
