"""Warm start: ``[study] enqueue`` and ``--warm-start STUDY`` queue configurations first, once."""

import dataclasses

import pytest

from mnist_hpo.config import load_study_config
from mnist_hpo.hpo.run import run_study
from mnist_hpo.report.tables import top_trials
from mnist_hpo.storages import load_existing_study

from ..conftest import STUDIES, assert_one_error_line

TABLE1 = [  # the report's Table 1, as studies/ae-warm.toml enqueues it
    {"latent_dim": 9, "weight_decay": 5.1e-05, "optimizer": "Adam", "lr": 0.0009, "nh1": 87},
    {"latent_dim": 8, "weight_decay": 5.0e-05, "optimizer": "Adam", "lr": 0.0019, "nh1": 122},
    {"latent_dim": 9, "weight_decay": 3.2e-07, "optimizer": "RMSprop", "lr": 0.0019, "nh1": 75},
    {"latent_dim": 8, "weight_decay": 3.2e-07, "optimizer": "RMSprop", "lr": 0.0019, "nh1": 137},
    {"latent_dim": 9, "weight_decay": 3.2e-07, "optimizer": "Adam", "lr": 0.0003, "nh1": 137},
]


@pytest.fixture
def warm_cfg():
    """studies/ae-warm.toml (Table 1 enqueued) cut down to 3 trials x 1 epoch on 600 images, two enqueued."""
    cfg = load_study_config(STUDIES / "ae-warm.toml")
    cfg = dataclasses.replace(cfg, enqueue=cfg.enqueue[:2])
    return cfg.with_overrides(name="warm", trials=3, epochs=1, train_subset=600, test_subset=200, batch_size=128)


def test_the_study_file_enqueues_the_reports_table_1():
    cfg = load_study_config(STUDIES / "ae-warm.toml")
    assert [dict(e) for e in cfg.enqueue] == TABLE1
    assert cfg.sampler.type == "tpe" and cfg.pruner.type == "successive_halving"


def test_enqueued_configurations_run_first_and_only_once(warm_cfg, tiny, storage):
    study = run_study(warm_cfg, storage_url=storage, data=tiny, progress=False)
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.params for t in trials[:2]] == TABLE1[:2]
    assert len(trials) == 3 and trials[2].params not in TABLE1
    assert len(study.user_attrs["warm_start"]) == 1
    # A resume with more trials proposes new ones: nothing is queued again.
    study = run_study(warm_cfg.with_overrides(trials=5), storage_url=storage, data=tiny, progress=False)
    params = [t.params for t in study.trials]
    assert len(params) == 5 and all(params.count(p) == 1 for p in TABLE1[:2])
    assert sum(1 for t in study.trials if "warm_start" in t.user_attrs) == 2


def test_warm_start_from_another_studys_best_trials(ae_cfg, warm_cfg, tiny, storage):
    source = run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    best = [t.params for t in top_trials(source, 2)]
    cfg = dataclasses.replace(warm_cfg, enqueue=())
    study = run_study(cfg, storage_url=storage, data=tiny, progress=False, warm_start="ae-test", warm_start_k=2)
    assert [t.params for t in sorted(study.trials, key=lambda t: t.number)[:2]] == best
    study = run_study(
        cfg.with_overrides(trials=4),
        storage_url=storage,
        data=tiny,
        progress=False,
        warm_start="ae-test",
        warm_start_k=2,
    )
    assert [t.params for t in study.trials].count(best[0]) == 1 and len(study.trials) == 4


ENTRY = '{latent_dim = 9, weight_decay = 5.1e-05, optimizer = "Adam", lr = 0.0009, nh1 = 87}'


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("{latent_dim = 12}", "study.enqueue[1].latent_dim is 12, which the space's list does not hold"),
        ('{optimizer = "SGD"}', "study.enqueue[1].optimizer is 'SGD'"),
        ("{lr = 0.5}", "study.enqueue[1].lr must be a number in the range [1e-05, 0.005], got 0.5"),
        ("{nh1 = 87.5}", "study.enqueue[1].nh1 must be an integer in the range [50, 149]"),
        ("{dropout = 0.1}", "study.enqueue[1].dropout is not a parameter of the study's space"),
        ("3", "study.enqueue[1] must be a table of parameter values"),
    ],
)
def test_a_bad_enqueue_entry_is_one_error_line_and_creates_nothing(entry, expected, capsys, storage, tmp_path):
    text = (STUDIES / "ae-warm.toml").read_text()
    start, end = text.index("enqueue = ["), text.index("]\n\n[model]") + 1
    bad = tmp_path / "bad.toml"
    bad.write_text(text[:start] + f"enqueue = [{ENTRY}, {entry}]" + text[end:])
    assert_one_error_line(capsys, ["study", str(bad), "--storage", storage], expected)
    assert not (tmp_path / "studies.db").exists()


def test_an_off_list_value_names_the_allowed_values(capsys, storage, tmp_path):
    text = (STUDIES / "ae.toml").read_text().replace('name = "ae"', 'name = "ae"\nenqueue = [{lr = 0.0009}]')
    (tmp_path / "ae.toml").write_text(text)
    assert_one_error_line(
        capsys,
        ["study", str(tmp_path / "ae.toml"), "--storage", storage],
        "study.enqueue[0].lr is 0.0009, which the space's list does not hold (the sampler can only suggest 0.00",
    )
    assert not (tmp_path / "studies.db").exists()


def test_a_bad_warm_start_study_is_one_error_line(ae_cfg, tiny, storage, capsys):
    run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
    argv = [
        "study",
        str(STUDIES / "ae-warm.toml"),
        "--subset",
        "600",
        "--epochs",
        "1",
        "--trials",
        "1",
        "--study-name",
        "w",
        "--storage",
        storage,
        "--quiet",
    ]
    assert_one_error_line(
        capsys, [*argv, "--warm-start", "nothing"], "--warm-start nothing: no such study in this storage"
    )
    assert_one_error_line(capsys, [*argv, "--warm-start", "w"], "cannot warm-start from itself")
    assert [s.study_name for s in __import__("optuna").get_all_study_summaries(storage)] == ["ae-test"]
    assert load_existing_study("ae-test", storage)
