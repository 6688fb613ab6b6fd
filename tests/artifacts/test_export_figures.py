import json

import optuna
import pytest
from matplotlib.image import imread
from optuna.artifacts import get_all_artifact_meta

from mnist_hpo.storages import artifacts_dir


def test_export_writes_figures_and_attaches_artifacts(ae_export):
    storage_dir, url, folder = ae_export
    meta = json.loads((folder / "export.json").read_text())
    assert meta["figures"] == ["loss.png", "reconstructions.png"]
    for name in meta["figures"]:
        img = imread(folder / name)  # grey (2-D) for image rows, RGBA for plots
        assert (img if img.ndim == 2 else img[..., :3]).std() > 0.02
    # images + epoch 1 + last epoch: three rows of eight images, so wider than tall.
    recon = imread(folder / "reconstructions.png")
    assert recon.shape[1] > 2 * recon.shape[0]
    # The first-epoch figure is a rerun of the first epoch; on CPU it reproduces it exactly.
    assert meta["first_epoch_rerun"]["matches"] is True
    assert meta["retrain"]["hardware"]["cores"] >= 1

    study = optuna.load_study(study_name="ae", storage=url)
    storage = study._storage
    # Each trial carries its reconstruction; the study carries the retrained model's figures.
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        names = [a.filename for a in get_all_artifact_meta(trial, storage=storage)]
        assert names == [f"reconstruction-trial-{trial.number}.png"]
    names = sorted(a.filename for a in get_all_artifact_meta(study))
    assert names == [f"ae-trial-{meta['trial']}-loss.png", f"ae-trial-{meta['trial']}-reconstructions.png"]
    for a in get_all_artifact_meta(study):
        assert (storage_dir / "artifacts" / a.artifact_id).stat().st_size > 1000
    assert artifacts_dir().name == "artifacts"


def test_exported_curves_are_named_by_what_they_measured(model_exports):
    _, _, folders = model_exports
    clf = json.loads((folders["classifier"] / "export.json").read_text())["history"]
    # The retrain evaluates on the test set each epoch: its accuracy is test_accuracy, not val_accuracy.
    assert set(clf) == {"train_loss", "test_loss", "test_accuracy", "seconds"}
    gan = json.loads((folders["gan"] / "export.json").read_text())
    h = gan["history"]
    assert set(h) == {"d_loss", "g_loss", "seconds", "eval_epochs", "test_fid", "test_coverage_tv"}
    assert len(h["d_loss"]) == gan["retrain"]["epochs"] == 2 and h["eval_epochs"] == [0, 1]
    assert h["test_fid"][-1] == pytest.approx(gan["metrics"]["test_fid"])  # the last score is the test score


def test_sparse_scores_are_markers_at_their_epochs_on_their_own_axis(monkeypatch, tmp_path):
    from mnist_hpo.core import figures

    drawn = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.append(fig) or path)
    history = {
        "d_loss": [1.0, 0.9, 0.8, 0.85, 0.8],
        "g_loss": [1.1, 1.2, 1.3, 1.2, 1.2],
        "seconds": [1.0] * 5,
        "eval_epochs": [1, 3, 4],
        "test_fid": [500.0, 300.0, 250.0],
        "test_coverage_tv": [0.8, 0.5, 0.4],
    }
    figures.history_png(
        history, tmp_path / "x.png", evaluated={"test_fid": "Fréchet distance", "test_coverage_tv": "class coverage TV"}
    )
    (fig,) = drawn
    lines = {ln.get_label().split(" ")[0]: (ax, ln) for ax in fig.axes for ln in ax.get_lines()}
    assert set(lines) == {"d_loss", "g_loss", "test_fid", "test_coverage_tv"}  # no curve of the epoch indices
    for key in ("test_fid", "test_coverage_tv"):
        ax, line = lines[key]
        assert list(line.get_xdata()) == [2, 4, 5] and line.get_linestyle() == "None"  # 1-based, markers only
        assert ax is not lines["d_loss"][0] and ax.get_ylabel() in ("Fréchet distance", "class coverage TV")
    assert lines["test_fid"][0] is not lines["test_coverage_tv"][0]
    assert list(lines["d_loss"][1].get_xdata()) == [1, 2, 3, 4, 5] and lines["d_loss"][0].get_ylabel() == "loss"
