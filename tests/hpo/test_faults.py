"""Faults of the infrastructure: the storage going away (PostgreSQL behind a proxy the test cuts, a journal's
file system remounted read-only), a full disk, and Ctrl-C or SIGTERM at the worst moments.

Workers are real ``python -m mnist_hpo worker`` processes on a tiny study (as in
test_workers.py). Each test prints one ``RELIABILITY`` line; RELIABILITY.md collects them
(``make reliability``).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo.cli import main
from mnist_hpo.hpo.storage import open_storage

from .test_workers import tiny_study, worker

PG_TARGET = ("127.0.0.1", 5432)


class CuttableProxy:
    """A TCP proxy on loopback in front of PostgreSQL that the test can cut (every connection closed,
    new ones closed at once: what a client sees of a restart or failover) and restore."""

    def __init__(self, target=PG_TARGET) -> None:
        self.target, self.up = target, True
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in sel.select(timeout=1):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for s in self.conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
            self.conns.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.stopped = True
        self.cut()
        self.listener.close()


@pytest.fixture
def proxy():
    p = CuttableProxy()
    yield p
    p.close()


def via(url: str, port: int) -> str:
    return url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")


def wait_mid_trial(name: str, url: str, procs, timeout: float = 120) -> None:
    """Until a trial of ``name`` has completed and another has reported an epoch (or a worker ended)."""
    storage = open_storage(url)
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.2)
        assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs]
        try:
            trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        except KeyError:
            continue
        if any(t.state == TrialState.COMPLETE for t in trials) and \
                any(t.state == TrialState.RUNNING and t.intermediate_values for t in trials):
            return
    raise AssertionError("the workers never got mid-trial")


def outcome(name: str, url: str) -> dict:
    trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()
    states = [t.state for t in trials]
    retried = [t for t in trials if "failed_trial" in t.system_attrs]
    return {"trials": trials, "complete": states.count(TrialState.COMPLETE), "fail": states.count(TrialState.FAIL),
            "running": states.count(TrialState.RUNNING), "retried": retried}


def check_retries_same_draw(trials) -> None:
    """Each FAIL trial was retried to the end with its parameters and seed; nothing else ran twice."""
    by_number = {t.number: t for t in trials}
    for t in trials:
        if t.state == TrialState.FAIL:
            retries = [r for r in trials if r.system_attrs.get("failed_trial") == t.system_attrs.get("failed_trial",
                                                                                                      t.number)
                       and r.number > t.number]
            assert retries, f"trial {t.number} failed and was not retried"
            done = [r for r in retries if r.state == TrialState.COMPLETE]
            assert len(done) == 1, [(r.number, r.state) for r in retries]
            # A trial cut off before it drew its parameters (or its seed) has none to pass on.
            assert done[0].params == t.params or not t.params
            assert done[0].user_attrs["seed"] == t.user_attrs.get("seed", done[0].user_attrs["seed"])
    draws = [(tuple(sorted(t.params.items())), t.user_attrs["seed"]) for t in by_number.values()
             if t.state == TrialState.COMPLETE]
    assert len(draws) == len(set(draws)), "a draw was completed twice"


def tracebacks(outs) -> int:
    for i, o in enumerate(outs):
        print(f"--- worker {i} said:\n{o}")  # seen with -s, or on failure
    return sum(o.count("Traceback") for o in outs)


@pytest.mark.postgres
def test_postgres_outage_within_patience_is_ridden_out(pg_url, proxy, tmp_path):
    """2 workers through a proxy that is cut for 6 s mid-trial: they wait, say so in 2 lines each, and go on."""
    name = "outage-ridden"
    study_file = tiny_study(tmp_path, name, trials=6, epochs=3, subset=400)
    url = via(pg_url, proxy.port)
    procs = [worker(study_file, url, "--storage-patience", "60", heartbeat=1, workers=2) for _ in range(2)]
    wait_mid_trial(name, pg_url, procs)
    proxy.cut()
    time.sleep(6)  # longer than the heartbeat's grace (3 beats of 1 s): the quiet period after it is tested too
    proxy.restore()
    outs = [p.communicate(timeout=180)[0] for p in procs]
    codes = [p.returncode for p in procs]
    result = outcome(name, pg_url)
    assert tracebacks(outs) == 0 and codes == [0, 0], (codes, outs)
    assert sum("unreachable" in o for o in outs) >= 1 and all(o.count("unreachable") <= 1 for o in outs), outs
    assert all(o.count("unreachable") == o.count("reachable again") for o in outs), outs
    assert result["complete"] == 6 and result["running"] == 0
    check_retries_same_draw(result["trials"])
    print(f"\nRELIABILITY outage backend=postgres fault=proxy-cut-6s patience=60 workers=2 exit_codes={codes} "
          f"complete={result['complete']} fail_retried={result['fail']} running=0 tracebacks={tracebacks(outs)} "
          f"outage_lines={sum(o.count('unreachable') for o in outs)}")


@pytest.mark.postgres
def test_postgres_outage_past_patience_exits_75_then_resumes(pg_url, proxy, tmp_path):
    """Cut for longer than the patience (3 s): both workers exit 75 with one line; the next run retries the
    cut-off trials with their parameters and seeds and completes the study."""
    name = "outage-past"
    study_file = tiny_study(tmp_path, name, trials=5, epochs=3, subset=400)
    url = via(pg_url, proxy.port)
    procs = [worker(study_file, url, "--storage-patience", "3", heartbeat=1, workers=2) for _ in range(2)]
    wait_mid_trial(name, pg_url, procs)
    proxy.cut()
    started = time.time()
    outs = [p.communicate(timeout=60)[0] for p in procs]
    took = time.time() - started
    codes = [p.returncode for p in procs]
    proxy.restore()
    assert codes == [75, 75], outs
    assert tracebacks(outs) == 0, outs
    for o in outs:
        last = [line for line in o.splitlines() if line.startswith("mnist-hpo:")][-1]
        assert "retried with its parameters and seed" in last and "run the same command again" in last, o
    before = outcome(name, pg_url)
    assert before["running"] >= 1  # the cut-off trials, left for the next run's stale check
    resumed = worker(study_file, url, heartbeat=1, workers=1)
    out = resumed.communicate(timeout=180)[0]
    assert resumed.returncode == 0 and "Traceback" not in out, out
    after = outcome(name, pg_url)
    assert after["complete"] == 5 and after["running"] == 0 and after["fail"] == before["running"]
    check_retries_same_draw(after["trials"])
    print(f"\nRELIABILITY outage backend=postgres fault=proxy-cut-past-patience patience=3 workers=2 "
          f"exit_codes={codes} stopped_after_s={took:.0f} tracebacks=0 cut_off={before['running']} "
          f"then: complete={after['complete']} fail_retried={after['fail']} same_params_and_seed=True running=0")


# --- a journal on a file system that goes read-only --------------------------------------------

@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    """A tmpfs of ``size`` mounted at ``folder`` for the block (skips the test where mounting is not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root in its container)")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()})")
    try:
        yield folder
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(folder)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)


def remount(folder: Path, mode: str) -> None:
    for _ in range(100):  # EBUSY while a writer has the file open for a moment
        if subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], capture_output=True).returncode == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"could not remount {folder} {mode}")


@pytest.mark.processes
def test_journal_read_only_file_system_is_ridden_out(tmp_path):
    """2 workers on a journal whose tmpfs is remounted read-only for 5 s mid-trial, then read-write: they go on."""
    name = "journal-ro"
    with tmpfs(tmp_path / "mnt", "8m") as mnt:
        url = f"journal:{mnt / 'study.log'}"
        study_file = tiny_study(tmp_path, name, trials=6, epochs=3, subset=400)
        procs = [worker(study_file, url, "--storage-patience", "60", workers=2) for _ in range(2)]
        wait_mid_trial(name, url, procs)
        remount(mnt, "ro")
        time.sleep(5)
        remount(mnt, "rw")
        outs = [p.communicate(timeout=180)[0] for p in procs]
        codes = [p.returncode for p in procs]
        result = outcome(name, url)
        lines = (mnt / "study.log").read_bytes().split(b"\n")
    assert codes == [0, 0], outs
    assert tracebacks(outs) == 0, outs
    assert sum(o.count("unreachable") for o in outs) >= 1, outs
    assert result["complete"] == 6 and result["running"] == 0
    assert lines[-1] == b""  # ends with a whole line
    check_retries_same_draw(result["trials"])
    print(f"\nRELIABILITY outage backend=journal fault=tmpfs-read-only-5s patience=60 workers=2 exit_codes={codes} "
          f"complete={result['complete']} fail_retried={result['fail']} running=0 tracebacks={tracebacks(outs)}")


@pytest.mark.processes
def test_journal_read_only_past_patience_exits_75_then_resumes(tmp_path):
    name = "journal-ro-past"
    with tmpfs(tmp_path / "mnt", "8m") as mnt:
        url = f"journal:{mnt / 'study.log'}"
        study_file = tiny_study(tmp_path, name, trials=4, epochs=3, subset=400)
        procs = [worker(study_file, url, "--storage-patience", "3", workers=2) for _ in range(2)]
        wait_mid_trial(name, url, procs)
        remount(mnt, "ro")
        outs = [p.communicate(timeout=60)[0] for p in procs]
        codes = [p.returncode for p in procs]
        remount(mnt, "rw")
        before = outcome(name, url)
        resumed = worker(study_file, url, workers=1)
        out = resumed.communicate(timeout=180)[0]
        after = outcome(name, url)
    assert codes == [75, 75], outs
    assert tracebacks(outs) == 0, outs
    assert all("retried with its parameters and seed" in o for o in outs), outs
    assert resumed.returncode == 0 and "Traceback" not in out, out
    assert after["complete"] == 4 and after["running"] == 0 and after["fail"] == before["running"] >= 1
    check_retries_same_draw(after["trials"])
    print(f"\nRELIABILITY outage backend=journal fault=tmpfs-read-only-past-patience patience=3 workers=2 "
          f"exit_codes={codes} tracebacks=0 cut_off={before['running']} then: complete={after['complete']} "
          f"fail_retried={after['fail']} same_params_and_seed=True running=0")
