"""Side-by-side: a 500-point 2-D t-SNE with scikit-learn's default threads vs one thread, alternating, 3 rounds."""

import statistics
import time

import numpy as np

from mnist_hpo.measures.latent import embed

x = np.random.default_rng(0).normal(size=(500, 9)).astype(np.float32)
times = {None: [], 1: []}
for _ in range(3):
    for threads in (None, 1):
        t = time.perf_counter()
        embed(x, "tsne", 2, threads=threads)
        times[threads].append(time.perf_counter() - t)
for k, v in times.items():
    print(f"threads={k}: median {statistics.median(v):.1f} s  runs {[round(a, 1) for a in v]}")
