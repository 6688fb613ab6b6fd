"""The record ``make reproduce`` keeps under ``results/``: its parts, where each is stored, what is left.

:mod:`mnist_hpo.workflows.reproduce` runs the parts; this module only reads the record
(a part's journal file, its latest export, the GAN run's checkpoint) to say what is done
and to estimate, from the record's own speed, how long the rest takes.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ..artifacts.export import latest_export, resolve_config
from ..artifacts.loading import load_export
from ..config import load_study_config
from ..core.pbt import planned_trials
from ..core.schema import StudyConfig
from ..core.study_files import study_path
from ..errors import UserError
from ..hpo.queries import best_trial, finished_trials
from ..storages import open_storage

# Default seconds per epoch here, per worker process, before the record has its own (BENCHMARKS.md:
# a quiet 2-core machine; two single-threaded workers train 1.32x the epochs of one 2-thread process).
DEFAULT_SECONDS_PER_EPOCH = {"autoencoder": 4.6, "denoising": 4.8, "classifier": 0.25, "gan": 9.0}
# The report's seed and two more: each improved protocol runs on all three, so that the anytime figure compares
# protocols, not one seed's luck.
PROTOCOL_SEEDS = (2020, 2021, 2022)
# The rows the report leaves open (its conclusion's other noises, one model for all, a convolutional GAN).
OPEN_ROWS = ("dae-hyperband", "dae-sp", "dae-mix", "gan-dcgan")
# Population-based training beside the protocols it is compared with (docs/pbt.md).
PBT_ROWS = ("ae-pbt", "gan-pbt")
IMPROVED_PROTOCOLS = ("ae-tpe", "ae-hyperband", "ae-gp")  # study files; the first seed's ae-tpe is exported


@dataclass(frozen=True)
class StudyPart:
    """One study of the record: its study file, the name it is stored under, and its overrides."""

    part: str
    file: str
    name: str
    seed: int | None = None
    export: bool = True
    explore: bool = False
    figures: bool = True  # a reconstruction figure per trial (the comparison studies' are left out: the record's size)


def study_parts(seeds: tuple[int, ...] = PROTOCOL_SEEDS) -> list[StudyPart]:
    parts = [
        StudyPart("ae", "ae", "ae", explore=True),
        # the report's Table 1 configurations trained here: is a gap the implementation or the draws?
        StudyPart("ae-table1", "ae-table1", "ae-table1", export=False),
        StudyPart("dae", "dae", "dae"),
        StudyPart("clf", "clf", "clf"),
    ]
    for file in IMPROVED_PROTOCOLS:
        for i, seed in enumerate(seeds):
            parts.append(
                StudyPart(
                    file,
                    file,
                    file if i == 0 else f"{file}-{seed}",
                    seed=seed,
                    export=file == "ae-tpe" and i == 0,
                    figures=False,
                )
            )
    parts.append(StudyPart("gan-search", "gan-search", "gan-search"))
    # Two objectives: no single best trial to export (``mnist-hpo export ae-pareto --trial N`` picks one).
    parts.append(StudyPart("ae-pareto", "ae-pareto", "ae-pareto", export=False, figures=False))
    # The report's open rows: the DAE by the best protocol, every noise it names, the convolutional GAN.
    for name in OPEN_ROWS + PBT_ROWS:
        parts.append(StudyPart(name, name, name, figures=False))
    return parts


# The report's protocols first, in its order; then what goes beyond it (other samplers, pruners and objectives, the
# rows the report leaves open, population-based training); then the report.
PARTS = (
    "ae",
    "ae-table1",
    "dae",
    "clf",
    "gan",
    "ae-tpe",
    "gan-search",
    "ae-hyperband",
    "ae-gp",
    "ae-pareto",
    *OPEN_ROWS,
    *PBT_ROWS,
    "report",
)


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


def load_part(part: StudyPart, opts: Options) -> StudyConfig:
    cfg = load_study_config(study_path(part.file)).with_overrides(
        name=part.name,
        seed=part.seed,
        trials=opts.trials,
        epochs=opts.epochs,
        train_subset=opts.subset,
        device=opts.device,
        trial_figures=None if part.figures else False,
    )
    return resolve_config(cfg, journal_url(opts.out, part.name))


def open_part(part: StudyPart, opts: Options) -> optuna.Study | None:
    url = journal_url(opts.out, part.name)
    if not Path(url[len("journal:") :]).exists():  # look without creating the file
        return None
    try:
        return optuna.load_study(study_name=part.name, storage=open_storage(url))
    except KeyError:
        return None


def finished(study: optuna.Study | None) -> int:
    return len(finished_trials(study)) if study is not None else 0


def _trained(study: optuna.Study | None) -> list[Any]:
    """The study's finished trials that trained at least one epoch (COMPLETE or PRUNED)."""
    if study is None:
        return []
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if t.intermediate_values
    ]


def _seconds_per_epoch(trials: list[Any], model: str) -> float:
    """The median seconds per epoch (per worker) of these trials, or the default for the model family."""
    rates = [
        (t.datetime_complete - t.datetime_start).total_seconds() / len(t.intermediate_values)
        for t in trials
        if t.datetime_start and t.datetime_complete
    ]
    return statistics.median(rates) if rates else DEFAULT_SECONDS_PER_EPOCH[model]


def _epochs_per_trial(trials: list[Any], cfg: StudyConfig) -> float:
    """The mean epochs a trial of this protocol trains: what a pruner leaves differs by protocol
    (TPE + successive halving ~12 of 50 in the record, Hyperband ~30), so a guess is a last resort."""
    if trials:
        return sum(len(t.intermediate_values) for t in trials) / len(trials)
    return cfg.epochs * (PRUNED_FRACTION if cfg.pruner.type != "none" else 1.0)


# Before the record has a protocol's own trials: pruned protocols trained ~35-40% of the full epochs
# in BENCHMARKS.md's runs.
PRUNED_FRACTION = 0.4


def estimate(opts: Options, parts: list[StudyPart]) -> list[tuple[str, float]]:
    """(what, seconds) still to do here, from the record's own speed where it has one.

    A part not started yet borrows from the record's studies of the same protocol: the same study
    file on another seed for its speed and epochs per trial, else any study of the same model family
    and pruner for its epochs per trial (a sampler changes that less than a pruner does).
    """
    parallel = max(1, opts.workers)
    record, done = {}, {}  # every study of the record, started or not: name -> (part, config, trained trials)
    for part in {p.name: p for p in [*study_parts(), *parts]}.values():
        cfg = load_part_quietly(part, opts)
        study = open_part(part, opts) if cfg is not None else None
        record[part.name], done[part.name] = (part, cfg, _trained(study)), finished(study)
    rows = []
    for part in parts:
        _, cfg, own = record[part.name]
        if cfg is None:
            rows.append((part.name, float("nan")))
            continue
        same_file = own + [
            t for name, (p, _, trials) in record.items() if p.file == part.file and name != part.name for t in trials
        ]
        same_pruner = [
            t
            for p, c, trials in record.values()
            if c is not None and c.model == cfg.model and c.pruner.type == cfg.pruner.type
            for t in trials
        ]
        rate = _seconds_per_epoch(own or same_file, cfg.model)
        per_trial = min(cfg.epochs, _epochs_per_trial(same_file or same_pruner, cfg))
        if cfg.pbt is not None:  # segments of ``interval`` epochs; the export is a member's own weights
            rows.append((part.name, max(0, planned_trials(cfg) - done[part.name]) * cfg.pbt.interval * rate / parallel))
            continue
        seconds = max(0, cfg.trials - done[part.name]) * per_trial * rate / parallel
        if part.export and not export_done(part, opts):
            seconds += cfg.epochs * rate * (2 if cfg.model == "gan" else 1)
        rows.append((part.name, seconds))
    return rows


def load_part_quietly(part: StudyPart, opts: Options) -> StudyConfig | None:
    try:
        return load_part(part, opts)
    except UserError:  # e.g. the classifier's encoder export does not exist yet
        return None


def export_done(part: StudyPart, opts: Options) -> bool:
    """Whether the latest export of the study (its own, found by its UUID) is its current best trial's, intact."""
    study = open_part(part, opts)
    if study is None:
        return False
    try:
        _, meta = load_export(latest_export(part.name, opts.out / "exports", study=study))
        best = best_trial(study).number  # exported itself, or in its place when its retrain stayed on the plateau
        return best in (meta["trial"], ((meta.get("retrain") or {}).get("fallback") or {}).get("from_trial"))
    except (UserError, KeyError):
        return False


def gan_seconds_left(opts: Options) -> float:
    cfg = load_study_config(study_path("gan")).with_overrides(
        study_name="gan", epochs=opts.gan_epochs
    )  # a run, not a study
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
