"""The commands that read a finished search: ``export``, ``show``, ``compare``, ``rerun``, ``verify``,
``explore`` and ``report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError


def cmd_export(args: argparse.Namespace) -> int:
    from ..artifacts.export import export_best, read_export_meta

    folder = export_best(args.name, storage_url=args.storage, progress=not args.quiet, trial=args.trial)
    meta = read_export_meta(folder)
    print(f"exported trial {meta['trial']} of {args.name} to {folder}: "
          + ", ".join(f"{k} = {v:.0f}" if float(v).is_integer() else f"{k} = {v:.4f}"
                     for k, v in meta["metrics"].items() if isinstance(v, float)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from ..hpo.storage import load_existing_study
    from ..report.tables import state_counts, top_table

    from ..hpo.samplers import grid_coverage

    study = load_existing_study(args.name, args.storage)
    print(f"study {args.name}: {state_counts(study)}")
    coverage = grid_coverage(study)
    if coverage is not None:
        print(coverage)
    print(top_table(study, k=args.k))
    from ..analysis.importance import importance_lines, latent_lines

    from ..report.families import study_headers

    print("\n" + "\n".join(importance_lines(study, study_headers(study))))
    if latent := latent_lines(study):
        print("\n" + "\n".join(latent))
    from ..analysis.plateau import plateau_lines

    if plateau := plateau_lines(study):
        print("\n" + "\n".join(plateau))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import math

    from ..analysis.anytime import compare_figure, load_curves
    from ..hpo.sources import Studies
    from ..report.tables import compare_table
    from ..hpo.storage import storage_dir

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


def cmd_rerun(args: argparse.Namespace) -> int:
    from ..artifacts.rerun import rerun_trial

    r = rerun_trial(args.name, args.trial, storage_url=args.storage)
    if r.warning:
        print(f"mnist-hpo: warning: {r.warning}", file=sys.stderr)
    print(r.describe())
    if not r.holds:
        print(f"mnist-hpo: rerun differs: {r.difference()}", file=sys.stderr)
    return 0 if r.holds else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from ..artifacts.verify import verify_export

    v = verify_export(args.path, rescore=args.rescore)
    for line in v.warnings:
        print(f"mnist-hpo: warning: {line}", file=sys.stderr)
    for line in v.checks:
        print(f"{v.folder}: {line}")
    if not v.ok:
        print(f"mnist-hpo: verify failed: {v.folder}: {v.failure}", file=sys.stderr)
        return 1
    print(f"{v.folder}: rescored, export.json rewritten (the previous values under 'rescored')" if v.rescored
          else f"{v.folder}: verified")
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    from ..analysis.explore import ExploreSettings, default_export, run_explore

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


def cmd_report(args: argparse.Namespace) -> int:
    from ..report.build import build_report

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
