"""Checking a file against the sha256 recorded for it (dataset caches, checkpoints, exports, the judge).

It lives in ``data`` because that is the lowest layer that checks files; every layer above imports it
from here, so the wording of a failed check is the same everywhere.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import UserError


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
