"""The report and optuna-dashboard opened in a real browser (Debian's chromium, headless)."""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import optuna
import pytest
from matplotlib.image import imread

from mnist_hpo.report.build import build_report

from ..conftest import running_dashboard

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser  # make test-fast leaves these out
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: run 'make browser' (apt-get install -y chromium)")
    return path


def run_chromium(url: str, *args: str, budget_ms: int = 0) -> str:
    with tempfile.TemporaryDirectory() as profile:  # a new, empty profile each time
        cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
        if budget_ms:
            cmd.append(f"--virtual-time-budget={budget_ms}")
        out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def screenshot(url: str, path: Path, *, size=(1280, 1600), budget_ms: int = 0) -> np.ndarray:
    run_chromium(url, f"--screenshot={path}", f"--window-size={size[0]},{size[1]}", budget_ms=budget_ms)
    img = imread(path)[..., :3]
    assert img.shape[:2] == (size[1], size[0])
    return img


def assert_not_blank(img: np.ndarray) -> None:
    assert img.std() > 0.05, "the screenshot is blank"
    # More than a few stray pixels differ from the page background.
    background = np.median(img.reshape(-1, 3), axis=0)
    assert (np.abs(img - background).sum(axis=2) > 0.1).mean() > 0.02


def test_report_renders_in_chromium(ae_export, monkeypatch, tmp_path):
    storage_dir, url, _ = ae_export
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(storage_dir))
    html_path, _ = build_report(url, out=tmp_path / "report.html")
    img = screenshot(html_path.as_uri(), tmp_path / "report.png", size=(1280, 3000))
    assert_not_blank(img)
    dom = run_chromium(html_path.as_uri(), "--dump-dom")
    assert "Reproduction report" in dom and dom.count("<img") >= 7


@pytest.fixture
def dashboard(ae_export):
    """optuna-dashboard (through our CLI, with the artifact store) on a free loopback port; stopped after."""
    storage_dir, url, _ = ae_export
    with running_dashboard(url, env={**os.environ, "MNIST_HPO_STORAGE_DIR": str(storage_dir)}) as base:
        yield base, url


def test_dashboard_shows_study_and_trial_artifact(dashboard, tmp_path):
    base, url = dashboard
    study = optuna.load_study(study_name="ae", storage=url)
    # The study list.
    dom = run_chromium(f"{base}/dashboard", "--dump-dom", budget_ms=10_000)
    assert f">{study._study_id}. ae<" in dom  # the study's card: "<id>. <name>"
    assert_not_blank(screenshot(f"{base}/dashboard", tmp_path / "list.png", budget_ms=10_000))
    # A trial's page with its reconstruction artifact, rendered as an image from the artifact store.
    page = f"{base}/dashboard/studies/{study._study_id}/trials"
    dom = run_chromium(page, "--dump-dom", budget_ms=15_000)
    assert "reconstruction-trial-0.png" in dom
    src = dom.split("/artifacts/", 1)[1].split('"', 1)[0]
    assert urllib.request.urlopen(f"{base}/artifacts/{src}", timeout=10).read()[:8] == b"\x89PNG\r\n\x1a\n"
    img = screenshot(page, tmp_path / "trial.png", budget_ms=15_000)
    assert_not_blank(img)


def _pre_names_studies(url: str) -> dict[str, int]:
    """Two studies stored as mnist-hpo stored them before it recorded metric names: one objective, and a
    Pareto study of two (its config names them); returns their ids."""
    made = {}
    for name, directions, objectives, values in (
        ("old-ae", ["minimize"], [], [0.0213]),
        ("old-pareto", ["minimize", "minimize"], ["val_mse", "params"], [0.0181, 19763.0]),
    ):
        study = optuna.create_study(study_name=name, storage=url, directions=directions)
        study.set_user_attr("config", {"name": name, "model": "autoencoder", "objectives": objectives})
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": 0.001},
                distributions={"lr": optuna.distributions.FloatDistribution(1e-5, 1e-1)},
                values=values,
            )
        )
        assert study.metric_names is None
        made[name] = study._study_id
    return made


def test_dashboard_names_every_objective_and_writes_nothing(tmp_path):
    """The study page says val_mse, and the Pareto study's axes val_mse and params, for studies stored
    before names were recorded; the dashboard, a reader, leaves the storage as it was."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    ids = _pre_names_studies(url)
    before = hashlib.sha256((tmp_path / "old.db").read_bytes()).hexdigest()
    env = {**os.environ, "MNIST_HPO_STORAGE_DIR": str(tmp_path / "storage")}
    with running_dashboard(url, env=env) as base:
        detail = json.loads(urllib.request.urlopen(f"{base}/api/studies/{ids['old-pareto']}", timeout=10).read())
        assert detail["objective_names"] == ["val_mse", "params"]
        dom = run_chromium(f"{base}/dashboard/studies/{ids['old-ae']}", "--dump-dom", budget_ms=15_000)
        assert "val_mse" in dom and "Objective 0" not in dom
        dom = run_chromium(f"{base}/dashboard/studies/{ids['old-pareto']}", "--dump-dom", budget_ms=15_000)
        assert "val_mse" in dom and "params" in dom and "Objective 1" not in dom
    assert hashlib.sha256((tmp_path / "old.db").read_bytes()).hexdigest() == before
    assert not (tmp_path / "storage").exists()  # no artifacts folder made either
