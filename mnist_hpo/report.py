"""``make report``: the reproduction report, built only from the study database and the exports.

One self-contained HTML file (every image embedded as base64, no script, nothing
fetched at view time) and its Markdown twin (images linked relative to it). For each
of the report's sections: its table recomputed from the stored trials beside the
report's own numbers (typed in below and labelled as the report's), the retrained
model's metrics and figures, the latent-space results of ``make explore``, and the
protocol behind every number. A section whose study has not been run says so.
"""

from __future__ import annotations

import base64
import html
import json
import math
import mimetypes
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import optuna

from .errors import UserError
from .explore import EXPLORE_DIR, read_explore
from .export import LATEST, read_export_meta
from .machine import hardware
from .study import exports_dir, open_storage, storage_dir
from .tables import HEADERS, top_trials

# --- the report's own numbers (shared/seed), typed in ----------------------------------

@dataclass(frozen=True)
class Reference:
    """What the report printed for one section: its table and its headline numbers."""

    table: str
    caption: str
    columns: list[str]
    rows: list[list]
    headline: dict[str, tuple[str, float]] = field(default_factory=dict)  # export metric -> (what, value)
    note: str = ""


AE_COLUMNS = ["Enc. Space Dim.", "L2", "Optimizer", "Epochs", "Learn. Rate", "Nh_1", "Valid. loss"]
REFERENCES: dict[str, Reference] = {
    "ae": Reference(
        "Table 1", "Autoencoder: the 5 best of 50 random-search combinations", AE_COLUMNS,
        [[9, 5.1e-05, "Adam", 50, 0.0009, 87, 0.0172], [8, 5.0e-05, "Adam", 50, 0.0019, 122, 0.0174],
         [9, 3.2e-07, "RMSprop", 50, 0.0019, 75, 0.0181], [8, 3.2e-07, "RMSprop", 50, 0.0019, 137, 0.0182],
         [9, 3.2e-07, "Adam", 50, 0.0003, 137, 0.0183]],
        {"test_mse": ("test MSE of the retrained best model", 0.016)}),
    "dae": Reference(
        "Table 2", "Denoising autoencoder: the 5 best combinations", AE_COLUMNS,
        [[9, 1.5e-06, "Adam", 50, 1.0e-03, 137, 0.015], [9, 4.2e-06, "Adam", 50, 1.9e-03, 64, 0.017],
         [8, 5.1e-06, "Adam", 50, 1.8e-03, 136, 0.017], [9, 1.5e-06, "RMSprop", 50, 1.6e-03, 137, 0.018],
         [9, 4.2e-06, "RMSprop", 50, 1.8e-03, 144, 0.020]],
        {"test_mse": ("test MSE of the retrained best model", 0.16)},
        note="The report's Figure 4 caption says MSE = 0.16, ten times its best validation loss 0.015; "
             "probably a typo for 0.016, shown here as printed."),
    "clf": Reference(
        "Table 3", "Classifier on the encoder: the 5 best of the grid (20 epochs)",
        ["Nh1", "Optimizer", "Epochs", "Lear. Rate", "Dropout p", "Weight_dec", "Valid_loss"],
        [[184, "RMSprop", 20, 0.001, 0.10, 1e-05, 0.147], [227, "Adam", 20, 0.001, 0.05, 1e-05, 0.148],
         [227, "Adam", 20, 0.001, 0.05, 0, 0.148], [227, "RMSprop", 20, 0.001, 0.10, 0, 0.149],
         [227, "Adam", 20, 0.001, 0.10, 0, 0.149]],
        {"test_accuracy": ("test accuracy of the retrained best model", 0.9485)}),
    "gan": Reference(
        "Table 4", "GAN hyperparameters (fixed in the report, 400 epochs)",
        ["", "Input dim.", "Hidden dim. 1", "Hidden dim. 2", "Output dim.", "LReLU slope", "Dropout p", "Optimizer", "Lr"],
        [["Discr.", 784, 512, 256, 1, 0.2, 0.3, "Adam", 5e-4], ["Gen.", 100, 256, 512, 784, 0.2, 0.3, "Adam", 2e-4]],
        {"d_loss": ("final discriminator loss", 0.81), "g_loss": ("final generator loss", 1.20)}),
}
TABLE5_REFERENCE = Reference(
    "Table 5", "First 5 encoded test samples (9-dimensional code)",
    [f"Enc. Variable {i}" for i in range(1, 10)] + ["label"],
    [[8.353384, 6.062208, 6.882480, -23.443331, -41.030186, 15.353236, -19.266520, 8.581726, 13.493169, 7],
     [0.835941, -20.711342, 5.206129, -45.665855, 16.590822, 27.288141, 11.172687, -24.107357, -23.720579, 2],
     [12.370504, -6.326145, 25.866806, -14.534688, 2.658181, 21.562832, 7.883648, 2.671305, 17.432297, 1],
     [0.243718, 16.727535, -5.982775, -50.432438, -26.678438, 12.678731, 33.965645, -3.363263, 6.581146, 0],
     [-24.115749, -3.651129, 17.732262, -16.592127, -28.590008, -0.602595, 20.050447, -10.631841, 10.671299, 4]],
    note="Codes are only defined up to the network's own coordinates: compare the labels and the scale, "
         "not the values, with another trained encoder.")
SECTIONS = [("ae", "1 Autoencoder"), ("dae", "3 Denoising autoencoder"),
            ("clf", "4 Autoencoder for classification"), ("gan", "5 GAN")]
# The study each section reads by default: the study files' names (make study-gan runs gan-search).
DEFAULT_STUDIES = {"ae": "ae", "dae": "dae", "clf": "clf", "gan": "gan-search"}
GAN_RUNS_DIR = "gan"  # storage/gan/<run>/ holds the runs of 'make gan' (mnist_hpo.gan_run)
GAN_RUN_FIGURES = {"losses.png": "Discriminator and generator losses per epoch (the report's Figure 6), with the "
                                 "Fréchet distance and class coverage at the evaluated epochs",
                   "first_vs_final.png": "The same noise through the generator after the first and the last epoch "
                                         "(the report's Figure 7)"}
FIGURE_CAPTIONS = {"loss.png": "Loss per epoch of the retrain on the full training set (the report's Figures 1a, 4, 5a)",
                   "reconstructions.png": "Test images and their reconstructions after the first and the last "
                                          "epoch (the report's Figures 1b, 4)"}
IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".svg")


# --- a tiny document model, rendered to HTML and Markdown -----------------------------

@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str
    kind: str = ""  # "", "missing", "note", "ref"


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list]
    kind: str = ""  # "ref": the report's numbers


@dataclass
class Image:
    path: Path
    caption: str


@dataclass
class Facts:
    title: str
    items: list[tuple[str, str]]


@dataclass
class Pair:
    """Two blocks side by side (ours, the report's)."""

    left: list
    right: list


def fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        if not math.isfinite(value):
            return str(value)
        return f"{value:.1e}" if abs(value) < 1e-3 else f"{value:.4g}"
    return str(value)


def fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


# --- gathering -------------------------------------------------------------------------

def study_protocol(study: optuna.Study) -> Facts:
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    done = [t for t in trials if t.datetime_start and t.datetime_complete]
    busy = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done)
    attrs = study.user_attrs
    cfg = attrs.get("config", {})
    items = [("trials", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"),
             ("epochs per trial", fmt(attrs.get("epochs", cfg.get("epochs")))),
             ("study seed", fmt(attrs.get("seed", cfg.get("seed")))),
             ("sampler / pruner", f"{cfg.get('sampler', {}).get('type', '?')} / {cfg.get('pruner', {}).get('type', '?')}"),
             ("dataset", f"{attrs.get('dataset', cfg.get('dataset', '?'))}, training images "
                         f"{cfg.get('train_subset') or 'all'} ({1 - float(cfg.get('val_fraction', 0.2)):.0%} train / "
                         f"{float(cfg.get('val_fraction', 0.2)):.0%} validation), batch {cfg.get('batch_size', '?')}")]
    if done:
        span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
        items.append(("wall time", f"{fmt_seconds(busy)} of trial time over {fmt_seconds(span)} "
                                   f"({len(done)} finished trials, {fmt_seconds(busy / len(done))} each)"))
    hw = attrs.get("hardware")
    items.append(("hardware", _hw(hw) if hw else "not recorded (study run before hardware was recorded)"))
    space = attrs.get("space")
    if space:
        items.append(("search space", "; ".join(f"{k}: {fmt_list(v)}" for k, v in space.items())))
    return Facts(f"Protocol of study {study.study_name!r}", items)


def fmt_list(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return str(v)


def _hw(hw: dict) -> str:
    out = f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores, {hw.get('torch_threads', '?')} torch threads, " \
          f"device {hw.get('device', '?')}"
    return out + (f" ({hw['gpu']})" if hw.get("gpu") else "")


def top_table(study: optuna.Study, k: int = 5) -> Table | None:
    trials = top_trials(study, k)
    if not trials:
        return None
    names = list(trials[0].params)
    metric = "Valid. loss" if study.direction == optuna.study.StudyDirection.MINIMIZE else "Valid. value"
    columns = ["Trial", *(HEADERS.get(n, n) for n in names), "Epochs", metric]
    rows = [[t.number, *(t.params.get(n, "") for n in names), len(t.intermediate_values) or "-", t.value]
            for t in trials]
    return Table(f"This project: the {len(trials)} best complete trials of study {study.study_name!r}", columns, rows)


def export_protocol(meta: dict) -> Facts:
    r = meta.get("retrain", {})
    items = [("export", f"{meta['study']} trial {meta['trial']} ({meta.get('created', '?')})"),
             ("parameters", ", ".join(f"{k} = {fmt(v)}" for k, v in meta.get("params", {}).items())),
             ("retrain", f"{r.get('epochs', '?')} epochs on {r.get('train_images', '?')} training images, seed "
                         f"{meta.get('seed', '?')}, {fmt_seconds(r['seconds']) if 'seconds' in r else '?'}"),
             ("dataset", f"{meta['dataset']['name']}, sha256 {meta['dataset']['checksum']}"),
             ("hardware", _hw(r["hardware"]) if "hardware" in r else f"device {r.get('device', '?')}"),
             ("versions", ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())),
             ("weights", f"{meta['weights']['file']}, sha256 {meta['weights']['sha256'][:16]}…")]
    rerun = meta.get("first_epoch_rerun")
    if rerun:
        items.append(("first-epoch figure", "from a 1-epoch retrain with the same seed; its training loss "
                      f"{fmt(rerun['train_loss'])} {'equals' if rerun['matches'] else 'DIFFERS from'} the long run's "
                      f"first epoch ({fmt(rerun['history_train_loss'])})"))
    return Facts("Protocol of the retrained model", items)


def headline_table(meta: dict | None, ref: Reference) -> Table | None:
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


def find_latest_export(study_name: str, root: Path) -> Path | None:
    pointer = root / study_name / LATEST
    if not pointer.exists():
        return None
    folder = root / study_name / pointer.read_text().strip()
    return folder if (folder / "export.json").exists() else None


def gan_run_blocks(ref: Reference) -> list:
    """The runs of ``make gan`` (``storage/gan/<run>/result.json`` and its pictures), newest last."""
    root = storage_dir() / GAN_RUNS_DIR
    runs = sorted(root.glob("*/result.json"), key=lambda p: p.stat().st_mtime) if root.exists() else []
    blocks: list = []
    for path in runs:
        run = path.parent
        try:
            result = json.loads(path.read_text())
            final, settings, epochs = result["final"], result["settings"], result["epochs"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            blocks.append(Para(f"{path} is unreadable ({type(e).__name__}); run `make gan` again.", "missing"))
            continue
        blocks.append(Heading(3, f"make gan run {run.name!r}: {epochs} epochs"))
        rows = [[what, "not recorded" if final.get(key) is None else fmt(final[key]), fmt(value)]
                for key, (what, value) in ref.headline.items()]
        blocks.append(Table(f"Headline numbers after {epochs} epochs (the report trained 400)",
                            ["", "this project", "the report's"], rows))
        hist = final.get("test_class_histogram")
        blocks.append(Facts("Scores of the final generator (against the test images)", [
            ("Fréchet distance", fmt(final.get("test_fid"))),
            ("class coverage TV (0 = every digit equally often)", fmt(final.get("test_coverage_tv"))),
            ("class histogram (digits 0-9)", fmt_list(hist) if hist else "not recorded")]))
        seconds = result.get("median_seconds_per_epoch")
        blocks.append(Facts(f"Protocol of run {run.name!r}", [
            ("folder", str(run)),
            ("parameters", ", ".join(f"{k} = {fmt(v)}" for k, v in settings.get("params", {}).items())),
            ("architecture", ", ".join(f"{k} = {fmt(v)}" for k, v in settings.get("arch", {}).items())),
            ("training", f"{epochs} epochs on {settings.get('train_images', '?')} images, seed "
                         f"{settings.get('seed', '?')}, {fmt_seconds(seconds) if seconds else '?'} per epoch "
                         f"(median) on {result.get('device', '?')}"),
            ("scores during training", f"every {settings.get('eval_every', '?')} epochs, on "
                                       f"{settings.get('eval_samples', '?')} generated images"),
            ("dataset sha256", str(settings.get("dataset", "?")))]))
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


def explore_blocks(folder: Path, meta: dict) -> list:
    ex = read_explore(folder)
    if ex is None:
        return [Heading(3, "2 Latent space exploration"),
                Para(f"No latent-space exploration of this export yet: run `make explore` "
                     f"(or `mnist-hpo explore --export {folder}`).", "missing")]
    blocks: list = [Heading(3, "2 Latent space exploration")]
    if ex.get("weights_sha256") != meta["weights"]["sha256"]:
        blocks.append(Para("These latent-space results were computed from other weights than this export's; "
                           "run `make explore` again.", "missing"))
    t5 = ex["table5"]
    ours = Table(f"This project: {TABLE5_REFERENCE.table} recomputed (first 5 test images, "
                 f"{ex['latent_dim']}-dimensional code)", t5["columns"], t5["rows"])
    blocks.append(Pair([ours], [_ref_table(TABLE5_REFERENCE), Para(TABLE5_REFERENCE.note, "note")]))
    s = ex["settings"]
    rows = [[name, m["points"], fmt(m["knn_accuracy"]), fmt(m["silhouette"])]
            for name, m in (("latent code", ex["metrics"]["latent"]), ("PCA 2-D", ex["metrics"].get("pca2")),
                            ("t-SNE 2-D", ex["metrics"].get("tsne2"))) if m]
    blocks.append(Table(f"Clusters by digit ({s['knn_k']}-NN accuracy, 5-fold cross-validated; silhouette of the "
                        "digit classes). The report only says the t-SNE clusters look right.",
                        ["space", "test images", "k-NN accuracy", "silhouette"], rows))
    items = [("export explored", f"{ex['study']} trial {ex['trial']}"),
             ("settings", ", ".join(f"{k} = {fmt_list(v) if isinstance(v, list) else fmt(v)}" for k, v in s.items())),
             ("PCA explained variance", fmt_list(ex.get("pca_explained_variance", []))),
             ("seconds", ", ".join(f"{k} {v:.1f}" for k, v in ex.get("seconds", {}).items())),
             ("created", ex.get("created", "?"))]
    blocks.append(Facts("Protocol of the exploration", items))
    edir = folder / EXPLORE_DIR
    captions = {"pca2": "the report's Figure 8", "pca3": "Figure 9", "tsne2": "Figure 2", "tsne3": "Figure 10"}
    for key, fig in ex["figures"].items():
        extra = f" ({captions[key]}; interactive version: {EXPLORE_DIR}/{fig['html']} in the export folder)" \
            if key in captions else ""
        if (edir / fig["png"]).exists():
            blocks.append(Image(edir / fig["png"], fig["title"] + extra))
    return blocks


def _ref_table(ref: Reference) -> Table:
    return Table(f"The report's {ref.table}: {ref.caption} (typed in from the report)", ref.columns, ref.rows, "ref")


def section_blocks(key: str, title: str, study_name: str, studies: "Studies", root: Path) -> list:
    ref = REFERENCES[key]
    blocks: list = [Heading(2, f"{title} (study {study_name!r})")]
    study = studies.load(study_name)
    folder = find_latest_export(study_name, root)
    runs = gan_run_blocks(ref) if key == "gan" else []
    if study is None and folder is None:
        if runs:
            blocks.append(Para(f"Study {study_name!r} (`make study-gan`) has not been run yet; the report's GAN "
                               "as trained by `make gan`:", "missing"))
            return blocks + [_ref_table(ref)] + runs
        blocks.append(Para(f"Study {study_name!r} has not been run yet (it is not in the database and has no "
                           f"export), so there is nothing to compare with the report's {ref.table}.", "missing"))
        blocks.append(_ref_table(ref))
        if key == "ae":
            blocks.append(Para("Latent space (section 2, Table 5) needs this study's export.", "missing"))
        return blocks
    ours: list = []
    if study is not None:
        t = top_table(study)
        ours.append(t if t else Para(f"Study {study_name!r} has no complete trial yet.", "missing"))
    else:
        ours.append(Para(f"Study {study_name!r} is not in this database (only its export is here).", "missing"))
    right = [_ref_table(ref)] + ([Para(ref.note, "note")] if ref.note else [])
    blocks.append(Pair(ours, right))
    if study is not None:
        blocks.append(study_protocol(study))
    meta = read_export_meta(folder) if folder else None
    if headline := headline_table(meta, ref):
        blocks.append(headline)
    if meta is None:
        blocks.append(Para(f"No export of {study_name!r} yet: run `mnist-hpo export {study_name}` to retrain, "
                           "test and export its best trial.", "missing"))
        return blocks + runs
    blocks.append(Facts("Metrics of the retrained model", [(k, fmt(v)) for k, v in meta.get("metrics", {}).items()
                                                          if not isinstance(v, (list, dict))]))
    blocks.append(export_protocol(meta))
    figures = export_figures(folder)
    blocks.extend(figures or [Para("This export holds no figures.", "missing")])
    if key == "ae":
        blocks.extend(explore_blocks(folder, meta))
    return blocks + runs


class Studies:
    """Where the report finds its studies: one storage, or a folder of journals (one file per study)."""

    def __init__(self, storage_url: str | None = None, journals: Path | None = None) -> None:
        self.journals = Path(journals) if journals is not None else None
        self.storage = None if self.journals is not None else open_storage(storage_url)
        self.label = str(self.journals) if self.journals is not None else str(storage_url or "default")

    def names(self) -> list[str]:
        if self.journals is not None:
            return sorted(p.stem for p in self.journals.glob("*.log"))
        return [s.study_name for s in optuna.get_all_study_summaries(self.storage)]

    def storage_of(self, name: str):
        if self.journals is None:
            return self.storage
        path = self.journals / f"{name}.log"
        return open_storage(f"journal:{path}") if path.exists() else None

    def load(self, name: str) -> optuna.Study | None:
        storage = self.storage_of(name)
        if storage is None:
            return None
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            return None


def other_blocks(studies: Studies, root: Path, named: set[str]) -> list:
    stored = [n for n in studies.names() if n not in named]
    exported = {p.name for p in root.iterdir() if (p / LATEST).exists()} if root.exists() else set()
    names = sorted(set(stored) | (exported - named))
    if not names:
        return []
    blocks: list = [Heading(2, "Other studies in the database")]
    for name in names:
        blocks.append(Heading(3, name))
        study = studies.load(name)
        if study is not None:
            if t := top_table(study):
                blocks.append(t)
            blocks.append(study_protocol(study))
        folder = find_latest_export(name, root)
        if folder:
            meta = read_export_meta(folder)
            blocks.append(Facts("Metrics of the retrained model", [(k, fmt(v)) for k, v in meta["metrics"].items()
                                                                  if not isinstance(v, (list, dict))]))
            blocks.append(export_protocol(meta))
            blocks.extend(export_figures(folder))
            if read_explore(folder):
                blocks.extend(explore_blocks(folder, meta))
    return blocks


def beyond_blocks(studies: Studies, first: list[str], figures: Path) -> list:
    """Beyond the report (issue 14): which settings mattered in each study, and what each protocol bought.

    Per study with a finished trial: the parameter importances (a figure, or one line when
    there are too few complete trials) and the best value per latent size; then, with at
    least two autoencoder studies, their anytime curves beside the report's best (figures
    written under ``figures``).
    """
    from .anytime import COLUMNS, REPORT_TARGET, compare_figure, compare_rows, study_curve
    from .importance import LATENT_COLUMNS, importance_figure, latent_rows, param_importance, too_few

    loaded = [(n, studies.load(n)) for n in dict.fromkeys([*first, *studies.names()])]
    loaded = [(n, s) for n, s in loaded if s is not None and s.get_trials(deepcopy=False, states=FINISHED_STATES)]
    if not loaded:
        return []
    blocks: list = [Heading(2, "Beyond the report: which settings matter, what each protocol buys")]
    for name, study in loaded:
        blocks.append(Heading(3, f"Which settings matter in study {name!r}"))
        imp = param_importance(study)
        if imp is None:
            line = too_few(study)
            blocks.append(Para(line[0].upper() + line[1:] + ".", "missing"))
        else:
            path = importance_figure(imp, figures / f"importance-{name}.png", f"study {name!r}")
            blocks.append(Image(path, f"Parameter importance in study {name!r}, on its {imp.trials} complete trials: "
                                      "fANOVA (share of the validation value's variance a parameter explains) and "
                                      f"PED-ANOVA (how differently a parameter is spread among the best "
                                      f"{imp.ped_quantile:.0%} of the trials than among all)"))
        rows = latent_rows(study)
        if rows:
            blocks.append(Table(f"The latent size against the best validation value reached with it (study {name!r}; "
                                "the report's Table 1 has latent sizes 8 and 9 only)", LATENT_COLUMNS,
                                [["-" if v is None else v for v in r] for r in rows]))
    curves = [study_curve(s) for _, s in loaded if s.user_attrs.get("model") == "autoencoder"]
    if len(curves) >= 2:
        blocks.append(Heading(3, "What each protocol buys: the autoencoder studies' anytime curves"))
        path = compare_figure(curves, figures / "anytime.png", target=REPORT_TARGET)
        blocks.append(Image(path, "Best validation MSE so far against the epochs trained and the trial time spent "
                                  "(each trial in order of completion, pruned ones included); each study a thin line, "
                                  f"each protocol's median bold, the report's best {REPORT_TARGET} dashed "
                                  "(`mnist-hpo compare` draws the same for any studies)"))
        blocks.append(Table(f"Epochs and trial time until the best value first reached {REPORT_TARGET}", COLUMNS,
                            compare_rows(curves, REPORT_TARGET)))
    return blocks


FINISHED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def build_blocks(storage_url: str | None = None, *, studies: dict[str, str] | None = None,
                 journals: Path | None = None, figures: Path | None = None) -> list:
    """The report's blocks; ``journals``: a folder of journal files (one per study) instead of ``storage_url``.

    ``figures``: where the report's own figures are written (default ``storage/report-figures``).
    """
    names = DEFAULT_STUDIES | (studies or {})
    unknown = set(names) - set(REFERENCES)
    if unknown:
        raise UserError(f"unknown report section(s) {', '.join(sorted(unknown))}; use {', '.join(REFERENCES)}")
    where = Studies(storage_url, journals)
    root = exports_dir()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    blocks: list = [
        Heading(1, "Reproduction report: Homework 2, Unsupervised Learning (MNIST)"),
        Para(f"Generated {now} by mnist-hpo from the study database and the exports under {root}. Tables and "
             "numbers marked \"the report's\" are typed in from the original report; everything else is "
             "recomputed from what is stored here."),
        Facts("Generated on", [("machine", _hw(hardware("cpu"))), ("storage", where.label)]),
    ]
    for key, title in SECTIONS:
        blocks.extend(section_blocks(key, title, names[key], where, root))
    blocks.extend(other_blocks(where, root, set(names.values())))
    blocks.extend(beyond_blocks(where, list(names.values()), figures or storage_dir() / "report-figures"))
    return blocks


# --- rendering -------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;
     background:#fff;padding:0 1em}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #aaa;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.85em}th,td{border:1px solid #ccc;padding:.2em .5em;
     text-align:right}th{background:#f0f0f0}caption{text-align:left;font-weight:600;padding:.3em 0}
table.ref{background:#fff8e6}table.ref caption{color:#8a5a00}
.pair{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}.pair>div{flex:1;min-width:380px;overflow-x:auto}
.missing{background:#fdecea;border-left:4px solid #d33;padding:.4em .8em}
.note{color:#555;font-style:italic}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;font-size:.85em}
dl.facts dt{font-weight:600}dl.facts dd{margin:0;word-break:break-word}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.85em;color:#444}
"""


def _html_block(b) -> str:
    e = html.escape
    if isinstance(b, Heading):
        return f"<h{b.level}>{e(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        return f'<p class="{b.kind}">{e(b.text)}</p>'
    if isinstance(b, Table):
        head = "".join(f"<th>{e(str(c))}</th>" for c in b.columns)
        cell = str if b.kind == "ref" else fmt  # the report's numbers exactly as typed in
        body = "".join("<tr>" + "".join(f"<td>{e(cell(v))}</td>" for v in r) + "</tr>" for r in b.rows)
        return f'<table class="{b.kind}"><caption>{e(b.caption)}</caption><tr>{head}</tr>{body}</table>'
    if isinstance(b, Image):
        mime = mimetypes.guess_type(b.path.name)[0] or "image/png"
        data = base64.b64encode(b.path.read_bytes()).decode()
        return (f'<figure><img alt="{e(b.caption)}" src="data:{mime};base64,{data}">'
                f"<figcaption>{e(b.caption)}</figcaption></figure>")
    if isinstance(b, Facts):
        rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in b.items)
        return f'<h4>{e(b.title)}</h4><dl class="facts">{rows}</dl>'
    if isinstance(b, Pair):
        left = "".join(map(_html_block, b.left))
        right = "".join(map(_html_block, b.right))
        return f'<div class="pair"><div>{left}</div><div>{right}</div></div>'
    raise TypeError(type(b))


def render_html(blocks: list) -> str:
    title = next((b.text for b in blocks if isinstance(b, Heading)), "report")
    body = "\n".join(_html_block(b) for b in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def _md_cell(v, cell=fmt) -> str:
    return cell(v).replace("|", "\\|")


def _md_block(b, md_dir: Path) -> str:
    if isinstance(b, Heading):
        return "#" * b.level + " " + b.text
    if isinstance(b, Para):
        prefix = {"missing": "> **Missing:** ", "note": "> *Note:* "}.get(b.kind, "")
        return prefix + b.text
    if isinstance(b, Table):
        cell = str if b.kind == "ref" else fmt
        lines = [f"**{b.caption}**", "", "| " + " | ".join(map(_md_cell, b.columns)) + " |",
                 "|" + " --- |" * len(b.columns)]
        lines += ["| " + " | ".join(_md_cell(v, cell) for v in r) + " |" for r in b.rows]
        return "\n".join(lines)
    if isinstance(b, Image):
        return f"![{b.caption}]({Path(os.path.relpath(b.path.resolve(), md_dir.resolve())).as_posix()})\n\n*{b.caption}*"
    if isinstance(b, Facts):
        return f"**{b.title}**\n\n" + "\n".join(f"- **{k}**: {v}" for k, v in b.items)
    if isinstance(b, Pair):
        return "\n\n".join(_md_block(x, md_dir) for x in [*b.left, *b.right])
    raise TypeError(type(b))


def render_markdown(blocks: list, md_dir: Path) -> str:
    return "\n\n".join(_md_block(b, md_dir) for b in blocks) + "\n"


def build_report(storage_url: str | None = None, *, out: Path | None = None,
                 studies: dict[str, str] | None = None, journals: Path | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (its twin); returns both paths."""
    html_path = Path(out) if out else storage_dir() / "report.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    md_path = html_path.with_suffix(".md")
    blocks = build_blocks(storage_url, studies=studies, journals=journals,
                          figures=html_path.parent / f"{html_path.stem}-figures")
    html_path.write_text(render_html(blocks))
    md_path.write_text(render_markdown(blocks, md_path.parent))
    return html_path, md_path
