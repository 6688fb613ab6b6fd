"""The public Python API (``mnist_hpo.__all__``): every name documented with an example, and the examples run.

The examples are doctests, run here in the order a reader meets them (the package's docstring first: it
makes the short study ``ae-quick`` that the others use), in an empty folder (``storage/`` new; the study
files ship with the package, MNIST is read from the user's cache), so they run as written.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

import mnist_hpo
from mnist_hpo.config import load_study_config
from mnist_hpo.errors import UserError

from .conftest import DATA, STUDIES

# Module, and the names whose examples run, in reading order.
EXAMPLES = [
    ("mnist_hpo", None),
    ("mnist_hpo.errors", ["UserError"]),
    ("mnist_hpo.core.schema", ["StudyConfig", "StudyConfig.with_overrides"]),
    ("mnist_hpo.config", ["load_study_config"]),
    ("mnist_hpo.hpo.run", ["run_study"]),
    ("mnist_hpo.artifacts.export", ["export_best", "export_study_trial", "latest_export"]),
    ("mnist_hpo.artifacts.loading", ["load_export"]),
]


def test_every_public_name_is_documented_with_an_example():
    for name in mnist_hpo.__all__:
        doc = getattr(mnist_hpo, name).__doc__ or ""
        assert ">>>" in doc, f"mnist_hpo.{name} has no example"
        module = getattr(mnist_hpo, name).__module__
        assert any(module == m and (names is None or name in names) for m, names in EXAMPLES), name
    assert "latest_export" in mnist_hpo.__all__ and "LATEST" in mnist_hpo.latest_export.__doc__


@pytest.mark.slow
@pytest.mark.mnist  # the examples read the MNIST cache (make data)
def test_the_examples_run_as_written(tmp_path, monkeypatch):
    (tmp_path / "xdg").mkdir()
    (tmp_path / "xdg" / "mnist-hpo").symlink_to(DATA)  # the user's cache, where `make data` put MNIST
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    for var in ("MNIST_HPO_STORAGE", "MNIST_HPO_STORAGE_DIR", "MNIST_HPO_DATA"):
        monkeypatch.delenv(var, raising=False)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    ran = []
    for module_name, names in EXAMPLES:
        module = importlib.import_module(module_name)
        tests = {t.name.removeprefix(module_name + "."): t for t in finder.find(module, module_name)}
        for name in names or [module_name]:
            test = tests[name]
            test.globs = {**vars(mnist_hpo), **test.globs}
            result = runner.run(test, out=lambda text, name=name: pytest.fail(f"the example of {name} fails:\n{text}"))
            assert result.attempted > 0
            ran.append(name)
    assert set(mnist_hpo.__all__) <= {n.split(".")[0] for n in ran}
    # the package example made its own study; nothing named `ae` with other settings
    import optuna

    names = [s.study_name for s in optuna.get_all_study_summaries("sqlite:///storage/mnist_hpo.db")]
    assert names == ["ae-quick"]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["storage"]  # no second copy of MNIST


def test_overrides_that_change_a_trial_need_a_new_name():
    cfg = load_study_config(STUDIES / "ae.toml")
    for change in (
        {"epochs": 1},
        {"subset": 4000},
        {"train_subset": 4000},
        {"seed": 1},
        {"batch_size": 128},
        {"dataset": "fashion-mnist"},
        {"test_subset": 100},
        {"val_fraction": 0.25},
    ):
        with pytest.raises(UserError, match="changes what a trial means.*study_name="):
            cfg.with_overrides(**change)
        assert cfg.with_overrides(study_name="ae-other", **change).name == "ae-other"
    assert cfg.with_overrides(subset=4000, study_name="ae-4k").train_subset == 4000  # --subset's word, too
    for same in (
        {"trials": 3},
        {"device": "cpu"},
        {"retrain": False},
        {"trial_figures": False},
        {"epochs": cfg.epochs},
        {"epochs": None},
    ):
        assert cfg.with_overrides(**same).name == "ae"  # nothing that changes a trial's meaning


def test_a_wrong_keyword_is_one_error_listing_the_accepted_ones():
    cfg = load_study_config(STUDIES / "ae.toml")
    with pytest.raises(UserError) as e:
        cfg.with_overrides(epoch=1)
    message = str(e.value)
    assert "'epoch'" in message and "accepted:" in message and "\n" not in message
    for key in ("epochs", "subset", "study_name", "train_subset", "trials", "seed"):
        assert key in message.split("accepted:")[1].split(", ") or f" {key}" in message
    with pytest.raises(UserError, match="set the same setting"):
        cfg.with_overrides(subset=100, train_subset=200, study_name="x")


def test_export_best_returns_an_existing_export_after_checking_it(ae_cfg, tiny, storage, monkeypatch):
    from mnist_hpo.artifacts import export, loading
    from mnist_hpo.hpo.run import run_study

    run_study(ae_cfg.with_overrides(trials=2), storage_url=storage, data=tiny, progress=False)
    folder = export.export_best(ae_cfg.name, storage_url=storage, data=tiny, progress=False)
    before = (folder / "export.json").read_bytes()

    def no_retrain(*args, **kwargs):
        raise AssertionError("retrained an exported trial")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export, "export_trial", no_retrain)
        assert export.export_best(ae_cfg.name, storage_url=storage, data=tiny, progress=False) == folder
        assert (folder / "export.json").read_bytes() == before
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-1] + b"\0")  # changed after the export
        with pytest.raises(UserError, match="does not match the sha256 recorded at export time.*--redo"):
            export.export_best(ae_cfg.name, storage_url=storage, data=tiny, progress=False)
    assert export.export_best(ae_cfg.name, storage_url=storage, data=tiny, progress=False, redo=True) == folder
    assert loading.load_export(folder)[1]["study"] == ae_cfg.name  # written again, whole


def test_run_study_keeps_optunas_info_lines_back_unless_asked(ae_cfg, tiny, storage):
    """As quiet as the command line: no "A new study created in RDB …"; optuna_logs=True shows it, and
    Optuna's verbosity is what it was before either call."""
    import logging

    import optuna

    from mnist_hpo import run_study

    logged: list[logging.LogRecord] = []
    catcher = logging.Handler()
    catcher.emit = logged.append  # what Optuna's own handler would print (its logger does not propagate)
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)  # Optuna's own default, whatever ran before in this process
    logging.getLogger("optuna").addHandler(catcher)
    try:
        run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
        assert not [r.getMessage() for r in logged if r.levelno < logging.WARNING]
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
        run_study(
            ae_cfg.with_overrides(study_name="told", trials=1),
            storage_url=storage,
            data=tiny,
            progress=False,
            optuna_logs=True,
        )
        assert "A new study created in RDB with name: told" in [r.getMessage() for r in logged]
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        logging.getLogger("optuna").removeHandler(catcher)
        optuna.logging.set_verbosity(before)
