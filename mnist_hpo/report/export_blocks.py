"""The report's blocks drawn from an export: its figures, the GAN run, the latent-space exploration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..analysis.explore import EXPLORE_DIR, read_explore
from ..storages import storage_dir
from .document import Facts, Heading, Image, Pair, Para, Table
from .formatting import count_read, fmt, fmt_list, fmt_seconds
from .references import (
    FIGURE_CAPTIONS,
    GAN_RUN_FIGURES,
    GAN_RUNS_DIR,
    IMAGE_SUFFIXES,
    TABLE5_REFERENCE,
    Reference,
)


def gan_run_blocks(ref: Reference) -> list[Any]:
    """The runs of ``make gan`` (``storage/gan/<run>/result.json`` and its pictures), newest last."""
    root = storage_dir() / GAN_RUNS_DIR
    runs = sorted(root.glob("*/result.json"), key=lambda p: p.stat().st_mtime) if root.exists() else []
    blocks: list[Any] = []
    for path in runs:
        run = path.parent
        try:
            result = json.loads(path.read_text())
            final, settings, epochs = result["final"], result["settings"], result["epochs"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            blocks.append(Para(f"{path} is unreadable ({type(e).__name__}); run `make gan` again.", "missing"))
            continue
        blocks.append(Heading(3, f"make gan run {run.name!r}: {count_read(epochs, 'epoch')}"))
        rows = [
            [what, "not recorded" if final.get(key) is None else fmt(final[key]), fmt(value)]
            for key, (what, value) in ref.headline.items()
        ]
        blocks.append(
            Table(
                f"Headline numbers after {count_read(epochs, 'epoch')} (the report trained 400)",
                ["", "this project", "the report's"],
                rows,
            )
        )
        hist = final.get("test_class_histogram")
        blocks.append(
            Facts(
                "Scores of the final generator (against the test images)",
                [
                    ("Fréchet distance", fmt(final.get("test_fid"))),
                    ("class coverage TV (0 = every digit equally often)", fmt(final.get("test_coverage_tv"))),
                    ("class histogram (digits 0-9)", fmt_list(hist) if hist else "not recorded"),
                ],
            )
        )
        seconds = result.get("median_seconds_per_epoch")
        blocks.append(
            Facts(
                f"Protocol of run {run.name!r}",
                [
                    ("folder", str(run)),
                    ("parameters", ", ".join(f"{k} = {fmt(v)}" for k, v in settings.get("params", {}).items())),
                    ("architecture", ", ".join(f"{k} = {fmt(v)}" for k, v in settings.get("arch", {}).items())),
                    (
                        "training",
                        f"{count_read(epochs, 'epoch')} on {settings.get('train_images', '?')} images, seed "
                        f"{settings.get('seed', '?')}, {fmt_seconds(seconds) if seconds else '?'} per epoch "
                        f"(median) on {result.get('device', '?')}",
                    ),
                    (
                        "scores during training",
                        f"every {settings.get('eval_every', '?')} epochs, on "
                        f"{settings.get('eval_samples', '?')} generated images",
                    ),
                    ("dataset sha256", str(settings.get("dataset", "?"))),
                ],
            )
        )
        for name, caption in GAN_RUN_FIGURES.items():
            if (run / name).exists():
                blocks.append(Image(run / name, f"{caption} (run {run.name!r})"))
        if (run / "progress.gif").exists():
            blocks.append(Para(f"The samples of every saved epoch, animated: {run / 'progress.gif'}.", "note"))
    return blocks


def export_figures(folder: Path) -> list[Image]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    order = {name: i for i, name in enumerate(FIGURE_CAPTIONS)}
    files.sort(key=lambda p: (order.get(p.name, len(order)), p.name))
    return [Image(p, FIGURE_CAPTIONS.get(p.name, p.stem.replace("_", " ").replace("-", " "))) for p in files]


def explore_blocks(folder: Path, meta: dict[str, Any]) -> list[Any]:
    ex = read_explore(folder)
    if ex is None:
        return [
            Heading(3, "2 Latent space exploration"),
            Para(
                f"No latent-space exploration of this export yet: run `make explore` "
                f"(or `mnist-hpo explore --export {folder}`).",
                "missing",
            ),
        ]
    blocks: list[Any] = [Heading(3, "2 Latent space exploration")]
    if ex.get("weights_sha256") != meta["weights"]["sha256"]:
        blocks.append(
            Para(
                "These latent-space results were computed from other weights than this export's; "
                "run `make explore` again.",
                "missing",
            )
        )
    t5 = ex["table5"]
    ours = Table(
        f"This project: {TABLE5_REFERENCE.table} recomputed (first 5 test images, {ex['latent_dim']}-dimensional code)",
        t5["columns"],
        t5["rows"],
    )
    blocks.append(Pair([ours], [ref_table(TABLE5_REFERENCE), Para(TABLE5_REFERENCE.note, "note")]))
    s = ex["settings"]
    rows = [
        [name, m["points"], fmt(m["knn_accuracy"]), fmt(m["silhouette"])]
        for name, m in (
            ("latent code", ex["metrics"]["latent"]),
            ("PCA 2-D", ex["metrics"].get("pca2")),
            ("t-SNE 2-D", ex["metrics"].get("tsne2")),
        )
        if m
    ]
    blocks.append(
        Table(
            f"Clusters by digit ({s['knn_k']}-NN accuracy, 5-fold cross-validated; silhouette of the "
            "digit classes). The report only says the t-SNE clusters look right.",
            ["space", "test images", "k-NN accuracy", "silhouette"],
            rows,
        )
    )
    items = [
        ("export explored", f"{ex['study']} trial {ex['trial']}"),
        ("settings", ", ".join(f"{k} = {fmt_list(v) if isinstance(v, list) else fmt(v)}" for k, v in s.items())),
        ("PCA explained variance", fmt_list(ex.get("pca_explained_variance", []))),
        ("seconds", ", ".join(f"{k} {v:.1f}" for k, v in ex.get("seconds", {}).items())),
        ("created", ex.get("created", "?")),
    ]
    blocks.append(Facts("Protocol of the exploration", items))
    edir = folder / EXPLORE_DIR
    captions = {"pca2": "the report's Figure 8", "pca3": "Figure 9", "tsne2": "Figure 2", "tsne3": "Figure 10"}
    for key, fig in ex["figures"].items():
        extra = (
            f" ({captions[key]}; interactive version: {EXPLORE_DIR}/{fig['html']} in the export folder)"
            if key in captions
            else ""
        )
        if (edir / fig["png"]).exists():
            blocks.append(Image(edir / fig["png"], fig["title"] + extra))
    return blocks


def ref_table(ref: Reference) -> Table:
    """One of the report's own tables, as typed in from it."""
    return Table(f"The report's {ref.table}: {ref.caption} (typed in from the report)", ref.columns, ref.rows, "ref")
