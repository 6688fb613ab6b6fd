"""The autoencoder's latent space: encode, embed in 2-3 dimensions, measure clusters, decode new images.

Plain functions over a model and arrays (report section 2): no Optuna, no storage
paths. Dimensionality reduction and the cluster measures are scikit-learn's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits
from torch import nn

METHODS = ("pca", "tsne")


@torch.inference_mode()
def decode(decoder: nn.Module, codes: np.ndarray | torch.Tensor) -> np.ndarray:
    """Latent codes [N, d] -> images float32 [N, 28, 28] in [0, 1]."""
    decoder.eval()
    z = torch.as_tensor(np.asarray(codes, dtype=np.float32)).to(next(decoder.parameters()).device)
    return decoder(z).reshape(len(z), 28, 28).cpu().numpy()


def embed(
    codes: np.ndarray,
    method: str,
    dims: int,
    *,
    seed: int = 0,
    perplexity: float = 30.0,
    max_iter: int = 1000,
    threads: int | None = 1,
) -> np.ndarray:
    """PCA or t-SNE of ``codes`` to ``dims`` components: float [N, dims].

    ``threads`` caps scikit-learn's OpenMP threads (None: its default). One thread is
    the default because t-SNE's OpenMP threads wait for each other on a busy machine: on
    the shared 2-core machine two ran a 500-point t-SNE 5x slower than one (BENCHMARKS.md).
    """
    with threadpool_limits(threads):
        if method == "pca":
            return PCA(n_components=dims, random_state=seed).fit_transform(codes)
        if method == "tsne":
            perplexity = min(perplexity, (len(codes) - 1) / 3)  # sklearn requires perplexity < n_samples
            return TSNE(
                n_components=dims, perplexity=perplexity, init="pca", max_iter=max_iter, random_state=seed
            ).fit_transform(codes)
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def pca_explained(codes: np.ndarray, dims: int) -> list[float]:
    """The fraction of the codes' variance each of the first ``dims`` principal components explains."""
    return PCA(n_components=dims).fit(codes).explained_variance_ratio_.tolist()


def knn_accuracy(points: np.ndarray, labels: np.ndarray, *, k: int = 5, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour vote predicting the digit from its position.

    Chance is about 0.1; a latent space whose clusters follow the digits scores near 1.
    Fewer folds are used when a digit has fewer than ``folds`` points (small subsets).
    """
    folds = max(2, min(folds, int(np.unique(labels, return_counts=True)[1].min())))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), points, labels, cv=cv).mean())


def silhouette(points: np.ndarray, labels: np.ndarray, *, sample_size: int | None = 5000, seed: int = 0) -> float:
    """Mean silhouette of the digit classes in ``points`` (-1..1; higher = tighter, better separated clusters)."""
    size = sample_size if sample_size and sample_size < len(points) else None
    return float(silhouette_score(points, labels, sample_size=size, random_state=seed))


def first_codes(codes: np.ndarray, labels: np.ndarray, n: int = 5) -> dict[str, Any]:
    """The report's Table 5: the first ``n`` encoded test samples and their labels."""
    d = codes.shape[1]
    return {
        "columns": [f"Enc. Variable {i + 1}" for i in range(d)] + ["label"],
        "rows": [[*map(float, codes[i]), int(labels[i])] for i in range(min(n, len(codes)))],
    }


def noise_codes(code: np.ndarray, *, n: int = 16, mean: float = 5.0, std: float = 10.0, seed: int = 0) -> np.ndarray:
    """``n`` copies of one code with Gaussian noise N(mean, std) added (the report's Figure 3: mean 5, std 10)."""
    rng = np.random.default_rng(seed)
    return (code[None, :] + rng.normal(mean, std, size=(n, code.shape[0]))).astype(np.float32)


def interpolate_codes(a: np.ndarray, b: np.ndarray, steps: int = 10) -> np.ndarray:
    """``steps`` codes on the straight line from ``a`` to ``b``, both ends included."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return ((1 - t) * a[None, :] + t * b[None, :]).astype(np.float32)
