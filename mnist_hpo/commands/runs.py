"""The commands outside a study: ``data`` (prepare a dataset), ``gan`` (the report's single GAN run) and
``reproduce`` (every protocol of the report).

Imported by :mod:`mnist_hpo.cli` only when one of them runs: the imports below load torch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..config import load_study_config
from ..core.study_files import study_path
from ..data.datasets import default_data_dir, load_data, load_dataset
from ..errors import UserError
from ..hpo.run import set_threads
from ..measures.frechet import load_fidnet, prepare_fidnet
from ..report.formatting import count
from ..storages import storage_dir
from ..tasks import check_device, device_source, make_task
from ..tasks.gan import GanTask, single_point
from ..workflows.gan_run import run_gan
from ..workflows.record import PARTS, Options
from ..workflows.reproduce import reproduce
from .args import DataArgs, GanArgs, ReproduceArgs, given
from .search import _prepare_training


def cmd_data(args: DataArgs) -> int:
    start = time.perf_counter()
    ds = load_dataset(args.dataset, idx_dir=Path(args.idx_dir) if args.idx_dir else None)
    print(
        f"{ds.name}: {len(ds.train_images)} train + {len(ds.test_images)} test images, checksum "
        f"{ds.checksum[:16]}…, loaded in {time.perf_counter() - start:.2f} s (cached in {default_data_dir()})"
    )
    _, judge = load_fidnet(ds.name, prepare_fidnet(ds).parent, dataset_checksum=ds.checksum)
    print(f"{ds.name} quality classifier: {judge['test_accuracy']:.2%} test accuracy")
    return 0


def cmd_gan(args: GanArgs) -> int:
    cfg = load_study_config(study_path(args.study))
    # A GAN run is no study: its folder (--run, by default the file's name) keeps it, and more --epochs
    # continue it, so the name stays.
    cfg = cfg.with_overrides(**{**args.overrides, "name": cfg.name})
    if cfg.model != "gan":
        raise UserError(
            f"{cfg.source} has model type {cfg.model!r}; 'mnist-hpo gan' needs a GAN study file "
            "(e.g. 'mnist-hpo gan gan', the report's GAN)"
        )
    check_device(cfg.device, device_source(cfg, given(args.overrides, "device", str)))
    params = single_point(cfg)
    set_threads(1)
    task = make_task(cfg, load_data(cfg))
    assert isinstance(task, GanTask)  # a "gan" study file (checked above)
    folder = storage_dir() / "gan" / (args.run or cfg.name)
    print(
        f"GAN run {folder}: {cfg.model_options['arch']}, {params}, {count(cfg.epochs, 'epoch')} on "
        f"{count(len(task.train_all), 'image')} ({task.device})"
    )
    result = run_gan(task, params, folder, epochs=cfg.epochs, seed=cfg.seed, every=args.every, fresh=args.fresh)
    f = result["final"]
    print(
        f"after {count(result['epochs'], 'epoch')}: D {f['d_loss']:.3f}, G {f['g_loss']:.3f} (the report: D 0.81, "
        f"G 1.20); Fréchet distance {f['test_fid']:.2f}, class coverage TV {f['test_coverage_tv']:.3f} "
        f"(10k samples vs the 10k test images)"
    )
    print(f"pictures, checkpoints and result.json in {folder}")
    return 0


def options_from(args: ReproduceArgs) -> Options:
    """The record's options: ``--only`` split into parts, a worker per core unless ``--workers`` says otherwise."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    only = tuple(p.strip() for p in args.only.split(",") if p.strip()) if args.only else PARTS
    flags = args.overrides
    return Options(
        out=Path(args.out),
        only=only,
        workers=args.workers or cores,
        trials=given(flags, "trials", int),
        epochs=given(flags, "epochs", int),
        subset=given(flags, "train_subset", int),
        gan_epochs=args.gan_epochs,
        device=given(flags, "device", str),
        progress=not args.quiet,
    )


def cmd_reproduce(args: ReproduceArgs) -> int:
    _prepare_training()
    reproduce(options_from(args))
    return 0
