"""Where a study file is found, whichever folder a command runs in, and its TOML read.

The report's study files ship inside the package (``mnist_hpo/studies/``, package data), so
the lookup never depends on the current folder:

1. an argument with a slash or a ``.toml`` suffix is a path to a file of your own, read as given
   (relative to the current folder, as any path on a command line is);
2. a bare name (``ae``) is the study that ships with the package (``mnist_hpo/studies/ae.toml``),
   and nothing else: a ``studies/ae.toml`` in the current folder does not replace it.

A bare name that ships nothing is one line listing the names that do (and naming a matching file
in the current folder, to be given by its path).
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from ..errors import UserError

STUDIES_DIR = Path(__file__).resolve().parents[1] / "studies"
# How messages and exports name a shipped file: where it lives in the package, the same on every machine.
SHIPPED_LABEL = "mnist_hpo/studies"


def shipped_studies() -> list[str]:
    """The names of the study files that ship with the package (``ae``, ``ae-gp``, ...), sorted."""
    return sorted(p.stem for p in STUDIES_DIR.glob("*.toml"))


def is_path(arg: str | Path) -> bool:
    """Whether a study argument is a path (a slash or a ``.toml`` suffix) rather than a shipped study's name."""
    text = str(arg)
    return text.endswith(".toml") or "/" in text


def study_path(arg: str | Path) -> Path:
    """The study file ``arg`` names: a path as given, or the shipped file of a bare name.

    >>> study_path("ae").relative_to(STUDIES_DIR.parent).as_posix()
    'studies/ae.toml'
    >>> str(study_path("my/own.toml"))
    'my/own.toml'
    """
    if is_path(arg):
        return Path(arg)
    path = STUDIES_DIR / f"{arg}.toml"
    if path.is_file():
        return path
    names = shipped_studies()
    close = difflib.get_close_matches(str(arg), names, n=1, cutoff=0.5)
    guess = f"did you mean {close[0]!r}? " if close else ""
    local = next((p for p in (Path(f"{arg}.toml"), Path("studies", f"{arg}.toml")) if p.is_file()), None)
    own = (
        f"to run the file {local} here, give its path"
        if local
        else f"a file of your own is given by its path, e.g. ./{arg}.toml"
    )
    raise UserError(f"no study {str(arg)!r} ships with mnist-hpo; {guess}(shipped: {', '.join(names)}; {own})")


def study_source(path: str | Path) -> str:
    """How messages and exports name study file ``path``: a shipped one by its place in the package."""
    path = Path(path)
    if path.parent == STUDIES_DIR:
        return f"{SHIPPED_LABEL}/{path.name}"
    return str(path)


def read_study_document(path: str | Path) -> dict[str, Any]:
    """The TOML document of study file ``path``; a missing, unreadable or malformed file is one :class:`UserError`.

    The command line calls it before anything heavy is imported, so such a mistake answers at once.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"study file {path} not found; {_not_found_hint(path)}") from None
    except OSError as e:
        raise UserError(f"cannot read study file {path} ({e.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path} is not valid TOML ({e}); fix the file and run again") from None


def _not_found_hint(path: Path) -> str:
    if path.stem in shipped_studies():  # e.g. studies/ae.toml, from before the files shipped with the package
        return f"the study {path.stem!r} ships with mnist-hpo: name it without a path ({path.stem})"
    names = ", ".join(shipped_studies())
    return f"check the path (the studies that ship with mnist-hpo are named without one: {names})"
