"""`make bench`: the project's speed, measured side by side in one run, medians printed.

Sections (all by default; pick with --only):
  ae       seconds per autoencoder epoch on 48k images: the project's path (resident uint8
           tensor, index batches, channels_last) next to a torchvision DataLoader + ToTensor
           pipeline over the same images; and the fraction of the compute floor reached
           (FLOPs per image from torch.utils.flop_counter / this machine's fp32 matmul rate,
           measured in the same run).
  layers   where an autoencoder step's time goes: forward+backward of each convolution at batch 256,
           as PyTorch runs it (contiguous and channels_last) and rewritten as im2col/col2im
           (unfold or fold + matmul), with the GFLOP/s each reaches.
  clf      seconds per classifier-head epoch (report section 4, frozen encoder): the project's path
           (codes computed once, resident, index batches) next to a DataLoader + ToTensor pipeline
           that runs the frozen encoder on every batch; and the fraction of the head's compute floor.
  gan      seconds per GAN epoch (MLP, batch 256): resident tensor vs DataLoader + ToTensor +
           Normalize; fraction of the compute floor of a whole training step (D real, D fake, G).
  workers  study throughput on this machine's cores: one process using every thread, against
           one single-threaded process per core side by side (what `--workers N` runs).
  stacked  trials per minute training K autoencoders at once (mnist_hpo.train.stacked) vs one at a time.
  storage  Optuna's overhead per trial at N trials with a trivial objective: SQLite vs in-memory.
  denormal seconds per autoencoder epoch with CPU denormals kept (torch's default) and flushed to zero
           (what training does, mnist_hpo/train/numerics.py), from the same trained state, for a
           trial stuck on the mean image (the record's trial 20: latent 5, L2 1.23e-4, RMSprop,
           lr 3.9e-4, nh1 138) and a healthy one (L2 0), after 8 warm-up epochs on 12,000 images.
  startup  seconds until the command line answers (wall time of a new process, median of --startup-runs):
           `mnist-hpo --help`, `mnist-hpo study studies/no-such.toml` (a study-file error) and
           `mnist-hpo show ae --storage sqlite:///no/such.db` (a storage error), beside `python -c pass`,
           `python -c "import optuna"` and `python -c "import torch"` run the same way. Run as
           `python -m mnist_hpo` from the checkout, which is what the `mnist-hpo` script runs.
Usage: python benchmarks/bench.py [--only ae,layers,clf,gan,workers,stacked,storage,denormal,startup] [--reps 3]
                                  [--images 48000] [--storage-trials 1000] [--startup-runs 20]
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from mnist_hpo.data.datasets import load_dataset
from mnist_hpo.models import Autoencoder
from mnist_hpo.models.autoencoder import Encoder
from mnist_hpo.models.classifier import Head
from mnist_hpo.models.gan import GAN
from mnist_hpo.train.classifier import encode, train_classifier_epoch
from mnist_hpo.train.gan import train_gan_epoch
from mnist_hpo.train.loops import make_optimizer, seed_everything, train_autoencoder_epoch
from mnist_hpo.train.stacked import TrialSpec, fit_stacked

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


def mnist_loader(images: torch.Tensor, labels: torch.Tensor | None = None, *, normalize: bool = False):
    """A DataLoader doing per item what torchvision.datasets.MNIST + ToTensor (+ Normalize) do."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    tf = transforms.Compose([transforms.ToTensor(), *([transforms.Normalize((0.5,), (0.5,))] if normalize else [])])

    class ArrayMNIST(Dataset):
        def __init__(self, arr: np.ndarray, lab: np.ndarray) -> None:
            self.arr, self.lab = arr, lab

        def __len__(self) -> int:
            return len(self.arr)

        def __getitem__(self, i):
            return tf(Image.fromarray(self.arr[i], mode="L")), int(self.lab[i])

    lab = labels.numpy() if labels is not None else np.zeros(len(images), dtype=np.int64)
    return DataLoader(ArrayMNIST(images.numpy(), lab), batch_size=BATCH, shuffle=True)


def dataloader_epoch(images: torch.Tensor) -> float:
    seed_everything(0)
    model = Autoencoder(9, 87)
    opt = make_optimizer("Adam", model.parameters(), lr=1e-3, weight_decay=0.0)
    loader = mnist_loader(images)
    t = time.perf_counter()
    model.train()
    for x, _ in loader:
        loss = F.mse_loss(model(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def bench_ae(images: torch.Tensor, reps: int, gflops: float) -> None:
    fpi = flops_per_image(Autoencoder(9, 87), torch.rand(BATCH, 1, 28, 28))
    floor = fpi * len(images) / (gflops * 1e9)
    runs: dict[str, list[float]] = {"project": [], "dataloader": []}
    for _ in range(reps):  # interleaved, so both see the same machine load
        runs["project"].append(project_epoch(images))
        runs["dataloader"].append(dataloader_epoch(images))
    p, d = statistics.median(runs["project"]), statistics.median(runs["dataloader"])
    print(f"ae: {fpi / 1e6:.2f} MFLOP per image (fwd+bwd); compute floor {floor:.2f} s per {len(images)}-image epoch")
    print(
        f"ae: project path      {p:6.2f} s/epoch (median of {reps}: {', '.join(f'{v:.2f}' for v in runs['project'])})"
        f"  = {floor / p:.0%} of floor"
    )
    print(
        f"ae: DataLoader+ToTensor {d:6.2f} s/epoch (median of {reps}: {', '.join(f'{v:.2f}' for v in runs['dataloader'])})"
        f"  = {floor / d:.0%} of floor; project is {d / p:.2f}x faster"
    )


def _conv_im2col(x: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor:
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    ho, wo = ((n + 2 * p - k) // s + 1 for n in x.shape[2:])
    cols = F.unfold(x, k, padding=p, stride=s)  # [B, Cin*k*k, L]
    y = torch.matmul(conv.weight.reshape(conv.out_channels, -1), cols) + conv.bias[:, None]
    return y.view(len(x), conv.out_channels, ho, wo)


def _deconv_col2im(x: torch.Tensor, deconv: torch.nn.ConvTranspose2d) -> torch.Tensor:
    k, s, p, op = deconv.kernel_size[0], deconv.stride[0], deconv.padding[0], deconv.output_padding[0]
    ho, wo = ((n - 1) * s - 2 * p + k + op for n in x.shape[2:])
    cin = x.shape[1]
    cols = torch.matmul(deconv.weight.reshape(cin, -1).t(), x.reshape(len(x), cin, -1))  # [B, Cout*k*k, HW]
    return F.fold(cols, (ho, wo), k, padding=p, stride=s) + deconv.bias[None, :, None, None]


def bench_layers(reps: int, gflops: float) -> None:
    """Forward + backward of each of the autoencoder's convolutions at batch 256, three ways."""
    torch.manual_seed(0)
    model = Autoencoder(9, 87)
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    x = torch.rand(BATCH, 1, 28, 28)
    shapes = []
    hooks = [c.register_forward_hook(lambda m, i, o: shapes.append(i[0].shape)) for c in convs]
    model(x)
    for h in hooks:
        h.remove()
    n = max(reps, 3) * 10
    print(f"layers: forward+backward per batch of {BATCH}, median of {n} (the first layer needs no input gradient)")
    total = {"native": 0.0, "channels_last": 0.0, "im2col": 0.0}
    for i, (conv, shape) in enumerate(zip(convs, shapes)):
        needs_grad = i > 0
        alt = _conv_im2col if isinstance(conv, torch.nn.Conv2d) else _deconv_col2im
        with FlopCounterMode(display=False) as counter:
            inp = torch.rand(shape, requires_grad=needs_grad)
            conv(inp).sum().backward()
        conv.zero_grad(set_to_none=True)
        flops = counter.get_total_flops()
        cl_conv = copy.deepcopy(conv).to(memory_format=torch.channels_last)
        ways = {
            "native": (conv, torch.contiguous_format),
            "channels_last": (cl_conv, torch.channels_last),
            "im2col": (lambda t, c=conv, f=alt: f(t, c), torch.contiguous_format),
        }
        times = {}
        for name, (fn, fmt) in ways.items():
            inp = torch.rand(shape).contiguous(memory_format=fmt).requires_grad_(needs_grad)
            runs = []
            for _ in range(n + 3):
                t = time.perf_counter()
                fn(inp).sum().backward()
                runs.append(time.perf_counter() - t)
            times[name] = statistics.median(runs[3:])
            total[name] += times[name]
        kind = "conv" if isinstance(conv, torch.nn.Conv2d) else "deconv"
        print(
            f"layers: {kind} {conv.in_channels:2d}->{conv.out_channels:2d} on {shape[-1]:2d}x{shape[-1]:<2d} "
            f"{flops / 1e6:5.1f} MFLOP: "
            + ", ".join(f"{name} {v * 1e3:5.2f} ms ({flops / v / 1e9:4.1f} GFLOP/s)" for name, v in times.items())
        )
    print(
        "layers: all six: "
        + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in total.items())
        + f" per batch; the matmul rate is {gflops:.0f} GFLOP/s"
    )


def _report(section: str, floor: float, runs: dict[str, list[float]], names: dict[str, str]) -> None:
    (a, alabel), (b, blabel) = names.items()
    pa, pb = statistics.median(runs[a]), statistics.median(runs[b])
    for key, label, med in ((a, alabel, pa), (b, blabel, pb)):
        print(
            f"{section}: {label:24s} {med:6.2f} s/epoch (median of {len(runs[key])}: "
            f"{', '.join(f'{v:.2f}' for v in runs[key])})  = {floor / med:.1%} of floor"
        )
    print(f"{section}: the project's path is {pb / pa:.2f}x faster")


def bench_clf(images: torch.Tensor, labels: torch.Tensor, reps: int, gflops: float) -> None:
    """A head (latent 9, nh1 150, dropout 0.2, Adam) on a frozen encoder, one epoch over ``images``."""
    torch.manual_seed(0)
    encoder = Encoder(9, 87).eval().requires_grad_(False)
    t = time.perf_counter()
    codes = encode(encoder, images)  # once per process in the project (ClassifierTask)
    encode_s = time.perf_counter() - t
    head = Head(9, 150, 0.2)
    x = torch.randn(BATCH, 9)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(head(x), torch.zeros(BATCH, dtype=torch.long)).backward()
    fpi = counter.get_total_flops() / BATCH
    floor = fpi * len(images) / (gflops * 1e9)

    def project() -> float:
        g = seed_everything(0)
        model = Head(9, 150, 0.2)
        opt = make_optimizer("Adam", model.parameters(), lr=1e-3, weight_decay=0.0)
        t = time.perf_counter()
        train_classifier_epoch(model, codes, labels, opt, batch_size=BATCH, generator=g)
        return time.perf_counter() - t

    def dataloader() -> float:
        seed_everything(0)
        model = Head(9, 150, 0.2)
        opt = make_optimizer("Adam", model.parameters(), lr=1e-3, weight_decay=0.0)
        loader = mnist_loader(images, labels)
        t = time.perf_counter()
        for x, y in loader:
            with torch.no_grad():
                z = encoder(x)
            loss = F.cross_entropy(model(z), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.perf_counter() - t

    runs: dict[str, list[float]] = {"project": [], "dataloader": []}
    for _ in range(reps):
        runs["project"].append(project())
        runs["dataloader"].append(dataloader())
    print(
        f"clf: {fpi / 1e3:.1f} kFLOP per code (head fwd+bwd); compute floor {floor * 1e3:.1f} ms per "
        f"{len(images)}-image epoch; encoding the images once: {encode_s:.2f} s"
    )
    _report("clf", floor, runs, {"project": "project (cached codes)", "dataloader": "DataLoader+encoder"})


def bench_gan(images: torch.Tensor, reps: int, gflops: float) -> None:
    """The report's MLP GAN (Table 4), Adam 2e-4 both, one epoch over ``images``."""

    def build():
        torch.manual_seed(0)
        gan = GAN("mlp")
        return (
            gan,
            torch.optim.Adam(gan.generator.parameters(), lr=2e-4),
            torch.optim.Adam(gan.discriminator.parameters(), lr=2e-4),
        )

    gan, opt_g, opt_d = build()
    with FlopCounterMode(display=False) as counter:  # one whole training step: D real, D fake, G
        train_gan_epoch(
            gan.generator,
            gan.discriminator,
            opt_g,
            opt_d,
            images[:BATCH],
            batch_size=BATCH,
            latent_dim=100,
            rng=torch.Generator().manual_seed(0),
        )
    fpi = counter.get_total_flops() / BATCH
    floor = fpi * len(images) / (gflops * 1e9)

    def project() -> float:
        gan, opt_g, opt_d = build()
        t = time.perf_counter()
        train_gan_epoch(
            gan.generator,
            gan.discriminator,
            opt_g,
            opt_d,
            images,
            batch_size=BATCH,
            latent_dim=100,
            rng=torch.Generator().manual_seed(0),
        )
        return time.perf_counter() - t

    def dataloader() -> float:
        gan, opt_g, opt_d = build()
        gen, disc = gan.generator.train(), gan.discriminator.train()
        t = time.perf_counter()
        for real, _ in mnist_loader(images, normalize=True):
            n = len(real)
            ones, zeros = torch.ones(n), torch.zeros(n)
            opt_d.zero_grad(set_to_none=True)
            F.binary_cross_entropy_with_logits(disc(real), ones).backward()
            opt_d.step()
            z = torch.randn(n, 100)
            fake = gen(z / z.norm(dim=1, keepdim=True))
            opt_d.zero_grad(set_to_none=True)
            F.binary_cross_entropy_with_logits(disc(fake.detach()), zeros).backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            F.binary_cross_entropy_with_logits(disc(fake), ones).backward()
            opt_g.step()
        return time.perf_counter() - t

    runs: dict[str, list[float]] = {"project": [], "dataloader": []}
    for _ in range(reps):
        runs["project"].append(project())
        runs["dataloader"].append(dataloader())
    print(
        f"gan: {fpi / 1e6:.2f} MFLOP per real image (a whole step: D real, D fake, G); "
        f"compute floor {floor:.2f} s per {len(images)}-image epoch"
    )
    _report("gan", floor, runs, {"project": "project (resident)", "dataloader": "DataLoader+ToTensor"})


def _worker_epoch(args: tuple[torch.Tensor, int]) -> float:
    images, threads = args
    torch.set_num_threads(threads)
    project_epoch(images[: BATCH * 4])  # warm-up: oneDNN primitives, allocator
    return project_epoch(images)


def bench_workers(images: torch.Tensor, reps: int) -> None:
    """Autoencoder epochs per minute: 1 process x all threads vs 1 single-threaded process per core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    ctx = multiprocessing.get_context("spawn")
    rates: dict[str, list[float]] = {"one": [], "many": []}
    with ctx.Pool(cores) as pool:
        for _ in range(reps):
            t = time.perf_counter()
            pool.map(_worker_epoch, [(images, cores)])
            rates["one"].append(60 / (time.perf_counter() - t))
            t = time.perf_counter()
            pool.map(_worker_epoch, [(images, 1)] * cores)
            rates["many"].append(60 * cores / (time.perf_counter() - t))
    one, many = statistics.median(rates["one"]), statistics.median(rates["many"])
    print(
        f"workers: {len(images)}-image autoencoder epochs per minute: 1 process x {cores} threads {one:.2f}, "
        f"{cores} processes x 1 thread {many:.2f} (medians of {reps}; {many / one:.2f}x)"
    )


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
    print(
        f"stacked: {len(train)}-image epoch per trial: one at a time {o:.2f} s, {k} stacked {m:.2f} s "
        f"({o / m:.2f}x trials per minute)"
    )


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
    print(
        f"storage: {n} trivial trials: in-memory {results['in-memory'] * 1e3:.2f} ms/trial, "
        f"SQLite {results['sqlite'] * 1e3:.2f} ms/trial (overhead {extra * 1e3:.2f} ms/trial)"
    )


def _denormal_count(model: torch.nn.Module) -> int:
    tiny = torch.finfo(torch.float32).tiny
    return sum(int(((p.abs() < tiny) & (p != 0)).sum()) for p in model.parameters())


def bench_denormal(images: torch.Tensor, reps: int, warmup: int = 8) -> None:
    from mnist_hpo.train.numerics import flush_denormals

    images = images[:12000]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a study's worker trains
    try:
        for label, weight_decay, optimizer, lr in (
            ("plateau", 1.22946e-4, "RMSprop", 3.91882e-4),
            ("healthy", 0.0, "Adam", 3.91882e-4),
        ):
            flush_denormals(False)
            gen = seed_everything(1992953107)
            model = Autoencoder(latent_dim=5, nh1=138)
            opt = make_optimizer(optimizer, model.parameters(), lr=lr, weight_decay=weight_decay)
            for _ in range(warmup):
                train_autoencoder_epoch(model, images, opt, batch_size=BATCH, generator=gen)
            state = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()), gen.get_state())
            denormals = _denormal_count(model)
            runs: dict[str, list[float]] = {"kept": [], "flushed": []}
            for _ in range(reps):
                for mode in ("kept", "flushed"):  # side by side, from the same state each time
                    model.load_state_dict(state[0])
                    opt.load_state_dict(state[1])
                    gen.set_state(state[2])
                    flush_denormals(mode == "flushed")
                    t = time.perf_counter()
                    train_autoencoder_epoch(model, images, opt, batch_size=BATCH, generator=gen)
                    runs[mode].append(time.perf_counter() - t)
            kept, flushed = statistics.median(runs["kept"]), statistics.median(runs["flushed"])
            print(
                f"denormal: {label} trial ({denormals} denormal weights after {warmup} epochs), "
                f"{len(images)}-image epoch, 1 thread: denormals kept {kept:.2f} s, flushed {flushed:.2f} s "
                f"(medians of {reps}; {kept / flushed:.2f}x)"
            )
    finally:
        torch.set_num_threads(threads)
        flush_denormals(True)


STARTUP = {
    "python -c pass": ["-c", "pass"],
    "mnist-hpo --help": ["-m", "mnist_hpo", "--help"],
    "mnist-hpo study studies/no-such.toml": ["-m", "mnist_hpo", "study", "studies/no-such.toml"],
    "mnist-hpo show ae --storage sqlite:///no/such.db": [
        "-m",
        "mnist_hpo",
        "show",
        "ae",
        "--storage",
        "sqlite:///no/such.db",
    ],
    'python -c "import optuna"': ["-c", "import optuna"],
    'python -c "import torch"': ["-c", "import torch"],
}


def bench_startup(runs: int) -> None:
    """Wall seconds from starting a process to its exit, interleaved (one run of each per round), medians."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    times: dict[str, list[float]] = {name: [] for name in STARTUP}
    for _ in range(runs):
        for name, argv in STARTUP.items():
            start = time.perf_counter()
            out = subprocess.run([sys.executable, *argv], cwd=root, capture_output=True)
            times[name].append(time.perf_counter() - start)
            if out.returncode not in (0, 2):
                raise SystemExit(f"bench: {name} exited {out.returncode}: {out.stderr.decode()[-500:]}")
    print(f"\nstartup: wall seconds of a new process, median of {runs} runs (interleaved)")
    for name, ts in times.items():
        print(f"  {name:<52} {statistics.median(ts):6.3f} s  (min {min(ts):.3f}, max {max(ts):.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="ae,layers,clf,gan,workers,stacked,storage,denormal,startup")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--images", type=int, default=48000)
    ap.add_argument("--storage-trials", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--startup-runs", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.reps} reps")
    data = load_dataset("mnist")
    images, labels = data.train_images[: args.images], data.train_labels[: args.images]
    sections = args.only.split(",")
    unknown = set(sections) - {"ae", "layers", "clf", "gan", "workers", "stacked", "storage", "denormal", "startup"}
    if unknown:
        raise SystemExit(f"bench: unknown section(s) {', '.join(sorted(unknown))}")
    if {"ae", "layers", "clf", "gan"} & set(sections):
        gflops = matmul_gflops()
        print(f"fp32 matmul {gflops:.1f} GFLOP/s (best of 5 runs of 20 1024x1024 products; the floors below use it)")
    if "ae" in sections:
        bench_ae(images, args.reps, gflops)
    if "layers" in sections:
        bench_layers(args.reps, gflops)
    if "clf" in sections:
        bench_clf(images, labels, args.reps, gflops)
    if "gan" in sections:
        bench_gan(data.train_images, args.reps, gflops)
    if "workers" in sections:
        bench_workers(images, args.reps)
    if "stacked" in sections:
        bench_stacked(images, args.reps)
    if "storage" in sections:
        bench_storage(args.storage_trials)
    if "denormal" in sections:
        bench_denormal(data.train_images, args.reps)
    if "startup" in sections:
        bench_startup(args.startup_runs)


if __name__ == "__main__":
    main()
