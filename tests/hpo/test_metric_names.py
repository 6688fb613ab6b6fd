"""Every study names its objectives (study.set_metric_names), for optuna-dashboard: new ones when created,
ones stored before that when trials are next run in them, with their identity unchanged."""

from __future__ import annotations

import optuna

from mnist_hpo.hpo.identity import open_study
from mnist_hpo.hpo.objective import stored_metric_names
from mnist_hpo.hpo.run import run_study
from mnist_hpo.storages import open_storage


def test_a_new_study_names_its_objectives(ae_cfg, storage, tiny):
    study = open_study(ae_cfg, open_storage(storage), dataset_checksum=tiny.checksum)
    assert study.metric_names == ["val_mse"]
    pareto = open_study(
        ae_cfg.with_overrides(study_name="front", objectives=("val_mse", "params")),
        open_storage(storage),
        dataset_checksum=tiny.checksum,
    )
    assert pareto.metric_names == ["val_mse", "params"]  # the two axes


def test_a_study_stored_before_gets_its_names_when_run_again(ae_cfg, storage, tiny, monkeypatch):
    with monkeypatch.context() as m:  # as the code before them stored it
        m.setattr(optuna.Study, "set_metric_names", lambda self, names: None)
        run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
    old = optuna.load_study(study_name=ae_cfg.name, storage=storage)
    assert old.metric_names is None
    run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)  # complete: opened only
    assert optuna.load_study(study_name=ae_cfg.name, storage=storage).metric_names is None  # nothing written
    run_study(ae_cfg.with_overrides(trials=2), storage_url=storage, data=tiny, progress=False)
    new = optuna.load_study(study_name=ae_cfg.name, storage=storage)
    assert new.metric_names == ["val_mse"]
    assert new.user_attrs == old.user_attrs  # identity, config, all the same


def test_names_come_from_the_stored_config():
    assert stored_metric_names({"config": {"model": "classifier", "objectives": []}}, 1) == ["val_ce"]
    assert stored_metric_names({"config": {"model": "autoencoder", "objectives": ["val_mse", "params"]}}, 2) == [
        "val_mse",
        "params",
    ]
    assert stored_metric_names({}, 1) is None  # not made by mnist-hpo
    assert stored_metric_names({"config": {"model": "autoencoder", "objectives": []}}, 2) is None  # does not fit
