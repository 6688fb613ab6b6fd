"""The commands that run a search: ``study`` and ``worker`` (one process or several), ``list``, ``delete``
and ``dashboard`` on a storage."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from ..config import study_path
from ..errors import UserError, require_extra


def _load_cfg(args: argparse.Namespace):
    from ..config import load_study_config

    from ..artifacts.export import resolve_config
    from ..tasks import check_device, device_source

    cfg = load_study_config(study_path(args.study))
    cfg = cfg.with_overrides(
        trials=args.trials, epochs=args.epochs, train_subset=args.subset, name=args.study_name, device=args.device,
        batch_trials=args.batch_trials, seed=args.seed,
        trial_figures=False if getattr(args, "no_trial_figures", False) else None,
    )
    check_device(cfg.device, device_source(cfg, args.device))  # before the storage is opened
    return resolve_config(cfg, args.storage)  # e.g. pin the classifier's encoder export


def cmd_study(args: argparse.Namespace, *, worker: bool = False) -> int:
    from ..hpo.run import run_study
    from ..report.tables import state_counts, top_table

    cfg = _load_cfg(args)
    progress = not args.quiet
    workers = 1 if worker else args.workers
    if workers > 1:
        study = run_workers(args, cfg, workers)
    else:
        from ..hpo.spaces import print_space, resolve_space

        def on_open(study) -> None:
            if not worker:
                print_space(cfg, resolve_space(cfg.space, cfg.seed))

        study = run_study(cfg, storage_url=args.storage, progress=progress,
                          max_trials=getattr(args, "max_trials", None), on_open=on_open,
                          warm_start=args.warm_start, warm_start_k=args.warm_start_trials,
                          storage_patience=args.storage_patience)
    if worker:
        return 0
    print(f"\nstudy {cfg.name}: {state_counts(study)}")
    print(top_table(study))
    if args.no_retrain or not cfg.retrain:
        return 0
    from ..artifacts.export import export_trial, read_export_meta
    from ..hpo.storage import best_trial, is_multi_objective

    if is_multi_objective(study):
        print(f"\nseveral objectives, so no single best trial to retrain; export one of the Pareto front with "
              f"'mnist-hpo export {cfg.name} --trial N'")
        return 0

    folder = export_trial(study, best_trial(study), cfg=cfg, progress=progress)
    meta = read_export_meta(folder)
    metrics = ", ".join(f"{k} = {v:.4f}" for k, v in meta["metrics"].items() if isinstance(v, float))
    print(f"\nbest trial {meta['trial']} retrained on {meta['retrain']['train_images']} images: {metrics}")
    print(f"exported to {folder}")
    for name in meta.get("files", []):
        print(f"  with {name}")
    return 0


def run_workers(args: argparse.Namespace, cfg, workers: int):
    """Start ``workers`` worker processes on this machine with this command's options, and wait for them."""
    from ..hpo.workers import spawn_workers

    return spawn_workers(cfg, workers, storage=args.storage, warm_start=args.warm_start,
                         warm_start_k=args.warm_start_trials, progress=not getattr(args, "quiet", False),
                         storage_patience=args.storage_patience)


def cmd_list(args: argparse.Namespace) -> int:
    import optuna

    from ..hpo.storage import open_storage

    storage = open_storage(args.storage)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
    if not summaries:
        print("no studies yet")
    for s in summaries:
        best = f"best {s.best_trial.value:.4g} (trial {s.best_trial.number})" if s.best_trial else \
            f"{len(s.directions)} objectives (see 'mnist-hpo show {s.study_name}')" if s.directions else "no complete trial"
        print(f"{s.study_name}: {s.n_trials} trials, {best}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    import optuna

    from ..hpo.storage import load_existing_study, open_storage

    load_existing_study(args.name, args.storage)  # a clear error if it does not exist
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError(f"refusing to delete study {args.name!r} without --yes")
        if input(f"delete study {args.name!r} and all its trials? [y/N] ").strip().lower() != "y":
            print("kept")
            return 1
    optuna.delete_study(study_name=args.name, storage=open_storage(args.storage))
    print(f"deleted study {args.name}")
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..hpo.compact import compact_journal

    for path in args.paths:
        c = compact_journal(Path(path))
        print(f"{c.path}: {c.bytes_before / 1e6:.2f} MB -> {c.bytes_after / 1e6:.2f} MB "
              f"({c.dropped} superseded writes dropped; the same trials)")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback and not args.allow_remote:
        raise UserError(f"--host {args.host} would expose the dashboard beyond this machine; "
                        "add --allow-remote if that is what you want")
    require_extra("optuna_dashboard", "dashboard", "the dashboard")
    from optuna_dashboard import run_server

    from ..hpo.storage import artifact_store, open_storage

    storage = open_storage(args.storage)
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    run_server(storage, host=args.host, port=args.port, artifact_store=artifact_store())
    return 0
