import pytest

from mnist_hpo.config import load_study_config
from mnist_hpo.errors import UserError

from .conftest import STUDIES

GOOD = (STUDIES / "ae.toml").read_text()


def write(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


def test_ae_file_matches_the_report():
    cfg = load_study_config(STUDIES / "ae.toml")
    assert (cfg.trials, cfg.epochs, cfg.val_fraction) == (50, 50, 0.2)
    assert cfg.sampler.type == "random" and cfg.model == "autoencoder"
    assert set(cfg.space) == {"latent_dim", "weight_decay", "optimizer", "lr", "nh1"}


@pytest.mark.parametrize(
    "old,new,message",
    [
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
    ],
)
def test_bad_values_are_one_clear_line(tmp_path, old, new, message):
    assert old in GOOD
    with pytest.raises(UserError) as e:
        load_study_config(write(tmp_path, GOOD.replace(old, new, 1)))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


MISTYPED_KEYS = [
    (
        "section",
        "[sampler]",
        "[sampeler]",
        "[sampeler] is not a known section; did you mean [sampler]? allowed: "
        "[study], [model], [sampler], [pruner], [space]",
    ),
    ("space section", "[space.lr]", "[spcae.lr]", "[spcae] is not a known section; did you mean [space]?"),
    ("unlike any section", "[pruner]", "[foo]", "[foo] is not a known section; allowed: [study]"),
    (
        "key above every section",
        "[study]",
        "trials = 3\n[study]",
        "trials is above every section; put it under [study]",
    ),
    ("study key", "epochs = 50", "epoch = 50", "study.epoch is not a known key; did you mean epochs? allowed: "),
    (
        "sampler key",
        'type = "random"',
        'type = "tpe"\nn_startup_trails = 5',
        "sampler.n_startup_trails is not a known key; did you mean n_startup_trials?",
    ),
    ("space key", "std = 1e-3", "sdt = 1e-3", "space.lr.sdt is not a known key; did you mean std?"),
    (
        "parameter",
        "[space.nh1]",
        "[space.nh_1]",
        "space.nh_1 is not a parameter of the autoencoder model; did you mean nh1? it has latent_dim",
    ),
    ("unlike any key", "seed = 2020", "seed = 2020\ncolour = 1", "study.colour is not a known key; allowed: "),
]


@pytest.mark.parametrize("what,old,new,message", MISTYPED_KEYS, ids=[c[0] for c in MISTYPED_KEYS])
def test_a_mistyped_key_names_the_closest_valid_one(tmp_path, what, old, new, message):
    assert old in GOOD
    with pytest.raises(UserError) as e:
        load_study_config(write(tmp_path, GOOD.replace(old, new, 1)))
    assert message in str(e.value) and "\n" not in str(e.value)
    assert "top level" not in str(e.value)


@pytest.mark.parametrize("path", sorted((STUDIES).glob("*.toml")), ids=lambda p: p.name)
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


# --- every value of every list and range against the model family, before any training ------

DAE = (STUDIES / "dae.toml").read_text()
CLF = (STUDIES / "clf.toml").read_text()
GAN = (STUDIES / "gan-search.toml").read_text()

BAD_SPACES = [
    (
        "unknown optimizer",
        GOOD,
        'choices = ["Adam", "RMSprop"]',
        'choices = ["Adam", "SGD"]',
        "space.optimizer holds 'SGD'; every value must be one of Adam, RMSprop",
    ),
    (
        "negative lr",
        GOOD,
        'draw = "normal"\nmean = 1e-3\nstd = 1e-3\nsize = 10',
        "choices = [-1e-3]",
        "space.lr holds -0.001; every value must be a number above 0",
    ),
    (
        "zero latent dim",
        GOOD,
        "choices = [2, 3, 4",
        "choices = [0, 3, 4",
        "space.latent_dim holds 0; every value must be an integer of at least 1",
    ),
    ("fractional latent dim", GOOD, "choices = [2, 3, 4", "choices = [2.5, 3, 4", "space.latent_dim holds 2.5"),
    (
        "negative weight decay",
        GOOD,
        "include = [0]",
        "include = [-1]",
        "space.weight_decay holds -1.0; every value must be a number of at least 0",
    ),
    ("drawn nh1 of 0", GOOD, "low = 50\nhigh = 150", "low = 0\nhigh = 2", "space.nh1 holds 0 (drawn with seed 2020)"),
    (
        "nh1 as a float range",
        GOOD,
        'draw = "randint"\nlow = 50\nhigh = 150\nsize = 10',
        'range = "float"\nlow = 50\nhigh = 150',
        "space.nh1.range must be 'int'",
    ),
    (
        "lr range from 0",
        GOOD,
        'draw = "normal"\nmean = 1e-3\nstd = 1e-3\nsize = 10',
        'range = "float"\nlow = 0.0\nhigh = 0.1',
        "space.lr.low must be a number above 0, got 0.0",
    ),
    (
        "optimizer as a range",
        GOOD,
        'choices = ["Adam", "RMSprop"]',
        'range = "int"\nlow = 0\nhigh = 1',
        "space.optimizer is a choice (one of Adam, RMSprop), not a range",
    ),
    (
        "unknown parameter",
        GOOD,
        "[space.optimizer]",
        "[space.momentum]\nchoices = [0.9]\n\n[space.optimizer]",
        "space.momentum is not a parameter of the autoencoder model",
    ),
    (
        "dropout of 1",
        CLF,
        "choices = [0, 0.05, 0.1]",
        "choices = [0, 0.05, 1.0]",
        "space.dropout holds 1.0; every value must be a number in [0, 1)",
    ),
    ("negative dropout", CLF, "choices = [0, 0.05, 0.1]", "choices = [-0.1]", "space.dropout holds -0.1"),
    ("grid lr of 0", CLF, "choices = [0.001, 0.005]", "choices = [0.0, 0.005]", "space.lr holds 0.0"),
    (
        "negative noise std",
        DAE,
        "noise_std = 0.1",
        "noise_std = -0.1",
        "model.noise_std must be a number above 0, got -0.1",
    ),
    (
        "noise amount above 1",
        DAE,
        "noise_amount = 0.1",
        "noise_amount = 1.5",
        "model.noise_amount must be a number in (0, 1], got 1.5",
    ),
    (
        "GAN dropout range to 1",
        GAN,
        "low = 0.0\nhigh = 0.5",
        "low = 0.0\nhigh = 1.0",
        "space.dropout.high must be a number in [0, 1), got 1.0",
    ),
    ("GAN batch size 0", GAN, "choices = [64, 128, 256]", "choices = [0, 128]", "space.batch_size holds 0"),
    (
        "GAN latent dim 0",
        GAN,
        "latent_dim = 100",
        "latent_dim = 0",
        "model.latent_dim must be an integer of at least 1",
    ),
    (
        "GAN one eval sample",
        GAN,
        "eval_samples = 2000",
        "eval_samples = 1",
        "model.eval_samples must be an integer of at least 2",
    ),
    ("GAN negative slope", GAN, "low = 0.05", "low = -0.05", "space.slope.low must be a number in [0, 1)"),
    (
        "GAN unknown parameter",
        GAN,
        "[space.slope]",
        "[space.momentum]",
        "space.momentum is not a parameter of the gan model",
    ),
]


@pytest.mark.parametrize("what,base,old,new,message", BAD_SPACES, ids=[c[0] for c in BAD_SPACES])
def test_bad_search_spaces_are_refused_at_load(tmp_path, what, base, old, new, message):
    assert old in base
    with pytest.raises(UserError) as e:
        load_study_config(write(tmp_path, base.replace(old, new, 1)))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_missing_required_parameter(tmp_path):
    text = GOOD[: GOOD.index("[space.optimizer]")] + GOOD[GOOD.index("# Learning rate") :]
    with pytest.raises(
        UserError,
        match="space.optimizer is missing; the autoencoder model needs latent_dim, nh1, optimizer, lr, weight_decay",
    ):
        load_study_config(write(tmp_path, text))


def test_configs_built_in_python_are_checked_by_run_study(tmp_path):
    import dataclasses

    from mnist_hpo.core.schema import ParamSpec
    from mnist_hpo.hpo.run import run_study

    cfg = load_study_config(STUDIES / "ae.toml")
    bad = dataclasses.replace(cfg, space={**cfg.space, "lr": ParamSpec("lr", "choices", choices=(-1.0,))})
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(UserError, match="space.lr holds -1.0"):
        run_study(bad, storage_url=url)
    assert not (tmp_path / "x.db").exists()
