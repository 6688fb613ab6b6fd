"""Seconds per GAN epoch: one epoch on the first N training images (batch 256), scaled to 60k."""

import sys
import time
from pathlib import Path

import torch

from mnist_hpo.data.datasets import load_dataset
from mnist_hpo.models.gan import GAN
from mnist_hpo.tasks.gan import GanTask
from mnist_hpo.train.gan import train_gan_epoch

torch.set_num_threads(2)
n = int(sys.argv[1])
arch = sys.argv[2] if len(sys.argv) > 2 else "mlp"
ds = load_dataset("mnist")
torch.manual_seed(0)
gan = GAN(arch=arch)
opt_g, opt_d = GanTask.optimizers(gan, {})
imgs = ds.train_images[:n]
w, c = time.perf_counter(), time.process_time()
train_gan_epoch(
    gan.generator,
    gan.discriminator,
    opt_g,
    opt_d,
    imgs,
    batch_size=256,
    latent_dim=100,
    rng=torch.Generator().manual_seed(0),
)
w, c = time.perf_counter() - w, time.process_time() - c
print(
    f"{arch}: {n} images: wall {w:.1f} s, cpu {c:.1f} s -> per 60k epoch: wall {w * 60000 / n:.0f} s, cpu {c * 60000 / n:.0f} s; load {Path('/proc/loadavg').read_text().split()[0]}"
)
