"""The GPU benchmark to run once when a session is lent a GPU (the `device` tool), ~5 minutes.

Prints: seconds per autoencoder epoch on 48k images (one trial, through the same
training loop a one-at-a-time study uses: mnist_hpo.train.loops), trials per minute
one at a time and stacked (mnist_hpo.train.stacked, K = 10 and 50), and the wall time of
the whole report protocol (50 trials x 50 epochs, mnist_hpo/studies/ae.toml) with
batch_trials = 50 on a throwaway SQLite file.
Usage: python benchmarks/gpu.py [--skip-study]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from mnist_hpo.config import load_study_config
from mnist_hpo.data.datasets import load_dataset, split_indices
from mnist_hpo.hpo.queries import best_trial
from mnist_hpo.hpo.run import run_study
from mnist_hpo.models import Autoencoder
from mnist_hpo.train.loops import evaluate_autoencoder, make_optimizer, seed_everything, train_autoencoder_epoch
from mnist_hpo.train.stacked import TrialSpec, fit_stacked


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-study", action="store_true")
    args = ap.parse_args()
    assert torch.cuda.is_available(), "no CUDA device"
    print(torch.cuda.get_device_name(0), torch.__version__, flush=True)
    data = load_dataset("mnist")
    tr_idx, va_idx = split_indices(60000, 0.2, 2020)
    train = data.train_images[tr_idx].cuda()
    val = data.train_images[va_idx].cuda()
    g = seed_everything(0)
    model = Autoencoder(9, 87).cuda()
    opt = make_optimizer("Adam", model.parameters(), lr=1e-3, weight_decay=5e-5)
    train_autoencoder_epoch(model, train[:2048], opt, batch_size=256, generator=g)  # warm-up
    for _ in range(2):
        torch.cuda.synchronize()
        t = time.perf_counter()
        train_autoencoder_epoch(model, train, opt, batch_size=256, generator=g)
        evaluate_autoencoder(model, val)
        torch.cuda.synchronize()
        one = time.perf_counter() - t
    print(
        f"one trial, plain loop: {one:.2f} s per epoch (train 48k + validate 12k); "
        f"{60 / (one * 50):.2f} trials (x50 epochs) per minute",
        flush=True,
    )
    specs = [TrialSpec(2 + i % 8, 50 + 2 * i, "Adam" if i % 2 else "RMSprop", 1e-3, 1e-5, i) for i in range(50)]
    fit_stacked(specs[:2], train, val, epochs=1, batch_size=256)  # warm-up
    for k in (1, 10, 50):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fit_stacked(specs[:k], train, val, epochs=2, batch_size=256)
        torch.cuda.synchronize()
        per_epoch = (time.perf_counter() - t) / 2
        print(
            f"K={k:3d}: {per_epoch:.2f} s per epoch of {k} trials; "
            f"{60 / (per_epoch * 50) * k:.1f} trials (x50 epochs) per minute",
            flush=True,
        )
    if not args.skip_study:
        cfg = load_study_config("ae").with_overrides(name="gpu", batch_trials=50, retrain=False)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            study = run_study(cfg, storage_url=f"sqlite:///{Path(tmp) / 'g.db'}", data=data, progress=False)
            wall = time.perf_counter() - t
            best = best_trial(study)
        print(
            f"full study 50 x 50 with batch_trials=50: {wall:.1f} s wall; best val MSE {best.value:.4f} "
            f"(trial {best.number}, {best.params})",
            flush=True,
        )


if __name__ == "__main__":
    main()
