"""``make explore``: the latent space of an exported autoencoder, as figures and numbers (report section 2).

Encodes the test set with the export's encoder, writes the report's Table 5, PCA
and t-SNE maps in 2 and 3 dimensions (static PNG + interactive HTML each), cluster
measures (k-NN accuracy, silhouette), new images decoded from noisy codes (the
report's Figure 3) and an interpolation between two digits. Everything goes to
``<export folder>/explore/`` with ``explore.json`` recording the settings and
timings, so the report can use it as part of the export.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeGuard, TypeVar

import numpy as np
from torch import nn

from ..artifacts.export import latest_export
from ..artifacts.loading import load_export
from ..core.figures import image_grid_png, scatter_html, scatter_png
from ..core.schema import StudyConfig
from ..data.datasets import Dataset, load_data
from ..errors import UserError
from ..measures import latent
from ..train.classifier import encode

T = TypeVar("T")


class _Autoencoder(Protocol):
    """An exported model with an encoder and a decoder (any autoencoder family)."""

    encoder: nn.Module
    decoder: nn.Module


def _is_autoencoder(model: nn.Module) -> TypeGuard[_Autoencoder]:
    return hasattr(model, "encoder") and hasattr(model, "decoder")


EXPLORE_DIR = "explore"
EXPLORE_JSON = "explore.json"


@dataclass(frozen=True)
class ExploreSettings:
    points: int = 10_000  # test images encoded (PCA, k-NN and silhouette use all of them)
    tsne_points: int = 2_500  # t-SNE is O(N log N) but slow on 2 cores: the first N encoded images
    noise_mean: float = 5.0  # the report's Figure 3: mean 5, standard deviation 10
    noise_std: float = 10.0
    noise_images: int = 16
    sample_index: int = 0  # the encoded test image the noise is added to
    interpolate: tuple[int, int] = (2, 7)  # from the first test image of one digit to the first of another
    steps: int = 10
    knn_k: int = 5
    tsne_iter: int = 1000  # scikit-learn's default; at least 250
    threads: int | None = 1  # scikit-learn threads (see latent.embed); None: its default
    seed: int = 0


def default_export(study: str = "ae") -> Path:
    return latest_export(study)


def run_explore(
    export: Path,
    settings: ExploreSettings = ExploreSettings(),
    *,
    out: Path | None = None,
    data: Dataset | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Explore the latent space of the autoencoder exported in ``export``; returns what explore.json holds."""
    model, meta, data = _autoencoder_export(export, data)
    out = Path(out) if out else Path(meta["_folder"]) / EXPLORE_DIR
    out.mkdir(parents=True, exist_ok=True)
    s = settings
    n = min(s.points, len(data.test_images))
    if n < 20:
        raise UserError(f"--points {s.points}: need at least 20 test images to measure clusters")
    images, labels = data.test_images[:n], data.test_labels[:n].numpy()
    timer = _Timer()
    codes = timer.timed("encode", lambda: encode(model.encoder, images, batch_size=2048).cpu().numpy())
    result: dict[str, Any] = {
        "export": meta["_folder"],
        "study": meta["study"],
        "trial": meta["trial"],
        "weights_sha256": meta["weights"]["sha256"],
        "dataset": meta["dataset"],
        "settings": {**asdict(s), "points": n, "tsne_points": min(s.tsne_points, n)},
        "latent_dim": int(codes.shape[1]),
        "table5": latent.first_codes(codes, labels, 5),
        "pca_explained_variance": latent.pca_explained(codes, min(3, codes.shape[1])),
        "metrics": {},
        "figures": {},
        "seconds": timer.seconds,
    }
    metrics = result["metrics"]
    metrics["latent"] = _cluster_metrics(codes, labels, s)
    log(
        f"encoded {n} test images to {codes.shape[1]} dims: k-NN accuracy {metrics['latent']['knn_accuracy']:.3f}, "
        f"silhouette {metrics['latent']['silhouette']:.3f}"
    )
    _maps(codes, labels, s, out, timer, result, log)
    result["figures"]["noise"] = _noise_figure(model, codes, labels, s, out)
    result["figures"]["interpolation"] = _interpolation_figure(model, codes, labels, s, out)
    result["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    (out / EXPLORE_JSON).write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {out}")
    return result


def _autoencoder_export(export: Path, data: Dataset | None) -> tuple[_Autoencoder, dict[str, Any], Dataset]:
    """The export's model and metadata, and the data it was trained on (``data``, or its config's)."""
    model, meta = load_export(export)
    if not _is_autoencoder(model):
        raise UserError(f"{export} holds a {meta['model']['type']}, not an autoencoder; pass an autoencoder export")
    if data is None:
        data = load_data(StudyConfig.from_dict(meta["config"]))
    if data.checksum != meta["dataset"]["checksum"]:
        raise UserError(
            f"the dataset here ({data.name}, checksum {data.checksum[:12]}…) is not the one the export "
            f"was trained on ({meta['dataset']['checksum'][:12]}…)"
        )
    return model, meta, data


class _Timer:
    """Seconds per step, rounded to the millisecond, as explore.json records them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def timed(self, key: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        start = time.perf_counter()
        value = fn(*args, **kw)
        self.seconds[key] = round(time.perf_counter() - start, 3)
        return value


def _maps(
    codes: np.ndarray,
    labels: np.ndarray,
    s: ExploreSettings,
    out: Path,
    timer: _Timer,
    result: dict[str, Any],
    log: Callable[[str], None],
) -> None:
    """PCA and t-SNE maps in 2 and 3 dimensions (PNG + HTML), and the cluster measures of the 2-D ones."""
    metrics = result["metrics"]
    m = min(s.tsne_points, len(codes))
    for method, dims in (("pca", 2), ("pca", 3), ("tsne", 2), ("tsne", 3)):
        if dims > codes.shape[1] and method == "pca":
            continue  # PCA cannot make more components than the code has
        subset = slice(None) if method == "pca" else slice(0, m)
        key = f"{method}{dims}"
        points = timer.timed(
            key, latent.embed, codes[subset], method, dims, seed=s.seed, max_iter=s.tsne_iter, threads=s.threads
        )
        lab = labels[subset]
        name = "PCA" if method == "pca" else "t-SNE"
        title = f"{name}, {dims} components ({len(points)} test images)"
        scatter_png(points, lab, out / f"{key}.png", title=title)
        scatter_html(points, lab, out / f"{key}.html", title=title, include_plotlyjs="directory")
        result["figures"][key] = {
            "png": f"{key}.png",
            "html": f"{key}.html",
            "title": title,
            "shape": list(points.shape),
        }
        if dims == 2:
            metrics[key] = _cluster_metrics(points, lab, s)
        log(
            f"{title}: {timer.seconds[key]:.1f} s"
            + (f", k-NN accuracy {metrics[key]['knn_accuracy']:.3f}" if dims == 2 else "")
        )


def _noise_figure(
    model: _Autoencoder, codes: np.ndarray, labels: np.ndarray, s: ExploreSettings, out: Path
) -> dict[str, Any]:
    """New images decoded from one test image's code plus noise (the report's Figure 3)."""
    idx = min(s.sample_index, len(codes) - 1)
    noisy = latent.noise_codes(codes[idx], n=s.noise_images, mean=s.noise_mean, std=s.noise_std, seed=s.seed)
    image_grid_png(
        latent.decode(model.decoder, noisy),
        out / "noise.png",
        ncols=4,
        title=f"test image {idx} (digit {labels[idx]}) + N({s.noise_mean:g}, {s.noise_std:g}) noise, decoded",
    )
    return {
        "png": "noise.png",
        "title": "New images from noisy codes (the report's Figure 3)",
        "shape": [s.noise_images, 28, 28],
    }


def _interpolation_figure(
    model: _Autoencoder, codes: np.ndarray, labels: np.ndarray, s: ExploreSettings, out: Path
) -> dict[str, Any]:
    """Images decoded along the line between the codes of two digits' first test images."""
    a, b = (_first_of(labels, d) for d in s.interpolate)
    line = latent.interpolate_codes(codes[a], codes[b], s.steps)
    image_grid_png(
        latent.decode(model.decoder, line),
        out / "interpolation.png",
        ncols=s.steps,
        title=f"linear interpolation in latent space: digit {s.interpolate[0]} -> {s.interpolate[1]}",
        captions=[f"{t:.2f}" for t in np.linspace(0, 1, s.steps)],
    )
    return {
        "png": "interpolation.png",
        "shape": [s.steps, 28, 28],
        "title": f"Interpolation from test image {a} to {b}",
    }


def _cluster_metrics(points: np.ndarray, labels: np.ndarray, s: ExploreSettings) -> dict[str, Any]:
    return {
        "knn_accuracy": latent.knn_accuracy(points, labels, k=s.knn_k, seed=s.seed),
        "silhouette": latent.silhouette(points, labels, seed=s.seed),
        "points": len(points),
        "k": s.knn_k,
    }


def _first_of(labels: np.ndarray, digit: int) -> int:
    hits = np.flatnonzero(labels == digit)
    if not len(hits):
        raise UserError(f"no test image of digit {digit} among those encoded; choose other --interpolate digits")
    return int(hits[0])


def read_explore(export_folder: Path) -> dict[str, Any] | None:
    """The explore results stored with an export, or None when ``make explore`` has not been run on it."""
    path = Path(export_folder) / EXPLORE_DIR / EXPLORE_JSON
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None
