"""One autoencoder epoch (48k images, the report's best configuration, 2 threads): time and validation MSE.

Run from the root of each checkout to compare two versions side by side, alternating.
"""

import sys
import time

import torch

sys.path.insert(0, ".")
from mnist_hpo.config import load_study_config
from mnist_hpo.core.study_files import study_path

try:
    from mnist_hpo.data.datasets import load_dataset
except ImportError:
    from mnist_hpo.data import load_dataset
from mnist_hpo.tasks import make_task

torch.set_num_threads(2)
cfg = load_study_config(study_path("ae"))  # the shipped file, or an older checkout's studies/ae.toml
task = make_task(cfg, load_dataset("mnist"))  # MNIST_HPO_DATA: one cache for both checkouts
p = {"latent_dim": 9, "weight_decay": 5.1e-05, "optimizer": "Adam", "lr": 0.0009, "nh1": 87}
t = time.perf_counter()
r = task.fit(p, seed=1, epochs=1, full=False)
dt = time.perf_counter() - t
print(f"{dt:.2f} {r.value:.6f}")
