"""Seconds per segment of a population-based study file, at its full size, and what a whole run would take.

    python benchmarks/pbt_segment.py studies/gan-pbt.toml [--workers 2] [--threads 1]

Trains two segments of generation 0's member 0 as a worker would (the study's train split,
``interval`` epochs each, the second from the checkpoint the first ended with, as bytes through
safetensors and back), scores each as the study does, and prints the seconds per segment and per
epoch, and the size of a checkpoint. The estimate of a whole run is segments x seconds / workers,
plus the time workers wait for a generation's last segment, which this does not count.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from mnist_hpo.config import load_study_config
from mnist_hpo.core.pbt import generations
from mnist_hpo.core.space import resolve_space
from mnist_hpo.data.datasets import load_data
from mnist_hpo.hpo.pbt import train_segment
from mnist_hpo.tasks import make_task
from mnist_hpo.train.state import state_bytes, state_from_bytes


def first_values(cfg) -> dict:
    """Member 0's parameters, as a reproducible stand-in: each list's first value, each range's geometric middle."""
    params = {}
    for name, values in resolve_space(cfg.space, cfg.seed).items():
        if isinstance(values, list):
            params[name] = values[0]
        else:
            mid = (values.low * values.high) ** 0.5 if values.log else (values.low + values.high) / 2
            params[name] = int(round(mid)) if values.kind == "int" else mid
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("--workers", type=int, default=1, help="workers sharing the run (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the worker timed (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_study_config(args.study)
    task = make_task(cfg, load_data(cfg))
    params, state, seconds = first_values(cfg), None, []
    for segment in range(2):
        start = time.perf_counter()
        result, end = train_segment(task, params, seed=segment, start=state, epochs=cfg.pbt.interval)
        data = state_bytes(end)
        state = state_from_bytes(data)
        seconds.append(time.perf_counter() - start)
        print(
            f"segment {segment}: {seconds[-1]:.1f} s for {cfg.pbt.interval} epochs, "
            f"{task.metric} {result.value:.4g}, checkpoint {len(data) / 1e6:.1f} MB"
        )
    per = min(seconds)
    count = cfg.pbt.population * generations(cfg)
    print(
        f"{cfg.name}: {len(task.train_idx)} training images; {per:.1f} s per segment ({per / cfg.pbt.interval:.1f} s "
        f"per epoch, with the segment's scoring) on {args.threads} thread(s); {count} segments on {args.workers} "
        f"worker(s): about {count * per / args.workers / 3600:.1f} h; load {Path('/proc/loadavg').read_text().split()[0]}"
    )


if __name__ == "__main__":
    main()
