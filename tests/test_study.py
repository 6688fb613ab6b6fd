import math

import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo import study as S
from mnist_hpo import training
from mnist_hpo.errors import UserError


def test_tiny_study_is_persisted(ae_cfg, tiny, storage):
    study = S.run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    loaded = optuna.load_study(study_name=ae_cfg.name, storage=storage)
    trials = loaded.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for t in trials:
        assert set(t.params) == {"latent_dim", "weight_decay", "optimizer", "lr", "nh1"}
        assert list(t.intermediate_values) == [0] and math.isfinite(t.value)
        assert t.value == t.intermediate_values[0]
        assert len(t.user_attrs["train_loss"]) == 1 and "seed" in t.user_attrs
    assert loaded.user_attrs["space"]["latent_dim"] == list(range(2, 10))
    assert study.best_value == min(t.value for t in trials)


def test_random_search_is_reproducible_per_trial(ae_cfg, tiny, storage, tmp_path):
    a = S.run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    b = S.run_study(ae_cfg, storage_url=other, data=tiny, progress=False)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.value for t in a.trials] == pytest.approx([t.value for t in b.trials], rel=1e-5)


def test_a_callback_that_stops_the_study_ends_run_study(ae_cfg, tiny, storage):
    cfg = ae_cfg.with_overrides(trials=5)
    seen = []

    def stop_after_two(study, trial):
        seen.append(trial.number)
        if len(seen) == 2:
            study.stop()

    study = S.run_study(cfg, storage_url=storage, data=tiny, progress=False, extra_callbacks=[stop_after_two])
    assert seen == [0, 1] and len(study.trials) == 2
    # Run again without it: the study resumes and completes its 5 trials.
    assert len(S.run_study(cfg, storage_url=storage, data=tiny, progress=False).trials) == 5


def test_resume_after_interrupt_runs_only_missing_trials(ae_cfg, tiny, storage, monkeypatch):
    real = training.train_autoencoder_epoch
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second trial's first epoch: Ctrl-C mid-trial
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_autoencoder_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        S.run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    study = optuna.load_study(study_name=ae_cfg.name, storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    first_value = study.trials[0].value

    monkeypatch.setattr(training, "train_autoencoder_epoch", real)
    S.run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    states = [t.state for t in optuna.load_study(study_name=ae_cfg.name, storage=storage).trials]
    assert states.count(TrialState.COMPLETE) == 3 and states.count(TrialState.RUNNING) == 0
    assert len(states) == 4  # one interrupted + two new, the finished one kept
    assert optuna.load_study(study_name=ae_cfg.name, storage=storage).trials[0].value == first_value

    # A complete study runs nothing more.
    S.run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    assert len(optuna.load_study(study_name=ae_cfg.name, storage=storage).trials) == 4


def test_changed_epochs_refuse_to_mix(ae_cfg, tiny, storage):
    S.run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
    with pytest.raises(UserError, match=r"study.epochs: stored 1, now 2"):
        S.run_study(ae_cfg.with_overrides(epochs=2), storage_url=storage, data=tiny, progress=False)


def test_diverging_trial_is_pruned_never_best(ae_cfg, tiny, storage, monkeypatch):
    real = training.train_autoencoder_epoch
    calls = {"n": 0}

    def sometimes_nan(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise training.NonFiniteLoss("training loss became nan")
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_autoencoder_epoch", sometimes_nan)
    study = S.run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    first = study.trials[0]
    assert first.state == TrialState.PRUNED and "nan" in first.user_attrs["fail_reason"]
    assert S.best_trial(study).number != 0
    assert len(S.finished_trials(study)) == 3


def test_every_trial_failing_stops_with_a_clear_error(ae_cfg, tiny, storage, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(training, "train_autoencoder_epoch", broken)
    with pytest.raises(UserError, match="3 trials in a row failed.*RuntimeError: boom"):
        S.run_study(ae_cfg.with_overrides(trials=10), storage_url=storage, data=tiny, progress=False)
    study = optuna.load_study(study_name=ae_cfg.name, storage=storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3


def test_best_trial_needs_a_complete_trial(storage):
    study = optuna.create_study(storage=storage, study_name="empty")
    with pytest.raises(UserError, match="no complete trial"):
        S.best_trial(study)


@pytest.mark.parametrize("url,message", [
    ("nonsense", "is malformed"),
    ("mysql://u@h/db", "not supported"),
    ("postgresql+psycopg://postgres@127.0.0.1:1/none", "cannot open storage"),
])
def test_bad_storage_urls(url, message):
    with pytest.raises(UserError, match=message):
        S.open_storage(url)


def test_not_a_database(tmp_path):
    bogus = tmp_path / "x.db"
    bogus.write_text("hello, I am not SQLite")
    with pytest.raises(UserError, match="is not a SQLite database"):
        S.open_storage(f"sqlite:///{bogus}")
    assert bogus.read_text() == "hello, I am not SQLite"


@pytest.mark.parametrize("sampler,pruner", [
    ({"type": "tpe", "n_startup_trials": 1}, {"type": "median", "n_startup_trials": 1}),
    ({"type": "gp", "n_startup_trials": 1}, {"type": "successive_halving", "min_resource": 1}),
    ({"type": "random"}, {"type": "hyperband", "min_resource": 1, "reduction_factor": 2}),
])
def test_samplers_and_pruners_run(ae_cfg, tiny, storage, sampler, pruner):
    from mnist_hpo.config import PrunerConfig, SamplerConfig

    cfg = ae_cfg.with_overrides(
        epochs=2, trials=3,
        sampler=SamplerConfig(sampler["type"], {k: v for k, v in sampler.items() if k != "type"}),
        pruner=PrunerConfig(pruner["type"], {k: v for k, v in pruner.items() if k != "type"}),
    )
    study = S.run_study(cfg, storage_url=storage, data=tiny, progress=False)
    assert len(S.finished_trials(study)) == 3
    assert sampler["type"] in type(study.sampler).__name__.lower()
    assert type(study.pruner).__name__.lower().startswith(pruner["type"].replace("_", ""))


def test_tpe_study_file_is_valid():
    from mnist_hpo.config import load_study_config

    from .conftest import ROOT

    cfg = load_study_config(ROOT / "studies" / "ae-tpe.toml")
    assert (cfg.sampler.type, cfg.pruner.type, cfg.epochs) == ("tpe", "successive_halving", 50)
    cfg = load_study_config(ROOT / "studies" / "ae-hyperband.toml")
    assert (cfg.sampler.type, cfg.pruner.type, cfg.epochs) == ("tpe", "hyperband", 50)
