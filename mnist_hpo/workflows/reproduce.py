"""``make reproduce``: every protocol of the report at full size, as one resumable record under ``results/``.

The record is a folder (default ``results/``) that git keeps well:

* ``journals/<study>.log``: each study in Optuna's journal storage, an append-only text file;
* ``exports/<study>/trial-<N>/``: the retrained best trials (safetensors + JSON, as always),
  the autoencoder's with its latent-space exploration;
* ``gan/gan/``: the report's GAN run: scores, losses, image grids and its last checkpoint;
* ``report.md`` / ``report.html``: the reproduction report built from all of the above.

The parts run in the report's order; each is skipped when its record is complete and
continued where it stops otherwise, so the command may be stopped (Ctrl-C, kill -9, power
loss) and started again, on this or another machine, any number of times: a finished trial
is never trained again, a trial cut off is retried with its parameters and seed, an export
is made once (a complete one is checked and kept), and the GAN resumes from its checkpoint.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..report.formatting import fmt_seconds

# Default seconds per epoch here, per worker process, before the record has its own (BENCHMARKS.md:
# a quiet 2-core machine; two single-threaded workers train 1.32x the epochs of one 2-thread process).
DEFAULT_SECONDS_PER_EPOCH = {"autoencoder": 4.6, "denoising": 4.8, "classifier": 0.25, "gan": 9.0}
AE_TPE_SEEDS = (2020, 2021, 2022)


@dataclass(frozen=True)
class StudyPart:
    """One study of the record: its study file, the name it is stored under, and its overrides."""

    part: str
    file: str
    name: str
    seed: int | None = None
    export: bool = True
    explore: bool = False


def study_parts(tpe_seeds: tuple[int, ...] = AE_TPE_SEEDS) -> list[StudyPart]:
    parts = [StudyPart("ae", "ae", "ae", explore=True), StudyPart("dae", "dae", "dae"), StudyPart("clf", "clf", "clf")]
    for i, seed in enumerate(tpe_seeds):
        parts.append(StudyPart("ae-tpe", "ae-tpe", "ae-tpe" if i == 0 else f"ae-tpe-{seed}", seed=seed, export=i == 0))
    parts.append(StudyPart("gan-search", "gan-search", "gan-search"))
    return parts


PARTS = ("ae", "dae", "clf", "gan", "ae-tpe", "gan-search", "report")


@dataclass(frozen=True)
class Options:
    out: Path
    only: tuple[str, ...] = PARTS
    workers: int = 1
    trials: int | None = None
    epochs: int | None = None
    subset: int | None = None
    gan_epochs: int | None = None
    device: str | None = None
    progress: bool = True

    @property
    def short(self) -> bool:
        """A record cut down by overrides (tests, a quick look): explored on few points."""
        return self.subset is not None


def journal_url(out: Path, name: str) -> str:
    return f"journal:{out / 'journals' / f'{name}.log'}"


def _load(part: StudyPart, opts: Options):
    from ..cli import study_path
    from ..config import load_study_config
    from ..artifacts.export import resolve_config

    cfg = load_study_config(study_path(part.file)).with_overrides(
        name=part.name, seed=part.seed, trials=opts.trials, epochs=opts.epochs, train_subset=opts.subset,
        device=opts.device)
    return resolve_config(cfg, journal_url(opts.out, part.name))


def _open(part: StudyPart, opts: Options):
    import optuna

    from ..hpo.storage import open_storage

    try:
        return optuna.load_study(study_name=part.name, storage=open_storage(journal_url(opts.out, part.name)))
    except KeyError:
        return None


def _finished(study) -> int:
    from ..hpo.storage import finished_trials

    return len(finished_trials(study)) if study is not None else 0


def _seconds_per_epoch(study, model: str) -> float:
    """The record's own median seconds per epoch (per worker), or the default for the model family."""
    import statistics

    from optuna.trial import TrialState

    rates = []
    if study is not None:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            if t.datetime_start and t.datetime_complete and t.intermediate_values:
                rates.append((t.datetime_complete - t.datetime_start).total_seconds() / len(t.intermediate_values))
    return statistics.median(rates) if rates else DEFAULT_SECONDS_PER_EPOCH[model]


def estimate(opts: Options, parts: list[StudyPart]) -> list[tuple[str, float]]:
    """(what, seconds) still to do here, from the record's own speed where it has one."""
    rows = []
    parallel = max(1, opts.workers)
    for part in parts:
        cfg = _load_cfg_quiet(part, opts)
        if cfg is None:
            rows.append((part.name, float("nan")))
            continue
        study = _open(part, opts)
        rate = _seconds_per_epoch(study, cfg.model)
        left = max(0, cfg.trials - _finished(study)) * cfg.epochs
        if cfg.pruner.type != "none":
            left *= 0.4  # pruned protocols trained ~35-40% of the full epochs in BENCHMARKS.md's runs
        seconds = left * rate / parallel
        if part.export and not _export_done(part, opts):
            seconds += cfg.epochs * rate * (2 if cfg.model == "gan" else 1)
        rows.append((part.name, seconds))
    return rows


def _load_cfg_quiet(part: StudyPart, opts: Options):
    try:
        return _load(part, opts)
    except UserError:  # e.g. the classifier's encoder export does not exist yet
        return None


def _export_done(part: StudyPart, opts: Options) -> bool:
    """Whether the latest export of the study is its current best trial, intact."""
    from ..artifacts.export import LATEST, load_export
    from ..hpo.storage import best_trial

    pointer = opts.out / "exports" / part.name / LATEST
    study = _open(part, opts)
    if not pointer.exists() or study is None:
        return False
    try:
        _, meta = load_export(pointer.parent / pointer.read_text().strip())
        return meta["trial"] == best_trial(study).number
    except (UserError, KeyError):
        return False


def run_study_part(part: StudyPart, opts: Options, log=print) -> None:
    from ..cli import _run_workers
    from ..hpo.spaces import print_space
    from ..artifacts.export import export_trial
    from ..hpo.spaces import resolve_space
    from ..hpo.storage import best_trial, open_storage
    from ..hpo.workers import needs_trials
    from ..hpo.identity import open_study
    from ..hpo.run import run_study

    cfg = _load(part, opts)
    url = journal_url(opts.out, part.name)
    study = open_study(cfg, open_storage(url))
    if needs_trials(study, cfg) or _running(study):
        log(f"\n== {part.name}: {_finished(study)}/{cfg.trials} trials in the record, running the rest "
            f"({opts.workers} worker{'s' if opts.workers > 1 else ''})")
        print_space(cfg, resolve_space(cfg.space, cfg.seed))
        if opts.workers > 1:
            ns = argparse.Namespace(study=part.file, trials=opts.trials, epochs=opts.epochs, subset=opts.subset,
                                    batch_trials=None, study_name=part.name, storage=url, device=opts.device,
                                    seed=part.seed)
            _run_workers(ns, cfg, opts.workers)
        else:
            run_study(cfg, storage_url=url, progress=opts.progress)
    else:
        log(f"\n== {part.name}: {_finished(study)}/{cfg.trials} trials in the record, complete")
    if not part.export:
        return
    study = open_study(cfg, open_storage(url))
    if _export_done(part, opts):
        log(f"   export of trial {best_trial(study).number}: in the record, weights checked")
    else:
        best = best_trial(study)
        log(f"   retraining trial {best.number} on all training images, testing, exporting")
        folder = export_trial(study, best, cfg=cfg, progress=opts.progress)
        log(f"   exported to {folder}")
    if part.explore:
        _explore(part, opts, log)


def _running(study) -> bool:
    from optuna.trial import TrialState

    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)))


def _explore(part: StudyPart, opts: Options, log) -> None:
    from ..analysis.explore import EXPLORE_DIR, ExploreSettings, run_explore
    from ..artifacts.export import latest_export, read_export_meta

    folder = latest_export(part.name, opts.out / "exports")
    if (folder / EXPLORE_DIR / "explore.json").exists():
        log(f"   latent space of {folder}: in the record")
        return
    settings = ExploreSettings(points=200, tsne_points=120, tsne_iter=250) if opts.short else ExploreSettings()
    log(f"   exploring the latent space of {folder} ({settings.points} test images, t-SNE of {settings.tsne_points})")
    read_export_meta(folder)
    run_explore(folder, settings, log=(lambda *a: None) if not opts.progress else print)


def run_gan_part(opts: Options, log=print) -> None:
    from ..cli import study_path
    from ..config import load_study_config
    from .gan_run import run_gan
    from ..data.datasets import load_data
    from ..hpo.run import set_threads
    from ..tasks import make_task
    from ..tasks.gan import single_point

    cfg = load_study_config(study_path("gan")).with_overrides(epochs=opts.gan_epochs, train_subset=opts.subset,
                                                              device=opts.device)
    folder = opts.out / "gan" / cfg.name
    result = folder / "result.json"
    if result.exists():
        import json

        done = json.loads(result.read_text())
        if done.get("epochs") == cfg.epochs:
            log(f"\n== gan: {cfg.epochs} epochs in the record ({folder})")
            return
    set_threads(1)
    task = make_task(cfg, load_data(cfg))
    log(f"\n== gan: the report's GAN, {cfg.epochs} epochs on {len(task.train_all)} images, in {folder}")
    run_gan(task, single_point(cfg), folder, epochs=cfg.epochs, seed=cfg.seed, every=10, log=log)


def run_report_part(opts: Options, log=print) -> None:
    from ..report.build import build_report

    html_path, md_path = build_report(out=opts.out / "report.html", journals=opts.out / "journals")
    log(f"\n== report: {html_path} and {md_path}")


def reproduce(opts: Options, log=print) -> None:
    """Run the parts of ``opts.only`` in the report's order, each resumed from the record."""
    unknown = [p for p in opts.only if p not in PARTS]
    if unknown:
        raise UserError(f"--only {','.join(unknown)}: unknown part; choose from {','.join(PARTS)}")
    os.environ["MNIST_HPO_STORAGE_DIR"] = str(opts.out)  # exports, artifacts and the GAN run go into the record
    (opts.out / "journals").mkdir(parents=True, exist_ok=True)
    parts = [p for p in study_parts() if p.part in opts.only]
    rows = estimate(opts, parts)
    if "gan" in opts.only:
        rows.append(("gan", _gan_seconds_left(opts)))
    known = [s for _, s in rows if math.isfinite(s)]
    log(f"record {opts.out}: about {fmt_seconds(sum(known))} of training left here"
        + "".join(f"\n  {name}: {fmt_seconds(s) if math.isfinite(s) else 'after the ae export'}" for name, s in rows)
        + "\n(estimated from the record's own seconds per epoch where it has some)")
    order = [p for p in PARTS if p in opts.only]
    start = time.perf_counter()
    for name in order:
        if name == "gan":
            run_gan_part(opts, log)
        elif name == "report":
            run_report_part(opts, log)
        else:
            for part in parts:
                if part.part == name:
                    run_study_part(part, opts, log)
    log(f"\nreproduce: {', '.join(order)} done in {fmt_seconds(time.perf_counter() - start)}")


def _gan_seconds_left(opts: Options) -> float:
    import json

    from ..cli import study_path
    from ..config import load_study_config

    cfg = load_study_config(study_path("gan")).with_overrides(epochs=opts.gan_epochs)
    folder = opts.out / "gan" / cfg.name
    done, rate = 0, DEFAULT_SECONDS_PER_EPOCH["gan"]
    pointer = folder / "checkpoints" / "LATEST"
    if pointer.exists():
        try:
            meta = json.loads((folder / "checkpoints" / pointer.read_text().strip() / "state.json").read_text())
            done = int(meta["epoch"])
            seconds = meta["history"].get("seconds") or []
            rate = sorted(seconds)[len(seconds) // 2] if seconds else rate
        except (OSError, ValueError, KeyError):
            pass
    return max(0, cfg.epochs - done) * rate



def add_arguments(p: argparse.ArgumentParser, positive) -> None:
    p.add_argument("--out", default="results", help="the record's folder (default: results)")
    p.add_argument("--only", help=f"comma-separated parts, in any order (default: all of {','.join(PARTS)})")
    p.add_argument("--workers", type=positive, help="worker processes per study (default: one per core)")
    p.add_argument("--trials", type=positive, help="override every study's trials (a short record)")
    p.add_argument("--epochs", type=positive, help="override every study's epochs (a short record)")
    p.add_argument("--subset", type=positive, help="train on the first N images only (a short record)")
    p.add_argument("--gan-epochs", type=positive, help="override the GAN run's 400 epochs")
    p.add_argument("--device", help="auto, cpu or cuda[:N]")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def options_from(args: argparse.Namespace) -> Options:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    only = tuple(p.strip() for p in args.only.split(",") if p.strip()) if args.only else PARTS
    return Options(out=Path(args.out), only=only, workers=args.workers or cores, trials=args.trials,
                   epochs=args.epochs, subset=args.subset, gan_epochs=args.gan_epochs, device=args.device,
                   progress=not args.quiet)


def main(args: argparse.Namespace) -> int:
    reproduce(options_from(args))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it as: mnist-hpo reproduce")
