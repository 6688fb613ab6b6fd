"""Opening a study's storage: a SQLite or PostgreSQL database, or a journal file; loading a stored study.

One SQLite database under ``storage/`` holds all the project's studies (one dashboard shows
them all); ``MNIST_HPO_STORAGE`` or ``--storage`` points at another URL, e.g. PostgreSQL for
several machines, or ``journal:PATH`` for a study in one file. A database is Optuna's RDB
storage with heartbeats (:mod:`._heartbeat`), so a worker that dies mid-trial leaves a trial
that the next worker marks failed and re-runs with the same parameters. Every failure to open
is one clear line; once open, every call rides out an outage (:mod:`._outage`).
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.exc

from ..errors import UserError, require_extra
from . import _heartbeat as heartbeat
from ._journal import is_journal_url, open_journal, retry
from ._optuna_compat import backend_of, optuna_table_names
from ._outage import DEFAULT_PATIENCE, link_of, make_patient
from ._rdb import WorkerRDBStorage
from ._timeouts import CallWatch, postgres_connect_args, sqlite_busy_timeout, watch_deadline
from ._urls import default_storage_url, require_stored, storage_folder_ready

OPEN_ATTEMPTS = 5


def storage_label(storage: optuna.storages.BaseStorage) -> str:
    """Where an open storage is, as an export records it: ``journal:PATH``, or the database URL without
    its password (``postgresql+psycopg://user:***@host/db``)."""
    if isinstance(storage, optuna.storages.JournalStorage):
        link = link_of(storage)
        path = link.path if link is not None else None
        return f"journal:{path}" if path is not None else "journal"
    storage = backend_of(storage)  # Optuna wraps an RDB storage in a cache
    if isinstance(storage, optuna.storages.RDBStorage):
        return sqlalchemy.engine.make_url(storage.url).render_as_string(hide_password=True)
    return type(storage).__name__  # e.g. an InMemoryStorage made in Python


def _check_sqlite_path(url: sqlalchemy.engine.URL) -> None:
    if not url.database or url.database == ":memory:":
        return
    path = Path(url.database)
    folder = path.parent
    storage_folder_ready(path)  # only the default storage folder is made; any other must exist
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"storage {path} is not writable; fix its permissions or choose another --storage path")
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise UserError(f"{path} is not a SQLite database; point --storage at an Optuna database or a new file")


def _refuse_foreign_database(url: sqlalchemy.engine.URL, engine_kwargs: dict[str, Any]) -> None:
    """Optuna adds its tables to whatever database it is given; refuse one that already holds others."""
    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    foreign = sorted(tables - optuna_table_names())
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UserError(
            f"{url.render_as_string(hide_password=True)} is not an Optuna database (it holds other tables: {shown}); "
            "point --storage at an Optuna database or a new one"
        )


def _serialize_sqlite_writes(engine: sqlalchemy.engine.Engine) -> None:
    """Begin every SQLite transaction with BEGIN IMMEDIATE (SQLAlchemy's documented pysqlite recipe).

    The sqlite3 module opens a transaction only at the first write, so Optuna's
    read-then-write steps are not atomic between processes: two workers can both see
    a queued retry as WAITING and both run it, and a reader upgrading to a writer can
    get "database is locked" at once, without waiting. Taking the write lock at the
    start makes each step atomic and makes every wait go through the busy timeout.
    PostgreSQL needs none of this (Optuna locks rows with SELECT ... FOR UPDATE).
    """

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin(conn: sqlalchemy.engine.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class RetryStaleTrials(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a trial whose heartbeat stopped, with the retry rules of :func:`._journal.retry`.

    The same attributes (``failed_trial``, ``retry_history``) and the same ``max_retry``, but a
    trial queued again after Ctrl-C or SIGTERM does not use up one of its retries.
    """

    def __init__(self, max_retry: int) -> None:
        super().__init__(max_retry=max_retry)
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        retry(study, trial, max_retry=self.max_retry)


def _rdb_storage(
    url: str, engine_kwargs: dict[str, Any], interval: int, grace: int, *, where: str, patience: float
) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():
        # Heartbeats and their retry callback are "experimental" since Optuna 2.8; they are what we want.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return make_patient(
            WorkerRDBStorage,
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=RetryStaleTrials(max_retry=heartbeat.MAX_RETRY),
            where=where,
            patience=patience,
        )


def _engine_kwargs(parsed: sqlalchemy.engine.URL, patience: float) -> dict[str, Any]:
    """SQLAlchemy's engine arguments for the database ``parsed`` names: every wait bounded by the patience."""
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_path(parsed)
        # Several workers share one file: wait for the lock (up to a minute) instead of failing at once,
        # and let SQLAlchemy, not the sqlite3 module, open transactions (see _serialize_sqlite_writes).
        engine_kwargs["connect_args"] = {"timeout": sqlite_busy_timeout(patience), "isolation_level": None}
    elif parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() == "psycopg":
            require_extra("psycopg", "postgres", "PostgreSQL storage")
        # A pooled connection that a server restart closed is tested and replaced before use, not an error;
        # every wait (connecting, a statement, a silent network) is bounded by the patience (see _timeouts).
        engine_kwargs["pool_pre_ping"] = True
        engine_kwargs["connect_args"] = postgres_connect_args(patience, parsed.query)
    else:
        raise UserError(f"storage backend {parsed.get_backend_name()!r} is not supported; use sqlite or postgresql")
    return engine_kwargs


def _open_rdb(
    url: str, parsed: sqlalchemy.engine.URL, engine_kwargs: dict[str, Any], interval: int, grace: int, patience: float
) -> optuna.storages.RDBStorage:
    """The RDB storage, tried again while workers starting together race to create Optuna's tables."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            storage = _rdb_storage(
                url,
                engine_kwargs,
                interval,
                grace,
                where=parsed.render_as_string(hide_password=True),
                patience=patience,
            )
            link = link_of(storage)
            assert link is not None  # made by make_patient, which gives it one
            if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
                link.path = Path(parsed.database)  # a full disk there: one line naming it
            if parsed.get_backend_name() == "sqlite":
                _serialize_sqlite_writes(storage.engine)
            else:
                link.watch = CallWatch(storage.engine, watch_deadline(patience))
            return storage
        except sqlalchemy.exc.SQLAlchemyError as e:
            # Workers starting together on a new database race to create Optuna's tables
            # ("table ... already exists", "duplicate key"), or find it locked: the loser tries again.
            text = str(e).lower()
            if attempt + 1 == OPEN_ATTEMPTS or not any(
                m in text for m in ("already exists", "duplicate", "unique", "locked")
            ):
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError  # unreachable


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    patience: float | None = None,
) -> optuna.storages.RDBStorage | optuna.storages.JournalStorage:
    """Optuna RDB storage with heartbeats and retry of stale trials, or a journal file (``journal:PATH``).

    Every failure to open is one clear line. Once open, its calls ride out an outage of up to
    ``patience`` seconds (default :data:`._outage.DEFAULT_PATIENCE`; see :mod:`._outage`).
    """
    url = url or default_storage_url()
    if is_journal_url(url):
        return open_journal(url, patience=patience)
    patience = DEFAULT_PATIENCE if patience is None else float(patience)
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise UserError(
            f"storage URL {url!r} is malformed; use sqlite:///path/to.db or postgresql+psycopg://user@host/db"
        ) from None
    engine_kwargs = _engine_kwargs(parsed, patience)
    interval = heartbeat_interval or heartbeat.HEARTBEAT_INTERVAL
    where = parsed.render_as_string(hide_password=True)
    try:
        _refuse_foreign_database(parsed, engine_kwargs)
        return _open_rdb(
            url, parsed, engine_kwargs, interval, grace_period or heartbeat.GRACE_BEATS * interval, patience
        )
    except sqlalchemy.exc.OperationalError as e:
        reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e).splitlines()[0]
        raise UserError(f"cannot open storage {where} ({reason})") from None
    except sqlalchemy.exc.DatabaseError as e:
        raise UserError(f"{where} is not an Optuna database ({str(e.orig or e).splitlines()[0]})") from None
    except (RuntimeError, ValueError, ModuleNotFoundError, sqlalchemy.exc.SQLAlchemyError) as e:
        raise UserError(f"cannot use storage {where}: {str(e).splitlines()[0]}") from None


def load_existing_study(name: str, storage_url: str | None = None) -> optuna.Study:
    """The stored study ``name``; a missing storage or study is one line (nothing is created)."""
    require_stored(storage_url)  # a missing database or journal is reported, not created
    storage = open_storage(storage_url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage)) or "none"
        raise UserError(
            f"no study named {name!r} in {storage_url or default_storage_url()} (studies there: {names})"
        ) from None
