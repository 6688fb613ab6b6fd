"""The commands that run a search: ``study`` and ``worker`` (one process or several), ``list``, ``delete``,
``compact`` and ``dashboard`` on a storage.

Imported by :mod:`mnist_hpo.cli` only when one of them runs: the imports below load torch and Optuna.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import NoReturn
from wsgiref.simple_server import WSGIServer, make_server

import optuna

from ..artifacts.export import export_or_reuse, resolve_config
from ..artifacts.folders import apart_note, disown, home_of, read_export_meta, study_exports
from ..config import load_study_config
from ..core.names import shown
from ..core.space import resolve_space
from ..core.study_files import study_path
from ..errors import UserError, on_interrupt_say, require_extra
from ..hpo.objective import METRIC_NAMES, study_metric_names
from ..hpo.queries import best_trial, is_multi_objective
from ..hpo.run import run_study, set_threads
from ..hpo.suggestions import print_space
from ..hpo.workers import spawn_workers
from ..report.formatting import count
from ..report.tables import state_counts, top_table
from ..storages import (
    artifact_store,
    artifacts_dir,
    checkpoints_dir,
    compact_journal,
    default_storage_url,
    load_existing_study,
    open_storage,
    storage_file,
)
from ..tasks import check_device, device_source
from .args import CompactArgs, DashboardArgs, DeleteArgs, ListArgs, RunArgs, given


def _load_cfg(args: RunArgs):
    cfg = load_study_config(study_path(args.study)).with_overrides(**args.overrides)
    check_device(cfg.device, device_source(cfg, given(args.overrides, "device", str)))  # before the storage is opened
    return resolve_config(cfg, args.storage)  # e.g. pin the classifier's encoder export


def _prepare_training() -> None:
    # Progress bars say what Optuna's per-trial INFO lines would; keep warnings.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_threads(int(os.environ.get("MNIST_HPO_WORKERS", "1")))


def cmd_worker(args: RunArgs) -> int:
    return cmd_study(args, worker=True)


def cmd_study(args: RunArgs, *, worker: bool = False) -> int:
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

        study = run_study(
            cfg,
            storage_url=args.storage,
            progress=progress,
            max_trials=args.max_trials,
            on_open=on_open,
            warm_start=args.warm_start,
            warm_start_k=args.warm_start_trials,
            storage_patience=args.storage_patience,
        )
    if worker:
        return 0
    print(f"\nstudy {cfg.name}: {state_counts(study)}")
    print(top_table(study))
    if args.no_retrain or not cfg.retrain:
        return 0
    if is_multi_objective(study):
        print(
            f"\nseveral objectives, so no single best trial to retrain; export one of the Pareto front with "
            f"'mnist-hpo export {cfg.name} --trial N'"
        )
        return 0

    best = best_trial(study)
    again = f"'mnist-hpo export {cfg.name}{f' --storage {args.storage}' if args.storage else ''}'"
    with on_interrupt_say(
        f"the retrain of best trial {best.number} stopped before it was exported; study "
        f"{cfg.name} keeps all {count(len(study.trials), 'trial')}; run the same command again, "
        f"or {again}, to retrain and export it"
    ):
        folder, reused = export_or_reuse(study, best, cfg=cfg, progress=progress)
    meta = read_export_meta(folder)
    metrics = ", ".join(f"{k} = {v:.4f}" for k, v in meta["metrics"].items() if isinstance(v, float))
    if reused:
        print(f"\nbest trial {meta['trial']} was already exported (its weights match their sha256): {metrics}")
    elif "pbt" in meta:  # population-based training: the member's own weights, not a retrain
        print(f"\nbest member {meta['pbt']['member']} (trial {meta['trial']}) exported with its lineage: {metrics}")
    else:
        print(f"\nbest trial {meta['trial']} retrained on {meta['retrain']['train_images']} images: {metrics}")
    print(f"exported to {folder}{apart_note(folder, cfg.name)}")
    for name in meta.get("files", []):
        print(f"  with {name}")
    return 0


def run_workers(args: RunArgs, cfg, workers: int):
    """Start ``workers`` worker processes on this machine with this command's options, and wait for them."""
    return spawn_workers(
        cfg,
        workers,
        storage=args.storage,
        warm_start=args.warm_start,
        warm_start_k=args.warm_start_trials,
        progress=not args.quiet,
        storage_patience=args.storage_patience,
    )


def cmd_list(args: ListArgs) -> int:
    path = storage_file(args.storage)
    if path is not None and not path.exists():  # the default storage before the first study: create nothing
        print(f"no studies yet ({default_storage_url()} does not exist; 'mnist-hpo study ae' makes it)")
        return 0
    storage = open_storage(args.storage)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
    if not summaries:
        print("no studies yet")
    # Each best value named by the study's stored metric (a plugin's study is read without its code).
    metrics = {s.study_name: study_metric_names(s) for s in storage.get_all_studies()}
    for s in summaries:
        names = metrics.get(s.study_name)
        metric = f"{names[0]} " if names else ""
        best = (
            f"best {metric}{s.best_trial.value:.4g} (trial {s.best_trial.number})"
            if s.best_trial
            else f"{count(len(s.directions), 'objective')} (see 'mnist-hpo show {s.study_name}')"
            if len(s.directions) > 1
            else "no complete trial"
        )
        print(f"{s.study_name}: {count(s.n_trials, 'trial')}, {best}")
    return 0


def _study_artifacts(study: optuna.Study) -> list[str]:
    """The ids of the files attached to the study and to its trials (they live under storage/artifacts/)."""
    metas = list(optuna.artifacts.get_all_artifact_meta(study))
    for trial in study.get_trials(deepcopy=False):
        metas += optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)
    return [m.artifact_id for m in metas]


def cmd_delete(args: DeleteArgs) -> int:
    study = load_existing_study(args.name, args.storage)  # a clear error if it does not exist
    home = home_of(study)  # never a path made of the name as typed or stored: see artifacts.folders
    exports = study_exports(study)
    # Figures and (population-based studies) checkpoints: two stores, one id space.
    artifacts = [
        (folder, a)
        for a in _study_artifacts(study)
        for folder in (artifacts_dir(), checkpoints_dir())
        if (folder / a).exists()
    ]
    what = (
        f"study {shown(args.name)} with its {count(len(study.trials), 'trial')}, "
        f"{count(len(exports), 'export')}{f' under {home}' if home else ''} and "
        f"{count(len(artifacts), 'attached file')} under {artifacts_dir().parent}"
    )
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError(f"refusing to delete {what} without --yes")
        if input(f"delete {what}? [y/N] ").strip().lower() != "y":
            print("kept")
            return 1
    optuna.delete_study(study_name=args.name, storage=study._storage)
    for folder, artifact_id in artifacts:
        artifact_store(folder).remove(artifact_id)
    for folder in exports:
        shutil.rmtree(folder)
    if home is not None:
        disown(home)
    print(f"deleted {what}")
    left = sorted(p.name for p in home.iterdir()) if home is not None and home.is_dir() else []
    if left:
        print(f"kept in {home}: {', '.join(left)} (not this study's exports)")
    return 0


def cmd_compact(args: CompactArgs) -> int:
    for path in args.paths:
        c = compact_journal(Path(path))
        print(
            f"{c.path}: {c.bytes_before / 1e6:.2f} MB -> {c.bytes_after / 1e6:.2f} MB "
            f"({count(c.dropped, 'superseded write')} dropped; the same trials)"
        )
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
            if METRIC_NAMES not in s.system_attrs and (names := study_metric_names(s)):
                s.system_attrs[METRIC_NAMES] = names  # this copy only
        return studies

    storage.get_all_studies = get_all_studies  # the one call optuna-dashboard reads studies through
    return storage


# How often an idle dashboard looks whether it was asked to stop: it exits this long after SIGTERM or Ctrl-C.
STOP_POLL_SECONDS = 0.2


class IPv6Server(WSGIServer):
    address_family = socket.AF_INET6


def serve_until_stopped(app, host: str, port: int) -> None:
    """Serve the WSGI ``app`` (optuna-dashboard) on ``host:port`` until SIGINT or SIGTERM.

    A request in progress is answered first; a second signal does not wait for it. (optuna-dashboard's
    own ``run_server`` stops on an exception raised by the signal, which the WSGI server swallows when
    it lands inside a request, and then serves on.)
    """
    stop = threading.Event()

    def on_signal(signum, frame):
        if stop.is_set():  # asked twice: the request in progress takes too long
            os._exit(128 + signum)
        stop.set()

    # A process started with SIGINT ignored (nohup, `cmd &`) keeps ignoring it.
    signals = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else [])
    previous = {signum: signal.signal(signum, on_signal) for signum in signals}
    try:
        with make_server(host, port, app, IPv6Server if ":" in host else WSGIServer) as server:
            print(f"optuna-dashboard on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
            server.timeout = STOP_POLL_SECONDS
            while not stop.is_set():
                server.handle_request()
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        raise UserError(f"port {port} on {host} is in use; pick another with --port N") from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def cmd_dashboard(args: DashboardArgs) -> NoReturn:
    require_extra("optuna_dashboard", "dashboard", "the dashboard")
    from optuna_dashboard import wsgi  # an optional extra: imported only once it is known to be there

    storage = named_objectives(open_storage(args.storage))
    # The dashboard shows attached files from this store; a storage without any gets none, and no folder.
    store = artifact_store() if artifacts_dir().is_dir() else None
    app = wsgi(storage, artifact_store=store)
    serve_until_stopped(app, args.host, args.port)
    # Tearing down the interpreter after torch, Optuna and SQLAlchemy takes seconds, for nothing: each
    # write the dashboard made is committed, and no file is open for writing. So leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
