import math

import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo.core.space import resolve_space
from mnist_hpo.errors import UserError
from mnist_hpo.hpo.identity import _jsonable_space, open_study
from mnist_hpo.hpo.queries import best_trial, finished_trials
from mnist_hpo.hpo.run import run_study
from mnist_hpo.hpo.samplers import make_sampler
from mnist_hpo.storages import open_storage
from mnist_hpo.train import loops as training

from ..conftest import storage_snapshot as _snapshot


def test_tiny_study_is_persisted(ae_cfg, tiny, storage):
    study = run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
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
    a = run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    b = run_study(ae_cfg, storage_url=other, data=tiny, progress=False)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.value for t in a.trials] == pytest.approx([t.value for t in b.trials], rel=1e-5)


def test_a_callback_that_stops_the_study_ends_run_study(ae_cfg, tiny, storage):
    cfg = ae_cfg.with_overrides(trials=5)
    seen = []

    def stop_after_two(study, trial):
        seen.append(trial.number)
        if len(seen) == 2:
            study.stop()

    study = run_study(cfg, storage_url=storage, data=tiny, progress=False, extra_callbacks=[stop_after_two])
    assert seen == [0, 1] and len(study.trials) == 2
    # Run again without it: the study resumes and completes its 5 trials.
    assert len(run_study(cfg, storage_url=storage, data=tiny, progress=False).trials) == 5


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
        run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    study = optuna.load_study(study_name=ae_cfg.name, storage=storage)
    # The interrupted trial is queued again with its parameters (tests/storages/test_journal.py checks the seed).
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    assert study.trials[2].params == study.trials[1].params
    first_value = study.trials[0].value

    monkeypatch.setattr(training, "train_autoencoder_epoch", real)
    run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    states = [t.state for t in optuna.load_study(study_name=ae_cfg.name, storage=storage).trials]
    assert states.count(TrialState.COMPLETE) == 3 and states.count(TrialState.RUNNING) == 0
    assert len(states) == 4  # one interrupted + its retry + one new, the finished one kept
    assert optuna.load_study(study_name=ae_cfg.name, storage=storage).trials[0].value == first_value

    # A complete study runs nothing more.
    run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    assert len(optuna.load_study(study_name=ae_cfg.name, storage=storage).trials) == 4


def test_changed_epochs_refuse_to_mix(ae_cfg, tiny, storage):
    run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
    with pytest.raises(UserError, match=r"study.epochs: stored 1, now 2"):
        run_study(
            ae_cfg.with_overrides(study_name=ae_cfg.name, epochs=2), storage_url=storage, data=tiny, progress=False
        )


def test_diverging_trial_is_pruned_never_best(ae_cfg, tiny, storage, monkeypatch):
    real = training.train_autoencoder_epoch
    calls = {"n": 0}

    def sometimes_nan(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise training.NonFiniteLoss("training loss became nan")
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_autoencoder_epoch", sometimes_nan)
    study = run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    first = study.trials[0]
    assert first.state == TrialState.PRUNED and "nan" in first.user_attrs["fail_reason"]
    assert best_trial(study).number != 0
    assert len(finished_trials(study)) == 3


def test_every_trial_failing_stops_with_a_clear_error(ae_cfg, tiny, storage, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(training, "train_autoencoder_epoch", broken)
    with pytest.raises(UserError, match="3 trials in a row failed.*RuntimeError: boom"):
        run_study(ae_cfg.with_overrides(trials=10), storage_url=storage, data=tiny, progress=False)
    study = optuna.load_study(study_name=ae_cfg.name, storage=storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3


def test_best_trial_needs_a_complete_trial(storage):
    study = optuna.create_study(storage=storage, study_name="empty")
    with pytest.raises(UserError, match="no complete trial"):
        best_trial(study)


@pytest.mark.parametrize(
    "url,message",
    [
        ("nonsense", "is malformed"),
        ("mysql://u@h/db", "not supported"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/none", "cannot open storage"),
    ],
)
def test_bad_storage_urls(url, message):
    with pytest.raises(UserError, match=message):
        open_storage(url)


def test_not_a_database(tmp_path):
    bogus = tmp_path / "x.db"
    bogus.write_text("hello, I am not SQLite")
    with pytest.raises(UserError, match="is not a SQLite database"):
        open_storage(f"sqlite:///{bogus}")
    assert bogus.read_text() == "hello, I am not SQLite"


@pytest.mark.parametrize(
    "sampler,pruner",
    [
        ({"type": "tpe", "n_startup_trials": 1}, {"type": "median", "n_startup_trials": 1}),
        ({"type": "gp", "n_startup_trials": 1}, {"type": "successive_halving", "min_resource": 1}),
        ({"type": "random"}, {"type": "hyperband", "min_resource": 1, "reduction_factor": 2}),
    ],
)
def test_samplers_and_pruners_run(ae_cfg, tiny, storage, sampler, pruner):
    from mnist_hpo.core.schema import PrunerConfig, SamplerConfig

    cfg = ae_cfg.with_overrides(
        study_name=ae_cfg.name,
        epochs=2,
        trials=3,
        sampler=SamplerConfig(sampler["type"], {k: v for k, v in sampler.items() if k != "type"}),
        pruner=PrunerConfig(pruner["type"], {k: v for k, v in pruner.items() if k != "type"}),
    )
    study = run_study(cfg, storage_url=storage, data=tiny, progress=False)
    assert len(finished_trials(study)) == 3
    assert sampler["type"] in type(study.sampler).__name__.lower()
    assert type(study.pruner).__name__.lower().startswith(pruner["type"].replace("_", ""))


def test_tpe_study_file_is_valid():
    from mnist_hpo.config import load_study_config

    from ..conftest import STUDIES

    cfg = load_study_config(STUDIES / "ae-tpe.toml")
    assert (cfg.sampler.type, cfg.pruner.type, cfg.epochs) == ("tpe", "successive_halving", 50)
    cfg = load_study_config(STUDIES / "ae-hyperband.toml")
    assert (cfg.sampler.type, cfg.pruner.type, cfg.epochs) == ("tpe", "hyperband", 50)


# --- a study never silently holds unlike trials: its best would compare unlike runs -----------


def _changed(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def test_study_stores_its_identity(ae_cfg, storage):
    study = open_study(ae_cfg, open_storage(storage), dataset_checksum="abc")
    identity = optuna.load_study(study_name=ae_cfg.name, storage=storage).user_attrs["identity"]
    assert identity["study.train_subset"] == 600 and identity["study.test_subset"] == 200
    assert identity["dataset.sha256"] == "abc" and identity["sampler.seed"] == ae_cfg.seed
    assert identity["space.latent_dim"] == list(range(2, 10)) and identity["model.type"] == "autoencoder"
    assert not any(k.endswith((".trials", ".device", ".batch_trials", ".retrain")) for k in identity)
    assert study.user_attrs["config"]["name"] == ae_cfg.name  # the config attribute is kept for exports


def _resumes(ae_cfg):
    from mnist_hpo.core.schema import ParamSpec, PrunerConfig, SamplerConfig

    return [
        ("train_subset", dict(train_subset=500), "study.train_subset: stored 600, now 500"),
        ("test_subset", dict(test_subset=100), "study.test_subset: stored 200, now 100"),
        ("batch_size", dict(batch_size=64), "study.batch_size: stored 128, now 64"),
        ("val_fraction", dict(val_fraction=0.25), "study.val_fraction: stored 0.2, now 0.25"),
        ("seed", dict(seed=1), "study.seed: stored 2020, now 1"),
        ("epochs", dict(epochs=2), "study.epochs: stored 1, now 2"),
        ("sampler", dict(sampler=SamplerConfig("tpe", {})), 'sampler.type: stored "random", now "tpe"'),
        ("sampler seed", dict(sampler=SamplerConfig("random", {"seed": 5})), "sampler.seed: stored 2020, now 5"),
        (
            "pruner",
            dict(pruner=PrunerConfig("median", {"n_warmup_steps": 1})),
            'pruner.n_warmup_steps: stored unset, now 1; pruner.type: stored "none", now "median"',
        ),
        (
            "space",
            dict(space={**ae_cfg.space, "optimizer": ParamSpec("optimizer", "choices", choices=("Adam",))}),
            'space.optimizer: stored ["Adam", "RMSprop"], now ["Adam"]',
        ),
        ("idx_dir", dict(idx_dir="/srv/mnist"), 'study.idx_dir: stored null, now "/srv/mnist"'),
    ]


def test_resume_with_any_differing_setting_is_refused_and_stores_nothing(ae_cfg, storage):
    open_study(ae_cfg, open_storage(storage), dataset_checksum="abc")
    before = _snapshot(storage)
    for what, changes, expected in _resumes(ae_cfg):
        with pytest.raises(UserError) as e:
            open_study(_changed(ae_cfg, **changes), open_storage(storage), dataset_checksum="abc")
        assert expected in str(e.value) and "--study-name" in str(e.value), (what, str(e.value))
        assert "\n" not in str(e.value)
        assert _snapshot(storage) == before, what
    with pytest.raises(UserError, match='dataset.sha256: stored "abc", now "def"'):
        open_study(ae_cfg, open_storage(storage), dataset_checksum="def")
    # Several differences are all named, in one line.
    with pytest.raises(UserError, match="study.batch_size: stored 128, now 64; study.seed: stored 2020, now 1"):
        open_study(_changed(ae_cfg, batch_size=64, seed=1), open_storage(storage), dataset_checksum="abc")
    assert _snapshot(storage) == before


def test_resume_may_change_trials_device_and_batching(ae_cfg, storage):
    open_study(ae_cfg, open_storage(storage), dataset_checksum="abc")
    again = _changed(ae_cfg, trials=9, device="cpu", batch_trials=3, retrain=False)
    assert open_study(again, open_storage(storage), dataset_checksum="abc").study_name == ae_cfg.name


def test_a_resumed_study_refuses_a_worker_with_another_subset(ae_cfg, tiny, storage):
    """The issue's case, end to end: trials on 600 images, then a run asking for 500 adds none."""
    run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
    before = _snapshot(storage)
    with pytest.raises(UserError, match="study.train_subset: stored 600, now 500"):
        run_study(
            ae_cfg.with_overrides(study_name=ae_cfg.name, trials=2, train_subset=500),
            storage_url=storage,
            data=tiny,
            progress=False,
        )
    assert _snapshot(storage) == before


def test_studies_made_before_the_identity_are_compared_on_what_they_recorded(ae_cfg, storage):
    import json

    study = optuna.create_study(storage=storage, study_name=ae_cfg.name)
    old_config = json.loads(json.dumps(ae_cfg.as_dict(), default=str))
    del old_config["test_subset"]  # a setting an older version did not have
    study.set_user_attr("config", old_config)
    study.set_user_attr(
        "space",
        optuna.load_study(study_name=ae_cfg.name, storage=storage).user_attrs.get("space")
        or _jsonable_space(resolve_space(ae_cfg.space, ae_cfg.seed)),
    )
    study.set_user_attr("model", "autoencoder")
    # No identity, no checksum, no test_subset recorded: not refused for what it lacks.
    open_study(_changed(ae_cfg, test_subset=150), open_storage(storage), dataset_checksum="anything")
    with pytest.raises(UserError, match="study.train_subset: stored 600, now 500"):
        open_study(_changed(ae_cfg, train_subset=500), open_storage(storage), dataset_checksum="anything")
    assert "identity" not in optuna.load_study(study_name=ae_cfg.name, storage=storage).user_attrs


# --- model-based samplers over several workers: no two propose the same first trials ----------


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask() without optimize(), as a test does
@pytest.mark.parametrize("kind", ["tpe", "gp"])
def test_workers_started_together_propose_different_first_trials(ae_cfg, storage, tmp_path, kind):
    from mnist_hpo.core.schema import SamplerConfig
    from mnist_hpo.hpo.suggestions import suggest

    cfg = _changed(ae_cfg, sampler=SamplerConfig(kind, {"n_startup_trials": 2}))
    resolved = resolve_space(cfg.space, cfg.seed)
    open_study(cfg, open_storage(storage), dataset_checksum="abc")
    # Three workers open the study at the same moment: each sees no trial yet.
    workers = [
        optuna.load_study(study_name=cfg.name, storage=open_storage(storage), sampler=make_sampler(cfg, resolved))
        for _ in range(3)
    ]
    first = [suggest(w.ask(), resolved) for w in workers]
    assert len({tuple(sorted(p.items())) for p in first}) == 3, first

    # Trial N's proposal depends on (seed, N) and the history only: a single worker elsewhere agrees.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    open_study(cfg, open_storage(other), dataset_checksum="abc")
    alone = optuna.load_study(study_name=cfg.name, storage=open_storage(other), sampler=make_sampler(cfg, resolved))
    assert [suggest(alone.ask(), resolved) for _ in range(3)] == first


PRUNERS = {
    "median": {"n_startup_trials": 1, "n_warmup_steps": 0},
    "successive_halving": {"min_resource": 1, "reduction_factor": 2},
    "hyperband": {"min_resource": 1, "max_resource": 3, "reduction_factor": 2},
}


def _pruned_study(ae_cfg, tiny, storage, kind="successive_halving", trials=6):
    from mnist_hpo.core.schema import PrunerConfig

    cfg = ae_cfg.with_overrides(
        study_name=ae_cfg.name, epochs=3, trials=trials, pruner=PrunerConfig(kind, PRUNERS[kind])
    )
    return cfg, run_study(cfg, storage_url=storage, data=tiny, progress=False)


@pytest.mark.parametrize("kind", list(PRUNERS))
def test_pruners_stop_trials_that_fall_behind(ae_cfg, tiny, storage, kind):
    cfg, study = _pruned_study(ae_cfg, tiny, storage, kind)
    trials = study.get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, f"the {kind} pruner pruned none of {len(trials)} trials"
    assert any(t.state == TrialState.COMPLETE for t in trials)
    for t in pruned:
        step = max(t.intermediate_values)
        assert step < cfg.epochs - 1 and "fail_reason" not in t.user_attrs  # stopped early, by the pruner
        earlier = [u.intermediate_values[step] for u in trials if u.number < t.number and step in u.intermediate_values]
        assert earlier and t.intermediate_values[step] > min(earlier)  # it was behind the best at that epoch
        if kind == "median":
            assert t.intermediate_values[step] > sorted(earlier)[(len(earlier) - 1) // 2]


def _rerun(capsys, *argv):
    from mnist_hpo.cli import main

    code = main(["rerun", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rerun_trains_a_pruned_trial_to_the_epoch_it_reached(ae_cfg, tiny, storage, capsys):
    _, study = _pruned_study(ae_cfg, tiny, storage)
    t = next(t for t in study.get_trials() if t.state == TrialState.PRUNED)
    epoch = max(t.intermediate_values) + 1
    code, out, err = _rerun(capsys, ae_cfg.name, t.number, "--storage", storage)
    assert code == 0, out + err
    assert f"val_mse at epoch {epoch} of 3, where it was pruned: stored {t.intermediate_values[epoch - 1]:.6g}" in out
    assert "(identical)" in out and "compared exactly" in out and err == ""


def test_rerun_uses_the_thread_count_the_trial_ran_with(ae_cfg, tiny, storage, capsys, monkeypatch):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a worker given one core would
    try:
        study = run_study(
            ae_cfg.with_overrides(study_name=ae_cfg.name, trials=1, epochs=2),
            storage_url=storage,
            data=tiny,
            progress=False,
        )
    finally:
        torch.set_num_threads(threads)
    (t,) = study.get_trials()
    assert (t.user_attrs["threads"], t.user_attrs["device"], t.user_attrs["stacked"]) == (1, "cpu", 0)
    assert torch.get_num_threads() == 2
    real, seen = training.train_autoencoder_epoch, []

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_autoencoder_epoch", spy)
    code, out, err = _rerun(capsys, ae_cfg.name, 0, "--storage", storage)
    assert code == 0 and "(identical)" in out and "alone with 1 torch thread on cpu" in out, out + err
    assert seen == [1, 1]  # both epochs trained with the trial's thread count, not this process's 2
    assert torch.get_num_threads() == 2  # restored after the rerun


def test_rerun_uses_the_denormal_mode_the_trial_ran_with(ae_cfg, tiny, storage, capsys, monkeypatch):
    from mnist_hpo.train.numerics import denormals_flushed, flush_denormals

    study = run_study(
        ae_cfg.with_overrides(study_name=ae_cfg.name, trials=1, epochs=2),
        storage_url=storage,
        data=tiny,
        progress=False,
    )
    (t,) = study.get_trials()
    assert t.user_attrs["flush_denormal"] is True  # every training run flushes them (train/numerics.py)
    # A trial stored before the mode was recorded: denormals were kept then.
    old_attrs = {k: v for k, v in t.user_attrs.items() if k != "flush_denormal"}
    study.add_trial(
        optuna.trial.create_trial(
            params=t.params,
            distributions=t.distributions,
            value=t.value,
            user_attrs=old_attrs,
            intermediate_values={0: t.value},
        )
    )
    real, seen = training.train_autoencoder_epoch, []

    def spy(*args, **kwargs):
        seen.append(denormals_flushed())
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_autoencoder_epoch", spy)
    flush_denormals(False)
    try:
        code, out, err = _rerun(capsys, ae_cfg.name, 0, "--storage", storage)
        assert code == 0 and "(identical)" in out and "on cpu, denormals flushed, compared exactly" in out, out + err
        assert seen == [True, True] and not denormals_flushed()  # the trial's mode, then this process's again
        seen.clear()
        _, out, err = _rerun(capsys, ae_cfg.name, 1, "--storage", storage)
        assert seen == [False, False] and "denormals flushed" not in out, out + err
    finally:
        flush_denormals(False)


def test_rerun_a_stacked_trial_through_the_stacked_path(ae_cfg, tiny, storage, capsys):
    study = run_study(
        ae_cfg.with_overrides(study_name=ae_cfg.name, trials=2, epochs=2, batch_trials=2),
        storage_url=storage,
        data=tiny,
        progress=False,
    )
    assert [t.user_attrs["stacked"] for t in study.get_trials()] == [2, 2]
    code, out, err = _rerun(capsys, ae_cfg.name, 1, "--storage", storage)
    assert code == 0, out + err
    assert "through the stacked path (a stack of one)" in out and "it trained in a stack of 2" in out


def test_rerun_exits_1_on_a_real_difference(ae_cfg, tiny, storage, capsys):
    study = run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
    (t,) = study.get_trials()
    wrong = t.value * 1.5  # as if the stored value came from other data or another seed
    study.add_trial(
        optuna.trial.create_trial(
            params=t.params,
            distributions=t.distributions,
            value=wrong,
            user_attrs=t.user_attrs,
            intermediate_values={0: wrong},
        )
    )
    code, out, err = _rerun(capsys, ae_cfg.name, 1, "--storage", storage)
    assert code == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnist-hpo: rerun differs: trial 1 val_mse")
    assert f"stored {wrong:.6g}, rerun {t.value:.6g}" in lines[0] and "DIFFERS" in lines[0]
    assert _rerun(capsys, ae_cfg.name, 0, "--storage", storage)[0] == 0


def test_a_journal_stores_each_trials_train_curve_once(ae_cfg, tiny, tmp_path):
    # Re-storing the growing curve every epoch made a journal grow with the square of the epochs.
    path = tmp_path / "ae.log"
    cfg = ae_cfg.with_overrides(study_name=ae_cfg.name, trials=2, epochs=3)
    study = run_study(cfg, storage_url=f"journal:{path}", data=tiny, progress=False)
    assert all(len(t.user_attrs["train_loss"]) == 3 for t in study.trials)
    writes = [line for line in path.read_text().splitlines() if '"train_loss"' in line]
    assert len(writes) == 2


def test_a_gan_study_records_its_judge_and_one_made_before_gets_no_new_trials(gan_cfg, mnist, storage):
    """Distances from two quality classifiers are not comparable: the judge is part of a GAN study's identity."""
    from mnist_hpo.measures.frechet import load_fidnet

    judge = load_fidnet("mnist", dataset_checksum=mnist.checksum)[1]["sha256"]
    cfg = gan_cfg.with_overrides(study_name=gan_cfg.name, trials=1, epochs=1, train_subset=200)
    study = open_study(cfg, open_storage(storage), dataset_checksum=mnist.checksum)
    assert study.user_attrs["identity"]["judge.sha256"] == judge
    # Scored by another judge: refused on open, naming both.
    other = {**study.user_attrs["identity"], "judge.sha256": "ab" * 32}
    study.set_user_attr("identity", other)
    with pytest.raises(UserError, match=f'judge.sha256: stored "{"ab" * 32}", now "{judge}"'):
        open_study(cfg, open_storage(storage), dataset_checksum=mnist.checksum)
    # Made before the judge was recorded (the record's gan-search): opened and read, never extended.
    made_before = {k: v for k, v in other.items() if k != "judge.sha256"}
    study.set_user_attr("identity", made_before)
    assert open_study(cfg, open_storage(storage), dataset_checksum=mnist.checksum).study_name == cfg.name
    before = _snapshot(storage)
    with pytest.raises(UserError, match="created before judge.sha256 was recorded.*--study-name NEW") as e:
        run_study(cfg, storage_url=storage, data=mnist, progress=False)
    assert "\n" not in str(e.value)
    from mnist_hpo.hpo.workers import spawn_workers

    with pytest.raises(UserError, match="created before judge.sha256 was recorded"):  # before any worker starts
        spawn_workers(cfg, 2, storage=storage, progress=False)
    assert _snapshot(storage) == before  # no trial added
