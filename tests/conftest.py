"""Shared fixtures: the real MNIST (prepared by `make data`), tiny subsets of it, temporary storage."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from mnist_hpo.config import load_study_config
from mnist_hpo.core.study_files import STUDIES_DIR
from mnist_hpo.data.datasets import default_data_dir, load_dataset

ROOT = Path(__file__).resolve().parents[1]
STUDIES = STUDIES_DIR  # the study files that ship with the package
# The MNIST cache `make data` fills ($MNIST_HPO_DATA, else the user's cache folder), fixed when the suite
# starts: tests that point MNIST_HPO_DATA elsewhere still read the real data from here.
DATA = default_data_dir().resolve()
# Plugins of the test suite's own, named by import path (tinyplug.task:TinyTask): never installed, put on
# the path of the processes that use them (tests/plugins/tinyplug).
PLUGINS = ROOT / "tests" / "plugins"

torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items):
    """Mark what a test needs, from its fixtures, so `make test-fast` can leave it out (pyproject.toml's markers).

    ``mnist``: the full MNIST cache (`make data`), through the ``mnist`` fixture or one built on it;
    ``postgres``: the PostgreSQL server, through ``pg_database``. A test marked by hand keeps its marks.
    """
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "mnist" in names:
            item.add_marker(pytest.mark.mnist)
        if "pg_database" in names:
            item.add_marker(pytest.mark.postgres)


TINYPLUG_SPACE = """
[space.hidden]
range = "int"
low = 4
high = 16

[space.lr]
range = "float"
low = 0.01
high = 1.0
log = true

[space.activation]
choices = ["relu", "tanh"]
"""


def tinyplug_study(task: str = "TinyTask", **study) -> str:
    """A study file of the tests' own plugin ``tinyplug.task:TASK`` (tests/plugins), with these ``[study]`` keys."""
    import json

    keys = "".join(f"{key} = {json.dumps(value)}\n" for key, value in study.items())  # JSON's scalars are TOML's
    return f'[study]\n{keys}\n[model]\ntype = "tinyplug.task:{task}"\n{TINYPLUG_SPACE}'


@pytest.fixture
def clean_registry():
    """Undo what a test trusts, loads or registers in the task registry (it is per process), and the
    plugin modules it imported (toyplug, tinyplug, my_package: the tests' own)."""
    from mnist_hpo.tasks import registry
    from mnist_hpo.tasks.known import REGISTRY

    trusted, loaded, families = set(registry._trusted), dict(registry._loaded), dict(REGISTRY)
    modules = set(sys.modules)
    yield
    registry._trusted.clear(), registry._trusted.update(trusted)
    registry._loaded.clear(), registry._loaded.update(loaded)
    REGISTRY.clear(), REGISTRY.update(families)
    for name in set(sys.modules) - modules:
        if name.split(".")[0] in ("toyplug", "tinyplug", "my_package"):
            del sys.modules[name]


@pytest.fixture(scope="session")
def mnist():
    """The full MNIST, from the cache `make data` fills (built on first use)."""
    return load_dataset("mnist", data_dir=DATA)


@pytest.fixture(scope="session")
def tiny(mnist):
    """600 training and 200 test images: enough for a trial in well under a second."""
    return mnist.subset(600, 200)


@pytest.fixture
def storage(tmp_path, monkeypatch):
    """A throwaway SQLite storage URL; exports go under the same temporary folder."""
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    return f"sqlite:///{tmp_path / 'studies.db'}"


def storage_snapshot(url: str) -> dict:
    """Everything a refused command must leave as it was: every study's attributes and trials."""
    from mnist_hpo.storages import open_storage

    s = open_storage(url)
    return {
        st.study_name: (
            s.get_study_user_attrs(st._study_id),
            s.get_study_system_attrs(st._study_id),
            [(t.number, t.state, t.params, t.values, t.user_attrs) for t in s.get_all_trials(st._study_id)],
        )
        for st in s.get_all_studies()
    }


@pytest.fixture
def ae_cfg():
    """The shipped ae cut down to 3 trials x 1 epoch on 600 images."""
    cfg = load_study_config(STUDIES / "ae.toml")
    return cfg.with_overrides(name="ae-test", trials=3, epochs=1, train_subset=600, test_subset=200, batch_size=128)


@pytest.fixture(scope="session")
def ae_export(tmp_path_factory, tiny):
    """A study 'ae' of 2 trials x 1 epoch on `tiny`, its best trial exported and its latent space explored.

    Yields (storage dir, storage URL, export folder); tests that read it set MNIST_HPO_STORAGE_DIR themselves.
    """
    from mnist_hpo.analysis.explore import ExploreSettings, run_explore
    from mnist_hpo.artifacts.export import export_best
    from mnist_hpo.hpo.run import run_study

    root = tmp_path_factory.mktemp("ae-export")
    url = f"sqlite:///{root / 'storage' / 'mnist_hpo.db'}"
    cfg = load_study_config(STUDIES / "ae.toml").with_overrides(
        name="ae", trials=2, epochs=1, train_subset=600, test_subset=200, batch_size=128
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MNIST_HPO_STORAGE_DIR", str(root / "storage"))
        run_study(cfg, storage_url=url, data=tiny, progress=False)
        folder = export_best("ae", storage_url=url, data=tiny, progress=False)
        run_explore(folder, ExploreSettings(points=200, tsne_points=120, tsne_iter=250), data=tiny, log=lambda *a: None)
    return root / "storage", url, folder


@pytest.fixture(scope="session")
def fidnet(mnist):
    """The cached quality classifier next to MNIST (installed once by `make data`, on first use otherwise)."""
    from mnist_hpo.measures.frechet import load_fidnet, prepare_fidnet

    prepare_fidnet(mnist, DATA)
    return load_fidnet("mnist", DATA, dataset_checksum=mnist.checksum)[0]


@pytest.fixture
def gan_cfg(fidnet, monkeypatch):
    """The shipped gan-search cut down to 2 trials x 2 epochs on 400 images, scored on few samples."""
    import dataclasses

    monkeypatch.setenv("MNIST_HPO_DATA", str(DATA))  # where the task finds the classifier
    cfg = load_study_config(STUDIES / "gan-search.toml")
    cfg = cfg.with_overrides(name="gan-test", trials=2, epochs=2, train_subset=400, test_subset=300)
    options = {**cfg.model_options, "eval_samples": 200, "final_samples": 300}
    return dataclasses.replace(cfg, model_options=options)


PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_database():
    """Make throwaway PostgreSQL databases on 127.0.0.1:5432 (unique names); all are dropped at the end.

    Only databases this fixture created are ever dropped. An unreachable server is an
    error, not a skip: PostgreSQL runs wherever the suite runs.
    """
    import uuid

    import sqlalchemy

    admin = sqlalchemy.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    prefix = f"mnist_hpo_test_{uuid.uuid4().hex[:10]}"
    made: list[str] = []

    def make(suffix: str = "studies") -> str:
        name = f"{prefix}_{suffix}"
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

    try:
        yield make
    finally:
        with admin.connect() as c:
            for name in made:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url(pg_database):
    """One throwaway PostgreSQL database for this session's studies (each test uses its own study names)."""
    return pg_database("studies")


@pytest.fixture(scope="session")
def model_exports(tmp_path_factory, tiny, mnist, fidnet, ae_export):
    """Real tiny exports of every other model family, and a tiny `make gan` run, in one storage.

    Studies 'dae' (1 trial x 1 epoch), 'clf' (a 2-point grid x 1 epoch on the encoder of
    `ae_export`) and 'gan-search' (1 trial x 2 epochs on 400 images), each exported, and
    the run storage/gan/short (2 epochs). Yields (storage dir, storage URL, {kind: export folder}).
    """
    import dataclasses

    from mnist_hpo.artifacts.export import export_best, resolve_config
    from mnist_hpo.core.schema import ParamSpec
    from mnist_hpo.hpo.run import run_study
    from mnist_hpo.tasks.gan import GanTask, single_point
    from mnist_hpo.workflows.gan_run import run_gan

    root = tmp_path_factory.mktemp("model-exports") / "storage"
    url = f"sqlite:///{root / 'mnist_hpo.db'}"
    small = dict(epochs=1, train_subset=600, test_subset=200, batch_size=100)
    gan_options = {"eval_samples": 200, "final_samples": 300}
    folders = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MNIST_HPO_STORAGE_DIR", str(root))
        mp.setenv("MNIST_HPO_DATA", str(DATA))
        dae = load_study_config(STUDIES / "dae.toml").with_overrides(study_name="dae", trials=1, **small)
        run_study(dae, storage_url=url, data=tiny, progress=False)
        folders["denoising"] = export_best("dae", storage_url=url, data=tiny, progress=False)

        clf = load_study_config(STUDIES / "clf.toml").with_overrides(study_name="clf", trials=2, **small)
        space = {
            **clf.space,
            "nh1": ParamSpec("nh1", "choices", choices=(16, 32)),
            **{
                k: ParamSpec(k, "choices", choices=(v,))
                for k, v in (("weight_decay", 0.0), ("optimizer", "Adam"), ("lr", 0.005), ("dropout", 0.0))
            },
        }
        clf = dataclasses.replace(
            clf, space=space, model_options={**clf.model_options, "encoder_export": str(ae_export[2])}
        )
        clf = resolve_config(clf, url)
        run_study(clf, storage_url=url, data=tiny, progress=False)
        folders["classifier"] = export_best("clf", storage_url=url, data=tiny, progress=False)

        gan = load_study_config(STUDIES / "gan-search.toml").with_overrides(
            study_name="gan-search", trials=1, epochs=2, train_subset=400, test_subset=300
        )
        gan = dataclasses.replace(gan, model_options={**gan.model_options, **gan_options})
        run_study(gan, storage_url=url, data=mnist, progress=False)
        folders["gan"] = export_best("gan-search", storage_url=url, data=mnist, progress=False)

        report_gan = load_study_config(STUDIES / "gan.toml").with_overrides(
            study_name="gan", train_subset=300, test_subset=300
        )
        report_gan = dataclasses.replace(
            report_gan, model_options={**report_gan.model_options, **gan_options, "eval_every": 2}
        )
        run_gan(
            GanTask(report_gan, mnist),
            single_point(report_gan),
            root / "gan" / "short",
            epochs=3,
            seed=1,
            every=1,
            log=lambda *a: None,
        )
    folders["autoencoder"] = ae_export[2]
    return root, url, folders


# A population-based study small enough for tests: 4 members x 3 segments of 1 epoch on 200 images.
TINY_PBT = """
[study]
name = "{name}"
seed = 3
epochs = {epochs}
batch_size = 32
train_subset = {subset}
test_subset = 50
trial_figures = false

[model]
type = "autoencoder"

[pbt]
population = 4
interval = {interval}
mutable = ["lr", "weight_decay"]

[space.latent_dim]
choices = [2, 3]

[space.nh1]
choices = [16]

[space.optimizer]
choices = ["Adam", "RMSprop"]

[space.lr]
range = "float"
low = 1e-4
high = 1e-2
log = true

[space.weight_decay]
choices = [0.0, 1e-5, 1e-4]
"""


def tiny_pbt_file(folder, name: str = "tiny-pbt", *, epochs: int = 3, interval: int = 1, subset: int = 200):
    path = folder / f"{name}.toml"
    path.write_text(TINY_PBT.format(name=name, epochs=epochs, interval=interval, subset=subset))
    return path


def check_killed_trial_retried(before: dict, after: dict, killed: int):
    """After a kill mid-trial and a resume (trials by number, before and after).

    Every trial finished before is unchanged, the killed one is FAIL and was retried exactly
    once, to the end, with its parameters and seed. Returns the retry.
    """
    from optuna.trial import TrialState

    for n, t in before.items():
        if t.state == TrialState.COMPLETE:  # nothing finished is lost or trained again
            assert after[n].state == TrialState.COMPLETE and after[n].value == t.value
            assert after[n].intermediate_values == t.intermediate_values
            assert after[n].datetime_complete == t.datetime_complete
    assert after[killed].state == TrialState.FAIL
    retries = [t for t in after.values() if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == before[killed].params
    assert retries[0].user_attrs["seed"] == before[killed].user_attrs["seed"]
    return retries[0]


def assert_one_error_line(capsys, argv: list[str], expected: str) -> None:
    """``mnist-hpo ARGV`` exits 2 with exactly one ``mnist-hpo: error:`` line that contains ``expected``."""
    from mnist_hpo.cli import main

    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("mnist-hpo: error: "), err
    assert expected in lines[0], lines[0]


def start_dashboard(storage: str, *, env: dict | None = None, cwd=None, **popen) -> tuple[subprocess.Popen, str]:
    """``mnist-hpo dashboard --storage STORAGE`` on a free loopback port: the process and its base URL, once it
    answers. ``popen``: more options for ``subprocess.Popen``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnist_hpo", "dashboard", "--storage", storage, "--port", str(port)],
        cwd=cwd or ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **popen,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # the server imports torch first: slow on a busy machine
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/studies", timeout=5).read()
            return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the dashboard did not start: {proc.communicate()[1].decode()[-2000:]}")
            time.sleep(0.5)


@contextlib.contextmanager
def running_dashboard(storage: str, *, env: dict | None = None, cwd=None):
    """``mnist-hpo dashboard --storage STORAGE`` on a free loopback port, once it answers: yields its base URL; stopped after."""
    proc, base = start_dashboard(storage, env=env, cwd=cwd)
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
