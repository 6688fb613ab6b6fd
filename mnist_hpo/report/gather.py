"""Gathering the report's blocks from the study database, the exports, ``make explore`` and ``make gan`` runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna

from ..analysis.anytime import busy_seconds
from ..analysis.explore import read_explore
from ..artifacts.export import latest_export
from ..artifacts.folders import LATEST, read_export_meta, read_owner
from ..core.hardware import hardware
from ..errors import UserError
from ..storages import Studies, exports_dir, storage_dir
from .document import Facts, Heading, Pair, Para, Table
from .export_blocks import explore_blocks, export_figures, gan_run_blocks, ref_table
from .formatting import count_read, fmt, fmt_list, fmt_seconds
from .pareto import is_multi, pareto_blocks, pareto_table
from .references import (
    DEFAULT_STUDIES,
    REFERENCES,
    SECTIONS,
    Reference,
)
from .studies import beyond_blocks
from .tables import top_rows


def study_protocol(study: optuna.Study) -> Facts:
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    done = [t for t in trials if t.datetime_start and t.datetime_complete]
    busy = sum(busy_seconds(t) for t in done)  # a dead process's trial: until its last heartbeat
    attrs = study.user_attrs
    cfg = attrs.get("config", {})
    batch = "size searched" if "batch_size" in (attrs.get("space") or {}) else cfg.get("batch_size", "?")
    items = [
        ("trials", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"),
        ("epochs per trial", fmt(attrs.get("epochs", cfg.get("epochs")))),
        ("study seed", fmt(attrs.get("seed", cfg.get("seed")))),
        ("sampler / pruner", f"{cfg.get('sampler', {}).get('type', '?')} / {cfg.get('pruner', {}).get('type', '?')}"),
        (
            "dataset",
            f"{attrs.get('dataset', cfg.get('dataset', '?'))}, training images "
            f"{cfg.get('train_subset') or 'all'} ({1 - float(cfg.get('val_fraction', 0.2)):.0%} train / "
            f"{float(cfg.get('val_fraction', 0.2)):.0%} validation), batch {batch}",
        ),
    ]
    if done:
        starts = [t.datetime_start for t in done if t.datetime_start is not None]  # every one of done's
        ends = [t.datetime_complete for t in done if t.datetime_complete is not None]
        span = (max(ends) - min(starts)).total_seconds()
        items.append(
            (
                "wall time",
                f"{fmt_seconds(busy)} of trial time over {fmt_seconds(span)} "
                f"({len(done)} finished trials, {fmt_seconds(busy / len(done))} each)",
            )
        )
    hw = attrs.get("hardware")
    items.append(("hardware", _hw(hw) if hw else "not recorded (study run before hardware was recorded)"))
    space = attrs.get("space")
    if space:
        items.append(("search space", "; ".join(f"{k}: {fmt_list(v)}" for k, v in space.items())))
    return Facts(f"Protocol of study {study.study_name!r}", items)


def _hw(hw: dict[str, Any]) -> str:
    out = (
        f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores, {hw.get('torch_threads', '?')} torch threads, "
        f"device {hw.get('device', '?')}"
    )
    return out + (f" ({hw['gpu']})" if hw.get("gpu") else "")


def top_table(study: optuna.Study, k: int = 5) -> Table | None:
    if is_multi(study):
        return pareto_table(study)
    columns, rows = top_rows(study, k)  # the family's own objective header, as `mnist-hpo show` prints it
    if not rows:
        return None
    return Table(f"This project: the {len(rows)} best complete trials of study {study.study_name!r}", columns, rows)


def export_protocol(meta: dict[str, Any]) -> Facts:
    r = meta.get("retrain", {})
    items = [
        ("export", f"{meta['study']} trial {meta['trial']} ({meta.get('created', '?')})"),
        ("parameters", ", ".join(f"{k} = {fmt(v)}" for k, v in meta.get("params", {}).items())),
        (
            "retrain",
            f"{count_read(r.get('epochs'), 'epoch')} on {r.get('train_images', '?')} training images, seed "
            f"{meta.get('seed', '?')}, {fmt_seconds(r['seconds']) if 'seconds' in r else '?'}",
        ),
        ("dataset", f"{meta['dataset']['name']}, sha256 {meta['dataset']['checksum']}"),
        ("hardware", _hw(r["hardware"]) if "hardware" in r else f"device {r.get('device', '?')}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())),
        ("weights", f"{meta['weights']['file']}, sha256 {meta['weights']['sha256'][:16]}…"),
    ]
    rerun = meta.get("first_epoch_rerun")
    if rerun:
        items.append(
            (
                "first-epoch figure",
                "from a 1-epoch retrain with the same seed; its training loss "
                f"{fmt(rerun['train_loss'])} {'equals' if rerun['matches'] else 'DIFFERS from'} the long run's "
                f"first epoch ({fmt(rerun['history_train_loss'])})",
            )
        )
    return Facts("Protocol of the retrained model", items)


def headline_table(meta: dict[str, Any] | None, ref: Reference) -> Table | None:
    if not ref.headline:
        return None
    metrics = (meta or {}).get("metrics", {})
    rows = []
    for key, (what, value) in ref.headline.items():
        # A test metric, or the last epoch of a per-epoch series (the GAN export's d_loss, g_loss).
        ours = metrics.get(key)
        if ours is None and meta is not None and meta.get("history", {}).get(key):
            ours = meta["history"][key][-1]
        rows.append([what, "not exported yet" if ours is None else fmt(ours), fmt(value)])
    return Table("Headline numbers", ["", "this project", "the report's"], rows)


def find_latest_export(study_name: str, root: Path, study: optuna.Study | None = None) -> Path | None:
    """The latest export of ``study`` (by its UUID), or, when it is not stored here, of the study of that name."""
    try:
        folder = latest_export(study_name, root, study=study)
    except UserError:
        return None
    return folder if (folder / "export.json").exists() else None


def section_blocks(key: str, title: str, study_name: str, studies: Studies, root: Path) -> list[Any]:
    ref = REFERENCES[key]
    blocks: list[Any] = [Heading(2, f"{title} (study {study_name!r})")]
    study = studies.load(study_name)
    folder = find_latest_export(study_name, root, study)
    runs = gan_run_blocks(ref) if key == "gan" else []
    if study is None and folder is None:
        return blocks + _not_run_blocks(key, study_name, ref, runs)
    ours: list[Any] = []
    if study is not None:
        t = top_table(study)
        ours.append(t if t else Para(f"Study {study_name!r} has no complete trial yet.", "missing"))
    else:
        ours.append(Para(f"Study {study_name!r} is not in this database (only its export is here).", "missing"))
    right = [ref_table(ref)] + ([Para(ref.note, "note")] if ref.note else [])
    blocks.append(Pair(ours, right))
    if study is not None:
        blocks.append(study_protocol(study))
    meta = read_export_meta(folder) if folder else None
    if headline := headline_table(meta, ref):
        blocks.append(headline)
    if meta is None:
        blocks.append(
            Para(
                f"No export of {study_name!r} yet: run `mnist-hpo export {study_name}` to retrain, "
                "test and export its best trial.",
                "missing",
            )
        )
        return blocks + runs
    assert folder is not None  # meta was read from it
    return blocks + _retrained_blocks(key, study_name, folder, meta) + runs


def _not_run_blocks(key: str, study_name: str, ref: Reference, runs: list[Any]) -> list[Any]:
    """A section whose study has neither trials here nor an export: the report's table, and the GAN run if any."""
    if runs:
        said = (
            f"Study {study_name!r} (`make study-gan`) has not been run yet; the report's GAN as trained by `make gan`:"
        )
        return [Para(said, "missing"), ref_table(ref), *runs]
    blocks: list[Any] = [
        Para(
            f"Study {study_name!r} has not been run yet (it is not in the database and has no "
            f"export), so there is nothing to compare with the report's {ref.table}.",
            "missing",
        ),
        ref_table(ref),
    ]
    if key == "ae":
        blocks.append(Para("Latent space (section 2, Table 5) needs this study's export.", "missing"))
    return blocks


def _retrained_blocks(key: str, study_name: str, folder: Path, meta: dict[str, Any]) -> list[Any]:
    """What an export says: how its retrain went (the plateau, a fallback), its metrics, protocol and figures."""
    blocks: list[Any] = []
    retrain = meta.get("retrain", {})
    if fallback := retrain.get("fallback"):
        blocks.append(
            Para(
                f"The retrain of trial {fallback['from_trial']} (seed {fallback['from_seed']}) stayed on the mean-image "
                f"plateau; this export is trial {meta['trial']} with seed {meta['seed']}, the first of "
                f"{len(retrain.get('attempts', []))} attempts to leave it (export.json's retrain.attempts).",
                "note",
            )
        )
    if retrain.get("on_plateau"):
        m = meta["metrics"]
        blocks.append(
            Para(
                f"The retrained model ended on the mean-image plateau: its test MSE {fmt(m['test_mse'])} is that of "
                f"answering the mean training image ({fmt(meta['retrain']['mean_image_test_mse'])}), although the trial "
                f"reached {fmt(m['val_mse'])} on its own split. The retrain uses the trial's seed but the full "
                "training set, so its batches differ, and a run can stay on the plateau that the trial left (the plateau "
                f"table of `mnist-hpo show {study_name}` counts such runs by L2).",
                "note",
            )
        )
    blocks.append(
        Facts(
            "Metrics of the retrained model",
            [(k, fmt(v)) for k, v in meta.get("metrics", {}).items() if not isinstance(v, (list, dict))],
        )
    )
    blocks.append(export_protocol(meta))
    figures = export_figures(folder)
    blocks.extend(figures or [Para("This export holds no figures.", "missing")])
    if key == "ae":
        blocks.extend(explore_blocks(folder, meta))
    return blocks


def other_blocks(studies: Studies, root: Path, named: set[str]) -> list[Any]:
    stored = [n for n in studies.names() if n not in named]
    exported = (
        {(read_owner(p) or {}).get("study") or p.name for p in root.iterdir() if (p / LATEST).exists()}
        if root.exists()
        else set()
    )
    names = sorted(set(stored) | (exported - named))
    if not names:
        return []
    blocks: list[Any] = [Heading(2, "Other studies in the database")]
    for name in names:
        blocks.append(Heading(3, name))
        study = studies.load(name)
        if study is not None:
            if is_multi(study):
                blocks.extend(pareto_blocks(study, storage_dir() / "report-figures"))
            elif t := top_table(study):
                blocks.append(t)
            blocks.append(study_protocol(study))
        folder = find_latest_export(name, root, study)
        if folder:
            meta = read_export_meta(folder)
            blocks.append(
                Facts(
                    "Metrics of the retrained model",
                    [(k, fmt(v)) for k, v in meta["metrics"].items() if not isinstance(v, (list, dict))],
                )
            )
            blocks.append(export_protocol(meta))
            blocks.extend(export_figures(folder))
            if read_explore(folder):
                blocks.extend(explore_blocks(folder, meta))
    return blocks


def build_blocks(
    storage_url: str | None = None,
    *,
    studies: dict[str, str] | None = None,
    journals: Path | None = None,
    figures: Path | None = None,
) -> list[Any]:
    """The report's blocks; ``journals``: a folder of journal files (one per study) instead of ``storage_url``.

    ``figures``: where the report's own figures are written (default ``storage/report-figures``).
    """
    names = DEFAULT_STUDIES | (studies or {})
    unknown = set(names) - set(REFERENCES)
    if unknown:
        raise UserError(f"unknown report section(s) {', '.join(sorted(unknown))}; use {', '.join(REFERENCES)}")
    where = Studies(storage_url, journals)
    root = exports_dir()
    now = datetime.now(UTC).isoformat(timespec="seconds")
    blocks: list[Any] = [
        Heading(1, "Reproduction report: Homework 2, Unsupervised Learning (MNIST)"),
        Para(
            f"Generated {now} by mnist-hpo from the study database and the exports under {root}. Tables and "
            'numbers marked "the report\'s" are typed in from the original report; everything else is '
            "recomputed from what is stored here."
        ),
        Facts("Generated on", [("machine", _hw(hardware("cpu"))), ("storage", where.label)]),
    ]
    for key, title in SECTIONS:
        blocks.extend(section_blocks(key, title, names[key], where, root))
    blocks.extend(other_blocks(where, root, set(names.values())))
    blocks.extend(beyond_blocks(where, list(names.values()), figures or storage_dir() / "report-figures"))
    return blocks
