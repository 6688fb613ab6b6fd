"""How good generated digits are: a Fréchet distance in a small classifier's feature space, and class coverage.

The judge is :class:`~mnist_hpo.models.FidNet`, cached next to the dataset as
``<data_dir>/<dataset>-fidnet.safetensors`` with a JSON sidecar (its sha256, test
accuracy, the dataset checksum) by data preparation (``mnist-hpo data``). For MNIST
the judge ships with the package (``judges/``) and is copied there: the training
recipe is seeded, but another CPU (AVX2 or AVX-512 kernels) or thread count trains a
different classifier, and Fréchet distances then move by a few percent, far beyond
what ``verify`` tolerates. A dataset without a shipped judge (Fashion-MNIST, the tests'
tiny sets) gets one trained once, here. It is never retrained by a study or a test,
and every score records the judge's sha256 (:func:`judge_record`).

* **Fréchet distance** (FID-style, but on this MNIST classifier instead of
  Inception): fit a Gaussian to the 128-d penultimate features of each image set,
  ``d = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2)``. 0 means the two sets look
  alike to the classifier; it grows as generated digits drift from real ones or
  lose variety. It is biased upward for small sets, so compare only scores made
  with the same number of samples.
* **Class coverage**: the histogram of predicted classes over generated samples
  and its total-variation distance from uniform, ``0.5 * sum |p_c - 0.1|``: 0 when
  every digit is generated equally often, 0.9 when every sample is one digit
  (mode collapse).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch.nn import functional as F

from ..data.datasets import Dataset, batches, default_data_dir, to_float
from ..data.integrity import check_sha256, sha256_file, write_atomically, write_text_atomically
from ..errors import UserError
from ..models.fid_net import FidNet

FIDNET_FORMAT = 1
FIDNET_EPOCHS = 3
FIDNET_SEED = 0
MIN_ACCURACY = {"mnist": 0.99}  # below this the cached judge is refused (other datasets: recorded only)
N_CLASSES = 10


SHIPPED_DIR = Path(__file__).with_name("judges")


# --- the judge: shipped or trained once, cached, loaded ----------------------------------


def fidnet_path(dataset: str, data_dir: Path | None = None) -> Path:
    return (Path(data_dir) if data_dir is not None else default_data_dir()) / f"{dataset}-fidnet.safetensors"


def shipped_fidnet(dataset: str, dataset_checksum: str) -> Path | None:
    """The judge shipped for exactly this copy of ``dataset``, or ``None`` (then one is trained here)."""
    path = SHIPPED_DIR / f"{dataset}-fidnet.safetensors"
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return path if path.exists() and meta.get("dataset_checksum") == dataset_checksum else None


def judge_record(meta: dict[str, Any]) -> dict[str, Any]:
    """What a score records about the judge that made it (the sidecar's sha256 and test accuracy)."""
    return {"sha256": meta["sha256"], "test_accuracy": meta.get("test_accuracy")}


@torch.inference_mode()
def classifier_accuracy(net: FidNet, images_u8: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    correct = 0
    for idx in batches(len(images_u8), 2048, shuffle=False):
        correct += (net(to_float(images_u8[idx])).argmax(1) == labels[idx]).sum().item()
    return correct / max(len(images_u8), 1)


def train_fidnet(
    data: Dataset, *, epochs: int = FIDNET_EPOCHS, seed: int = FIDNET_SEED, batch_size: int = 128
) -> tuple[FidNet, float]:
    """Train the judge on ``data``'s training images; returns it (eval mode) and its test accuracy."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = FidNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, total_steps=epochs * -(-len(data.train_images) // batch_size)
    )
    for _ in range(epochs):
        net.train()
        for idx in batches(len(data.train_images), batch_size, shuffle=True, generator=g):
            loss = F.cross_entropy(net(to_float(data.train_images[idx])), data.train_labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval(), classifier_accuracy(net, data.test_images, data.test_labels)


def prepare_fidnet(data: Dataset, data_dir: Path | None = None, *, log: Callable[[str], None] = print) -> Path:
    """Make sure the cached judge for ``data`` exists and is sound; train it (once) when missing."""
    path = fidnet_path(data.name, data_dir)
    shipped = shipped_fidnet(data.name, data.checksum)
    if shipped is not None:
        return _install_shipped(shipped, path, data, log=log)
    if path.exists() and path.with_suffix(".json").exists():
        load_fidnet(data.name, data_dir, dataset_checksum=data.checksum)  # checks it
        return path
    log(f"training the {data.name} quality classifier (once; about a minute or two on 2 cores)…")
    start = time.perf_counter()
    net, accuracy = train_fidnet(data)
    seconds = time.perf_counter() - start
    floor = MIN_ACCURACY.get(data.name)
    if floor is not None and accuracy < floor:
        raise UserError(
            f"the quality classifier reached only {accuracy:.2%} test accuracy (needs {floor:.0%}); "
            "this should not happen with the shipped recipe — report it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = save({k: v.contiguous() for k, v in net.state_dict().items()})
    write_atomically(path, lambda f: f.write(weights))
    meta = {
        "format": FIDNET_FORMAT,
        "dataset": data.name,
        "dataset_checksum": data.checksum,
        "test_accuracy": accuracy,
        "epochs": FIDNET_EPOCHS,
        "seed": FIDNET_SEED,
        "seconds": round(seconds, 1),
        "sha256": sha256_file(path),
    }
    write_text_atomically(path.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    log(f"quality classifier: {accuracy:.2%} test accuracy in {seconds:.0f} s, cached at {path}")
    return path


def _install_shipped(shipped: Path, path: Path, data: Dataset, *, log: Callable[[str], None]) -> Path:
    """Copy the shipped judge to ``path`` unless the same one is there; replaces one trained here."""
    meta = json.loads(shipped.with_suffix(".json").read_text())
    check_sha256(
        shipped, meta["sha256"], where=f"its checksum in {shipped.with_suffix('.json')}", hint="reinstall mnist-hpo"
    )
    try:
        cached = json.loads(path.with_suffix(".json").read_text()).get("sha256")
    except (OSError, ValueError, AttributeError):
        cached = None
    if cached == meta["sha256"] and path.exists() and sha256_file(path) == cached:
        return path
    if cached is not None and cached != meta["sha256"]:
        log(
            f"replacing {path} (trained on this machine) with the shipped {data.name} quality classifier, "
            "so that Fréchet distances compare with the record's"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    for src, dst in ((shipped, path), (shipped.with_suffix(".json"), path.with_suffix(".json"))):
        with open(src, "rb") as source:
            write_atomically(dst, lambda f: shutil.copyfileobj(source, f))
    log(
        f"quality classifier: the shipped one ({meta['test_accuracy']:.2%} test accuracy, "
        f"sha256 {meta['sha256'][:16]}…), at {path}"
    )
    return path


def load_fidnet(
    dataset: str = "mnist", data_dir: Path | None = None, *, dataset_checksum: str | None = None
) -> tuple[FidNet, dict[str, Any]]:
    """The cached judge (eval mode) and its sidecar; a clear error when it is missing or altered."""
    path = fidnet_path(dataset, data_dir)
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        raise UserError(f"no quality classifier at {path}; run 'mnist-hpo data --dataset {dataset}' (or make data)")
    try:
        meta = json.loads(meta_path.read_text())
        expected = meta["sha256"]
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"{meta_path} is corrupt; delete {path} and {meta_path} and run 'mnist-hpo data' again"
        ) from None
    check_sha256(
        path, expected, where=f"its checksum in {meta_path}", hint="delete both and run 'mnist-hpo data' again"
    )
    if dataset_checksum is not None and meta.get("dataset_checksum") != dataset_checksum:
        raise UserError(
            f"{path} was trained on a different copy of {dataset}; delete it and run 'mnist-hpo data' again"
        )
    net = FidNet()
    try:
        net.load_state_dict(load_file(path))
    except (RuntimeError, OSError) as e:
        raise UserError(
            f"{path} does not fit this version's classifier ({str(e).splitlines()[0]}); "
            "delete it and run 'mnist-hpo data' again"
        ) from None
    return net.eval(), meta


# --- the scores ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance (float64) of a set of feature vectors."""

    mean: np.ndarray
    cov: np.ndarray
    count: int

    @classmethod
    def of(cls, features: torch.Tensor | np.ndarray) -> FeatureStats:
        f = np.asarray(features, dtype=np.float64)
        if f.ndim != 2 or len(f) < 2:
            raise ValueError(f"need at least two feature vectors, got shape {f.shape}")
        return cls(f.mean(axis=0), np.cov(f, rowvar=False), len(f))


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2)`` between two Gaussians.

    Tr (S_a S_b)^1/2 equals Tr (A S_b A)^1/2 with A = S_a^1/2, and A S_b A is symmetric
    positive semi-definite, so both roots come from ``eigh`` with negative round-off
    eigenvalues clipped: no complex parts to discard, unlike ``scipy.linalg.sqrtm``.
    """
    root_a = _sqrt_psd(a.cov)
    middle = root_a @ b.cov @ root_a
    tr_cross = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum())
    diff = a.mean - b.mean
    return max(0.0, float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * tr_cross))


def class_histogram(predictions: torch.Tensor) -> np.ndarray:
    counts = np.bincount(np.asarray(predictions, dtype=np.int64), minlength=N_CLASSES).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def coverage_tv(histogram: np.ndarray) -> float:
    """Total-variation distance of a class histogram from uniform: 0 (balanced) to 0.9 (one class)."""
    return float(0.5 * np.abs(np.asarray(histogram) - 1.0 / len(histogram)).sum())


class Scorer:
    """Scores image sets against a reference set whose feature statistics are computed once.

    Images are float [B, 1, 28, 28]; ``scale="tanh"`` for generator output in [-1, 1],
    ``"unit"`` for [0, 1].
    """

    def __init__(self, net: FidNet, reference_u8: torch.Tensor, *, batch_size: int = 2000) -> None:
        self.net = net.eval()
        self.batch_size = batch_size
        self.device = next(net.parameters()).device
        feats, _ = self.features_u8(reference_u8)
        self.reference = FeatureStats.of(feats)

    @torch.inference_mode()
    def _run(self, chunks: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        feats, preds = [], []
        for x in chunks:
            f = self.net.features(x.to(self.device, torch.float32))
            feats.append(f.double().cpu())
            preds.append(self.net.head(f).argmax(1).cpu())
        return torch.cat(feats), torch.cat(preds)

    def features_u8(self, images_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run(to_float(images_u8[idx]) for idx in batches(len(images_u8), self.batch_size, shuffle=False))

    def features(self, images: torch.Tensor, *, scale: str = "tanh") -> tuple[torch.Tensor, torch.Tensor]:
        if scale not in ("tanh", "unit"):
            raise ValueError(f"scale must be 'tanh' or 'unit', got {scale!r}")
        images = (images + 1) / 2 if scale == "tanh" else images
        return self._run(images[idx] for idx in batches(len(images), self.batch_size, shuffle=False))

    def score_features(self, feats: torch.Tensor, preds: torch.Tensor) -> dict[str, Any]:
        hist = class_histogram(preds)
        return {
            "fid": frechet_distance(FeatureStats.of(feats), self.reference),
            "coverage_tv": coverage_tv(hist),
            "class_histogram": [round(float(p), 4) for p in hist],
            "samples": len(feats),
        }

    def score_images(self, images: torch.Tensor, *, scale: str = "tanh") -> dict[str, Any]:
        return self.score_features(*self.features(images, scale=scale))

    def score_u8(self, images_u8: torch.Tensor) -> dict[str, Any]:
        return self.score_features(*self.features_u8(images_u8))

    @torch.no_grad()
    def score_generator(
        self, sample: Callable[[int, torch.Generator], torch.Tensor], n: int, *, seed: int = 0, batch_size: int = 1000
    ) -> dict[str, Any]:
        """Score ``n`` samples of ``sample(count, generator) -> images in [-1, 1]`` drawn with a fixed seed."""
        g = torch.Generator().manual_seed(seed)
        feats, preds = [], []
        for start in range(0, n, batch_size):
            f, p = self.features(sample(min(batch_size, n - start), g))
            feats.append(f)
            preds.append(p)
        return self.score_features(torch.cat(feats), torch.cat(preds))
