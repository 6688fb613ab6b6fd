import pytest

from mnist_hpo.config import load_study_config
from mnist_hpo.errors import UserError

from .conftest import ROOT

GOOD = (ROOT / "studies" / "ae.toml").read_text()


def write(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


def test_ae_file_matches_the_report():
    cfg = load_study_config(ROOT / "studies" / "ae.toml")
    assert (cfg.trials, cfg.epochs, cfg.val_fraction) == (50, 50, 0.2)
    assert cfg.sampler.type == "random" and cfg.model == "autoencoder"
    assert set(cfg.space) == {"latent_dim", "weight_decay", "optimizer", "lr", "nh1"}


@pytest.mark.parametrize("old,new,message", [
    ("trials = 50", "trials = -3", "study.trials must be at least 1"),
    ("epochs = 50", 'epochs = "many"', "study.epochs must be an integer"),
    ('type = "random"', 'type = "annealing"', "sampler.type must be one of"),
    ('type = "none"', 'type = "sometimes"', "pruner.type must be one of"),
    ('type = "autoencoder"', 'type = "transformer"', "model.type must be one of"),
    ("seed = 2020", "seed = 2020\ncolour = 1", "study.colour is not a known key"),
    ('dataset = "mnist"', 'dataset = "cifar"', "study.dataset must be one of"),
    ("std = 1e-4", "std = -1e-4", "space.weight_decay.std must be positive"),
    ("high = 150", "high = 10", "space.nh1.high must be greater than low"),
    ("val_fraction = 0.2", "val_fraction = 1.5", "study.val_fraction must be between 0 and 1"),
    ("trials = 50", "trials = true", "study.trials must be an integer"),
])
def test_bad_values_are_one_clear_line(tmp_path, old, new, message):
    assert old in GOOD
    with pytest.raises(UserError) as e:
        load_study_config(write(tmp_path, GOOD.replace(old, new, 1)))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_malformed_toml(tmp_path):
    with pytest.raises(UserError, match="is not valid TOML"):
        load_study_config(write(tmp_path, "[study\nname='x'"))


def test_missing_file():
    with pytest.raises(UserError, match="not found"):
        load_study_config("studies/nope.toml")


def test_overrides_are_validated():
    cfg = load_study_config(ROOT / "studies" / "ae.toml")
    assert cfg.with_overrides(trials=2, epochs=None).trials == 2
    with pytest.raises(UserError, match="train_subset must be at least 10"):
        cfg.with_overrides(train_subset=3)


def test_config_round_trips_through_dict():
    from mnist_hpo.config import StudyConfig

    cfg = load_study_config(ROOT / "studies" / "ae.toml")
    assert StudyConfig.from_dict(cfg.as_dict()) == cfg


@pytest.mark.parametrize("path", sorted((ROOT / "studies").glob("*.toml")), ids=lambda p: p.name)
def test_every_study_file_loads_and_resolves(path):
    """What `mnist-hpo study FILE` does before any training: validate, then pin stored artefacts."""
    from mnist_hpo.tasks import task_class

    cfg = load_study_config(path)

    def no_export(study):
        raise UserError(f"no export of study {study!r}")

    try:
        resolved = task_class(cfg.model).resolve(cfg, latest_export=no_export, pinned=None)
    except UserError as e:  # the classifier needs an autoencoder export first: a clear error
        assert cfg.model == "classifier" and "no export" in str(e)
    else:
        assert resolved.name == cfg.name
