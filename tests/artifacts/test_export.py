import json

import pytest
import torch

from mnist_hpo.artifacts.export import export_best, latest_export
from mnist_hpo.artifacts.loading import load_export
from mnist_hpo.errors import UserError
from mnist_hpo.hpo.run import run_study
from mnist_hpo.tasks import make_task


def test_export_load_round_trip(ae_cfg, tiny, storage, tmp_path):
    run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
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
    run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
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


# --- mnist-hpo verify on every kind of export, intact and tampered ---------------------------

KINDS = ["autoencoder", "denoising", "classifier", "gan"]
# The metric each test tampers with, and a value the weights cannot give.
TAMPER = {
    "autoencoder": ("test_mse", lambda v: v / 20),
    "denoising": ("test_mse_clean", lambda v: v / 20),
    "classifier": ("confusion_matrix", lambda m: [row[::-1] for row in m]),
    "gan": ("test_fid", lambda v: v / 20),
}


def _verify(capsys, folder):
    from mnist_hpo.cli import main

    code = main(["verify", str(folder)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _copy(folder, tmp_path):
    import shutil

    return shutil.copytree(folder, tmp_path / folder.name)


def _edit(folder, change):
    meta = json.loads((folder / "export.json").read_text())
    change(meta)
    (folder / "export.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("kind", KINDS)
def test_verify_an_intact_export(kind, model_exports, capsys):
    folder = model_exports[2][kind]
    code, out, err = _verify(capsys, folder)
    assert code == 0, out + err
    meta = json.loads((folder / "export.json").read_text())
    for name in meta["metrics"]:
        if name.startswith("test_") or name == "confusion_matrix":
            assert f"{name}: recorded " in out  # every test metric compared, both values shown
    assert "matches its recorded sha256" in out and "matches the recorded checksum" in out
    assert out.strip().endswith("verified") and err == ""


@pytest.mark.parametrize("kind", KINDS)
def test_verify_a_tampered_metric_fails_with_both_values(kind, model_exports, capsys, tmp_path):
    folder = _copy(model_exports[2][kind], tmp_path)
    name, change = TAMPER[kind]
    _edit(folder, lambda m: m["metrics"].update({name: change(m["metrics"][name])}))
    code, out, err = _verify(capsys, folder)
    assert code == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnist-hpo: verify failed: ") and name in lines[0], err
    assert "recorded" in lines[0] and ("recomputed" in lines[0] or "differ by" in lines[0])
    assert "Traceback" not in out + err


@pytest.mark.parametrize("kind", ["autoencoder", "gan"])
def test_verify_tampered_weights_and_other_data_fail(kind, model_exports, capsys, tmp_path):
    folder = _copy(model_exports[2][kind], tmp_path)
    _edit(folder, lambda m: m["dataset"].update(checksum="0" * 64))
    code, _, err = _verify(capsys, folder)
    assert code == 1 and err.count("\n") == 1 and "the export was tested on 0000" in err, err

    folder = _copy(model_exports[2][kind], tmp_path / "w")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    code, _, err = _verify(capsys, folder)
    assert code == 1 and err.count("\n") == 1, err
    assert "mnist-hpo: verify failed: " in err and "differs from the one recorded at export time" in err


def test_verify_needs_an_export_folder(capsys, tmp_path):
    code, _, err = _verify(capsys, tmp_path)
    assert code == 2 and err.startswith("mnist-hpo: error: ") and "is not an export" in err
    assert err.count("\n") == 1


def test_verify_tolerance():
    from mnist_hpo.artifacts.verify import compare_metric

    assert compare_metric("test_mse", 0.02, 0.02 * (1 + 5e-4), 200) is None  # inside 0.1 %
    assert "recorded 0.02, recomputed 0.0201" in compare_metric("test_mse", 0.02, 0.0201, 200)
    assert compare_metric("test_accuracy", 0.95, 0.9501, 10_000) is None  # one flipped image of 10k
    assert compare_metric("test_accuracy", 0.95, 0.96, 10_000) is not None
    m = [[5, 1], [0, 4]]
    assert compare_metric("confusion_matrix", m, [[5, 1], [0, 4]], 10) is None
    assert "differ by 2 images" in compare_metric("confusion_matrix", m, [[3, 3], [0, 4]], 10)


@pytest.mark.parametrize("baseline, min_steps, stuck", [(1e-9, 1, True), (1e9, 1, False), (1e-9, None, None)])
def test_a_retrain_on_the_mean_image_plateau_is_marked_and_said(
    ae_cfg, tiny, storage, capsys, monkeypatch, baseline, min_steps, stuck
):
    """Said only when the model is no better than the mean image after a run long enough to tell:
    this retrain (1 epoch of 600 images at batch 128, 5 steps) is judged only with the bar lowered."""
    from mnist_hpo.measures import mean_image as plateau

    run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
    monkeypatch.setattr(plateau, "mean_image_test_mse", lambda data: baseline)
    if min_steps is not None:
        monkeypatch.setattr(plateau, "MIN_STEPS", min_steps)
    folder = export_best(ae_cfg.name, storage_url=storage, data=tiny, progress=False)
    retrain = json.loads((folder / "export.json").read_text())["retrain"]
    assert retrain["on_plateau"] is stuck and retrain["mean_image_test_mse"] == baseline
    assert retrain["optimizer_steps"] == 5
    err = capsys.readouterr().err
    assert ("ended on the mean-image plateau" in err) is bool(stuck)
    assert (folder / "model.safetensors").exists()
