"""The commands that run a search: ``study`` and ``worker`` (one process or several), ``list``, ``delete``,
``compact`` and ``dashboard`` on a storage.

Imported by :mod:`mnist_hpo.cli` only when one of them runs: the imports below load torch and Optuna.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import optuna

from ..artifacts.export import export_or_reuse, read_export_meta, resolve_config
from ..config import load_study_config, study_path
from ..errors import UserError, require_extra
from ..hpo.compact import compact_journal
from ..hpo.objective import stored_metric_names
from ..hpo.run import run_study, set_threads
from ..hpo.spaces import print_space, resolve_space
from ..hpo.storage import (artifact_store, artifacts_dir, best_trial, exports_dir, is_multi_objective,
                           load_existing_study, open_storage)
from ..hpo.urls import default_storage_url, storage_file
from ..hpo.workers import spawn_workers
from ..report.formatting import count
from ..report.tables import state_counts, top_table
from ..tasks import check_device, device_source


def _load_cfg(args: argparse.Namespace):
    cfg = load_study_config(study_path(args.study))
    cfg = cfg.with_overrides(
        trials=args.trials, epochs=args.epochs, train_subset=args.subset, study_name=args.study_name,
        device=args.device, batch_trials=args.batch_trials, seed=args.seed,
        trial_figures=False if getattr(args, "no_trial_figures", False) else None,
    )
    check_device(cfg.device, device_source(cfg, args.device))  # before the storage is opened
    return resolve_config(cfg, args.storage)  # e.g. pin the classifier's encoder export


def _prepare_training() -> None:
    # Progress bars say what Optuna's per-trial INFO lines would; keep warnings.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_threads(int(os.environ.get("MNIST_HPO_WORKERS", "1")))


def cmd_worker(args: argparse.Namespace) -> int:
    return cmd_study(args, worker=True)


def cmd_study(args: argparse.Namespace, *, worker: bool = False) -> int:
    _prepare_training()
    cfg = _load_cfg(args)
    progress = not args.quiet
    workers = 1 if worker else args.workers
    if workers > 1:
        study = run_workers(args, cfg, workers)
    else:
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
    if is_multi_objective(study):
        print(f"\nseveral objectives, so no single best trial to retrain; export one of the Pareto front with "
              f"'mnist-hpo export {cfg.name} --trial N'")
        return 0

    folder, reused = export_or_reuse(study, best_trial(study), cfg=cfg, progress=progress)
    meta = read_export_meta(folder)
    metrics = ", ".join(f"{k} = {v:.4f}" for k, v in meta["metrics"].items() if isinstance(v, float))
    if reused:
        print(f"\nbest trial {meta['trial']} was already exported (its weights match their sha256): {metrics}")
    elif "pbt" in meta:  # population-based training: the member's own weights, not a retrain
        print(f"\nbest member {meta['pbt']['member']} (trial {meta['trial']}) exported with its lineage: {metrics}")
    else:
        print(f"\nbest trial {meta['trial']} retrained on {meta['retrain']['train_images']} images: {metrics}")
    print(f"exported to {folder}")
    for name in meta.get("files", []):
        print(f"  with {name}")
    return 0


def run_workers(args: argparse.Namespace, cfg, workers: int):
    """Start ``workers`` worker processes on this machine with this command's options, and wait for them."""
    return spawn_workers(cfg, workers, storage=args.storage, warm_start=args.warm_start,
                         warm_start_k=args.warm_start_trials, progress=not getattr(args, "quiet", False),
                         storage_patience=args.storage_patience)


def cmd_list(args: argparse.Namespace) -> int:
    path = storage_file(args.storage)
    if path is not None and not path.exists():  # the default storage before the first study: create nothing
        print(f"no studies yet ({default_storage_url()} does not exist; 'mnist-hpo study ae' makes it)")
        return 0
    storage = open_storage(args.storage)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
    if not summaries:
        print("no studies yet")
    for s in summaries:
        best = f"best {s.best_trial.value:.4g} (trial {s.best_trial.number})" if s.best_trial else \
            f"{count(len(s.directions), 'objective')} (see 'mnist-hpo show {s.study_name}')" if len(s.directions) > 1 \
            else "no complete trial"
        print(f"{s.study_name}: {count(s.n_trials, 'trial')}, {best}")
    return 0


def _study_exports(study: optuna.Study) -> list[Path]:
    """The export folders of this study's trials: storage/exports/<study>/trial-<N> whose export.json names
    this study and trial N with the parameters trial N has here (not another storage's study of that name)."""
    root = exports_dir() / study.study_name
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    mine = []
    for folder in sorted(root.glob("trial-*")) if root.is_dir() else []:
        try:
            meta = read_export_meta(folder)
        except UserError:
            continue
        trial = trials.get(meta.get("trial"))
        if meta.get("study") == study.study_name and trial is not None and meta.get("params") == trial.params:
            mine.append(folder)
    return mine


def _study_artifacts(study: optuna.Study) -> list[str]:
    """The ids of the files attached to the study and to its trials (they live under storage/artifacts/)."""
    metas = list(optuna.artifacts.get_all_artifact_meta(study))
    for trial in study.get_trials(deepcopy=False):
        metas += optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)
    return [m.artifact_id for m in metas]


def cmd_delete(args: argparse.Namespace) -> int:
    study = load_existing_study(args.name, args.storage)  # a clear error if it does not exist
    exports = _study_exports(study)
    artifacts = [a for a in _study_artifacts(study) if (artifacts_dir() / a).exists()]
    what = (f"study {args.name!r} with its {count(len(study.trials), 'trial')}, "
            f"{count(len(exports), 'export')} under {exports_dir() / args.name} and "
            f"{count(len(artifacts), 'attached file')} under {artifacts_dir()}")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError(f"refusing to delete {what} without --yes")
        if input(f"delete {what}? [y/N] ").strip().lower() != "y":
            print("kept")
            return 1
    optuna.delete_study(study_name=args.name, storage=study._storage)
    store = artifact_store() if artifacts else None
    for artifact_id in artifacts:
        store.remove(artifact_id)
    for folder in exports:
        shutil.rmtree(folder)
    root = exports_dir() / args.name
    if root.is_dir():
        latest = root / "LATEST"
        if latest.exists() and not (root / latest.read_text().strip()).exists():
            latest.unlink()
        if not any(root.iterdir()):
            root.rmdir()
    print(f"deleted {what}")
    left = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    if left:
        print(f"kept in {root}: {', '.join(left)} (not this study's exports: another storage's study of that name)")
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    for path in args.paths:
        c = compact_journal(Path(path))
        print(f"{c.path}: {c.bytes_before / 1e6:.2f} MB -> {c.bytes_after / 1e6:.2f} MB "
              f"({count(c.dropped, 'superseded write')} dropped; the same trials)")
    return 0


def named_objectives(storage):
    """``storage`` as the dashboard reads it: a study without stored metric names gets those of its config.

    Only what is read changes, in memory: the dashboard, a reader, writes nothing for it (the committed
    record's journals stay as they are). The names are stored when a study is next run (record_metric_names).
    """
    read_all = storage.get_all_studies

    def get_all_studies():
        studies = read_all()
        for s in studies:
            if "study:metric_names" not in s.system_attrs:
                names = stored_metric_names(s.user_attrs, len(s.directions))
                if names:
                    s.system_attrs["study:metric_names"] = names  # this copy only (Optuna's key for them)
        return studies

    storage.get_all_studies = get_all_studies  # the one call optuna-dashboard reads studies through
    return storage


def cmd_dashboard(args: argparse.Namespace) -> int:
    require_extra("optuna_dashboard", "dashboard", "the dashboard")
    from optuna_dashboard import run_server  # an optional extra: imported only once it is known to be there

    storage = named_objectives(open_storage(args.storage))
    # The dashboard shows attached files from this store; a storage without any gets none, and no folder.
    store = artifact_store() if artifacts_dir().is_dir() else None
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    run_server(storage, host=args.host, port=args.port, artifact_store=store)
    return 0
