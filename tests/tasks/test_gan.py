import dataclasses
import math

import optuna
import pytest
import torch
from optuna.trial import TrialState

from mnist_hpo.artifacts.export import export_trial
from mnist_hpo.artifacts.loading import load_export
from mnist_hpo.cli import main
from mnist_hpo.config import load_study_config, parse_study
from mnist_hpo.errors import UserError
from mnist_hpo.hpo.queries import best_trial
from mnist_hpo.hpo.run import run_study
from mnist_hpo.models.gan import GAN
from mnist_hpo.tasks.gan import REPORT_PARAMS, GanTask, single_point

from ..conftest import DATA, STUDIES


@pytest.mark.slow
def test_gan_study_reports_the_distance_and_exports_the_best(gan_cfg, mnist, storage):
    study = run_study(gan_cfg, storage_url=storage, data=mnist, progress=False)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for t in trials:
        assert set(t.params) == set(REPORT_PARAMS)
        assert list(t.intermediate_values) == [0, 1] and t.value == t.intermediate_values[1]
        assert math.isfinite(t.value) and t.value > 0
        assert (
            len(t.user_attrs["g_loss"]) == 2
            and len(t.user_attrs["val_coverage_tv"]) == 2
            and t.user_attrs["val_fid"][-1] == t.value
        )
        assert len(t.user_attrs["train_loss"]) == 2  # discriminator loss per scored epoch
    folder = export_trial(study, best_trial(study), data=mnist, progress=False)
    model, meta = load_export(folder)
    assert isinstance(model, GAN) and meta["model"]["arch"]["arch"] == "mlp"
    assert meta["metrics"]["val_fid"] == study.best_value and meta["metrics"]["test_fid"] > 0
    assert len(meta["metrics"]["test_class_histogram"]) == 10
    images = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert images.shape == (4, 1, 28, 28) and images.abs().max() <= 1
    _verify_checks_the_judge_and_rescores(folder, mnist)


def _verify_checks_the_judge_and_rescores(folder, mnist):
    """The export names its judge; another judge fails verify on its own line, and --rescore records the change."""
    import json

    from mnist_hpo.artifacts.verify import verify_export
    from mnist_hpo.measures.frechet import SHIPPED_DIR

    meta = json.loads((folder / "export.json").read_text())
    shipped = json.loads((SHIPPED_DIR / "mnist-fidnet.json").read_text())
    assert meta["judge"]["sha256"] == shipped["sha256"]  # the test data dir holds the shipped judge
    v = verify_export(folder, data=mnist)
    assert v.ok and any("quality classifier matches" in c for c in v.checks), v.failure
    # A judge trained elsewhere: recorded 1 % higher, as another machine's classifier would score it.
    other = {
        **meta,
        "judge": {"sha256": "ab" * 32, "test_accuracy": 0.99},
        "metrics": {**meta["metrics"], "test_fid": meta["metrics"]["test_fid"] * 1.01},
    }
    (folder / "export.json").write_text(json.dumps(other))
    v = verify_export(folder, data=mnist)
    assert not v.ok and "scored by quality classifier abababababababab" in v.failure and "--rescore" in v.failure
    v = verify_export(folder, data=mnist, rescore=True)
    assert v.ok and v.rescored
    after = json.loads((folder / "export.json").read_text())
    assert after["metrics"]["test_fid"] == pytest.approx(meta["metrics"]["test_fid"], rel=1e-6)
    assert after["judge"]["sha256"] == shipped["sha256"]
    (entry,) = after["rescored"]
    assert entry["judge_before"]["sha256"] == "ab" * 32
    assert entry["metrics_before"]["test_fid"] == other["metrics"]["test_fid"]
    assert after["metrics"]["val_fid"] == meta["metrics"]["val_fid"]  # the search's own score is history
    assert verify_export(folder, data=mnist).ok


@pytest.mark.slow
def test_scored_epochs_follow_eval_every(gan_cfg, mnist, storage):
    cfg = dataclasses.replace(gan_cfg, model_options={**gan_cfg.model_options, "eval_every": 2})
    cfg = cfg.with_overrides(study_name=cfg.name, trials=1, epochs=3, train_subset=200)
    study = run_study(cfg, storage_url=storage, data=mnist, progress=False)
    (t,) = study.get_trials()
    assert t.state == TrialState.COMPLETE and list(t.intermediate_values) == [1, 2]
    assert t.user_attrs["eval_epochs"] == [1, 2] and len(t.user_attrs["g_loss"]) == 3


def test_report_settings_file_is_one_point_and_search_file_is_not():
    assert single_point(load_study_config(STUDIES / "gan.toml")) == REPORT_PARAMS
    assert load_study_config(STUDIES / "gan.toml").epochs == 400
    with pytest.raises(UserError, match="several values"):
        single_point(load_study_config(STUDIES / "gan-search.toml"))


def test_bad_gan_options_are_one_line_errors(gan_cfg, mnist):
    doc = {"study": {"name": "x"}, "model": {"type": "gan", "arch": "vae"}}
    with pytest.raises(UserError, match="model.arch must be one of mlp, dcgan"):
        parse_study(doc)
    bad_space = dataclasses.replace(gan_cfg, space={**gan_cfg.space, "momentum": gan_cfg.space["dropout"]})
    with pytest.raises(UserError, match="space.momentum is not a parameter of the gan model"):
        GanTask(bad_space, mnist)
    bad_option = dataclasses.replace(gan_cfg, model_options={**gan_cfg.model_options, "eval_every": 0})
    with pytest.raises(UserError, match="model.eval_every must be an integer of at least 1, got 0"):
        GanTask(bad_option, mnist)


@pytest.mark.slow
def test_cli_gan_trains_and_writes_its_run(fidnet, storage, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_HPO_DATA", str(DATA))
    text = (STUDIES / "gan.toml").read_text()
    text = text.replace("eval_samples = 2000", "eval_samples = 200\nfinal_samples = 300")
    text = text.replace("batch_size = 256\n", "batch_size = 256\ntest_subset = 300\n", 1)
    path = tmp_path / "gan.toml"
    path.write_text(text)
    assert main(["gan", str(path), "--epochs", "1", "--subset", "600", "--run", "short", "--every", "1"]) == 0
    out = capsys.readouterr().out
    assert "after 1 epoch:" in out and "Fréchet distance" in out
    assert (tmp_path / "storage" / "gan" / "short" / "result.json").exists()


def test_cli_gan_refuses_a_search_or_another_model(capsys):
    assert main(["gan", str(STUDIES / "gan-search.toml")]) == 2
    assert "several values" in capsys.readouterr().err
    assert main(["gan", str(STUDIES / "ae.toml")]) == 2
    assert "has model type 'autoencoder'" in capsys.readouterr().err
