"""MNIST and Fashion-MNIST without the internet, held in memory as uint8 tensors.

Where the arrays come from (the wheel, IDX files, the restricted unpickler) is
:mod:`mnist_hpo.data.sources`. Each source is read once into its own cache under
``<data_dir>`` (:func:`cache_path`; by default one folder per user, :func:`default_data_dir`),
checked against its sidecar checksum on every load, and built under a file lock with atomic
renames, so processes starting together build it once and never see half a file.

Images stay resident as one uint8 tensor; :func:`batches` slices float batches
from it, so there is no per-sample Dataset/PIL path.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from ..errors import UserError
from . import names
from .integrity import check_sha256, sha256_file, write_atomically, write_text_atomically
from .names import DATASET_GROUP, DATASETS, dataset_names
from .sources import FASHION_IDX_DIR, IMAGE_SHAPE, read_source

if TYPE_CHECKING:
    from ..core.schema import StudyConfig

# A plugin's own data: an installed distribution's entry point in group DATASET_GROUP (data/names.py) names
# a function ``load(data_dir: Path) -> dict`` of the four arrays a :class:`Dataset` holds (load_plugin_dataset).

CACHE_NAME = "mnist-hpo"  # the folder of this project's data in the user's cache folder


def default_data_dir() -> Path:
    """Where datasets are cached, once per user, whichever folder a command runs in.

    ``$MNIST_HPO_DATA`` when set; else the XDG cache convention (as torchvision and Hugging Face
    use it): ``$XDG_CACHE_HOME/mnist-hpo``, or ``~/.cache/mnist-hpo`` when that is unset (or, as the
    XDG specification says, not an absolute path).
    """
    explicit = os.environ.get("MNIST_HPO_DATA")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / CACHE_NAME


@dataclass(frozen=True)
class Dataset:
    """The official train (60k) and test (10k) splits, as a model family (a plugin too) receives them.

    * ``train_images``, ``test_images``: ``torch.uint8``, shape ``[N, 28, 28]``, pixel values 0..255
      (0 = background; MNIST's digits and Fashion-MNIST's garments are bright on black), on the CPU;
      :func:`to_float` makes a batch float32 ``[B, 1, 28, 28]`` in [0, 1].
    * ``train_labels``, ``test_labels``: ``torch.int64``, shape ``[N]``, classes 0..9.
    * ``checksum``: sha256 of the arrays' contents; recorded in every study and export.

    A study's ``train_subset``/``test_subset`` keep the first N images (:meth:`subset`).
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    checksum: str  # sha256 of the array contents, independent of the file format

    def subset(self, n_train: int | None, n_test: int | None = None) -> Dataset:
        """The first ``n_train``/``n_test`` images, for short runs and tests."""
        return Dataset(
            self.name,
            self.train_images[:n_train],
            self.train_labels[:n_train],
            self.test_images[:n_test],
            self.test_labels[:n_test],
            self.checksum,
        )


def content_checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --- cache -----------------------------------------------------------------------------


def _save_cache(path: Path, arrays: dict[str, np.ndarray], source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # (cast: numpy's stubs take **arrays for its allow_pickle flag too)
    write_atomically(path, lambda f: np.savez_compressed(f, **cast(dict[str, Any], arrays)))
    meta = {"file_sha256": sha256_file(path), "content_sha256": content_checksum(arrays), "source": source}
    # The sidecar last: a reader takes the cache only once both are there (see _load_cache).
    write_text_atomically(path.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock while building ``path``: processes starting together build it once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _load_cache(path: Path) -> tuple[dict[str, np.ndarray], str] | None:
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        expected = meta["file_sha256"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(
            f"{meta_path} is corrupt; delete {path} and {meta_path} and run again to rebuild the cache"
        ) from e
    check_sha256(path, expected, where=f"its checksum in {meta_path}", hint="delete both and run again to rebuild it")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("train_images", "train_labels", "test_images", "test_labels")}
    except Exception as e:
        raise UserError(f"cannot read {path} ({e}); delete it and run again to rebuild it") from e
    return arrays, meta["content_sha256"]


def cache_path(name: str, data_dir: Path, idx_dir: Path | None = None) -> Path:
    """Where the cache of ``name`` read from ``idx_dir`` (or its default source) lives.

    Each source has its own cache: ``<name>.npz`` for the default one (the wheel for MNIST,
    Debian's files for Fashion-MNIST), ``<name>-idx-<hash of the folder's resolved path>.npz``
    for an IDX folder, so a study's ``idx_dir`` is read even when another cache exists.
    """
    if idx_dir is None or (name == "fashion-mnist" and Path(idx_dir).resolve() == FASHION_IDX_DIR.resolve()):
        return data_dir / f"{name}.npz"
    key = hashlib.sha256(str(Path(idx_dir).resolve()).encode()).hexdigest()[:12]
    return data_dir / f"{name}-idx-{key}.npz"


def load_dataset(name: str = "mnist", *, data_dir: Path | None = None, idx_dir: Path | None = None) -> Dataset:
    """Load a dataset, building its cache from its source (``idx_dir`` if given) if needed."""
    if name not in DATASETS:
        return load_plugin_dataset(name, Path(data_dir) if data_dir is not None else default_data_dir())
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    cache = cache_path(name, data_dir, idx_dir)
    loaded = _load_cache(cache)
    if loaded is None:
        # Local IDX files are read before anything is created, so a bad folder leaves no trace;
        # the wheel is fetched under the lock, so processes starting together download it once.
        local = read_source(name, data_dir, idx_dir) if idx_dir is not None or name == "fashion-mnist" else None
        with _build_lock(cache):
            loaded = _load_cache(cache)  # another process may have built it while this one waited
            if loaded is None:
                arrays, source = local or read_source(name, data_dir, idx_dir)
                _save_cache(cache, arrays, source)
                loaded = arrays, content_checksum(arrays)
    arrays, checksum = loaded
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    return Dataset(name, t["train_images"], t["train_labels"], t["test_images"], t["test_labels"], checksum)


# --- a plugin's own data ----------------------------------------------------------------


def load_plugin_dataset(name: str, data_dir: Path) -> Dataset:
    """The dataset an installed plugin registers as ``name``; its arrays are checked against :class:`Dataset`.

    The entry point names ``load(data_dir: Path) -> dict`` returning numpy arrays (or tensors)
    ``train_images``/``test_images`` uint8 [N, 28, 28] and ``train_labels``/``test_labels``
    int64 [N]; ``data_dir`` is where the project keeps its data (MNIST_HPO_DATA), for a cache.
    Its checksum is computed here from the contents, as for the built-in datasets.
    """
    ep = names.plugin_datasets().get(name)  # looked up there: one place to replace it (tests)
    if ep is None:
        raise UserError(
            f"unknown dataset {name!r}; choose one of {', '.join(dataset_names())} (a plugin adds one "
            f"as an entry point in group {DATASET_GROUP})"
        )
    where = f"dataset {name!r} ({ep.value}, from {ep.dist.name if ep.dist else 'an installed distribution'})"
    try:
        arrays = ep.load()(data_dir)
    except ImportError as e:
        raise UserError(f"{where}: cannot import it ({e}); reinstall the distribution that provides it") from None
    expected = {
        "train_images": (np.uint8, 3),
        "train_labels": (np.int64, 1),
        "test_images": (np.uint8, 3),
        "test_labels": (np.int64, 1),
    }
    out = {}
    for key, (dtype, ndim) in expected.items():
        a = np.asarray(arrays.get(key) if isinstance(arrays, dict) else None)
        if a.dtype != dtype or a.ndim != ndim or (ndim == 3 and a.shape[1:] != IMAGE_SHAPE):
            shape = "[N, 28, 28]" if ndim == 3 else "[N]"
            raise UserError(
                f"{where}: {key} must be {np.dtype(dtype).name} {shape}, got "
                f"{a.dtype} {list(a.shape)}; fix the plugin's loader"
            )
        out[key] = a
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}
    return Dataset(
        name, t["train_images"], t["train_labels"], t["test_images"], t["test_labels"], content_checksum(out)
    )


# --- splitting and batching ------------------------------------------------------------


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random train/validation split of ``range(n)``."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = int(round(n * val_fraction))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 28, 28] -> float32 [B, 1, 28, 28] in [0, 1] (what ToTensor gives)."""
    return images_u8.unsqueeze(1).to(torch.float32).mul_(1.0 / 255.0)


def batches(
    n: int, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
) -> Iterator[torch.Tensor]:
    """Index batches over ``range(n)``; the last, smaller batch is kept."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


def load_data(cfg: StudyConfig) -> Dataset:
    """The dataset a study config (:class:`~mnist_hpo.config.StudyConfig`) names."""
    return load_dataset(cfg.dataset, idx_dir=Path(cfg.idx_dir) if cfg.idx_dir else None)
