"""Storage URLs and where storage lives, without Optuna or SQLAlchemy: what the command line checks at once.

``mnist-hpo`` checks a ``--storage`` URL's form, and that the storage a read-only command
reads exists, before it imports torch and Optuna (about 2 s), so such a mistake costs a
fraction of a second. Opening the storage itself is :func:`mnist_hpo.storages.open_storage`,
which checks the same forms again (and everything that needs a connection).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from ..errors import UserError

JOURNAL_PREFIX = "journal:"
BACKENDS = ("sqlite", "postgresql")
# SQLAlchemy's URL form (sqlalchemy.engine.url._parse_url): dialect[+driver]://rest
_URL = re.compile(r"^(?P<dialect>[\w]+)(\+[\w]+)?://(?P<rest>.*)$", re.DOTALL)


def storage_dir() -> Path:
    """The folder of the default database, its artifacts and exports (``$MNIST_HPO_STORAGE_DIR`` or ``storage``)."""
    return Path(os.environ.get("MNIST_HPO_STORAGE_DIR", "storage"))


def exports_dir() -> Path:
    """The folder of the studies' exports (``storage/exports``)."""
    return storage_dir() / "exports"


def artifacts_dir() -> Path:
    """The folder of the files attached to trials and studies (``storage/artifacts``)."""
    return storage_dir() / "artifacts"


def checkpoints_dir() -> Path:
    """Population-based training's checkpoints: an artifact store of their own beside the figures',
    as they are large (13 MB a segment for the MLP GAN) and a record keeps its figures but not them."""
    return storage_dir() / "checkpoints"


def default_storage_url() -> str:
    """``$MNIST_HPO_STORAGE``, else the SQLite database ``storage/mnist_hpo.db``."""
    return os.environ.get("MNIST_HPO_STORAGE") or f"sqlite:///{storage_dir() / 'mnist_hpo.db'}"


def check_storage_url(url: str | None) -> None:
    """One :class:`UserError` line when ``url`` is not a form :func:`open_storage` accepts; nothing is opened."""
    url = url or default_storage_url()
    if url.startswith(JOURNAL_PREFIX):
        if not url[len(JOURNAL_PREFIX) :]:
            raise UserError("storage 'journal:' needs a file path, e.g. --storage journal:results/journals/ae.log")
        return
    match = _URL.match(url)
    if match is None:
        raise UserError(
            f"storage URL {url!r} is malformed; use sqlite:///path/to.db or postgresql+psycopg://user@host/db"
        )
    if match["dialect"] not in BACKENDS:
        raise UserError(f"storage backend {match['dialect']!r} is not supported; use sqlite or postgresql")


def storage_file(url: str | None) -> Path | None:
    """The file a SQLite or journal URL names (None for PostgreSQL and SQLite in memory)."""
    url = url or default_storage_url()
    if url.startswith(JOURNAL_PREFIX):
        return Path(url[len(JOURNAL_PREFIX) :])
    match = _URL.match(url)
    if match is None or match["dialect"] != "sqlite":
        return None
    # sqlite:///relative.db and sqlite:////absolute.db: the path is what follows the third slash.
    database = match["rest"].split("?", 1)[0]
    if not database.startswith("/") or database in ("/", "/:memory:"):
        return None
    return Path(database[1:])


def storage_folder_ready(path: Path, *, create: bool = True) -> None:
    """Make sure the folder of storage file ``path`` (a SQLite database or a journal) is there.

    Only the default storage folder (:func:`storage_dir`) is made when missing (with ``create``);
    any other missing folder is one line naming it and the ``mkdir -p`` to run, and nothing is
    created: a mistyped ``--storage`` path must not leave new folders and an empty study behind.
    """
    folder = path.parent
    if folder.is_dir():
        return
    existing = next(p for p in folder.parents if p.exists())  # "." or "/" at the latest
    if folder.exists() or not existing.is_dir():
        blocker = folder if folder.exists() else existing
        raise UserError(
            f"cannot create the storage folder {folder} ({blocker} is a file, not a folder); "
            "choose another --storage path"
        )
    if folder.resolve() != storage_dir().resolve():
        raise UserError(
            f"the storage folder {folder} does not exist; create it first (mkdir -p "
            f"{shlex.quote(str(folder))}) or choose another --storage path"
        )
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(
                f"cannot create the storage folder {folder} ({e.strerror}); choose a writable --storage path"
            ) from None


def check_storage_folder(url: str | None) -> None:
    """:func:`storage_folder_ready` for a URL, creating nothing: what the command line checks at once."""
    path = storage_file(url)
    if path is not None:
        storage_folder_ready(path, create=False)


def require_stored(url: str | None, *, record_hint: str = "--storage journal:results/journals/ae.log") -> None:
    """Stop with one line when ``url`` names a SQLite database or journal file that does not exist.

    For the commands that only read a study (``show``, ``list``, ``compare``, ``export``, ``delete``,
    ``rerun``, ``report``, ``dashboard``): opening a missing file would create it, and its folder, so
    a mistyped path would leave an empty database behind instead of saying it is wrong.
    ``record_hint`` says how the command reads the committed record instead.
    """
    path = storage_file(url)
    if path is None or path.exists():
        return
    if url is None and not os.environ.get("MNIST_HPO_STORAGE"):
        raise UserError(
            f"no studies yet: the default storage {path} does not exist; run a study first "
            f"(e.g. 'mnist-hpo study ae'), or read the record's with {record_hint}"
        )
    raise UserError(
        f"storage {url or default_storage_url()} does not exist ({path} is missing); check the path, "
        "or run a study with that --storage first"
    )
