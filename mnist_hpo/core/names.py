"""Study names that become file names: the one rule for a safe name, and a safe folder for any other name.

A study's name is joined into paths (its exports' folder, the names of the files attached to it,
the report's figures), so a study mnist-hpo creates must have a *safe* name: 1 to
:data:`MAX_NAME` ASCII letters, digits, ``.``, ``_`` and ``-``, the first a letter, a digit or
``_``. That rules out ``/``, ``..``, a hidden file, a newline, and a name read as a command-line
option. A name read from a storage may be anything (Optuna's own CLI creates studies too): it is
never joined into a path as it is, but through :func:`safe_folder`, a slug of it plus the
study's identity. ``docs/study-files.md`` documents the rule.
"""

from __future__ import annotations

import hashlib
import re
import string

from ..errors import UserError

MAX_NAME = 64
_FIRST = set(string.ascii_letters + string.digits + "_")
_ALLOWED = _FIRST | set(".-")
RULE = f"a name is 1 to {MAX_NAME} ASCII letters, digits, '.', '_' and '-', starting with a letter, a digit or '_'"
_SLUG_LENGTH = 40  # of a safe folder's name: the slug, then '-' and 8 characters of the identity


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a safe study name (a phrase), or None when it is."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long, over {MAX_NAME}"
    if name[0] not in _FIRST:
        return f"starts with {name[0]!r}"
    bad = sorted(set(name) - _ALLOWED)
    if bad:
        return "holds " + ", ".join(map(repr, bad[:5])) + (" and more" if len(bad) > 5 else "")
    return None


def is_safe_name(name: object) -> bool:
    return name_problem(name) is None


def shown(name: object, limit: int = 48) -> str:
    """``name`` quoted for a one-line message: escaped (a newline shows as ``\\n``) and cut to ``limit``."""
    text = repr(name)
    return text if len(text) <= limit else text[: limit - 4] + "…" + text[-3:]


def check_name(name: object, what: str = "study name", example: str = "ae-2") -> None:
    """One :class:`UserError` line when ``name`` is not safe: what is wrong, and the rule."""
    problem = name_problem(name)
    if problem:
        raise UserError(f"{what} {shown(name)} {problem}; {RULE}, e.g. {example}")


def slug(name: str) -> str:
    """A safe, shortened stand-in for any name: runs of other characters become ``_`` (never empty)."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:_SLUG_LENGTH].lstrip(".-")
    return text or "study"


def file_stem(name: str) -> str:
    """``name`` where it starts a file's name: itself when safe, else its slug and a digest of it."""
    return name if is_safe_name(name) else f"{slug(name)}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def safe_folder(name: str, identity: str) -> str:
    """A folder name of the study ``name`` with the identity ``identity`` (a UUID): ``<slug>-<8 hex>``."""
    return f"{slug(name)}-{identity.replace('-', '')[:8]}"
