"""The commands outside a study: ``data`` (prepare a dataset), ``gan`` (the report's single GAN run) and
``reproduce`` (every protocol of the report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import study_path
from ..errors import UserError


def cmd_data(args: argparse.Namespace) -> int:
    import time

    from ..data.datasets import load_dataset

    start = time.perf_counter()
    ds = load_dataset(args.dataset, idx_dir=Path(args.idx_dir) if args.idx_dir else None)
    print(f"{ds.name}: {len(ds.train_images)} train + {len(ds.test_images)} test images, "
          f"checksum {ds.checksum[:16]}…, loaded in {time.perf_counter() - start:.2f} s")
    from ..measures.frechet import load_fidnet, prepare_fidnet

    _, judge = load_fidnet(ds.name, prepare_fidnet(ds).parent, dataset_checksum=ds.checksum)
    print(f"{ds.name} quality classifier: {judge['test_accuracy']:.2%} test accuracy")
    return 0


def cmd_gan(args: argparse.Namespace) -> int:
    from ..config import load_study_config
    from ..workflows.gan_run import run_gan
    from ..data.datasets import load_data
    from ..hpo.run import set_threads
    from ..hpo.storage import storage_dir
    from ..tasks.gan import single_point

    cfg = load_study_config(study_path(args.study))
    cfg = cfg.with_overrides(epochs=args.epochs, train_subset=args.subset, device=args.device)
    if cfg.model != "gan":
        raise UserError(f"{cfg.source} has model type {cfg.model!r}; 'mnist-hpo gan' needs a GAN study file "
                        "(e.g. studies/gan.toml)")
    from ..tasks import check_device, device_source

    check_device(cfg.device, device_source(cfg, args.device))
    params = single_point(cfg)
    set_threads(1)
    from ..tasks import make_task

    task = make_task(cfg, load_data(cfg))
    folder = storage_dir() / "gan" / (args.run or cfg.name)
    print(f"GAN run {folder}: {cfg.model_options['arch']}, {params}, {cfg.epochs} epochs on "
          f"{len(task.train_all)} images ({task.device})")
    result = run_gan(task, params, folder, epochs=cfg.epochs, seed=cfg.seed, every=args.every, fresh=args.fresh)
    f = result["final"]
    print(f"after {result['epochs']} epochs: D {f['d_loss']:.3f}, G {f['g_loss']:.3f} (the report: D 0.81, G 1.20); "
          f"Fréchet distance {f['test_fid']:.2f}, class coverage TV {f['test_coverage_tv']:.3f} "
          f"(10k samples vs the 10k test images)")
    print(f"pictures, checkpoints and result.json in {folder}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from ..workflows.reproduce import main as reproduce_main

    return reproduce_main(args)
