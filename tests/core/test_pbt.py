"""A study file's ``[pbt]`` table (mnist_hpo/core/pbt.py): read, and checked against the study and its family,
each mistake in one line."""

from __future__ import annotations

import pytest

from mnist_hpo.config import load_study_config
from mnist_hpo.core.pbt import generations, planned_trials, quantile_size, segment_epochs
from mnist_hpo.core.schema import StudyConfig
from mnist_hpo.errors import UserError

from ..conftest import STUDIES, TINY_PBT, assert_one_error_line

AE_PBT = (STUDIES / "ae-pbt.toml").read_text()


def write(tmp_path, text: str, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(tmp_path, text: str) -> str:
    with pytest.raises(UserError) as e:
        load_study_config(write(tmp_path, text))
    message = str(e.value)
    assert "\n" not in message
    return message


def test_the_pbt_study_files_load_and_round_trip():
    for name, population, interval, epochs, mutable in [
        ("ae-pbt", 8, 5, 50, ("lr", "weight_decay")),
        ("gan-pbt", 8, 5, 75, ("lr_d", "lr_g")),
    ]:
        cfg = load_study_config(STUDIES / f"{name}.toml")
        assert (cfg.pbt.population, cfg.pbt.interval, cfg.epochs, cfg.pbt.mutable) == (
            population,
            interval,
            epochs,
            mutable,
        )
        assert (cfg.pbt.quantile, cfg.pbt.resample_probability, cfg.pbt.factors) == (0.25, 0.25, (0.8, 1.2))
        assert StudyConfig.from_dict(cfg.as_dict()) == cfg
    gan = load_study_config(STUDIES / "gan-pbt.toml")
    # no more epochs in all than gan-search spent: 20 trials x 30 epochs
    search = load_study_config(STUDIES / "gan-search.toml")
    assert gan.pbt.population * gan.epochs <= search.trials * search.epochs == 600


def test_segments_cut_each_members_epochs():
    cfg = load_study_config(STUDIES / "ae-pbt.toml")
    assert generations(cfg) == 10 and planned_trials(cfg) == 80
    assert [segment_epochs(cfg, g) for g in (0, 9)] == [(0, 5), (45, 50)]
    uneven = cfg.with_overrides(study_name="x", epochs=12)
    assert generations(uneven) == 3 and segment_epochs(uneven, 2) == (10, 12)  # the last segment is shorter
    assert planned_trials(load_study_config(STUDIES / "ae.toml")) == 50  # without [pbt]: study.trials


def test_quantiles_hold_at_least_one_member_and_at_most_half():
    assert [quantile_size(p, 0.25) for p in (2, 3, 4, 8, 9)] == [1, 1, 1, 2, 3]
    assert quantile_size(4, 0.5) == 2 and quantile_size(3, 0.5) == 1


@pytest.mark.parametrize(
    "change, expected",
    [
        (("population = 8", "population = 1"), "pbt.population must be at least 2"),
        (("interval = 5 ", "interval = 60 "), "pbt.interval must be between 1 and study.epochs (50), got 60"),
        (("quantile = 0.25", "quantile = 0.6"), "pbt.quantile must be in (0, 0.5]"),
        (("factors = [0.8, 1.2]", "factors = [1.2, 0.8]"), "pbt.factors must be [a, b] with 0 < a < 1 < b"),
        (("factors = [0.8, 1.2]", "factors = [0.8]"), "pbt.factors must be two numbers"),
        (
            ("resample_probability = 0.25", "resample_probability = 2"),
            "pbt.resample_probability must be between 0 and 1",
        ),
        (
            ('mutable = ["lr", "weight_decay"]', 'mutable = ["lr", "momentum"]'),
            "pbt.mutable names 'momentum', which is not in [space]",
        ),
        (('mutable = ["lr", "weight_decay"]', "mutable = []"), "pbt.mutable must name at least one parameter"),
        (('mutable = ["lr", "weight_decay"]', 'mutable = ["lr", "lr"]'), "pbt.mutable names a parameter twice"),
        (
            ("quantile = 0.25", "quantile = 0.25\nsize = 3"),
            "pbt.size is not a known key; allowed: factors, interval, "
            "mutable, population, quantile, resample_probability",
        ),
        (("epochs = 50 ", "trials = 10\nepochs = 50 "), "study.trials is not used with [pbt]"),
        (
            ('[sampler]\ntype = "random"', '[pruner]\ntype = "median"\n\n[sampler]\ntype = "random"'),
            'pruner.type must be "none" with [pbt]',
        ),
        (("batch_size = 256", "batch_size = 256\nbatch_trials = 2"), "study.batch_trials must be 1 with [pbt]"),
        (("batch_size = 256", "batch_size = 256\nenqueue = [{lr = 0.001}]"), "study.enqueue must be empty with [pbt]"),
        # a parameter that shapes the model cannot change while it trains: the family says which can
        (
            ('mutable = ["lr", "weight_decay"]', 'mutable = ["lr", "latent_dim"]'),
            "pbt.mutable names 'latent_dim', which cannot change while autoencoder trains (it shapes the model or its "
            "optimizer); it may change: lr, weight_decay",
        ),
    ],
)
def test_each_mistake_is_one_line(tmp_path, change, expected):
    old, new = change
    assert old in AE_PBT
    assert expected in refused(tmp_path, AE_PBT.replace(old, new, 1))


def test_a_grid_is_refused(tmp_path):
    lists = AE_PBT.replace('[sampler]\ntype = "random"', '[sampler]\ntype = "grid"')
    lists = lists.split("[space.lr]")[0] + "[space.lr]\nchoices = [1e-3]\n\n[space.weight_decay]\nchoices = [0.0]\n"
    assert 'sampler.type cannot be "grid" with [pbt]' in refused(tmp_path, lists)


def test_an_override_that_breaks_the_table_is_refused_before_anything_runs():
    cfg = load_study_config(STUDIES / "ae-pbt.toml").with_overrides(study_name="short", epochs=2)
    from mnist_hpo.tasks import check_config

    with pytest.raises(UserError, match=r"pbt.interval must be between 1 and study.epochs \(2\), got 5"):
        check_config(cfg)


# The tiny population's study file with the classifier's model and space.
CLASSIFIER_PBT = (
    TINY_PBT.format(name="clf-pbt", epochs=3, interval=1, subset=200)
    .replace('type = "autoencoder"', 'type = "classifier"')
    .replace("[space.latent_dim]\nchoices = [2, 3]", "[space.dropout]\nchoices = [0.0]")
)


def test_a_family_without_the_hooks_is_refused_in_one_line(tmp_path, capsys):
    message = refused(tmp_path, CLASSIFIER_PBT)
    assert message.startswith(
        f"{tmp_path / 's.toml'}: [pbt] needs a model family that can save and restore its "
        "training state; classifier cannot"
    )
    assert "autoencoder, denoising, gan" in message and "remove [pbt]" in message
    path = write(tmp_path, CLASSIFIER_PBT, "clf-pbt.toml")
    assert_one_error_line(
        capsys, ["study", str(path), "--storage", f"sqlite:///{tmp_path / 'db.sqlite'}"], "classifier cannot"
    )
    assert not (tmp_path / "db.sqlite").exists()  # refused before any storage was made
