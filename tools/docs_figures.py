"""Make the figures that README and docs/ show from the committed record (``make figures``).

Every figure is copied from the record's own exports and report figures (results/), so what the
documentation shows is what the record holds: trial 44 of study ``ae`` (the record's best
autoencoder), its latent-space exploration, the classifier's confusion matrix, the report's GAN and
the protocol comparison. Two screenshots are taken in headless chromium when it is installed
(``make browser``): results/report.html, and optuna-dashboard serving a copy of the record's ``ae``
journal, on its best trial (44); without chromium those two are left as they are.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
AE = ROOT / "results" / "exports" / "ae" / "trial-44"
COPIES = {
    "tsne2.png": AE / "explore" / "tsne2.png",
    "pca2.png": AE / "explore" / "pca2.png",
    "noise.png": AE / "explore" / "noise.png",
    "interpolation.png": AE / "explore" / "interpolation.png",
    "reconstructions.png": AE / "reconstructions.png",
    "loss.png": AE / "loss.png",
    "confusion.png": ROOT / "results" / "exports" / "clf" / "trial-167" / "confusion_matrix.png",
    "gan.png": ROOT / "results" / "gan" / "gan" / "first_vs_final.png",
    "anytime.png": ROOT / "results" / "report-figures" / "anytime.png",
    "pareto.png": ROOT / "results" / "report-figures" / "ae-pareto-pareto.png",
}


def screenshot_report(path: Path) -> bool:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={path}",
                "--window-size=1280,1400",
                (ROOT / "results" / "report.html").as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return True


def screenshot_dashboard(path: Path) -> bool:
    """optuna-dashboard on a copy of the record's ``ae`` journal (results/ stays untouched): its trials page."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return False
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "ae.log"
        shutil.copyfile(ROOT / "results" / "journals" / "ae.log", journal)
        storage = Path(tmp) / "storage"
        shutil.copytree(ROOT / "results" / "artifacts", storage / "artifacts")
        env = {**os.environ, "MNIST_HPO_STORAGE_DIR": str(storage), "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "mnist_hpo", "dashboard", "--storage", f"journal:{journal}", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(120):
                try:
                    urllib.request.urlopen(f"{base}/api/studies", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            with tempfile.TemporaryDirectory() as profile:
                subprocess.run(
                    [
                        browser,
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--hide-scrollbars",
                        f"--user-data-dir={profile}",
                        f"--screenshot={path}",
                        "--window-size=1280,1100",
                        "--virtual-time-budget=15000",
                        f"{base}/dashboard/studies/0/trials?numbers=44",
                    ],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return True


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, src in COPIES.items():
        if not src.exists():
            print(
                f"docs_figures: {src.relative_to(ROOT)} is missing; the record is incomplete "
                "(git checkout results/, or make reproduce)",
                file=sys.stderr,
            )
            return 1
        shutil.copyfile(src, OUT / name)
    made = screenshot_report(OUT / "report.png") and screenshot_dashboard(OUT / "dashboard.png")
    print(
        f"docs_figures: {len(COPIES)} figures copied from results/ into {OUT.relative_to(ROOT)}/"
        + (
            "; report.png and dashboard.png taken of the record in chromium"
            if made
            else "; no chromium: report.png and dashboard.png left as they were"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
