"""A real PostgreSQL restart during a 2-worker study, on a throwaway cluster of the test's own.

test_faults.py cuts the connection through a proxy; this restarts the server itself
(``pg_ctlcluster … restart``: the server says "the database system is shutting down", closes
every connection and refuses new ones for a moment). The cluster is made for the test with
Debian's ``pg_createcluster`` on a free port and dropped afterwards, so the machine's main
cluster on 5432, which other tests use, is never touched. Skips, with one line, where the tools
are missing or a cluster cannot be made (not root, no PostgreSQL server package).

Prints one ``RELIABILITY pg-restart …`` line (``make reliability``; RELIABILITY.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo.storages import open_storage

from ..hpo.test_workers import tiny_study, worker
from .test_faults import check_retries_same_draw, outcome, tracebacks

pytestmark = [pytest.mark.processes, pytest.mark.postgres, pytest.mark.pgrestart]

TRIALS, EPOCHS, SUBSET = 8, 2, 1000


def _run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster of its own (Debian's postgresql-common tools), trust auth on loopback."""

    def __init__(self, version: str, name: str, port: int) -> None:
        self.version, self.name, self.port = version, name, port

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, action: str) -> None:
        done = _run("pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, action)
        assert done.returncode == 0, f"pg_ctlcluster {action}: {done.stderr.strip()}"

    def drop(self) -> None:
        _run("pg_dropcluster", "--stop", self.version, self.name)


@pytest.fixture
def pg_cluster():
    """A throwaway cluster on a free port, started; always stopped and dropped afterwards."""
    tools = [t for t in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster") if shutil.which(t) is None]
    if tools:
        pytest.skip(f"needs Debian's postgresql-common tools ({', '.join(tools)} missing)")
    if os.geteuid() != 0:
        pytest.skip("making a PostgreSQL cluster with pg_createcluster needs root (CI runs the suite as root)")
    versions = (
        sorted(
            (p.name for p in Path("/etc/postgresql").glob("*") if p.name.replace(".", "").isdigit()),
            key=lambda v: float(v),
        )
        if Path("/etc/postgresql").is_dir()
        else []
    )
    if not versions:
        pytest.skip("no PostgreSQL server installed (/etc/postgresql is empty)")
    cluster = Cluster(versions[-1], f"mnisthpo_{uuid.uuid4().hex[:8]}", _free_port())
    try:
        made = _run("pg_createcluster", cluster.version, cluster.name, "-p", str(cluster.port), "--", "--auth=trust")
        if made.returncode != 0:
            pytest.skip(f"cannot make a PostgreSQL cluster here ({(made.stderr or made.stdout).strip()[:200]})")
        started = _run("pg_ctlcluster", "--skip-systemctl-redirect", cluster.version, cluster.name, "start")
        if started.returncode != 0:
            pytest.skip(f"cannot start a PostgreSQL cluster here ({started.stderr.strip()[:200]})")
        yield cluster
    finally:
        cluster.drop()  # also after a failed create: removes whatever part of it was made


def wait_trial_running(name: str, url: str, procs, timeout: float = 180):
    """Until a trial of ``name`` is RUNNING and has reported an epoch: the restart then lands mid-trial,
    with heartbeats and reports to come. Returns the study's trials at that moment."""
    storage = open_storage(url)
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs]
        try:
            trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        except KeyError:  # the study not made yet
            trials = []
        if any(t.state == TrialState.RUNNING and t.intermediate_values for t in trials):
            storage.engine.dispose()  # (the restart would close these connections anyway)
            return trials
        time.sleep(0.2)
    raise AssertionError("no trial of the workers ever got running")


def test_postgres_restart_during_a_two_worker_study(pg_cluster, tmp_path):
    """2 workers, heartbeat 1 s; the server restarted once a trial is mid-way: both exit 0, no traceback,
    every trial COMPLETE, no draw completed twice."""
    name = "pg-restart"
    url = pg_cluster.url
    study_file = tiny_study(tmp_path, name, trials=TRIALS, epochs=EPOCHS, subset=SUBSET)
    started = time.time()
    procs = [worker(study_file, url, "--storage-patience", "60", heartbeat=1, workers=2) for _ in range(2)]
    try:
        at_restart = wait_trial_running(name, url, procs)
        restart_at = time.time() - started
        t0 = time.time()
        pg_cluster.ctl("restart")
        restart_took = time.time() - t0
        outs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    codes = [p.returncode for p in procs]
    result = outcome(name, url)
    n_tracebacks = tracebacks(outs)
    completed = [t for t in result["trials"] if t.state == TrialState.COMPLETE]
    distinct_params = len({tuple(sorted(t.params.items())) for t in completed})
    assert codes == [0, 0], (codes, outs)
    assert n_tracebacks == 0, outs
    assert result["complete"] == TRIALS and result["running"] == 0, [(t.number, t.state) for t in result["trials"]]
    assert len(result["trials"]) == result["complete"] + result["fail"]  # nothing beyond the retries of FAILs
    check_retries_same_draw(result["trials"])  # each FAIL retried once with its draw; no draw completed twice
    assert all(o.count("unreachable") == o.count("reachable again") for o in outs), outs
    running_then = sum(t.state == TrialState.RUNNING for t in at_restart)
    done_then = sum(t.state == TrialState.COMPLETE for t in at_restart)
    print(
        f"\nRELIABILITY pg-restart backend=postgres fault=pg_ctlcluster-restart workers=2 trials={TRIALS}x{EPOCHS}ep "
        f"subset={SUBSET} heartbeat=1 restart_at_s={restart_at:.0f} restart_took_s={restart_took:.1f} "
        f"running_at_restart={running_then} complete_at_restart={done_then} exit_codes={codes} "
        f"tracebacks={n_tracebacks} complete={result['complete']}/{TRIALS} fail_retried={result['fail']} "
        f"running=0 distinct_params={distinct_params} duplicated_draws=0 "
        f"outage_lines={sum(o.count('unreachable') for o in outs)} took_s={time.time() - started:.0f}"
    )
