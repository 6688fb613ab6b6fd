"""Whole files: checking one against the sha256 recorded for it, and writing one so that it is never seen half-written.

Dataset caches, checkpoints, exports and the judge all go through here. It lives in ``data`` because
that is the lowest layer that reads and writes files; every layer above imports it from here, so the
wording of a failed check is the same everywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..errors import UserError, writing


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_sha256(path: Path, expected: str, *, where: str, hint: str, missing_hint: str | None = None) -> str:
    """The file's sha256, after checking it equals ``expected``; otherwise a one-line UserError.

    ``where`` names the record (``"the sha256 recorded at export time"``), ``hint`` says what to do;
    ``missing_hint`` replaces it when the file is not there at all.
    """
    if not Path(path).exists():
        raise UserError(f"{path} is missing; {missing_hint or hint}")
    got = sha256_file(path)
    if got != expected:
        raise UserError(f"{path} does not match {where}; {hint}")
    return got


def _plain_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file. Read once, at import: os.umask can only be read by
    setting it, and setting it while other threads create files would change their modes."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_PLAIN_MODE = _plain_mode()


def write_atomically(path: Path, write: Callable[[BinaryIO], object], *, what: str = "a file") -> None:
    """Write ``path`` through a temporary file of its own in the same folder, then rename it into place.

    Readers see the old file or the whole new one, never a part, and a writer that fails (or a
    Ctrl-C) leaves the old file as it was; two processes writing the same path at once each write
    their own temporary file. A full disk or an unwritable folder is one
    :class:`~mnist_hpo.errors.WriteFailed` line naming ``path``, ``what`` was being written and the free space.
    """
    path = Path(path)
    with writing(path, what):
        _write_atomically(path, write)


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _PLAIN_MODE)  # mkstemp makes the file 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    """``path.write_text(text)``, through :func:`write_atomically`."""
    write_atomically(path, lambda f: f.write(text.encode()))
