"""The few places where this project needs more of Optuna than its public API offers.

Everything else goes through Optuna's public API. What is here reads or calls private
names, so a new Optuna release may break it. :data:`PRIVATE_NAMES` lists every one that the
package uses, in one place; ``tests/storages/test_optuna_compat.py`` checks each against the
installed Optuna (that it exists, with the parameters used here, and behaves as used here),
so such a change fails that test loudly, by name, instead of a study misbehaving at run time.

* A trial's storage id (``Trial._trial_id``, ``FrozenTrial._trial_id``): Optuna has no
  public accessor; heartbeats and system attributes are keyed by it.
* A sampler writing a trial's system attributes in ``before_trial`` (``Study._storage``):
  Optuna's own ``GridSampler`` does the same; a sampler is given the study, not its storage.
  The stale-trial check asks the same (``storage_of``) whether a study is on a journal.
* Heartbeats for trials run outside ``Study.optimize`` (``RDBStorage.record_heartbeat``,
  a method of Optuna's internal ``BaseHeartbeat`` mixin, documented as not for users).
* Choosing which queued trial to run (``Study.ask`` runs the first queued one, whatever it is):
  population-based training claims a queued segment only once the generation before it has
  finished (:func:`claim_trial`, :func:`new_trial`: what ``ask`` does, through the storage's
  public calls, and ``Study._thread_local``, the samplers' cache of the study's trials, reset
  as ``ask`` resets it), and gives it the parameters explore chose (:func:`set_params`).
* Which trials have a heartbeat (``beating_trial_ids``): Optuna's RDB storage keeps them in its
  table ``trial_heartbeats`` and has no public query; the stale check of :mod:`._rdb` needs
  them to find RUNNING trials that never beat.
* The logger ``optuna.study._optimize`` (a module path): ``Study.optimize`` logs an
  interrupted trial's failure there with the KeyboardInterrupt's traceback; an interrupt is
  the user's own doing, so it is kept to Optuna's one line (``quiet_interrupted_trials``).
* The storage calls that ride out an outage (:mod:`._outage`): Optuna's cache layer over an
  RDB storage (``_CachedStorage``) calls five private methods of ``RDBStorage``
  (:data:`RDB_PRIVATE_CALLS`), which reach the database like the public ones; :mod:`._rdb`
  overrides two of them. The RDB storage's logger (:data:`RDB_LOGGER`) is quieted in an outage.
* The RDB storage under Optuna's cache layer (``_CachedStorage._backend``, :func:`backend_of`),
  a stored study's id (``FrozenStudy._study_id``, :func:`study_id`), and the journal's op codes
  of attribute writes (:data:`JOURNAL_ATTR_OPS`, what compaction drops).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast

import optuna
from optuna.trial import FrozenTrial

if TYPE_CHECKING:  # Optuna exports no public name for the class of get_all_studies()'s items
    from optuna.study._frozen import FrozenStudy

__all__ = [
    "trial_id",
    "set_trial_system_attr",
    "storage_of",
    "StackHeartbeat",
    "optuna_table_names",
    "quiet_interrupted_trials",
    "claim_trial",
    "new_trial",
    "set_params",
    "beating_trial_ids",
    "backend_of",
    "study_id",
    "PRIVATE_NAMES",
    "RDB_PRIVATE_CALLS",
    "RDB_LOGGER",
    "OPTIMIZE_LOGGER",
    "JOURNAL_ATTR_OPS",
]

OPTIMIZE_LOGGER = "optuna.study._optimize"
RDB_LOGGER = "optuna.storages._rdb.storage"
# The private methods of RDBStorage that Optuna's cache layer (and fail_stale_trials) calls, with their
# parameters after self: the outage layer wraps them, as they reach the database.
RDB_PRIVATE_CALLS: dict[str, tuple[str, ...]] = {
    "_get_stale_trial_ids": ("study_id",),
    "_get_trials": ("study_id", "states", "included_trial_ids", "trial_id_greater_than"),
    "_create_new_trial": ("study_id", "template_trial"),
    "_get_best_trial_id": ("study_id", "direction"),
    "_set_trial_param": ("trial_id", "param_name", "param_value_internal", "distribution", "previous_distribution"),
}
# The journal file's op codes (JournalOperation) of SET_TRIAL_USER_ATTR and SET_TRIAL_SYSTEM_ATTR, and the
# key of the attributes each line sets.
JOURNAL_ATTR_OPS = {8: "user_attr", 9: "system_attr"}

# Every private name of Optuna the package uses, and where (a check for each in tests/storages/test_optuna_compat.py).
PRIVATE_NAMES: dict[str, str] = {
    "Trial._trial_id": "trial_id, claim_trial, set_params",
    "FrozenTrial._trial_id": "trial_id, set_trial_system_attr",
    "Trial._cached_frozen_trial": "set_params",
    "Study._storage": "storage_of, set_trial_system_attr, claim_trial, new_trial",
    "Study._study_id": "new_trial",
    "Study._thread_local": "claim_trial, new_trial",
    "FrozenStudy._study_id": "study_id",
    "_CachedStorage._backend": "backend_of",
    "optuna.study._optimize": "OPTIMIZE_LOGGER",
    "optuna.storages._rdb.storage": "RDB_LOGGER",
    "JournalOperation": "JOURNAL_ATTR_OPS",
    "trial_heartbeats": "beating_trial_ids (a table of the RDB storage)",
    # hpo.samplers reseeds the random streams of Optuna's model-based samplers per trial (a LazyRandomState's .rng).
    "TPESampler._rng": "hpo.samplers.TrialSeededTPESampler",
    "TPESampler._random_sampler": "hpo.samplers.TrialSeededTPESampler",
    "GPSampler._rng": "hpo.samplers.TrialSeededGPSampler",
    "GPSampler._independent_sampler": "hpo.samplers.TrialSeededGPSampler",
    "RandomSampler._rng": "hpo.samplers (the inner samplers' stream)",
    **{f"RDBStorage.{name}": "RDB_PRIVATE_CALLS" for name in RDB_PRIVATE_CALLS},
}


class _NoInterruptTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None and issubclass(record.exc_info[0], KeyboardInterrupt):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_interrupted_trials() -> None:
    """Log a trial that Ctrl-C or SIGTERM cut off as Optuna's one warning line, without a traceback (idempotent)."""
    logger = logging.getLogger(OPTIMIZE_LOGGER)
    if not any(isinstance(f, _NoInterruptTraceback) for f in logger.filters):
        logger.addFilter(_NoInterruptTraceback())


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of ``trial`` (unique across studies, unlike ``trial.number``)."""
    return trial._trial_id


def study_id(study: FrozenStudy) -> int:
    """The storage's id of a stored study (what its trials are read by)."""
    return study._study_id


def backend_of(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """The storage under Optuna's cache layer (which wraps an RDB storage a study is opened on); others as they are."""
    return getattr(storage, "_backend", storage)


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study was opened on (Optuna wraps an RDB storage in its cache layer; that is returned as is)."""
    return study._storage


def set_trial_system_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Store a system attribute on ``trial`` from a sampler's ``before_trial`` (as ``GridSampler`` does)."""
    study._storage.set_trial_system_attr(trial._trial_id, key, value)


def claim_trial(study: optuna.Study, trial: FrozenTrial) -> optuna.Trial | None:
    """Run the queued (WAITING) ``trial``: it is this process's if no other claimed it first (else None).

    The same atomic step as ``Study.ask``'s (WAITING to RUNNING, which only one process wins, on
    RDB storage and on a journal alike), for a trial of the caller's choosing.
    """
    try:
        if not study._storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.RUNNING):
            return None
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    study._thread_local.cached_all_trials = None
    return optuna.Trial(study, trial._trial_id)


def new_trial(study: optuna.Study) -> optuna.Trial:
    """A new RUNNING trial, as ``Study.ask`` makes one when nothing is queued, leaving queued trials alone."""
    study._thread_local.cached_all_trials = None
    return optuna.Trial(study, study._storage.create_new_trial(study._study_id))


def set_params(trial: optuna.Trial, params: dict[str, Any], distributions: dict[str, Any]) -> None:
    """Give a running trial these parameter values, each in its distribution (as a suggestion stores one)."""
    for name, value in params.items():
        dist = distributions[name]
        trial.storage.set_trial_param(trial._trial_id, name, dist.to_internal_repr(value), dist)
        trial._cached_frozen_trial.params[name] = value
        trial._cached_frozen_trial.distributions[name] = dist


class _Heartbeats(Protocol):
    """A storage with heartbeats (RDB, journal): what :class:`StackHeartbeat` calls."""

    def get_heartbeat_interval(self) -> int | None: ...

    def record_heartbeat(self, trial_id: int) -> None: ...


class StackHeartbeat:
    """One thread that beats for several running trials (a stack trained together).

    ``optimize`` starts one heartbeat thread per trial; a stack of trials shares one here.
    A trial leaves the set with :meth:`discard` once it is told its result. A storage without
    heartbeats (``heartbeat_interval`` unset) gets no thread at all.
    """

    def __init__(self, storage: optuna.storages.BaseStorage, trial_ids: Iterable[int]) -> None:
        self._storage = cast(_Heartbeats, storage)  # used only where it has them (hasattr below)
        self._ids = set(trial_ids)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        interval = self._storage.get_heartbeat_interval() if hasattr(storage, "record_heartbeat") else None
        self._interval = interval
        self._thread = (
            threading.Thread(target=self._beat, name="mnist-hpo-heartbeat", daemon=True) if interval else None
        )

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def _beat(self) -> None:
        while True:
            with self._lock:
                ids = sorted(self._ids)
            for tid in ids:
                self._storage.record_heartbeat(tid)
            if self._stop.wait(timeout=self._interval):
                return

    def __enter__(self) -> StackHeartbeat:
        if self._thread is not None:
            with self._lock:
                ids = sorted(self._ids)
            for tid in ids:  # the first beat before training starts, as optimize() does
                self._storage.record_heartbeat(tid)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()


def beating_trial_ids(storage: optuna.storages.RDBStorage, trial_ids: Iterable[int]) -> set[int]:
    """Those of ``trial_ids`` that have a heartbeat recorded in ``storage`` (Optuna's ``trial_heartbeats`` table)."""
    import sqlalchemy  # only RDB storages need it (see optuna_table_names)

    ids = list(trial_ids)
    if not ids:
        return set()
    beats = sqlalchemy.table("trial_heartbeats", sqlalchemy.column("trial_id"))
    with storage.engine.connect() as connection:
        return set(connection.scalars(sqlalchemy.select(beats.c.trial_id).where(beats.c.trial_id.in_(ids))))


@functools.lru_cache(maxsize=1)
def optuna_table_names() -> frozenset[str]:
    """The tables Optuna's RDB storage creates (public API: an in-memory storage, inspected)."""
    import sqlalchemy  # ~0.2 s: only RDB storages need it, and optuna imports it only for them

    storage = optuna.storages.RDBStorage("sqlite:///:memory:")
    try:
        return frozenset(sqlalchemy.inspect(storage.engine).get_table_names())
    finally:
        storage.engine.dispose()
