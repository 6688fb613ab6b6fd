"""Riding out a storage outage: a database restart or failover, a journal's file system gone read-only.

Every call a worker makes to its storage (creating and asking for trials, ``trial.report``,
attributes, the final ``tell``, heartbeats) goes through :func:`patient`'s subclass of the
storage class. When a call fails because the storage cannot be reached, the worker keeps what it
has (the model in memory, the trial's state) and tries the call again with a growing pause, for
up to the patience (``--storage-patience``, default :data:`DEFAULT_PATIENCE` s, counted from the
start of the outage's first failed call). Each call is bounded too (:mod:`._timeouts`): one that gets
no answer fails within its deadline, which in an outage is cut to what is left of the patience,
and is retried like any other. Training waits meanwhile: a report is stored when the connection
returns, in order, so nothing is lost and nothing is stored out of order. One line says the
outage started, one that the storage is back.

Past the patience the worker stops with :class:`~mnist_hpo.errors.StorageUnavailable` (exit
75): its running trial stays RUNNING in the storage, its heartbeat stops, and the next worker
marks it FAIL and queues it again with its parameters and seed.

Calls made from another thread than the main one (heartbeats) are not retried: a missed beat is
skipped and the next one tries again, so a heartbeat never holds up the trial. A worker that
has just seen the storage come back does not judge other workers' trials stale for a grace
period (:func:`recently_back`): their heartbeats could not be stored during the outage either.

Each call is also :func:`~mnist_hpo.errors.shielded`: Ctrl-C or SIGTERM arriving during a write
takes effect once the write has ended, so an interrupt never leaves a write half done.

What this layer knows of a storage (its name in messages, its patience, its file, its call
deadlines) is a :class:`Link` of its own, found by :func:`link_of`; nothing is set on Optuna's
object. The only private Optuna names it needs are the RDB storage methods that Optuna's own
cache layer calls (:data:`~._optuna_compat.RDB_PRIVATE_CALLS`) and the logger it quiets.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import optuna

from ..errors import Fault, StorageUnavailable, causes, shielded, write_error, write_failed
from ._optuna_compat import RDB_LOGGER, RDB_PRIVATE_CALLS
from ._timeouts import Call, CallWatch

_Storage = TypeVar("_Storage", bound=optuna.storages.BaseStorage)

DEFAULT_PATIENCE = 120.0
FIRST_PAUSE, LONGEST_PAUSE = 0.5, 5.0

# The errors of a file system that is away for a while (a network mount, a remount read-only).
TRANSIENT_ERRNOS = {
    errno.EROFS,
    errno.EIO,
    errno.ESTALE,
    errno.ENOTCONN,
    errno.ETIMEDOUT,
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.EHOSTDOWN,
    errno.EHOSTUNREACH,
    errno.ENETDOWN,
    errno.ENETUNREACH,
}
# SQLite's operational errors include mistakes (no such table); only these mean "try again".
SQLITE_TRANSIENT = ("locked", "disk i/o error", "readonly", "unable to open")


def unreachable(e: BaseException) -> str | None:
    """Why the storage could not be reached, in a few words, if ``e`` (or its cause) means that; else None."""
    import sqlalchemy.exc  # with optuna's RDB storage, already imported

    for err in causes(e):
        if isinstance(err, OSError) and err.errno in TRANSIENT_ERRNOS:
            return err.strerror or str(err)
        if isinstance(err, sqlalchemy.exc.DBAPIError):
            orig = err.orig
            text = str(orig or err).strip().splitlines()[0] if str(orig or err).strip() else type(orig).__name__
            if err.connection_invalidated:
                return text
            if type(orig).__module__.startswith("psycopg") and isinstance(
                err, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
            ):
                return text  # psycopg's OperationalError: the connection, not the statement
            if type(orig).__module__.startswith("sqlite3") and any(m in text.lower() for m in SQLITE_TRANSIENT):
                return text
        if isinstance(err, sqlalchemy.exc.DisconnectionError):
            return str(err).splitlines()[0]
    return None


class _Outage:
    """This process's view of the storage: reachable, or unreachable since when (one line per change)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self.ended: float = float("-inf")
        self.count = 0  # outages seen by this process (tests read it)

    def began(self, where: str, reason: str, patience: float, *, since: float | None = None) -> float:
        """Note a failed call, made at ``since`` (monotonic; default now); the outage's start. Prints the first
        line of an outage."""
        with self._lock:
            if self.since is None:
                self.since = time.monotonic() if since is None else since
                self.count += 1
                print(
                    f"mnist-hpo: storage {where} unreachable ({reason}); keeping the running trial and retrying "
                    f"for up to {patience:.0f} s (--storage-patience)",
                    file=sys.stderr,
                    flush=True,
                )
            return self.since

    def over(self, where: str) -> None:
        with self._lock:
            if self.since is None:
                return
            took = time.monotonic() - self.since
            self.since, self.ended = None, time.monotonic()
        print(f"mnist-hpo: storage {where} reachable again after {took:.0f} s; going on", file=sys.stderr, flush=True)


OUTAGE = _Outage()


def recently_back(within: float) -> bool:
    """Whether the storage is unreachable now or came back less than ``within`` seconds ago."""
    return OUTAGE.since is not None or time.monotonic() - OUTAGE.ended < within


@contextlib.contextmanager
def impatient() -> Iterator[None]:
    """Inside, a call that cannot reach the storage fails at once instead of waiting (cleaning up after an
    interrupt, which must end the run within seconds; what it could not store, the next run's stale check does)."""
    before = getattr(_nesting, "impatient", False)
    _nesting.impatient = True
    try:
        yield
    finally:
        _nesting.impatient = before


def _is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


_nesting = threading.local()  # a storage method calling another is retried once, as a whole, by the outer one


@dataclass
class Link:
    """What the outage layer knows of one storage: kept here, so Optuna's object carries nothing of ours."""

    where: str  # the storage as messages name it
    patience: float
    path: Path | None = None  # its file (SQLite, journal): a full disk there is one line naming it
    journal: bool = False  # a journal's reads still work on a read-only file system: they do not show it is back
    watch: CallWatch | None = None  # PostgreSQL: the deadline of every call

    def bounded(self) -> contextlib.AbstractContextManager[Call | None]:
        """The deadline of one call (:mod:`._timeouts`), cut to what is left of the patience in an outage."""
        if self.watch is None:
            return contextlib.nullcontext()
        since = OUTAGE.since
        return self.watch.call(None if since is None else since + self.patience - time.monotonic())

    def back(self, name: str) -> bool:
        """Whether a call ``name`` that succeeded shows the storage is back: any call to a database; on a
        journal a write, or a read while its folder is writable again (a read-only file system still reads)."""
        if not self.journal or self.path is None or name.startswith(("set_", "create_", "delete_", "_set", "_create")):
            return True
        return os.access(os.path.dirname(os.path.abspath(self.path)), os.W_OK)


_LINKS: weakref.WeakKeyDictionary[object, Link] = (
    weakref.WeakKeyDictionary()
)  # storage -> its Link, gone with the storage


def link_of(storage: object) -> Link | None:
    """The :class:`Link` of a storage made by :func:`make_patient` (None for any other)."""
    return _LINKS.get(storage)


def _unreachable_reason(link: Link, e: Exception, watched: Call | None) -> str | None:
    """Why a failed call means the storage is unreachable, or None: the error is the caller's to see.

    A full disk or a folder without permission waits for nobody (one line naming the file, from the
    main thread); a read-only remount may pass.
    """
    code = write_error(e)
    if code is not None and code not in TRANSIENT_ERRNOS and link.path is not None:
        if _is_main_thread():
            raise write_failed(link.path, "the study's storage", code) from None
        return None
    return watched.reason if watched is not None and watched.cut else unreachable(e)


def _wait(link: Link, reason: str, since: float, pause: float) -> None:
    """Sleep ``pause`` before the next try, or stop the worker once the outage has lasted the patience."""
    left = since + link.patience - time.monotonic()
    if left <= 0:
        raise StorageUnavailable(
            f"storage {link.where} unreachable for {link.patience:.0f} s "
            f"(--storage-patience; last error: {reason}); this worker stops; the trial it was running "
            "will be retried with its parameters and seed; run the same command again once the "
            "storage is back"
        ) from None
    time.sleep(min(pause, left))


def _patient_method(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        link = _LINKS.get(self)
        if link is None or getattr(_nesting, "depth", 0) != 0:
            return method(self, *args, **kwargs)
        pause, retried = FIRST_PAUSE, False
        while True:
            started = time.monotonic()
            watched: Call | None = None
            try:
                _nesting.depth = 1
                try:
                    with shielded(), link.bounded() as watched:
                        result = method(self, *args, **kwargs)
                finally:
                    _nesting.depth = 0
            except (Fault, KeyboardInterrupt):
                raise
            except optuna.exceptions.UpdateFinishedTrialError:
                # A retried final tell whose first try was stored after all (the reply was lost): done.
                if retried and name == "set_trial_state_values" and self.get_trial(args[0]).state == args[1]:
                    return True
                raise
            except Exception as e:
                reason = _unreachable_reason(link, e, watched)
                if reason is None:
                    if name == "record_heartbeat" and not _is_main_thread():
                        return None  # a heartbeat thread has no one to tell; the main thread's next write says it
                    raise
                since = OUTAGE.began(link.where, reason, link.patience, since=started)
                if not _is_main_thread() or getattr(_nesting, "impatient", False):
                    if name == "record_heartbeat":
                        return None  # a missed beat; the next one tries again
                    raise
                _wait(link, reason, since, pause)
                pause, retried = min(pause * 2, LONGEST_PAUSE), True
                continue
            if OUTAGE.since is not None and link.back(name):
                OUTAGE.over(link.where)
            return result

    return call


# Methods that only read settings held in memory: nothing to retry.
_LOCAL = {
    "get_heartbeat_interval",
    "get_heartbeat_stale_trial_callback",
    "get_failed_trial_callback",
    "remove_session",
    "is_heartbeat_enabled",
}


@functools.cache
def patient(cls: type) -> type:
    """A subclass of the storage class ``cls`` whose storage calls ride out outages (see the module docstring).

    Its public methods are wrapped, and the private ones of :data:`~._optuna_compat.RDB_PRIVATE_CALLS` that it
    has (Optuna's cache layer calls them on an RDB storage; they reach the database too). Still an instance of
    ``cls`` (Optuna's checks for RDB and journal storage hold). Make it with :func:`make_patient`.
    """
    names = [
        n
        for n in dir(cls)
        if (not n.startswith("_") or n in RDB_PRIVATE_CALLS)
        and n not in _LOCAL
        and callable(getattr(cls, n))
        and not isinstance(getattr(cls, n), type)
    ]
    return type(f"Patient{cls.__name__}", (cls,), {n: _patient_method(n, getattr(cls, n)) for n in names})


class _QuietFallbackOnOutage(logging.Filter):
    """Optuna's RDB storage logs a lost connection while reading trials as a multi-line warning ("Caught an error
    from sqlalchemy ... Falling back to a slower alternative"), meant for SQLite's limit on query variables;
    during an outage it is noise beside our line (the fallback then fails too, and the call is retried)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (text.startswith("Caught an error from sqlalchemy") and "psycopg.OperationalError" in text)


def _quiet_optuna_fallback() -> None:
    logger = logging.getLogger(RDB_LOGGER)
    if not any(isinstance(f, _QuietFallbackOnOutage) for f in logger.filters):
        logger.addFilter(_QuietFallbackOnOutage())


def make_patient(
    cls: type[_Storage],
    *args: Any,
    where: str,
    patience: float | None,
    path: Path | None = None,
    journal: bool = False,
    **kwargs: Any,
) -> _Storage:
    """``cls(*args, **kwargs)`` as its :func:`patient` subclass, with its :class:`Link` (see there for ``where``,
    ``path`` and ``journal``); :func:`link_of` finds the link, e.g. to give it a :class:`~._timeouts.CallWatch`."""
    _quiet_optuna_fallback()
    storage: _Storage = patient(cls)(*args, **kwargs)
    _LINKS[storage] = Link(where, DEFAULT_PATIENCE if patience is None else float(patience), path, journal)
    return storage
