import dataclasses
import itertools
import json

import optuna
import pytest
import torch
from optuna.trial import TrialState

from mnist_hpo.artifacts.export import export_best, resolve_config
from mnist_hpo.artifacts.loading import load_export
from mnist_hpo.config import load_study_config
from mnist_hpo.core.schema import ParamSpec
from mnist_hpo.core.space import grid_space, resolve_space
from mnist_hpo.errors import UserError
from mnist_hpo.hpo.run import run_study
from mnist_hpo.hpo.samplers import make_sampler
from mnist_hpo.models import EncoderClassifier
from mnist_hpo.report.tables import top_table
from mnist_hpo.tasks import make_task
from mnist_hpo.tasks.classifier import ClassifierTask
from mnist_hpo.train.classifier import encode, predict_logits

from ..conftest import STUDIES

SMALL_GRID = {  # 2 x 2 x 1 x 1 x 2 = 8 points
    "nh1": ParamSpec("nh1", "choices", choices=(8, 16)),
    "weight_decay": ParamSpec("weight_decay", "choices", choices=(0, 1e-3)),
    "optimizer": ParamSpec("optimizer", "choices", choices=("Adam",)),
    "lr": ParamSpec("lr", "choices", choices=(0.005,)),
    "dropout": ParamSpec("dropout", "choices", choices=(0.0, 0.1)),
}


@pytest.fixture(scope="module")
def ae_export(tmp_path_factory, mnist):
    """A tiny exported autoencoder: 1 trial x 1 epoch on 300 images, under <tmp>/storage/exports/ae-tiny."""
    root = tmp_path_factory.mktemp("ae") / "storage"
    cfg = load_study_config(STUDIES / "ae.toml").with_overrides(
        name="ae-tiny", trials=1, epochs=1, train_subset=300, test_subset=100, batch_size=100
    )
    url = f"sqlite:///{root.parent / 'ae.db'}"
    data = mnist.subset(300, 100)
    run_study(cfg, storage_url=url, data=data, progress=False)
    return export_best(cfg.name, storage_url=url, data=data, out_root=root / "exports", progress=False)


@pytest.fixture
def clf_cfg(ae_export):
    cfg = load_study_config(STUDIES / "clf.toml").with_overrides(
        name="clf-test", epochs=1, train_subset=300, test_subset=100, batch_size=100
    )
    return with_options(cfg, encoder_export=str(ae_export))


def with_options(cfg, **options):
    return dataclasses.replace(cfg, model_options={**cfg.model_options, **options})


def small_grid(cfg, trials=8):
    return dataclasses.replace(cfg, space=SMALL_GRID, trials=trials)


def grid_points(study, states=(TrialState.COMPLETE,)):
    return [tuple(sorted(t.params.items())) for t in study.get_trials(states=states)]


def test_full_grid_has_216_distinct_points():
    cfg = load_study_config(STUDIES / "clf.toml")
    grid = grid_space(resolve_space(cfg.space, cfg.seed))
    assert len(grid["nh1"]) == 6 and all(50 <= v < 300 for v in grid["nh1"])
    points = set(itertools.product(*grid.values()))
    assert len(points) == 216 == cfg.trials
    sampler = make_sampler(cfg, resolve_space(cfg.space, cfg.seed))
    assert len(set(sampler._all_grids)) == 216


def test_classifier_is_assembled_on_the_saved_encoder(clf_cfg, tiny, storage):
    cfg = resolve_config(clf_cfg, storage)
    assert len(cfg.model_options["encoder_sha256"]) == 64
    task = make_task(cfg, tiny)
    autoencoder, ae_meta = load_export(cfg.model_options["encoder_export"])
    params = {"nh1": 16, "dropout": 0.1, "optimizer": "Adam", "lr": 0.005, "weight_decay": 0.0}
    result = task.fit(params, seed=1, epochs=1, full=False)
    model = result.model
    assert isinstance(model, EncoderClassifier)
    assert model.head.net[0].in_features == ae_meta["model"]["arch"]["latent_dim"]
    assert model.head.net[0].out_features == 16 and model.head.net[2].p == 0.1
    # The frozen encoder is the saved one, untouched by training ...
    for name, value in autoencoder.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[name], value), name
    # ... so the head trained on cached codes is the same classifier as encoder + head on images.
    images = tiny.test_images[:50]
    from_codes = predict_logits(model.head, encode(autoencoder.encoder, images))
    assert torch.allclose(predict_logits(model, images), from_codes, atol=1e-5)
    assert len(result.history["val_accuracy"]) == 1 and 0 <= result.history["val_accuracy"][0] <= 1


def test_finetune_trains_the_encoder(clf_cfg, tiny, storage):
    cfg = resolve_config(with_options(clf_cfg, finetune=True), storage)
    task = make_task(cfg, tiny)
    params = {"nh1": 16, "dropout": 0.0, "optimizer": "Adam", "lr": 0.005, "weight_decay": 0.0}
    model = task.fit(params, seed=1, epochs=1, full=False).model
    saved = load_export(cfg.model_options["encoder_export"])[0].encoder.state_dict()
    assert not torch.equal(model.encoder.state_dict()["linear.2.weight"], saved["linear.2.weight"])


def test_default_encoder_is_the_latest_ae_export_and_is_pinned(clf_cfg, ae_export, storage, monkeypatch):
    cfg = with_options(clf_cfg, encoder_export="", encoder_study="ae-tiny")
    with pytest.raises(UserError, match="no export of study 'ae-tiny'"):
        resolve_config(cfg, storage)
    with pytest.raises(UserError, match="model.encoder_export is not resolved"):
        ClassifierTask(cfg, None)
    # run_study refuses before creating the study, so no study is left with unresolved options.
    with pytest.raises(UserError, match="model.encoder_export is not resolved"):
        run_study(cfg, storage_url=storage, data=None, progress=False)
    assert optuna.study.get_all_study_names(storage) == []
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(ae_export.parents[2]))
    resolved = resolve_config(cfg, storage)
    assert resolved.model_options["encoder_export"] == str(ae_export)
    # A resumed study keeps its encoder even when the latest export has moved on.
    pinned = {**resolved.model_options, "encoder_export": "/elsewhere/trial-9", "encoder_sha256": "ab" * 32}
    again = ClassifierTask.resolve(cfg, latest_export=lambda name: ae_export, pinned=pinned)
    assert again.model_options["encoder_export"] == "/elsewhere/trial-9"
    # A changed encoder file is refused.
    with pytest.raises(UserError, match="changed since this study started"):
        ClassifierTask(with_options(resolved, encoder_sha256="ab" * 32), None)


def test_small_grid_completes_and_resumes_without_repeating(clf_cfg, tiny, storage):
    cfg = small_grid(resolve_config(clf_cfg, storage))
    run_study(cfg.with_overrides(trials=5), storage_url=storage, data=tiny, progress=False)
    study = optuna.load_study(study_name=cfg.name, storage=storage)
    assert len(study.trials) == 5 and len(set(grid_points(study))) == 5
    run_study(cfg, storage_url=storage, data=tiny, progress=False)
    study = optuna.load_study(study_name=cfg.name, storage=storage)
    grid = grid_space(resolve_space(SMALL_GRID, cfg.seed))
    expected = {tuple(sorted(zip(grid, combo))) for combo in itertools.product(*grid.values())}
    points = grid_points(study)
    assert len(study.trials) == 8 and len(points) == 8 and set(points) == expected
    for t in study.trials:
        assert 0 <= t.user_attrs["val_accuracy"][-1] <= 1
    run_study(cfg, storage_url=storage, data=tiny, progress=False)  # complete: nothing more
    assert len(optuna.load_study(study_name=cfg.name, storage=storage).trials) == 8
    table = top_table(study)
    assert "Valid. loss (CE)" in table and "Valid. acc." in table and "Dropout p" in table


def test_a_point_that_always_fails_stops_the_run_after_the_rest_of_the_grid(clf_cfg, tiny, storage, monkeypatch):
    cfg = small_grid(resolve_config(clf_cfg, storage))
    real = ClassifierTask.fit

    def crashes_for_one_point(self, params, **kwargs):
        if params["nh1"] == 16 and params["dropout"] == 0.0 and params["weight_decay"] == 0:
            raise RuntimeError("simulated crash")
        return real(self, params, **kwargs)

    monkeypatch.setattr(ClassifierTask, "fit", crashes_for_one_point)
    with pytest.raises(UserError, match="3 trials in a row failed.*simulated crash"):
        run_study(cfg, storage_url=storage, data=tiny, progress=False)
    study = optuna.load_study(study_name=cfg.name, storage=storage)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(set(grid_points(study))) == 7  # every other point done before the run gave up
    assert {tuple(sorted(t.params.items())) for t in failed} == {tuple(sorted(failed[0].params.items()))}
    assert "simulated crash" in failed[0].user_attrs["error"]

    monkeypatch.setattr(ClassifierTask, "fit", real)  # the cause fixed: the next run does only that point
    n_before = len(study.trials)
    run_study(cfg, storage_url=storage, data=tiny, progress=False)
    study = optuna.load_study(study_name=cfg.name, storage=storage)
    assert len(study.trials) == n_before + 1
    assert study.trials[-1].params == failed[0].params and study.trials[-1].state == TrialState.COMPLETE
    assert len(set(grid_points(study))) == 8


@pytest.mark.slow
def test_classifier_export_round_trip(clf_cfg, tiny, storage):
    cfg = small_grid(resolve_config(clf_cfg, storage), trials=2)
    run_study(cfg, storage_url=storage, data=tiny, progress=False)
    folder = export_best(cfg.name, storage_url=storage, data=tiny, progress=False)
    meta = json.loads((folder / "export.json").read_text())
    metrics = meta["metrics"]
    assert set(metrics) == {"val_ce", "test_accuracy", "test_ce", "confusion_matrix"}
    matrix = torch.tensor(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 100
    assert matrix.diag().sum().item() / 100 == pytest.approx(metrics["test_accuracy"])
    assert meta["files"] == ["confusion_matrix.png"]
    assert (folder / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert meta["model"]["options"]["encoder_sha256"] == cfg.model_options["encoder_sha256"]

    model, _ = load_export(folder)
    assert isinstance(model, EncoderClassifier) and not model.training
    again = make_task(cfg, tiny).test(model)
    assert again["test_accuracy"] == metrics["test_accuracy"]
    assert again["confusion_matrix"] == metrics["confusion_matrix"]


def test_stacked_heads_cover_the_grid_and_match_one_at_a_time(clf_cfg, tiny, storage, tmp_path):
    base = small_grid(resolve_config(clf_cfg, storage))
    no_dropout = dataclasses.replace(base, space={**SMALL_GRID, "dropout": ParamSpec("dropout", "choices", (0.0,))})
    stacked = run_study(no_dropout.with_overrides(batch_trials=4), storage_url=storage, data=tiny, progress=False)
    single = run_study(no_dropout, storage_url=f"sqlite:///{tmp_path / 'single.db'}", data=tiny, progress=False)
    assert len(stacked.trials) == 4 and len(set(grid_points(stacked))) == 4
    by_point = {tuple(sorted(t.params.items())): t for t in single.trials}
    for t in stacked.trials:
        twin = by_point[tuple(sorted(t.params.items()))]
        assert t.number == twin.number and t.user_attrs["seed"] == twin.user_attrs["seed"]
        assert t.value == pytest.approx(twin.value, rel=1e-4)
        assert t.user_attrs["val_accuracy"] == pytest.approx(twin.user_attrs["val_accuracy"], abs=1e-6)


def test_stacked_heads_need_the_frozen_encoder(clf_cfg):
    with pytest.raises(UserError, match="needs the frozen encoder"):
        with_options(clf_cfg, finetune=True).with_overrides(batch_trials=4)
