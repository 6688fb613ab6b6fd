"""The bounds on every storage call (mnist_hpo/storages/_timeouts.py): what they are for a patience, that the storages
carry them, and that a call nobody answers ends at its deadline instead of waiting for ever."""

from __future__ import annotations

import threading
import time

import optuna
import pytest

from mnist_hpo.errors import StorageUnavailable
from mnist_hpo.storages import _journal as journal
from mnist_hpo.storages import _outage as outage
from mnist_hpo.storages import _timeouts as T
from mnist_hpo.storages import open_storage


@pytest.fixture(autouse=True)
def own_outage(monkeypatch):
    """This process's view of the storage's reachability, the test's own (an outage here must not leak)."""
    monkeypatch.setattr(outage, "OUTAGE", outage._Outage())


def test_bounds_follow_the_patience():
    assert [T.call_timeout(p) for p in (3, 20, 60, 120, 600)] == [5, 5, 15, 30, 30]
    assert T.watch_deadline(60) == 17  # after the server's statement timeout, whose error says more
    args = T.postgres_connect_args(60)
    assert args["connect_timeout"] == 15 and args["tcp_user_timeout"] == 15000 and args["keepalives"] == 1
    # A peer gone silent while the connection is idle is noticed within the call's bound.
    assert args["keepalives_idle"] + args["keepalives_interval"] * args["keepalives_count"] <= 15
    assert "-c statement_timeout=15000" in args["options"]
    assert "-c idle_in_transaction_session_timeout=15000" in args["options"]
    # What the URL sets wins (a pooler that refuses startup options needs ?options=).
    given = T.postgres_connect_args(60, {"connect_timeout": "3", "options": ""})
    assert "connect_timeout" not in given and "options" not in given and given["tcp_user_timeout"] == 15000
    assert [T.sqlite_busy_timeout(p) for p in (3, 120, 600)] == [3, 60, 60]
    assert [T.journal_lock_grace(p) for p in (3, 40, 120)] == [10, 20, 30]


def test_sqlite_and_journal_storages_carry_their_bounds(tmp_path, monkeypatch):
    sqlite = open_storage(f"sqlite:///{tmp_path / 'bounds.db'}", patience=3)
    with sqlite.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 3000
    made = []
    real = journal.JournalFileOpenLock.__init__

    def lock(self, path, grace_period=30):
        made.append(grace_period)
        real(self, path, grace_period=grace_period)

    monkeypatch.setattr(journal.JournalFileOpenLock, "__init__", lock)
    optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'bounds.log'}", patience=40))  # appends
    assert made[-1] == 20


@pytest.mark.postgres
def test_postgres_connections_carry_their_bounds(pg_url):
    storage = open_storage(pg_url, patience=20)
    with storage.engine.connect() as c:
        assert c.exec_driver_sql("SHOW statement_timeout").scalar() == "5s"
        assert c.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar() == "5s"
        assert c.connection.dbapi_connection.info.get_parameters()["connect_timeout"] == "5"
    assert outage.link_of(storage).watch.seconds == 7


@pytest.mark.postgres
def test_a_call_nobody_answers_ends_past_the_patience_with_one_error(pg_url, proxy):
    """The proxy stops forwarding, connections left open: the call is cut at its deadline (7 s at patience 8),
    retried, and the worker gives up soon after the patience, instead of waiting for ever."""
    storage = open_storage(proxy.route(pg_url), patience=8)
    storage.get_all_studies()  # a pooled connection, as a worker has
    proxy.partition()
    rescue = threading.Timer(60, proxy.heal)  # without the deadline, the call would wait for this
    rescue.start()
    started = time.monotonic()
    try:
        with pytest.raises(StorageUnavailable) as e:
            storage.get_all_studies()
    finally:
        rescue.cancel()
    took = time.monotonic() - started
    assert 7 <= took < 8 + 2 + 5, took  # the patience, one connection attempt (2 s at least), slack
    assert "unreachable for 8 s (--storage-patience; last error: " in str(e.value)


@pytest.mark.postgres
def test_a_call_nobody_answers_is_retried_until_the_network_is_back(pg_url, proxy):
    """A partition shorter than the patience (9 s, patience 20): the call is cut at 7 s, retried, and returns
    once the proxy forwards again; the outage is one line, and over."""
    storage = open_storage(proxy.route(pg_url), patience=20)
    studies = len(storage.get_all_studies())
    proxy.partition()
    threading.Timer(9, proxy.heal).start()
    started = time.monotonic()
    assert len(storage.get_all_studies()) == studies
    took = time.monotonic() - started
    assert 7 <= took < 20, took
    assert outage.OUTAGE.count == 1 and outage.OUTAGE.since is None
