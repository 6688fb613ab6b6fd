"""The ``mnist-hpo`` command line: a thin layer over the study, export and data modules.

``main(argv) -> int`` is what tests call; ``entrypoint`` is the console script.
Every user mistake is one ``mnist-hpo: error: …`` line and exit status 2; Ctrl-C
is exit status 130 with the finished trials kept.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from .errors import UserError, require_extra

STUDIES_DIR = Path("studies")


def study_path(arg: str) -> Path:
    """``ae`` means ``studies/ae.toml``; anything with a slash or a .toml suffix is a path."""
    if arg.endswith(".toml") or "/" in arg:
        return Path(arg)
    return STUDIES_DIR / f"{arg}.toml"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="a study file, or its name in studies/ (e.g. ae)")
    p.add_argument("--trials", type=_positive, help="override the number of trials")
    p.add_argument("--epochs", type=_positive, help="override the epochs per trial (use with --study-name)")
    p.add_argument("--subset", type=_positive, help="use only the first N training images (a short run)")
    p.add_argument("--batch-trials", type=_positive, help="train N trials at once, stacked (autoencoder, classifier)")
    p.add_argument("--study-name", help="store under this study name instead of the file's")
    p.add_argument("--seed", type=int, help="override the study seed (a new study: use with --study-name)")
    p.add_argument("--storage", help="storage URL (default: sqlite:///storage/mnist_hpo.db or $MNIST_HPO_STORAGE)")
    p.add_argument("--device", help="auto, cpu or cuda[:N]")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--warm-start", metavar="STUDY", help="first run the best trials of STUDY (same storage), once")
    p.add_argument("--warm-start-trials", type=_positive, default=5, metavar="K",
                   help="how many of its best complete trials (default 5)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-hpo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("study", help="run or resume a study, then retrain, test and export its best trial")
    _add_run_options(p)
    p.add_argument("--workers", type=_positive, default=1, help="run N worker processes on this machine")
    p.add_argument("--no-retrain", action="store_true", help="skip the retrain and export after the search")

    p = sub.add_parser("worker", help="run one worker of a study (several may share one storage)")
    _add_run_options(p)
    p.add_argument("--max-trials", type=_positive, help="run at most N trials in this worker, then exit")

    p = sub.add_parser("export", help="retrain, test and export a study's best trial (or --trial N)")
    p.add_argument("name", help="study name")
    p.add_argument("--trial", type=int, metavar="N", help="export trial N instead of the best (it must be COMPLETE)")
    p.add_argument("--storage")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("show", help="a study's trial counts and top-5 table")
    p.add_argument("name")
    p.add_argument("--storage")
    p.add_argument("-k", type=_positive, default=5, help="how many trials to list")

    p = sub.add_parser("compare", help="anytime curves of several studies by protocol (PNG) and epochs/time to a target")
    p.add_argument("studies", nargs="+", metavar="STUDY", help="study names")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--storage", help="storage URL (default: sqlite:///storage/mnist_hpo.db or $MNIST_HPO_STORAGE)")
    where.add_argument("--journals", help="a folder of journal files, one per study (DIR/<study>.log), e.g. results/journals")
    p.add_argument("--out", help="the PNG to write (default: storage/compare.png)")
    p.add_argument("--target", type=float, default=0.0172,
                   help="the value to reach (default 0.0172: the report's best validation MSE)")

    p = sub.add_parser("rerun", help="train one stored trial again as it ran (seed, threads, epochs) and compare the metric")
    p.add_argument("name", help="study name")
    p.add_argument("trial", type=int, help="trial number")
    p.add_argument("--storage")

    p = sub.add_parser("verify", help="check an export's weights and dataset against their checksums, test them again, compare")
    p.add_argument("path", help="an export folder (storage/exports/<study>/trial-<N>)")

    p = sub.add_parser("list", help="the studies in the storage")
    p.add_argument("--storage")

    p = sub.add_parser("delete", help="delete a study and all its trials")
    p.add_argument("name")
    p.add_argument("--storage")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    p = sub.add_parser("data", help="prepare a dataset (download, check, cache) and print its summary")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--idx-dir", help="read IDX files from this folder instead")

    p = sub.add_parser("explore", help="latent space of an exported autoencoder: Table 5, PCA/t-SNE, k-NN, new images")
    p.add_argument("--export", help="an export folder (default: the latest export of --study)")
    p.add_argument("--study", default="ae", help="whose latest export to use (default: ae)")
    p.add_argument("--points", type=_positive, default=10_000, help="test images to encode (default: all 10000)")
    p.add_argument("--tsne-points", type=_positive, default=2_500, help="of those, how many t-SNE maps (default 2500)")
    p.add_argument("--tsne-iter", type=_positive, default=1000, help="t-SNE iterations (at least 250; default 1000)")
    p.add_argument("--noise-mean", type=float, default=5.0, help="mean of the noise added to a code (default 5)")
    p.add_argument("--noise-std", type=float, default=10.0, help="its standard deviation (default 10)")
    p.add_argument("--sample", type=int, default=0, help="index of the test image whose code gets the noise")
    p.add_argument("--interpolate", type=int, nargs=2, default=(2, 7), metavar=("FROM", "TO"),
                   help="interpolate from the first test image of digit FROM to the first of TO (default 2 7)")
    p.add_argument("--threads", type=_positive, default=1, help="scikit-learn threads (default 1, see README)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default: <export>/explore)")

    p = sub.add_parser("report", help="the reproduction report (HTML + Markdown) from the database and exports")
    p.add_argument("--storage")
    p.add_argument("--out", help="the HTML file to write (default: storage/report.html; the .md beside it)")
    p.add_argument("--journals", help="a folder of journal files, one per study (e.g. results/journals), "
                                      "instead of --storage")
    p.add_argument("--study", action="append", default=[], metavar="SECTION=NAME",
                   help="use study NAME for a section (ae, dae, clf, gan), e.g. --study ae=ae-short")
    p = sub.add_parser("gan", help="train the report's GAN (one configuration) with checkpoints, grids and scores")
    p.add_argument("study", nargs="?", default="gan", help="a study file with one value per parameter (default: gan)")
    p.add_argument("--epochs", type=_positive, help="override the epochs (a longer run continues a finished one)")
    p.add_argument("--run", help="run folder name under storage/gan/ (default: the study name)")
    p.add_argument("--every", type=_positive, default=10, help="checkpoint and image grid every N epochs")
    p.add_argument("--subset", type=_positive, help="use only the first N training images (a short run)")
    p.add_argument("--fresh", action="store_true", help="discard the run's checkpoints and start from epoch 0")
    p.add_argument("--device", help="auto, cpu or cuda[:N]")

    p = sub.add_parser("reproduce", help="every protocol of the report at full size, as a resumable record (results/)")
    from .workflows.reproduce import add_arguments

    add_arguments(p, _positive)

    p = sub.add_parser("dashboard", help="serve optuna-dashboard on the storage")
    p.add_argument("--storage")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_positive, default=8080)
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    return parser


def _load_cfg(args: argparse.Namespace):
    from .config import load_study_config

    from .artifacts.export import resolve_config
    from .tasks import check_device, device_source

    cfg = load_study_config(study_path(args.study))
    cfg = cfg.with_overrides(
        trials=args.trials, epochs=args.epochs, train_subset=args.subset, name=args.study_name, device=args.device,
        batch_trials=args.batch_trials, seed=args.seed,
    )
    check_device(cfg.device, device_source(cfg, args.device))  # before the storage is opened
    return resolve_config(cfg, args.storage)  # e.g. pin the classifier's encoder export


def _cmd_study(args: argparse.Namespace, *, worker: bool = False) -> int:
    from .hpo.run import run_study
    from .report.tables import state_counts, top_table

    cfg = _load_cfg(args)
    progress = not args.quiet
    workers = 1 if worker else args.workers
    if workers > 1:
        study = _run_workers(args, cfg, workers)
    else:
        from .hpo.spaces import print_space, resolve_space

        def on_open(study) -> None:
            if not worker:
                print_space(cfg, resolve_space(cfg.space, cfg.seed))

        study = run_study(cfg, storage_url=args.storage, progress=progress,
                          max_trials=getattr(args, "max_trials", None), on_open=on_open,
                          warm_start=args.warm_start, warm_start_k=args.warm_start_trials)
    if worker:
        return 0
    print(f"\nstudy {cfg.name}: {state_counts(study)}")
    print(top_table(study))
    if args.no_retrain or not cfg.retrain:
        return 0
    from .artifacts.export import export_trial, read_export_meta
    from .hpo.storage import best_trial, is_multi_objective

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


def _run_workers(args: argparse.Namespace, cfg, workers: int):
    """Start ``workers`` worker processes on this machine with this command's options, and wait for them."""
    from .hpo.workers import spawn_workers

    flags = {"--trials": args.trials, "--epochs": args.epochs, "--subset": args.subset,
             "--batch-trials": args.batch_trials, "--seed": getattr(args, "seed", None),
             "--study-name": args.study_name, "--device": args.device}
    return spawn_workers(cfg, workers, study_file=study_path(args.study), storage=args.storage, flags=flags,
                         warm_start=args.warm_start, warm_start_k=args.warm_start_trials)


def _cmd_export(args: argparse.Namespace) -> int:
    from .artifacts.export import export_best, read_export_meta

    folder = export_best(args.name, storage_url=args.storage, progress=not args.quiet, trial=args.trial)
    meta = read_export_meta(folder)
    print(f"exported trial {meta['trial']} of {args.name} to {folder}: "
          + ", ".join(f"{k} = {v:.4f}" for k, v in meta["metrics"].items() if isinstance(v, float)))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from .hpo.storage import load_existing_study
    from .report.tables import state_counts, top_table

    from .hpo.samplers import grid_coverage

    study = load_existing_study(args.name, args.storage)
    print(f"study {args.name}: {state_counts(study)}")
    coverage = grid_coverage(study)
    if coverage is not None:
        print(coverage)
    print(top_table(study, k=args.k))
    from .analysis.importance import importance_lines, latent_lines

    print("\n" + "\n".join(importance_lines(study)))
    if latent := latent_lines(study):
        print("\n" + "\n".join(latent))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import math

    from .analysis.anytime import compare_figure, load_curves
    from .hpo.sources import Studies
    from .report.tables import compare_table
    from .hpo.storage import storage_dir

    if not math.isfinite(args.target):
        raise UserError(f"--target {args.target}: expected a finite number, e.g. --target 0.0172")
    journals = Path(args.journals) if args.journals else None
    if journals is not None and not journals.is_dir():
        raise UserError(f"--journals {journals}: no such folder; pass the folder that holds the <study>.log files")
    out = Path(args.out) if args.out else storage_dir() / "compare.png"
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: expected a .png file name")
    curves = load_curves(args.studies, Studies(args.storage, journals))
    compare_figure(curves, out, target=args.target)
    print(compare_table(curves, args.target))
    print(f"wrote {out}")
    return 0


def _cmd_rerun(args: argparse.Namespace) -> int:
    from .artifacts.rerun import rerun_trial

    r = rerun_trial(args.name, args.trial, storage_url=args.storage)
    print(r.describe())
    if not r.holds:
        print(f"mnist-hpo: rerun differs: {r.difference()}", file=sys.stderr)
    return 0 if r.holds else 1


def _cmd_verify(args: argparse.Namespace) -> int:
    from .artifacts.verify import verify_export

    v = verify_export(args.path)
    for line in v.checks:
        print(f"{v.folder}: {line}")
    if not v.ok:
        print(f"mnist-hpo: verify failed: {v.folder}: {v.failure}", file=sys.stderr)
        return 1
    print(f"{v.folder}: verified")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    import optuna

    from .hpo.storage import open_storage

    storage = open_storage(args.storage)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
    if not summaries:
        print("no studies yet")
    for s in summaries:
        best = f"best {s.best_trial.value:.4g} (trial {s.best_trial.number})" if s.best_trial else \
            f"{len(s.directions)} objectives (see 'mnist-hpo show {s.study_name}')" if s.directions else "no complete trial"
        print(f"{s.study_name}: {s.n_trials} trials, {best}")
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    import optuna

    from .hpo.storage import load_existing_study, open_storage

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


def _cmd_data(args: argparse.Namespace) -> int:
    import time

    from .data.datasets import load_dataset

    start = time.perf_counter()
    ds = load_dataset(args.dataset, idx_dir=Path(args.idx_dir) if args.idx_dir else None)
    print(f"{ds.name}: {len(ds.train_images)} train + {len(ds.test_images)} test images, "
          f"checksum {ds.checksum[:16]}…, loaded in {time.perf_counter() - start:.2f} s")
    from .analysis.frechet import load_fidnet, prepare_fidnet

    _, judge = load_fidnet(ds.name, prepare_fidnet(ds).parent, dataset_checksum=ds.checksum)
    print(f"{ds.name} quality classifier: {judge['test_accuracy']:.2%} test accuracy")
    return 0


def _cmd_gan(args: argparse.Namespace) -> int:
    from .config import load_study_config
    from .workflows.gan_run import run_gan
    from .data.datasets import load_data
    from .hpo.run import set_threads
    from .hpo.storage import storage_dir
    from .tasks.gan import single_point

    cfg = load_study_config(study_path(args.study))
    cfg = cfg.with_overrides(epochs=args.epochs, train_subset=args.subset, device=args.device)
    if cfg.model != "gan":
        raise UserError(f"{cfg.source} has model type {cfg.model!r}; 'mnist-hpo gan' needs a GAN study file "
                        "(e.g. studies/gan.toml)")
    from .tasks import check_device, device_source

    check_device(cfg.device, device_source(cfg, args.device))
    params = single_point(cfg)
    set_threads(1)
    from .tasks import make_task

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


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .workflows.reproduce import main as reproduce_main

    return reproduce_main(args)


def _cmd_dashboard(args: argparse.Namespace) -> int:
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback and not args.allow_remote:
        raise UserError(f"--host {args.host} would expose the dashboard beyond this machine; "
                        "add --allow-remote if that is what you want")
    require_extra("optuna_dashboard", "dashboard", "the dashboard")
    from optuna_dashboard import run_server

    from .hpo.storage import artifact_store, open_storage

    storage = open_storage(args.storage)
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    run_server(storage, host=args.host, port=args.port, artifact_store=artifact_store())
    return 0


def _cmd_explore(args: argparse.Namespace) -> int:
    from .analysis.explore import ExploreSettings, default_export, run_explore

    if args.tsne_iter < 250:
        raise UserError(f"--tsne-iter {args.tsne_iter}: scikit-learn's t-SNE needs at least 250 iterations")
    if not all(0 <= d <= 9 for d in args.interpolate):
        raise UserError(f"--interpolate {args.interpolate[0]} {args.interpolate[1]}: digits are 0 to 9")
    settings = ExploreSettings(
        points=args.points, tsne_points=args.tsne_points, tsne_iter=args.tsne_iter, noise_mean=args.noise_mean,
        noise_std=args.noise_std, sample_index=args.sample, interpolate=tuple(args.interpolate),
        threads=args.threads, seed=args.seed)
    export = Path(args.export) if args.export else default_export(args.study)
    run_explore(export, settings, out=Path(args.out) if args.out else None)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report.build import build_report

    studies = {}
    for item in args.study:
        section, sep, name = item.partition("=")
        if not sep or not name:
            raise UserError(f"--study {item!r}: expected SECTION=NAME, e.g. --study ae=ae-short")
        studies[section] = name
    journals = Path(args.journals) if args.journals else None
    if journals is not None and not journals.is_dir():
        raise UserError(f"--journals {journals}: no such folder; pass the folder that holds the <study>.log files")
    html_path, md_path = build_report(args.storage, out=Path(args.out) if args.out else None, studies=studies,
                                      journals=journals)
    print(f"wrote {html_path} and {md_path}")
    return 0


COMMANDS = {
    "study": _cmd_study,
    "worker": lambda a: _cmd_study(a, worker=True),
    "export": _cmd_export,
    "show": _cmd_show,
    "compare": _cmd_compare,
    "rerun": _cmd_rerun,
    "verify": _cmd_verify,
    "list": _cmd_list,
    "delete": _cmd_delete,
    "data": _cmd_data,
    "dashboard": _cmd_dashboard,
    "explore": _cmd_explore,
    "report": _cmd_report,
    "gan": _cmd_gan,
    "reproduce": _cmd_reproduce,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed its one-line usage error
        return int(e.code or 0)
    if args.command in ("study", "worker", "reproduce"):
        import optuna

        from .hpo.run import set_threads

        # Progress bars say what Optuna's per-trial INFO lines would; keep warnings.
        optuna.logging.set_verbosity(optuna.logging.WARNING)

        set_threads(int(os.environ.get("MNIST_HPO_WORKERS", "1")))
    try:
        return COMMANDS[args.command](args)
    except UserError as e:
        print(f"mnist-hpo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmnist-hpo: interrupted; finished trials are stored, the running one is marked failed and "
              "queued again; run the same command again to resume", file=sys.stderr)
        return 130


def entrypoint() -> None:
    sys.exit(main())
