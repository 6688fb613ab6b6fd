import json

import optuna
from matplotlib.image import imread
from optuna.artifacts import get_all_artifact_meta

from mnist_hpo.study import artifacts_dir


def test_export_writes_figures_and_attaches_artifacts(ae_export):
    storage_dir, url, folder = ae_export
    meta = json.loads((folder / "export.json").read_text())
    assert meta["figures"] == ["loss.png", "reconstructions.png"]
    for name in meta["figures"]:
        img = imread(folder / name)
        assert img[..., :3].std() > 0.02
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
