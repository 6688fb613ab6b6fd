"""The commands that read a finished search: ``export``, ``show``, ``compare``, ``rerun``, ``verify``,
``explore`` and ``report``.

Imported by :mod:`mnist_hpo.cli` only when one of them runs: the imports below load torch and Optuna.
Their argument checks that need none of it are in :mod:`mnist_hpo.commands.checks`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..analysis.anytime import compare_figure, load_curves
from ..analysis.explore import ExploreSettings, default_export, run_explore
from ..analysis.importance import importance_lines, latent_lines
from ..analysis.plateau import plateau_lines
from ..artifacts.export import export_or_reuse
from ..artifacts.folders import apart_note, read_export_meta
from ..artifacts.rerun import rerun_trial
from ..artifacts.verify import verify_export
from ..core.names import is_safe_name, shown
from ..errors import UserError, on_interrupt_say
from ..hpo.pbt import schedule_lines
from ..hpo.queries import best_trial, chosen_trial
from ..hpo.samplers import grid_coverage
from ..report.build import build_report
from ..report.families import study_headers
from ..report.tables import compare_table, state_counts, top_table
from ..storages import Studies, load_existing_study, storage_dir
from .args import CompareArgs, ExploreArgs, ExportArgs, ReportArgs, RerunArgs, ShowArgs, VerifyArgs


def cmd_export(args: ExportArgs) -> int:
    study = load_existing_study(args.name, args.storage)
    trial = best_trial(study) if args.trial is None else chosen_trial(study, args.trial)
    with on_interrupt_say(
        f"the retrain of trial {trial.number} of {args.name} stopped before it was exported; "
        "the study is unchanged; run the same command again to retrain and export it"
    ):
        folder, reused = export_or_reuse(study, trial, progress=not args.quiet, redo=args.redo)
    meta = read_export_meta(folder)
    metrics = ", ".join(
        f"{k} = {v:.0f}" if float(v).is_integer() else f"{k} = {v:.4f}"
        for k, v in meta["metrics"].items()
        if isinstance(v, float)
    )
    if reused:
        print(
            f"trial {meta['trial']} of {args.name} is already exported to {folder} (its weights match their "
            f"sha256; --redo retrains it): {metrics}"
        )
    else:
        print(f"exported trial {meta['trial']} of {args.name} to {folder}{apart_note(folder, args.name)}: {metrics}")
    return 0


def cmd_show(args: ShowArgs) -> int:
    study = load_existing_study(args.name, args.storage)
    print(f"study {args.name}: {state_counts(study)}")
    coverage = grid_coverage(study)
    if coverage is not None:
        print(coverage)
    print(top_table(study, k=args.k))
    print("\n" + "\n".join(importance_lines(study, study_headers(study))))
    if latent := latent_lines(study):
        print("\n" + "\n".join(latent))
    if plateau := plateau_lines(study):
        print("\n" + "\n".join(plateau))
    if schedule := schedule_lines(study):  # population-based training: the best member's schedule
        print("\n" + "\n".join(schedule))
    return 0


def cmd_compare(args: CompareArgs) -> int:
    journals = Path(args.journals) if args.journals else None
    out = Path(args.out) if args.out else storage_dir() / "compare.png"
    curves = load_curves(args.studies, Studies(args.storage, journals))
    compare_figure(curves, out, target=args.target)
    print(compare_table(curves, args.target))
    print(f"wrote {out}")
    return 0


def cmd_rerun(args: RerunArgs) -> int:
    r = rerun_trial(args.name, args.trial, storage_url=args.storage)
    if r.warning:
        print(f"mnist-hpo: warning: {r.warning}", file=sys.stderr)
    print(r.describe())
    if not r.holds:
        print(f"mnist-hpo: rerun differs: {r.difference()}", file=sys.stderr)
    return 0 if r.holds else 1


def _origin_url(args: VerifyArgs) -> str | None:
    """The storage ``verify`` checks the export's study against: ``--storage``, or its journal in ``--journals``."""
    if args.journals is None:
        return args.storage
    name = read_export_meta(args.path).get("study")
    if not is_safe_name(name):  # it would be joined into a path below
        raise UserError(
            f"{args.path}: its export.json names the study {shown(name)}, which is no safe file name "
            "to look for in --journals; pass its journal with --storage journal:PATH instead"
        )
    return f"journal:{Path(args.journals) / f'{name}.log'}"


def cmd_verify(args: VerifyArgs) -> int:
    v = verify_export(args.path, rescore=args.rescore, storage_url=_origin_url(args))
    for line in v.warnings:
        print(f"mnist-hpo: warning: {line}", file=sys.stderr)
    for line in v.checks:
        print(f"{v.folder}: {line}")
    if not v.ok:
        print(f"mnist-hpo: verify failed: {v.folder}: {v.failure}", file=sys.stderr)
        return 1
    print(
        f"{v.folder}: rescored, export.json rewritten (the previous values under 'rescored')"
        if v.rescored
        else f"{v.folder}: verified"
    )
    return 0


def cmd_explore(args: ExploreArgs) -> int:
    settings = ExploreSettings(
        points=args.points,
        tsne_points=args.tsne_points,
        tsne_iter=args.tsne_iter,
        noise_mean=args.noise_mean,
        noise_std=args.noise_std,
        sample_index=args.sample,
        interpolate=(args.interpolate[0], args.interpolate[1]),
        threads=args.threads,
        seed=args.seed,
    )
    export = Path(args.export) if args.export else default_export(args.study)
    run_explore(export, settings, out=Path(args.out) if args.out else None)
    return 0


def cmd_report(args: ReportArgs) -> int:
    studies = dict(item.partition("=")[::2] for item in args.study)  # SECTION=NAME, checked by the command line
    journals = Path(args.journals) if args.journals else None
    html_path, md_path = build_report(
        args.storage, out=Path(args.out) if args.out else None, studies=studies, journals=journals
    )
    print(f"wrote {html_path} and {md_path}")
    return 0
