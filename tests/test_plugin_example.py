"""The example plugin (examples/mnist-hpo-vae), installed into this environment and tuned end to end.

Each step is its own ``mnist-hpo`` process, as a user runs them: nothing the plugin registered in
one process is there in the next unless the installed entry point provides it again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest

from .conftest import DATA, ROOT, running_dashboard

EXAMPLE = ROOT / "examples" / "mnist-hpo-vae"
STUDY_FILE = EXAMPLE / "studies" / "vae.toml"


@pytest.fixture(scope="module")
def installed():
    """``pip install -e examples/mnist-hpo-vae`` into the running environment (the project's .venv).

    --no-deps: mnist-hpo and torch are already here; --no-build-isolation where setuptools is too
    (Python 3.11's venvs have it), so nothing is downloaded; without it pip fetches setuptools to build.
    """
    import importlib.util

    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            *isolation,
            "-e",
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, f"pip install -e {EXAMPLE} failed: {p.stderr}"


@pytest.fixture
def mnist_hpo(tmp_path, installed):
    """Run ``mnist-hpo ARGS`` in a fresh process, in a scratch folder, with this checkout's mnist_hpo."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
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
            timeout=300,
        )

    run.env = env
    return run


def _dashboard_studies(env: dict, storage: str, cwd) -> str:
    """``mnist-hpo dashboard`` on ``storage``: its /api/studies answer; stopped after."""
    with running_dashboard(storage, env=env, cwd=cwd) as base:
        return urllib.request.urlopen(f"{base}/api/studies", timeout=5).read().decode()


def _ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.mark.slow
def test_the_example_plugin_is_tuned_exported_verified_and_rerun(tmp_path, mnist_hpo):
    journal = f"journal:{tmp_path / 'vae.log'}"
    # a short run in its own journal, so it keeps the file's name, said explicitly (--epochs needs --study-name)
    _ok(
        mnist_hpo(
            "study",
            str(STUDY_FILE),
            "--workers",
            "2",
            "--trials",
            "4",
            "--epochs",
            "1",
            "--subset",
            "1000",
            "--study-name",
            "vae",
            "--storage",
            journal,
            "--no-retrain",
            "--quiet",
        )
    )

    import optuna

    from mnist_hpo.storages import open_storage

    study = optuna.load_study(study_name="vae", storage=open_storage(journal))
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 4
    identity = study.user_attrs["identity"]
    assert identity["model.type"] == "vae"
    assert identity["plugin.path"] == "mnist_hpo_vae.task:VaeTask"
    assert identity["plugin.distribution"] == "mnist-hpo-vae" and identity["plugin.version"] == "0.1.0"

    shown = _ok(mnist_hpo("show", "vae", "--storage", journal))
    assert "study vae: 4 complete" in shown and "val_loss" in shown

    exported = _ok(mnist_hpo("export", "vae", "--storage", journal, "--quiet"))
    assert "test_loss" in exported and "test_mse" in exported
    folder = tmp_path / "storage" / "exports" / "vae" / f"trial-{study.best_trial.number}"
    meta = json.loads((folder / "export.json").read_text())
    assert meta["provider"] == {
        "path": "mnist_hpo_vae.task:VaeTask",
        "distribution": "mnist-hpo-vae",
        "version": "0.1.0",
    }

    verified = mnist_hpo("verify", str(folder))
    assert verified.returncode == 0 and verified.stdout.rstrip().endswith("verified"), verified.stdout + verified.stderr
    assert "test_loss: recorded" in verified.stdout and not verified.stderr.strip()

    # A tampered copy: one byte of the weights changed.
    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    weights = bytearray((tampered / "model.safetensors").read_bytes())
    weights[-1] ^= 0xFF
    (tampered / "model.safetensors").write_bytes(bytes(weights))
    failed = mnist_hpo("verify", str(tampered))
    assert failed.returncode == 1 and "verify failed" in failed.stderr and "sha256" in failed.stderr, failed.stderr

    # A copy recording another version of the plugin: one warning line, and the numbers decide (they match).
    other = tmp_path / "other-version"
    shutil.copytree(folder, other)
    meta["provider"]["version"] = "0.0.1"
    (other / "export.json").write_text(json.dumps(meta))
    warned = mnist_hpo("verify", str(other))
    assert warned.returncode == 0 and warned.stdout.rstrip().endswith("verified"), warned.stdout + warned.stderr
    lines = warned.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnist-hpo: warning: ") and "mnist-hpo-vae 0.0.1" in lines[0]

    # The commands that read studies work on the plugin's too.
    assert "vae" in _ok(mnist_hpo("compare", "vae", "--journals", str(tmp_path), "--out", str(tmp_path / "c.png")))
    _ok(mnist_hpo("report", "--journals", str(tmp_path), "--out", str(tmp_path / "report.html")))
    assert "### vae" in (tmp_path / "report.md").read_text()
    assert '"vae"' in _dashboard_studies(mnist_hpo.env, journal, tmp_path)

    # rerun, with the study recording another version of the plugin than the installed one: one warning line,
    # and the numbers decide (identical: the code did not change).
    study.set_user_attr("identity", {**identity, "plugin.version": "0.0.1"})
    rerun = mnist_hpo("rerun", "vae", "0", "--storage", journal)
    assert rerun.returncode == 0 and "(identical)" in rerun.stdout, rerun.stdout + rerun.stderr
    lines = rerun.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("mnist-hpo: warning: study vae: ")
        and "made with mnist-hpo-vae 0.0.1, this environment has mnist-hpo-vae 0.1.0" in lines[0]
    ), rerun.stderr


@pytest.mark.slow
def test_the_example_plugin_trains_as_a_population(tmp_path, mnist_hpo):
    """Population-based training of the plugin's VAE: two hooks in its task (start_training, train_epochs)."""
    journal = f"journal:{tmp_path / 'vae-pbt.log'}"
    out = _ok(
        mnist_hpo(
            "study",
            str(EXAMPLE / "studies" / "vae-pbt.toml"),
            "--workers",
            "2",
            "--epochs",
            "4",
            "--subset",
            "500",
            "--study-name",
            "vae-pbt",
            "--storage",
            journal,
            "--quiet",
        )
    )
    assert "best member" in out and "exported with its lineage" in out, out

    import optuna

    from mnist_hpo.storages import open_storage

    study = optuna.load_study(study_name="vae-pbt", storage=open_storage(journal))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == len(study.trials) == 12  # 6 members x 2 segments of 2 epochs
    shown = _ok(mnist_hpo("show", "vae-pbt", "--storage", journal))
    assert "population-based training: 6 members x 2 segments of 2 epochs (4 epochs each)" in shown
    folder = next(line.split("exported to ", 1)[1].strip() for line in out.splitlines() if "exported to" in line)
    assert _ok(mnist_hpo("verify", folder)).rstrip().endswith("verified")
    exploited = next(t.number for t in complete if t.user_attrs["pbt"].get("exploited"))
    rerun = _ok(mnist_hpo("rerun", "vae-pbt", str(exploited), "--storage", journal))
    assert "identical, and so is the checkpoint it ended with" in rerun, rerun


@pytest.mark.mnist  # loads the full MNIST cache (in a child process, so no fixture marks it)
def test_the_example_plugin_brings_its_own_dataset(tmp_path, installed):
    """The data hook: an entry point in group mnist_hpo.datasets, its arrays checked as the built-in ones are."""
    code = (
        "from mnist_hpo.data.datasets import load_dataset\nfrom mnist_hpo.data.names import is_dataset\n"
        "d = load_dataset('mnist-binarized')\n"
        "print(is_dataset('mnist-binarized'), d.train_images.dtype, tuple(d.train_images.shape), "
        "sorted(d.train_images.unique().tolist()), d.train_labels.dtype)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MNIST_HPO_DATA": str(DATA)}
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["True", "torch.uint8", "(60000,", "28,", "28)", "[0,", "255]", "torch.int64"]


def test_nothing_in_the_package_names_the_example():
    """A new family touches no file under mnist_hpo/: the example is found through its entry point alone."""
    named = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "mnist_hpo").rglob("*.py")
        if any(word in p.read_text() for word in ("mnist_hpo_vae", "mnist-hpo-vae", "VaeTask"))
    ]
    assert not named, named
