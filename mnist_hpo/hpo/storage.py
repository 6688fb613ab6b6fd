"""Where studies are stored: paths, the database URL, opening RDB or journal storage, loading a stored study.

This is the only module that knows where storage is. One SQLite database under
``storage/`` holds all the project's studies (one dashboard shows them all);
``MNIST_HPO_STORAGE`` or ``--storage`` points at another URL, e.g. PostgreSQL for
several machines. Storage is Optuna's RDB storage with heartbeats, so a worker
that dies mid-trial leaves a trial that the next worker marks failed and re-runs
with the same parameters.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState

from ..core.schema import StudyConfig
from ..data.integrity import write_atomically
from ..errors import UserError, require_extra, writing
from . import journal, outage, timeouts
from .optuna_compat import optuna_table_names
from .rdb import WorkerRDBStorage
from .urls import default_storage_url, require_stored, storage_dir  # noqa: F401  (importable from here as before)
from .urls import storage_folder_ready


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# A worker's heartbeat every HEARTBEAT_INTERVAL seconds; a trial that misses GRACE_BEATS of them
# counts as dead (its worker was killed or lost), is marked FAIL and re-run up to MAX_RETRY times.
# Tests set MNIST_HPO_HEARTBEAT=1 to see that happen within seconds.
HEARTBEAT_INTERVAL = int(os.environ.get("MNIST_HPO_HEARTBEAT", "20"))
GRACE_BEATS = 3
MAX_RETRY = 3
OPEN_ATTEMPTS = 5


def exports_dir() -> Path:
    return storage_dir() / "exports"


def storage_label(storage: optuna.storages.BaseStorage) -> str:
    """Where an open storage is, as an export records it: ``journal:PATH``, or the database URL without
    its password (``postgresql+psycopg://user:***@host/db``)."""
    if isinstance(storage, optuna.storages.JournalStorage):
        path = getattr(storage, "_mnist_path", None)
        return f"journal:{path}" if path is not None else "journal"
    storage = getattr(storage, "_backend", storage)  # Optuna wraps an RDB storage in a cache
    if isinstance(storage, optuna.storages.RDBStorage):
        return sqlalchemy.engine.make_url(storage.url).render_as_string(hide_password=True)
    return type(storage).__name__  # e.g. an InMemoryStorage made in Python


# --- artifacts (figures attached to trials; optuna-dashboard shows them) ----------------

def artifacts_dir() -> Path:
    return storage_dir() / "artifacts"


class WholeFileArtifactStore(optuna.artifacts.FileSystemArtifactStore):
    """Optuna's file artifact store, whose files are written whole or not at all (:func:`write_atomically`):
    a full disk leaves no half figure, and is one line naming the file."""

    def __init__(self, base_path: Path) -> None:
        super().__init__(base_path)
        self.base = Path(base_path)

    def write(self, artifact_id: str, content_body) -> None:
        path = self.base / artifact_id
        if path.resolve().parent != self.base.resolve():
            raise ValueError(f"Invalid artifact_id: {artifact_id}")  # as Optuna's store refuses it
        write_atomically(path, lambda f: shutil.copyfileobj(content_body, f), what="a figure attached to a trial")


def checkpoints_dir() -> Path:
    """Population-based training's checkpoints: an artifact store of their own beside the figures',
    as they are large (13 MB a segment for the MLP GAN) and a record keeps its figures but not them."""
    return storage_dir() / "checkpoints"


def artifact_store(folder: Path | None = None) -> optuna.artifacts.FileSystemArtifactStore:
    """Files attached to trials live on this machine's disk, next to the database (``folder``:
    another store than the figures', e.g. :func:`checkpoints_dir`)."""
    folder = artifacts_dir() if folder is None else folder
    with writing(folder, "the folder of files attached to trials"):
        folder.mkdir(parents=True, exist_ok=True)
    return WholeFileArtifactStore(folder)


def attach_files(target, files: list[Path], *, rename: Callable[[Path], str] | None = None,
                 folder: Path | None = None) -> list[str]:
    """Attach ``files`` to a running trial or a study (shown under that name, ``rename(f)`` if given); their ids.

    A study's file of the same name is replaced in place (a re-export's figures): Optuna's artifact
    metadata is an attribute that can be set but not removed, so a new upload would list it twice.
    """
    store = artifact_store(folder)
    existing = ({a.filename: a.artifact_id for a in optuna.artifacts.get_all_artifact_meta(target)}
                if isinstance(target, optuna.Study) else {})
    ids = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in map(Path, files):
            if rename is not None:
                f = Path(shutil.copy(f, Path(tmp) / rename(f)))
            if f.name in existing:
                with open(f, "rb") as body:
                    store.write(existing[f.name], body)
                ids.append(existing[f.name])
            else:
                ids.append(optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(f),
                                                            study_or_trial=target))
    return ids



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


def _refuse_foreign_database(url: sqlalchemy.engine.URL, engine_kwargs: dict) -> None:
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
    def _begin(conn):  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class RetryStaleTrials(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a trial whose heartbeat stopped, with the retry rules of :func:`journal.retry`.

    The same attributes (``failed_trial``, ``retry_history``) and the same ``max_retry``, but a
    trial queued again after Ctrl-C or SIGTERM does not use up one of its retries.
    """

    def __init__(self, max_retry: int) -> None:
        super().__init__(max_retry=max_retry)
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        journal.retry(study, trial, max_retry=self.max_retry)


def _rdb_storage(url: str, engine_kwargs: dict, interval: int, grace: int, *, where: str,
                 patience: float) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():
        # Heartbeats and their retry callback are "experimental" since Optuna 2.8; they are what we want.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return outage.make_patient(
            WorkerRDBStorage,
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=RetryStaleTrials(max_retry=MAX_RETRY),
            where=where, patience=patience,
        )


def open_storage(
    url: str | None = None, *, heartbeat_interval: int | None = None, grace_period: int | None = None,
    patience: float | None = None,
) -> optuna.storages.RDBStorage:
    """Optuna RDB storage with heartbeats and retry of stale trials, or a journal file (``journal:PATH``).

    Every failure to open is one clear line. Once open, its calls ride out an outage of up to
    ``patience`` seconds (default :data:`outage.DEFAULT_PATIENCE`; see :mod:`.outage`).
    """
    url = url or default_storage_url()
    if journal.is_journal_url(url):
        return journal.open_journal(url, patience=patience)
    patience = outage.DEFAULT_PATIENCE if patience is None else float(patience)
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise UserError(
            f"storage URL {url!r} is malformed; use sqlite:///path/to.db or postgresql+psycopg://user@host/db"
        ) from None
    engine_kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_path(parsed)
        # Several workers share one file: wait for the lock (up to a minute) instead of failing at once,
        # and let SQLAlchemy, not the sqlite3 module, open transactions (see _serialize_sqlite_writes).
        engine_kwargs["connect_args"] = {"timeout": timeouts.sqlite_busy_timeout(patience), "isolation_level": None}
    elif parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() == "psycopg":
            require_extra("psycopg", "postgres", "PostgreSQL storage")
        # A pooled connection that a server restart closed is tested and replaced before use, not an error;
        # every wait (connecting, a statement, a silent network) is bounded by the patience (see timeouts).
        engine_kwargs["pool_pre_ping"] = True
        engine_kwargs["connect_args"] = timeouts.postgres_connect_args(patience, parsed.query)
    else:
        raise UserError(f"storage backend {parsed.get_backend_name()!r} is not supported; use sqlite or postgresql")
    interval = heartbeat_interval or HEARTBEAT_INTERVAL
    try:
        _refuse_foreign_database(parsed, engine_kwargs)
        for attempt in range(OPEN_ATTEMPTS):
            try:
                storage = _rdb_storage(url, engine_kwargs, interval, grace_period or GRACE_BEATS * interval,
                                       where=parsed.render_as_string(hide_password=True), patience=patience)
                if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
                    storage._mnist_path = Path(parsed.database)  # a full disk there: one line naming it
                if parsed.get_backend_name() == "sqlite":
                    _serialize_sqlite_writes(storage.engine)
                else:
                    storage._mnist_watch = timeouts.CallWatch(storage.engine, timeouts.watch_deadline(patience))
                return storage
            except sqlalchemy.exc.SQLAlchemyError as e:
                # Workers starting together on a new database race to create Optuna's tables
                # ("table ... already exists", "duplicate key"), or find it locked: the loser tries again.
                text = str(e).lower()
                if attempt + 1 == OPEN_ATTEMPTS or not any(m in text for m in ("already exists", "duplicate", "unique", "locked")):
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError  # unreachable
    except sqlalchemy.exc.OperationalError as e:
        reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e).splitlines()[0]
        raise UserError(f"cannot open storage {parsed.render_as_string(hide_password=True)} ({reason})") from None
    except sqlalchemy.exc.DatabaseError as e:
        raise UserError(
            f"{parsed.render_as_string(hide_password=True)} is not an Optuna database ({str(e.orig or e).splitlines()[0]})"
        ) from None
    except (RuntimeError, ValueError, ModuleNotFoundError, sqlalchemy.exc.SQLAlchemyError) as e:
        raise UserError(f"cannot use storage {parsed.render_as_string(hide_password=True)}: {str(e).splitlines()[0]}") from None



def study_config(study: optuna.Study) -> StudyConfig:
    """The config a study was created with (stored as its ``config`` user attribute)."""
    try:
        return StudyConfig.from_dict(study.user_attrs["config"])
    except (KeyError, TypeError) as e:
        raise UserError(f"study {study.study_name!r} was not created by mnist-hpo (no usable config: {e})") from None


def load_existing_study(name: str, storage_url: str | None = None) -> optuna.Study:
    require_stored(storage_url)  # a missing database or journal is reported, not created
    storage = open_storage(storage_url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage)) or "none"
        raise UserError(f"no study named {name!r} in {storage_url or default_storage_url()} (studies there: {names})") from None


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)


def is_multi_objective(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """The complete trials no other complete trial beats in every objective (finite values only), by number."""
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.values is not None and all(math.isfinite(v) for v in t.values)]
    signs = [-1 if d == optuna.study.StudyDirection.MAXIMIZE else 1 for d in study.directions]
    keys = [[s * v for s, v in zip(signs, t.values)] for t in trials]

    def dominated(a: list[float]) -> bool:
        return any(all(x <= y for x, y in zip(b, a)) and b != a for b in keys)

    return [t for t, k in zip(trials, keys) if not dominated(k)]


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The best complete trial with a finite value; a clear error when there is none.

    Of a population-based study: the best of the segments that end a member's training.

    A study with several objectives has no single best trial: the error names its Pareto front.
    """
    if is_multi_objective(study):
        front = pareto_front(study)
        if not front:
            raise UserError(f"study {study.study_name!r} has no complete trial yet; run the study first")
        raise UserError(f"study {study.study_name!r} has several objectives, so no single best trial; choose one "
                        f"of its Pareto front with --trial N (trials {', '.join(str(t.number) for t in front)})")
    # Population-based training: a member is judged where its training ends (its last segment; hpo.pbt).
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.value is not None and math.isfinite(t.value) and t.user_attrs.get("pbt", {}).get("final", True)]
    if not trials:
        raise UserError(f"study {study.study_name!r} has no complete trial yet; run the study first")
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=lambda t: t.value, reverse=reverse)[0]


def chosen_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial ``number`` of the study, which must have completed; one clear error line otherwise."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        last = f"0 to {max(trials)}" if trials else "none yet"
        raise UserError(f"study {study.study_name!r} has no trial {number} (its trials: {last}); "
                        f"see 'mnist-hpo show {study.study_name}'")
    trial = trials[number]
    if trial.state != TrialState.COMPLETE:
        raise UserError(f"trial {number} of study {study.study_name!r} is {trial.state.name}, not COMPLETE; "
                        "only a complete trial can be exported; see 'mnist-hpo show " + study.study_name + "'")
    return trial
