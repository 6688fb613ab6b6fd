"""`make bench`: the project's speed, measured side by side in one run, medians printed.

Sections (all by default; pick with --only):
  ae       seconds per autoencoder epoch on 48k images: the project's path (resident uint8
           tensor, index batches, channels_last) next to a torchvision DataLoader + ToTensor
           pipeline over the same images; and the fraction of the compute floor reached
           (FLOPs per image from torch.utils.flop_counter / this machine's fp32 matmul rate,
           measured in the same run).
  stacked  trials per minute training K autoencoders at once (mnist_hpo.batched) vs one at a time.
  storage  Optuna's overhead per trial at N trials with a trivial objective: SQLite vs in-memory.
Usage: python benchmarks/bench.py [--only ae,stacked,storage] [--reps 3] [--images 48000] [--storage-trials 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from mnist_hpo.batched import TrialSpec, fit_stacked
from mnist_hpo.data import load_dataset
from mnist_hpo.models import Autoencoder
from mnist_hpo.training import make_optimizer, seed_everything, train_autoencoder_epoch

BATCH = 256


def matmul_gflops(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    rates = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        rates.append(2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
    return max(rates)  # the machine's attainable rate: the best of a few tries


def flops_per_image(model: torch.nn.Module, x: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter:
        F.mse_loss(model(x), x).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def project_epoch(images: torch.Tensor) -> float:
    g = seed_everything(0)
    model = Autoencoder(9, 87).to(memory_format=torch.channels_last)
    opt = make_optimizer("Adam", model.parameters(), lr=1e-3, weight_decay=0.0)
    t = time.perf_counter()
    train_autoencoder_epoch(model, images, opt, batch_size=BATCH, generator=g)
    return time.perf_counter() - t


def dataloader_epoch(images: torch.Tensor) -> float:
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision.transforms import ToTensor

    class ArrayMNIST(Dataset):  # what torchvision.datasets.MNIST does per item
        def __init__(self, arr: np.ndarray) -> None:
            self.arr, self.tf = arr, ToTensor()

        def __len__(self) -> int:
            return len(self.arr)

        def __getitem__(self, i):
            return self.tf(Image.fromarray(self.arr[i], mode="L")), 0

    seed_everything(0)
    model = Autoencoder(9, 87)
    opt = make_optimizer("Adam", model.parameters(), lr=1e-3, weight_decay=0.0)
    loader = DataLoader(ArrayMNIST(images.numpy()), batch_size=BATCH, shuffle=True)
    t = time.perf_counter()
    model.train()
    for x, _ in loader:
        loss = F.mse_loss(model(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def bench_ae(images: torch.Tensor, reps: int) -> None:
    gflops = matmul_gflops()
    fpi = flops_per_image(Autoencoder(9, 87), torch.rand(BATCH, 1, 28, 28))
    floor = fpi * len(images) / (gflops * 1e9)
    runs: dict[str, list[float]] = {"project": [], "dataloader": []}
    for _ in range(reps):  # interleaved, so both see the same machine load
        runs["project"].append(project_epoch(images))
        runs["dataloader"].append(dataloader_epoch(images))
    p, d = statistics.median(runs["project"]), statistics.median(runs["dataloader"])
    print(f"ae: fp32 matmul {gflops:.1f} GFLOP/s; {fpi / 1e6:.2f} MFLOP per image (fwd+bwd); "
          f"compute floor {floor:.2f} s per {len(images)}-image epoch")
    print(f"ae: project path      {p:6.2f} s/epoch (median of {reps}: {', '.join(f'{v:.2f}' for v in runs['project'])})"
          f"  = {floor / p:.0%} of floor")
    print(f"ae: DataLoader+ToTensor {d:6.2f} s/epoch (median of {reps}: {', '.join(f'{v:.2f}' for v in runs['dataloader'])})"
          f"  = {floor / d:.0%} of floor; project is {d / p:.2f}x faster")


def bench_stacked(images: torch.Tensor, reps: int, k: int = 8) -> None:
    train, val = images[:-2000], images[-2000:]
    specs = [TrialSpec(9, 87 + i, "Adam" if i % 2 else "RMSprop", 1e-3, 1e-5, i) for i in range(k)]
    one, many = [], []
    for _ in range(reps):
        t = time.perf_counter()
        for s in specs[:2]:  # two single trials, scaled to k
            fit_stacked([s], train, val, epochs=1, batch_size=BATCH)
        one.append((time.perf_counter() - t) / 2)
        t = time.perf_counter()
        fit_stacked(specs, train, val, epochs=1, batch_size=BATCH)
        many.append((time.perf_counter() - t) / k)
    o, m = statistics.median(one), statistics.median(many)
    print(f"stacked: {len(train)}-image epoch per trial: one at a time {o:.2f} s, {k} stacked {m:.2f} s "
          f"({o / m:.2f}x trials per minute)")


def bench_storage(n: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", -1, 1) ** 2

    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, storage in (("in-memory", None), ("sqlite", f"sqlite:///{Path(tmp) / 'b.db'}")):
            study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
            t = time.perf_counter()
            study.optimize(objective, n_trials=n)
            results[name] = (time.perf_counter() - t) / n
    extra = results["sqlite"] - results["in-memory"]
    print(f"storage: {n} trivial trials: in-memory {results['in-memory'] * 1e3:.2f} ms/trial, "
          f"SQLite {results['sqlite'] * 1e3:.2f} ms/trial (overhead {extra * 1e3:.2f} ms/trial)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="ae,stacked,storage")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--images", type=int, default=48000)
    ap.add_argument("--storage-trials", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.reps} reps")
    images = load_dataset("mnist").train_images[: args.images]
    sections = args.only.split(",")
    if "ae" in sections:
        bench_ae(images, args.reps)
    if "stacked" in sections:
        bench_stacked(images, args.reps)
    if "storage" in sections:
        bench_storage(args.storage_trials)


if __name__ == "__main__":
    main()
