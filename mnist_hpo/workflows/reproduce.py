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

import json
import math
import os
import sys
import time
from collections.abc import Callable
from typing import cast

import optuna
from optuna.trial import TrialState

from ..analysis.explore import EXPLORE_DIR, ExploreSettings, run_explore
from ..artifacts.export import export_trial, latest_export
from ..artifacts.folders import existing_export
from ..config import load_study_config
from ..core.space import resolve_space
from ..core.study_files import study_path
from ..data.datasets import load_data
from ..errors import UserError
from ..hpo.identity import open_study
from ..hpo.queries import best_trial
from ..hpo.run import run_study, set_threads
from ..hpo.suggestions import print_space
from ..hpo.supervision import needs_trials
from ..hpo.workers import spawn_workers
from ..report.build import build_report
from ..report.formatting import fmt_seconds
from ..storages import open_storage
from ..tasks import make_task
from ..tasks.gan import GanTask, single_point
from .gan_run import run_gan
from .record import (
    PARTS,
    Options,
    StudyPart,
    estimate,
    finished,
    gan_seconds_left,
    journal_url,
    load_part,
    study_parts,
)

Log = Callable[[str], None]  # where progress lines go (print)


def run_study_part(part: StudyPart, opts: Options, log: Log = print) -> None:
    cfg = load_part(part, opts)
    url = journal_url(opts.out, part.name)
    study = open_study(cfg, open_storage(url))
    if needs_trials(study, cfg) or _running(study):
        log(
            f"\n== {part.name}: {finished(study)}/{cfg.trials} trials in the record, running the rest "
            f"({opts.workers} worker{'s' if opts.workers > 1 else ''})"
        )
        print_space(cfg, resolve_space(cfg.space, cfg.seed))
        if opts.workers > 1:
            spawn_workers(cfg, opts.workers, storage=url, progress=opts.progress)
        else:
            run_study(cfg, storage_url=url, progress=opts.progress)
    else:
        log(f"\n== {part.name}: {finished(study)}/{cfg.trials} trials in the record, complete")
    if not part.export:
        return
    study = open_study(cfg, open_storage(url))
    best = best_trial(study)
    # (one made before studies had UUIDs is adopted; one made in the best trial's place is the best's)
    folder = existing_export(study, best.number)
    if folder is not None:
        log(f"   export of trial {best.number}: in the record ({folder.name}), weights checked")
    else:
        log(f"   retraining trial {best.number} on all training images, testing, exporting")
        folder = export_trial(study, best, cfg=cfg, progress=opts.progress)
        log(f"   exported to {folder}")
    if part.explore:
        _explore(study, opts, log)


def _running(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)))


def _explore(study: optuna.Study, opts: Options, log: Log) -> None:
    folder = latest_export(study.study_name, opts.out / "exports", study=study)
    if (folder / EXPLORE_DIR / "explore.json").exists():
        log(f"   latent space of {folder}: in the record")
        return
    settings = ExploreSettings(points=200, tsne_points=120, tsne_iter=250) if opts.short else ExploreSettings()
    log(f"   exploring the latent space of {folder} ({settings.points} test images, t-SNE of {settings.tsne_points})")
    run_explore(folder, settings, log=(lambda *a: None) if not opts.progress else print)


def run_gan_part(opts: Options, log: Log = print) -> None:
    cfg = load_study_config(study_path("gan")).with_overrides(
        study_name="gan", epochs=opts.gan_epochs, train_subset=opts.subset, device=opts.device
    )
    folder = opts.out / "gan" / cfg.name
    result = folder / "result.json"
    if result.exists():
        done = json.loads(result.read_text())
        if done.get("epochs") == cfg.epochs:
            log(f"\n== gan: {cfg.epochs} epochs in the record ({folder})")
            return
    set_threads(1)
    task = cast(GanTask, make_task(cfg, load_data(cfg)))  # the study file's model is the GAN
    log(f"\n== gan: the report's GAN, {cfg.epochs} epochs on {len(task.train_all)} images, in {folder}")
    run_gan(task, single_point(cfg), folder, epochs=cfg.epochs, seed=cfg.seed, every=10, log=log)


def run_report_part(opts: Options, log: Log = print) -> None:
    html_path, md_path = build_report(out=opts.out / "report.html", journals=opts.out / "journals")
    log(f"\n== report: {html_path} and {md_path}")


def reproduce(opts: Options, log: Log = print) -> None:
    """Run the parts of ``opts.only`` in the report's order, each resumed from the record."""
    unknown = [p for p in opts.only if p not in PARTS]
    if unknown:
        raise UserError(f"--only {','.join(unknown)}: unknown part; choose from {','.join(PARTS)}")
    os.environ["MNIST_HPO_STORAGE_DIR"] = str(opts.out)  # exports, artifacts and the GAN run go into the record
    (opts.out / "journals").mkdir(parents=True, exist_ok=True)
    parts = [p for p in study_parts() if p.part in opts.only]
    rows = estimate(opts, parts)
    if "gan" in opts.only:
        rows.append(("gan", gan_seconds_left(opts)))
    known = [s for _, s in rows if math.isfinite(s)]
    log(
        f"record {opts.out}: about {fmt_seconds(sum(known))} of training left here"
        + "".join(f"\n  {name}: {fmt_seconds(s) if math.isfinite(s) else 'after the ae export'}" for name, s in rows)
        + "\n(estimated from the record's own seconds per epoch where it has some)"
    )
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it as: mnist-hpo reproduce")
