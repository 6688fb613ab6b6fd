"""Plugins found by name (mnist_hpo/tasks/registry.py): import paths, what is recorded, and what is never imported."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from mnist_hpo.config import parse_study
from mnist_hpo.core.schema import StudyConfig
from mnist_hpo.errors import UserError
from mnist_hpo.tasks import registry

from ..conftest import DATA, PLUGINS, ROOT, assert_one_error_line, tinyplug_study

TOY = """
from mnist_hpo.tasks import Task
from mnist_hpo.tasks.rules import Rule


class ToyTask(Task):
    metric = "val_toy"
    space_rules = {"lr": Rule("float", low=0, low_open=True)}
"""

# A module whose import leaves a trace: what a stored study or export must not import on its own say-so.
EVIL = """
from pathlib import Path

Path(__file__).with_name("IMPORTED").write_text("the plugin's code ran")
"""


def _doc(model_type: str) -> dict:
    return {"study": {"name": "toy-study"}, "model": {"type": model_type}, "space": {"lr": {"choices": [0.1]}}}


def test_a_study_file_may_name_an_import_path_and_its_identity_records_it(tmp_path, monkeypatch, clean_registry):
    (tmp_path / "toyplug").mkdir()
    (tmp_path / "toyplug" / "__init__.py").write_text("")
    (tmp_path / "toyplug" / "tasks.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = parse_study(_doc("toyplug.tasks:ToyTask"), source="toy.toml")  # the user runs this file: trusted
    assert registry.resolve(cfg.model).__name__ == "ToyTask"
    assert registry.identity(cfg.model) == {
        "plugin.path": "toyplug.tasks:ToyTask",
        "plugin.distribution": None,
        "plugin.version": None,
    }
    assert registry.identity("autoencoder") == {}  # built-in studies keep the identity they were created with
    with pytest.raises(UserError, match="has no task class 'Nope'"):
        parse_study(_doc("toyplug.tasks:Nope"), source="toy.toml")


def test_an_unknown_model_type_lists_what_there_is_in_one_line():
    with pytest.raises(UserError) as e:
        parse_study(_doc("transformer"), source="t.toml")
    message = str(e.value)
    assert "\n" not in message and message.startswith("t.toml: model.type must be one of autoencoder, denoising")
    assert '"package.module:ClassName"' in message and "got 'transformer'" in message


def _fake_export(folder, model_type: str, provider: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"not really weights")
    meta = {
        "format": 1,
        "study": "s",
        "trial": 0,
        "model": {"type": model_type, "arch": {}, "options": {}},
        "provider": provider,
        "metrics": {"test_loss": 1.0},
        "dataset": {"name": "mnist", "checksum": "0" * 64},
        "config": json.loads(json.dumps(StudyConfig(name="s", model=model_type).as_dict(), default=str)),
        "weights": {"file": "model.safetensors", "sha256": hashlib.sha256(b"not really weights").hexdigest()},
    }
    (folder / "export.json").write_text(json.dumps(meta))


def test_an_export_of_a_plugin_not_installed_names_the_distribution_to_install(tmp_path, capsys):
    folder = tmp_path / "trial-0"
    _fake_export(
        folder,
        "vae-not-here",
        {"path": "mnist_hpo_nothere.task:VaeTask", "distribution": "mnist-hpo-nothere", "version": "1.2.3"},
    )
    assert_one_error_line(
        capsys,
        ["verify", str(folder)],
        "comes from the plugin distribution mnist-hpo-nothere, which is not installed here; "
        "install the distribution mnist-hpo-nothere==1.2.3",
    )


def test_a_stored_study_of_a_plugin_not_installed_names_the_distribution_to_install(tmp_path, capsys):
    url = _stored_study(
        tmp_path,
        "gone",
        "vae-not-here",
        {"path": "mnist_hpo_nothere.task:VaeTask", "distribution": "mnist-hpo-nothere", "version": "1.2.3"},
    )
    for argv in (["rerun", "gone", "0", "--storage", url], ["export", "gone", "--storage", url, "--quiet"]):
        assert_one_error_line(
            capsys,
            argv,
            "model type 'vae-not-here' comes from the plugin distribution "
            "mnist-hpo-nothere, which is not installed here; install the "
            "distribution mnist-hpo-nothere==1.2.3",
        )


def _stored_study(
    tmp_path,
    name: str = "evil",
    model: str = "evilplug:EvilTask",
    provider: dict | None = None,
    direction: str = "minimize",
    values: tuple[float, ...] = (0.5,),
) -> str:
    """A journal holding a study (a complete trial per value) of a plugin family, by default the import path
    evilplug:EvilTask."""
    import optuna

    from mnist_hpo.storages import open_storage

    provider = provider or {"path": model, "distribution": None, "version": None}
    url = f"journal:{tmp_path / f'{name}.log'}"
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line in a captured stderr
    try:
        study = optuna.create_study(study_name=name, storage=open_storage(url), direction=direction)
    finally:
        optuna.logging.set_verbosity(verbosity)
    config = json.loads(json.dumps(StudyConfig(name=name, model=model).as_dict(), default=str))
    study.set_user_attr("config", config)
    study.set_user_attr("model", model)
    study.set_user_attr("identity", {"model.type": model, **{f"plugin.{k}": v for k, v in provider.items()}})
    for value in values:
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": 0.1},
                distributions={"lr": optuna.distributions.FloatDistribution(0.01, 1.0)},
                value=value,
                user_attrs={"seed": 1},
            )
        )
    return url


@pytest.mark.processes  # a dozen fresh mnist-hpo processes
def test_a_stored_study_or_export_never_imports_an_import_path_unless_trusted(tmp_path):
    """Fresh processes, as a user runs them; the module could be imported (it is on PYTHONPATH), and never is."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "evilplug.py").write_text(EVIL)
    marker = plugins / "IMPORTED"
    url = _stored_study(tmp_path)
    _fake_export(
        tmp_path / "exports" / "trial-0",
        "evilplug:EvilTask",
        {"path": "evilplug:EvilTask", "distribution": None, "version": None},
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(plugins)]),
        "MNIST_HPO_STORAGE_DIR": str(tmp_path / "storage"),
        "MNIST_HPO_DATA": str(DATA),
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mnist_hpo", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    shown = run("show", "evil", "--storage", url)  # reads the trials without the model's code
    assert shown.returncode == 0 and "study evil: 1 complete" in shown.stdout, shown.stderr
    reported = run("report", "--journals", str(tmp_path), "--out", str(tmp_path / "report.html"))
    assert reported.returncode == 0 and "### evil" in (tmp_path / "report.md").read_text(), reported.stderr
    assert not marker.exists()
    for args in (
        ["rerun", "evil", "0", "--storage", url],
        ["export", "evil", "--storage", url, "--quiet"],
        ["verify", str(tmp_path / "exports" / "trial-0")],
    ):
        p = run(*args)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1, (args, p.stderr)
        assert lines[0].startswith("mnist-hpo: error: ") and "add --trust-plugin evilplug" in lines[0], lines[0]
        assert not marker.exists(), f"{args[0]} imported the stored study's module"
    # Asked explicitly, it is imported (so the checks above could have seen it happen).
    trusted = run("rerun", "evil", "0", "--storage", url, "--trust-plugin", "evilplug")
    assert marker.exists(), trusted.stderr
    assert "has no task class 'EvilTask'" in trusted.stderr


# --- a plugin named by import path, run from a study file: its workers, its failures, its stored names ---------


@pytest.fixture
def tiny_plugin(tmp_path, monkeypatch, clean_registry):
    """``write(name, task, trials)``: a study file of tests/plugins/tinyplug's ``task`` on 40 random images.

    tests/plugins is on sys.path, as on the PYTHONPATH of a user developing a plugin; the data cache is new.
    """
    import numpy as np

    from ..data.test_datasets import _idx_folder

    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("MNIST_HPO_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    rng = np.random.default_rng(0)
    idx = _idx_folder(
        tmp_path / "idx",
        rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
    )

    def write(name: str, task: str = "TinyTask", trials: int = 2):
        path = tmp_path / f"{name}.toml"
        path.write_text(
            tinyplug_study(
                task,
                name=name,
                seed=0,
                trials=trials,
                epochs=1,
                batch_size=16,
                train_subset=40,
                retrain=False,
                idx_dir=str(idx),
            )
        )
        return path

    return write


def test_the_workers_of_a_study_file_inherit_its_trust_in_an_import_path(tiny_plugin, tmp_path, monkeypatch, capsys):
    """``study FILE --workers 2``: each worker resolves the file's import path as the command did.

    The stand-in runs the worker's body (run_worker) with its typed settings in this process, after
    forgetting what this process trusts and imported: what a freshly spawned interpreter has.
    """
    from mnist_hpo.cli import main
    from mnist_hpo.hpo import workers

    seen = []

    class FreshWorker:
        def __init__(self, settings):
            seen.append(settings)
            registry._trusted.clear(), registry._loaded.clear()
            for name in [m for m in sys.modules if m.split(".")[0] == "tinyplug"]:
                del sys.modules[name]
            self.code = workers.run_worker(settings)

        def wait(self, timeout=None):
            return self.code

    monkeypatch.setattr(workers, "start_worker", FreshWorker)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    code = main(["study", str(tiny_plugin("inherits")), "--workers", "2", "--storage", url, "--quiet", "--no-retrain"])
    assert code == 0, capsys.readouterr().err
    assert [s.trusted_plugins for s in seen] == [("tinyplug.task",)] * 2
    assert "study inherits: 2 complete" in capsys.readouterr().out


def test_a_failing_plugin_shows_its_traceback_once_and_the_stop_line_says_where(tiny_plugin, tmp_path):
    """A forward that raises: the first failure's warning carries the traceback, the next ones are one line
    each that point back to it, and the line that stops the study says where the traceback was printed."""
    import logging

    from mnist_hpo.config import load_study_config
    from mnist_hpo.hpo.run import run_study

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__()
            self.records = []

        def emit(self, record):
            self.records.append(record)

    keep, logger = Keep(), logging.getLogger("optuna.study._optimize")
    logger.addHandler(keep)
    try:
        with pytest.raises(UserError) as e:
            run_study(
                load_study_config(tiny_plugin("broken", "BrokenTask", trials=6)),
                storage_url=f"sqlite:///{tmp_path / 'studies.db'}",
                progress=False,
            )
    finally:
        logger.removeHandler(keep)
    failed = [r for r in keep.records if "failed with parameters" in r.getMessage()]
    assert [r.exc_info is not None for r in failed] == [True, False, False]
    assert failed[0].exc_info[0] is ValueError and "the plugin's forward has a bug" in failed[0].getMessage()
    for r in failed[1:]:
        assert "the plugin's forward has a bug" in r.getMessage()
        assert "raised where trial 0's was; its traceback is above" in r.getMessage()
    assert "3 trials in a row failed" in str(e.value)
    assert "its full traceback is printed above, where trial 0 failed" in str(e.value)


def test_reading_commands_name_a_plugin_study_by_its_stored_metric_and_direction(tmp_path, capsys):
    """``show``, ``list`` and ``compare``'s curves, without the plugin's code: its metric by name, best first."""
    import optuna

    from mnist_hpo.analysis.anytime import study_curve
    from mnist_hpo.cli import main
    from mnist_hpo.hpo.objective import set_metric_names
    from mnist_hpo.storages import open_storage

    url = _stored_study(tmp_path, direction="maximize", values=(0.2, 0.9, 0.5))
    study = optuna.load_study(study_name="evil", storage=open_storage(url))
    set_metric_names(study, ["val_acc"])  # as a study is created (hpo.identity)
    assert main(["show", "evil", "--storage", url]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("Trial"))
    assert header.split()[-1] == "val_acc" and "loss" not in out
    rows = [line.split() for line in out.splitlines() if line[:5].strip().isdigit()]
    assert [r[0] for r in rows] == ["1", "2", "0"]  # 0.9, 0.5, 0.2: maximised
    assert main(["list", "--storage", url]) == 0
    assert "evil: 3 trials, best val_acc 0.9 (trial 1)" in capsys.readouterr().out
    assert study_curve(study).metric == "val_acc"
    assert "evilplug" not in sys.modules
