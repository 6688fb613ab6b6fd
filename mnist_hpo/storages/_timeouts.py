"""How long one storage call may wait: the bounds on every call, derived from ``--storage-patience``.

A worker rides out an outage for up to its patience (:mod:`._outage`), but only if each call it
makes ends: a call that waits for ever never reaches the retry. So every wait has a bound, a
quarter of the patience within 5 to 30 s (:func:`call_timeout`, 30 s at the default 120 s):

* PostgreSQL (psycopg 3, :func:`postgres_connect_args`): ``connect_timeout``; TCP keepalives
  and ``tcp_user_timeout``, so a dead network ends a connection instead of leaving it half-open;
  on the server, ``statement_timeout`` (a statement stuck behind a lock) and
  ``idle_in_transaction_session_timeout`` (a client gone mid-transaction releases its row locks).
* A peer that TCP still sees alive but that never answers (a stalled proxy or load balancer, a
  server process that is stopped): :class:`CallWatch` cuts a call past its deadline by shutting
  down the sockets of the statements in flight, so the call fails and is retried like any lost
  connection; a connection made during a call gets only what is left of its deadline.
* SQLite: the busy timeout (:func:`sqlite_busy_timeout`); a journal: the age at which its lock
  file counts as left by a dead process (:func:`journal_lock_grace`).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy.engine

CALL_TIMEOUT_MIN, CALL_TIMEOUT_MAX = 5.0, 30.0
SQLITE_BUSY_TIMEOUT = 60.0  # seconds a worker waits for another's write to SQLite, at most
JOURNAL_LOCK_GRACE_MIN, JOURNAL_LOCK_GRACE_MAX = 10, 30  # Optuna's default grace is 30 s
WATCH_TICK = 0.25  # how often the watchdog looks at the calls under way


def call_timeout(patience: float) -> float:
    """Seconds one storage call may wait for an answer: a quarter of the patience, within 5 to 30 s.

    Not less than 5 s: a statement that takes that long on a healthy server is not taken for an outage.
    """
    return min(CALL_TIMEOUT_MAX, max(CALL_TIMEOUT_MIN, patience / 4))


def watch_deadline(patience: float) -> float:
    """When :class:`CallWatch` cuts a call: 2 s after the server's own timeouts, whose errors say more."""
    return call_timeout(patience) + 2


def postgres_connect_args(patience: float, given: Mapping[str, object] | None = None) -> dict[str, int | str]:
    """psycopg 3 connection arguments that bound every wait (see the module docstring).

    ``given`` are the URL's query arguments: a setting the URL makes wins, ``options`` included
    (a connection pooler that refuses startup options, such as PgBouncer, needs ``?options=``).
    """
    t = call_timeout(patience)
    ms = int(t * 1000)
    args: dict[str, int | str] = {
        "connect_timeout": math.ceil(t),
        "keepalives": 1,
        "keepalives_idle": max(1, int(t // 3)),
        "keepalives_interval": max(1, int(t // 6)),
        "keepalives_count": 3,
        "tcp_user_timeout": ms,
        "options": f"-c statement_timeout={ms} -c idle_in_transaction_session_timeout={ms}",
    }
    return {k: v for k, v in args.items() if k not in (given or {})}


def sqlite_busy_timeout(patience: float) -> float:
    """Seconds a SQLite call waits for another worker's write: up to 60 s, and not past the patience."""
    return min(SQLITE_BUSY_TIMEOUT, max(1.0, patience))


def journal_lock_grace(patience: float) -> int:
    """Seconds after which a journal's lock file that nobody released is removed (its holder died).

    Half the patience, within 10 to 30 s: a live writer holds the lock for one append, but that
    append may wait for a slow disk, and taking the lock from a live writer could tear the journal.
    """
    return int(min(JOURNAL_LOCK_GRACE_MAX, max(JOURNAL_LOCK_GRACE_MIN, patience / 2)))


class Call:
    """One storage call under way: its deadline, and whether the watchdog cut it."""

    def __init__(self, watch: CallWatch, seconds: float) -> None:
        self.watch, self.seconds, self.cut = watch, seconds, False
        self.deadline = time.monotonic() + seconds

    @property
    def reason(self) -> str:
        if self.seconds < self.watch.seconds:  # cut short: the patience was running out
            return "no answer before the patience ran out"
        return f"no answer within {self.seconds:.0f} s"


class _Watchdog:
    """One thread per process that cuts the calls past their deadline (idle while no call is under way)."""

    def __init__(self) -> None:
        self._calls: set[Call] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, call: Call) -> None:
        with self._cond:
            if not self._calls:
                self._cond.notify()
            self._calls.add(call)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mnist-hpo-call-watch", daemon=True)
                self._thread.start()

    def discard(self, call: Call) -> None:
        with self._cond:
            self._calls.discard(call)

    def _run(self) -> None:
        with self._cond:
            while True:
                self._cond.wait(WATCH_TICK if self._calls else None)
                now = time.monotonic()
                for call in [c for c in self._calls if not c.cut and c.deadline <= now]:
                    call.cut = True
                    call.watch.cut_in_flight()


_WATCHDOG = _Watchdog()


class CallWatch:
    """Bounds the calls made on one SQLAlchemy engine to PostgreSQL (psycopg 3) by a deadline each.

    Past its deadline a call's statements in flight have their sockets shut down (every such
    statement of the engine: one unanswered call means the way to the server is gone), so psycopg
    reports a lost connection at once. Shutting a socket down, unlike closing it, leaves the file
    descriptor to its owner. A connection opened during a call may wait only what is left of it.
    """

    def __init__(self, engine: sqlalchemy.engine.Engine, seconds: float) -> None:
        import sqlalchemy  # with an RDB storage, already imported

        self.seconds = seconds
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()  # psycopg's connections
        self._current = threading.local()
        sqlalchemy.event.listen(engine, "connect", self._connected)
        sqlalchemy.event.listen(engine, "do_connect", self._connecting)
        engine.dispose()  # the connections made before (opening the storage) go: every one from now on is watched

    @contextlib.contextmanager
    def call(self, budget: float | None = None) -> Iterator[Call]:
        """Watch the calls of this thread inside; ``budget``: seconds left to the caller, if less."""
        call = Call(self, self.seconds if budget is None else max(0.0, min(self.seconds, budget)))
        outer, self._current.call = getattr(self._current, "call", None), call
        _WATCHDOG.add(call)
        try:
            yield call
        finally:
            _WATCHDOG.discard(call)
            self._current.call = outer

    def _connected(self, dbapi_connection: Any, connection_record: Any) -> None:
        self._connections.add(dbapi_connection)

    def _connecting(
        self, dialect: sqlalchemy.engine.Dialect, connection_record: Any, cargs: Any, cparams: dict[str, Any]
    ) -> None:
        call = getattr(self._current, "call", None)
        if call is None:
            return
        left = call.deadline - time.monotonic()
        if left <= 0 or call.cut:
            raise dialect.loaded_dbapi.OperationalError(call.reason)
        cparams["connect_timeout"] = max(2, min(int(cparams.get("connect_timeout", left)), math.ceil(left)))

    def cut_in_flight(self) -> None:
        """Shut down the socket of every connection of the engine with a statement in flight."""
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                if conn.closed or conn.info.transaction_status.name != "ACTIVE":
                    continue
                with socket.socket(fileno=os.dup(conn.fileno())) as sock:  # a copy: the original stays psycopg's
                    sock.shutdown(socket.SHUT_RDWR)
