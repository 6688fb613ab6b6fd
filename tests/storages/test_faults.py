"""Faults of the infrastructure: the storage going away (PostgreSQL behind a proxy the test cuts or partitions,
a journal's file system remounted read-only), a full disk, and Ctrl-C or SIGTERM at the worst moments.

Workers are real ``python -m mnist_hpo worker`` processes on a tiny study (as in
test_workers.py). Each test prints one ``RELIABILITY`` line; RELIABILITY.md collects them
(``make reliability``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo.cli import main
from mnist_hpo.storages import open_storage

from ..conftest import DATA
from ..hpo.test_workers import tiny_study, worker

pytestmark = pytest.mark.processes  # worker processes, signals, mounts: make test-fast leaves them out

# Seconds after which a worker that has not ended counts as hung: a guard, not a measure. CI machines are
# shared: on 2 cores at a load of 12, a resumed worker that needs 20 s on a quiet machine took over 3 minutes.
HUNG = 900


def wait_mid_trial(name: str, url: str, procs, timeout: float = HUNG) -> None:
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
        if any(t.state == TrialState.COMPLETE for t in trials) and any(
            t.state == TrialState.RUNNING and t.intermediate_values for t in trials
        ):
            return
    raise AssertionError("the workers never got mid-trial")


def outcome(name: str, url: str) -> dict:
    trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()
    states = [t.state for t in trials]
    retried = [t for t in trials if "failed_trial" in t.system_attrs]
    return {
        "trials": trials,
        "complete": states.count(TrialState.COMPLETE),
        "fail": states.count(TrialState.FAIL),
        "running": states.count(TrialState.RUNNING),
        "retried": retried,
    }


def check_retries_same_draw(trials) -> None:
    """Each FAIL trial was retried to the end with its parameters and seed; nothing else ran twice."""
    by_number = {t.number: t for t in trials}
    for t in trials:
        if t.state == TrialState.FAIL:
            retries = [
                r
                for r in trials
                if r.system_attrs.get("failed_trial") == t.system_attrs.get("failed_trial", t.number)
                and r.number > t.number
            ]
            assert retries, f"trial {t.number} failed and was not retried"
            done = [r for r in retries if r.state == TrialState.COMPLETE]
            assert len(done) == 1, [(r.number, r.state) for r in retries]
            # A trial cut off before it drew all its parameters (or its seed) passes on those it drew.
            assert t.params.items() <= done[0].params.items()
            assert done[0].user_attrs["seed"] == t.user_attrs.get("seed", done[0].user_attrs["seed"])
    draws = [
        (tuple(sorted(t.params.items())), t.user_attrs["seed"])
        for t in by_number.values()
        if t.state == TrialState.COMPLETE
    ]
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
    url = proxy.route(pg_url)
    procs = [worker(study_file, url, "--storage-patience", "60", heartbeat=1, workers=2) for _ in range(2)]
    wait_mid_trial(name, pg_url, procs)
    proxy.cut()
    time.sleep(6)  # longer than the heartbeat's grace (3 beats of 1 s): the quiet period after it is tested too
    proxy.restore()
    outs = [p.communicate(timeout=HUNG)[0] for p in procs]
    codes = [p.returncode for p in procs]
    result = outcome(name, pg_url)
    assert tracebacks(outs) == 0 and codes == [0, 0], (codes, outs)
    assert sum("unreachable" in o for o in outs) >= 1 and all(o.count("unreachable") <= 1 for o in outs), outs
    assert all(o.count("unreachable") == o.count("reachable again") for o in outs), outs
    assert result["complete"] == 6 and result["running"] == 0
    check_retries_same_draw(result["trials"])
    print(
        f"\nRELIABILITY outage backend=postgres fault=proxy-cut-6s patience=60 workers=2 exit_codes={codes} "
        f"complete={result['complete']} fail_retried={result['fail']} running=0 tracebacks={tracebacks(outs)} "
        f"outage_lines={sum(o.count('unreachable') for o in outs)}"
    )


@pytest.mark.postgres
def test_postgres_partition_within_patience_is_ridden_out(pg_url, proxy, tmp_path):
    """2 workers through a proxy that stops forwarding for 16 s mid-trial, every connection left open (no TCP
    error ever comes): each call without an answer is cut at its deadline (12 s at patience 40) and retried;
    once the proxy forwards again they go on, say so in 2 lines each, and finish the study."""
    name = "partition-ridden"
    study_file = tiny_study(tmp_path, name, trials=6, epochs=3, subset=400)
    url = proxy.route(pg_url)
    procs = [worker(study_file, url, "--storage-patience", "40", heartbeat=1, workers=2) for _ in range(2)]
    wait_mid_trial(name, pg_url, procs)
    started = time.time()
    proxy.partition()
    time.sleep(16)  # past the calls' deadline (12 s); 24 s of the patience left to get going again
    proxy.heal()
    outs = [p.communicate(timeout=HUNG)[0] for p in procs]
    took = time.time() - started
    codes = [p.returncode for p in procs]
    result = outcome(name, pg_url)
    assert tracebacks(outs) == 0 and codes == [0, 0], (codes, outs)
    assert sum("no answer within" in o for o in outs) >= 1, outs  # the calls' deadline ended the wait, not TCP
    assert all(o.count("unreachable") == o.count("reachable again") <= 1 for o in outs), outs
    assert result["complete"] == 6 and result["running"] == 0
    check_retries_same_draw(result["trials"])
    print(
        f"\nRELIABILITY outage backend=postgres fault=proxy-partition-16s patience=40 workers=2 exit_codes={codes} "
        f"complete={result['complete']} fail_retried={result['fail']} running=0 tracebacks=0 "
        f"outage_lines={sum(o.count('unreachable') for o in outs)} done_after_partition_s={took:.0f}"
    )


# Past the patience, each fault: (study, patience, how the proxy breaks and mends, the longest a worker may take
# to exit): a cut closes every connection (TCP errors at once); a partition leaves them open and silent, so
# only the calls' own deadlines end the wait (the patience, a last connection attempt of 2 s, a loaded machine).
PAST_PATIENCE = {
    "cut": ("outage-past", 3, "cut", "restore", 60),
    "partition": ("partition-past", 8, "partition", "heal", 48),
}


@pytest.mark.postgres
@pytest.mark.parametrize("fault", list(PAST_PATIENCE))
def test_postgres_outage_past_patience_exits_75_then_resumes(fault, pg_url, proxy, tmp_path):
    """Broken for longer than the patience: no call waits for ever; both workers exit 75 with one line soon
    after the patience; once the proxy forwards again the next run retries the cut-off trials with their
    parameters and seeds and completes the study."""
    name, patience, breaks, mends, within = PAST_PATIENCE[fault]
    study_file = tiny_study(tmp_path, name, trials=5, epochs=3, subset=400)
    url = proxy.route(pg_url)
    procs = [worker(study_file, url, "--storage-patience", str(patience), heartbeat=1, workers=2) for _ in range(2)]
    wait_mid_trial(name, pg_url, procs)
    getattr(proxy, breaks)()
    started = time.time()
    outs = [p.communicate(timeout=within + 30)[0] for p in procs]
    took = time.time() - started
    codes = [p.returncode for p in procs]
    getattr(proxy, mends)()
    assert codes == [75, 75], outs
    assert tracebacks(outs) == 0, outs
    for o in outs:
        last = [line for line in o.splitlines() if line.startswith("mnist-hpo:")][-1]
        assert "retried with its parameters and seed" in last and "run the same command again" in last, o
    assert took < within, took
    before = outcome(name, pg_url)
    assert before["running"] >= 1  # the cut-off trials, left for the next run's stale check
    resumed = worker(study_file, url, heartbeat=1, workers=1)
    out = resumed.communicate(timeout=HUNG)[0]
    assert resumed.returncode == 0 and "Traceback" not in out, out
    after = outcome(name, pg_url)
    assert after["complete"] == 5 and after["running"] == 0 and after["fail"] == before["running"]
    check_retries_same_draw(after["trials"])
    print(
        f"\nRELIABILITY outage backend=postgres fault=proxy-{fault}-past-patience patience={patience} workers=2 "
        f"exit_codes={codes} stopped_after_s={took:.0f} tracebacks=0 cut_off={before['running']} "
        f"then: complete={after['complete']} fail_retried={after['fail']} same_params_and_seed=True running=0"
    )


# --- a journal on a file system that goes read-only --------------------------------------------


@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    """A tmpfs of ``size`` mounted at ``folder`` for the block (skips the test where mounting is not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root in its container)")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
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
        outs = [p.communicate(timeout=HUNG)[0] for p in procs]
        codes = [p.returncode for p in procs]
        result = outcome(name, url)
        lines = (mnt / "study.log").read_bytes().split(b"\n")
    assert codes == [0, 0], outs
    assert tracebacks(outs) == 0, outs
    assert sum(o.count("unreachable") for o in outs) >= 1, outs
    assert result["complete"] == 6 and result["running"] == 0
    assert lines[-1] == b""  # ends with a whole line
    check_retries_same_draw(result["trials"])
    print(
        f"\nRELIABILITY outage backend=journal fault=tmpfs-read-only-5s patience=60 workers=2 exit_codes={codes} "
        f"complete={result['complete']} fail_retried={result['fail']} running=0 tracebacks={tracebacks(outs)}"
    )


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
        out = resumed.communicate(timeout=HUNG)[0]
        after = outcome(name, url)
    assert codes == [75, 75], outs
    assert tracebacks(outs) == 0, outs
    assert all("retried with its parameters and seed" in o for o in outs), outs
    assert resumed.returncode == 0 and "Traceback" not in out, out
    assert after["complete"] == 4 and after["running"] == 0 and after["fail"] == before["running"] >= 1
    check_retries_same_draw(after["trials"])
    print(
        f"\nRELIABILITY outage backend=journal fault=tmpfs-read-only-past-patience patience=3 workers=2 "
        f"exit_codes={codes} tracebacks=0 cut_off={before['running']} then: complete={after['complete']} "
        f"fail_retried={after['fail']} same_params_and_seed=True running=0"
    )


# --- a stalled worker whose trial was taken over -----------------------------------------------


def test_stalled_worker_taken_over_says_one_line_and_no_traceback(tmp_path):
    """Worker A is stopped (SIGSTOP) mid-trial past its heartbeats; worker B fails A's trial and retries it;
    A, continued, sees its trial failed: the project's one line, no Optuna traceback, nothing duplicated."""
    import signal

    name = "stalled"
    url = f"sqlite:///{tmp_path / 'stalled.db'}"
    study_file = tiny_study(tmp_path, name, trials=4, epochs=4, subset=400)
    a = worker(study_file, url, heartbeat=1, workers=2)
    wait_mid_trial(name, url, [a])
    storage = open_storage(url)
    running = [
        t.number
        for t in optuna.load_study(study_name=name, storage=storage).get_trials()
        if t.state == TrialState.RUNNING
    ]
    a.send_signal(signal.SIGSTOP)
    try:
        b = worker(study_file, url, heartbeat=1, workers=2)
        deadline = time.time() + 120
        while time.time() < deadline:  # until B has failed A's trial
            states = {t.number: t.state for t in optuna.load_study(study_name=name, storage=storage).get_trials()}
            if all(states[n] == TrialState.FAIL for n in running):
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the stalled trial was never failed by the other worker")
    finally:
        a.send_signal(signal.SIGCONT)
    outs = [p.communicate(timeout=HUNG)[0] for p in (a, b)]
    codes = [a.returncode, b.returncode]
    result = outcome(name, url)
    assert tracebacks(outs) == 0 and codes == [0, 0], (codes, outs)
    assert "UpdateFinishedTrialError" not in outs[0]
    assert outs[0].count("missed its heartbeats and was failed by another worker") == len(running), outs[0]
    assert result["complete"] == 4 and result["running"] == 0
    check_retries_same_draw(result["trials"])
    print(
        f"\nRELIABILITY stalled backend=sqlite workers=2 stopped_s=heartbeat-grace+ taken_over={len(running)} "
        f"one_line={outs[0].count('missed its heartbeats')} tracebacks=0 complete={result['complete']} "
        f"fail_retried={result['fail']} duplicates=0"
    )


# --- Ctrl-C and SIGTERM at many points ---------------------------------------------------------


def _signal_points_run(tmp_path, backend: str, monkeypatch, capsys):
    """Run `mnist-hpo study` (3 trials x 2 epochs, then the retrain and export) again and again, each time
    sending SIGINT or SIGTERM to this process at another point: the k-th write to the storage (a commit on
    SQLite, an append on a journal; the signal lands while the write is in progress), during the retrain,
    during the export's writing. Each run must exit 130/143 within seconds, with one line and no traceback;
    the next run (no signal) must resume and complete the study and its export."""
    import signal

    import sqlalchemy

    from mnist_hpo.storages import _journal as journal
    from mnist_hpo.tasks.autoencoder import AutoencoderTask

    monkeypatch.setenv("MNIST_HPO_DATA", str(DATA))
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    fire = {"at": None, "n": 0, "sig": signal.SIGINT, "sent": None}

    def maybe_fire(*_):
        if threading.current_thread() is not threading.main_thread() or fire["at"] is None:
            return
        fire["n"] += 1
        if fire["n"] == fire["at"] and fire["sent"] is None:
            fire["sent"] = time.monotonic()
            os.kill(os.getpid(), fire["sig"])
            time.sleep(0.01)  # the handler runs at the next bytecode: here, inside the write

    if backend == "sqlite":
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", maybe_fire)
    else:
        real_append = journal.WholeLinesBackend.append_logs

        def append(self, logs):
            maybe_fire()
            return real_append(self, logs)

        monkeypatch.setattr(journal.WholeLinesBackend, "append_logs", append)
    real_fit = AutoencoderTask.fit

    def fit(self, *args, **kwargs):
        if kwargs.get("full") and fire["at"] == "retrain":
            fire["at"] = None
            fire["sent"] = time.monotonic()
            os.kill(os.getpid(), fire["sig"])
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderTask, "fit", fit)
    from mnist_hpo.artifacts import export as E

    real_meta_write = E._write_export

    def write_export(*args, **kwargs):
        if fire["at"] == "export":
            fire["at"] = None
            real_save = E.save_file

            def save(*a, **k):
                real_save(*a, **k)
                if fire["sent"] is None:  # once: the next run exports undisturbed
                    fire["sent"] = time.monotonic()
                    os.kill(os.getpid(), fire["sig"])  # the weights written, the folder not yet in place

            monkeypatch.setattr(E, "save_file", save)
        return real_meta_write(*args, **kwargs)

    monkeypatch.setattr(E, "_write_export", write_export)
    try:
        # How many writes a whole run makes, so that the points spread over all of it.
        file = tiny_study(tmp_path, "dry", trials=3, epochs=2, subset=40)
        file.write_text(file.read_text().replace("retrain = false", "retrain = true"))
        url = f"sqlite:///{tmp_path / 'sig.db'}" if backend == "sqlite" else f"journal:{tmp_path / 'sig.log'}"
        assert main(["study", str(file), "--storage", url, "--quiet"]) == 0  # (creates the storage's tables)
        file = tiny_study(tmp_path, "dry2", trials=3, epochs=2, subset=40)
        file.write_text(file.read_text().replace("retrain = false", "retrain = true"))
        fire.update(at=10**9, n=0)
        assert main(["study", str(file), "--storage", url, "--quiet"]) == 0
        writes = fire["n"]
        points = [max(1, round(writes * f)) for f in (0.03, 0.25, 0.5, 0.75, 0.93)]
        points += ["retrain", "export"]
        outcomes = []
        for i, point in enumerate(points):
            name = f"sig-{i}"
            study_file = tiny_study(tmp_path, name, trials=3, epochs=2, subset=40)
            study_file.write_text(study_file.read_text().replace("retrain = false", "retrain = true"))
            sig = signal.SIGINT if i % 2 == 0 else signal.SIGTERM
            fire.update(at=point, n=0, sig=sig, sent=None)
            capsys.readouterr()
            code = main(["study", str(study_file), "--storage", url, "--quiet"])
            ended = time.monotonic()
            fire["at"] = None
            out = capsys.readouterr()
            text = out.out + out.err
            try:
                stuck = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials(
                    states=(TrialState.RUNNING,)
                )
            except KeyError:  # interrupted before the study was created
                stuck = []
            export_root = tmp_path / "storage" / "exports" / name
            half_made = [p.name for p in export_root.glob("*")] if export_root.exists() else []
            half_made = [
                n
                for n in half_made
                if n not in ("LATEST", "study.json") and not (export_root / n / "export.json").exists()
            ]
            # the next run, without a signal: resumes, completes, exports
            again = main(["study", str(study_file), "--storage", url, "--quiet"])
            capsys.readouterr()
            result = outcome(name, url)
            latest = export_root / "LATEST"
            outcomes.append(
                {
                    "point": point,
                    "signal": sig.name,
                    "fired": fire["sent"] is not None,
                    "code": code,
                    "seconds": (ended - fire["sent"]) if fire["sent"] else None,
                    "tracebacks": text.count("Traceback"),
                    "lines": len([line for line in text.splitlines() if line.strip()]),
                    "running_left": len(stuck),
                    "half_made": half_made,
                    "resumed": again,
                    "complete": result["complete"],
                    "fail": result["fail"],
                    "exported": latest.exists() and (export_root / latest.read_text().strip() / "export.json").exists(),
                }
            )
            check_retries_same_draw(result["trials"])
    finally:
        if backend == "sqlite":
            sqlalchemy.event.remove(sqlalchemy.engine.Engine, "commit", maybe_fire)
    return outcomes


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_interrupt_at_any_point_exits_130_or_143_and_the_next_run_finishes(backend, tmp_path, monkeypatch, capsys):
    import signal

    from mnist_hpo.artifacts import export as E

    real_save = E.save_file
    try:
        outcomes = _signal_points_run(tmp_path, backend, monkeypatch, capsys)
    finally:
        E.save_file = real_save
    fired = [o for o in outcomes if o["fired"]]
    for o in fired:
        want = 130 if o["signal"] == signal.SIGINT.name else 143
        assert o["code"] == want, o
        assert o["seconds"] < 5, o
        assert o["tracebacks"] == 0 and o["running_left"] == 0 and o["half_made"] == [], o
        assert o["resumed"] == 0 and o["complete"] == 3 and o["exported"], o
    assert len(fired) == len(outcomes), [o for o in outcomes if not o["fired"]]
    with capsys.disabled():
        print(
            f"\nRELIABILITY interrupts backend={backend} runs={len(outcomes)} "
            f"points=writes@3..93%+retrain+export signals=SIGINT,SIGTERM alternating "
            f"exit_130={sum(o['code'] == 130 for o in fired)} exit_143={sum(o['code'] == 143 for o in fired)} "
            f"other_exit={sum(o['code'] not in (130, 143) for o in fired)} "
            f"max_seconds={max(o['seconds'] for o in fired):.2f} tracebacks={sum(o['tracebacks'] for o in fired)} "
            f"running_left={sum(o['running_left'] for o in fired)} half_made_exports=0 "
            f"resumed_ok={sum(o['resumed'] == 0 and o['complete'] == 3 for o in fired)} "
            f"exported={sum(o['exported'] for o in fired)} interrupted_trials_retried={sum(o['fail'] for o in fired)}"
        )


# --- a full disk ------------------------------------------------------------------------------


def fill(folder: Path, leave: int) -> Path:
    """Fill the file system of ``folder`` until ``leave`` bytes are free (about: tmpfs counts pages)."""
    import shutil

    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as f:
        f.truncate(0)
        block = b"\0" * (1 << 20)
        remaining = max(0, free - leave)
        while remaining:
            n = f.write(block[: min(len(block), remaining)])
            remaining -= n
        f.flush()
        os.fsync(f.fileno())
    return filler


def one_fault_line(text: str, *parts: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("mnist-hpo:")]
    assert "Traceback" not in text, text
    assert len(lines) == 1, text
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_HPO_DATA", str(DATA))
    with tmpfs(tmp_path / "small", "4m") as mnt:
        yield mnt


def test_full_disk_during_a_trials_figure(full_disk, tmp_path, monkeypatch, capsys):
    """Figures go to a full tmpfs (the storage folder), the journal elsewhere: exit 74, one line naming the
    file and the free space, the trial queued again; with room again, the study completes."""
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(full_disk / "storage"))
    url = f"journal:{tmp_path / 'fig.log'}"
    study_file = tiny_study(tmp_path, "fig", trials=3, epochs=1, subset=40)
    filler = fill(full_disk, 0)
    capsys.readouterr()
    code = main(["worker", str(study_file), "--storage", url, "--quiet"])
    out = capsys.readouterr()
    line = one_fault_line(out.out + out.err, "cannot write a figure attached to a trial to", "the disk is full", "free")
    before = outcome("fig", url)
    assert code == 74 and before["running"] == 0 and before["fail"] == 1
    assert not list((full_disk / "storage" / "artifacts").glob("*")), "a half-written figure was left"
    filler.unlink()
    assert main(["worker", str(study_file), "--storage", url, "--quiet"]) == 0
    after = outcome("fig", url)
    assert after["complete"] == 3 and after["running"] == 0
    check_retries_same_draw(after["trials"])
    with capsys.disabled():
        print(
            f"\nRELIABILITY full-disk what=trial-figure exit={code} lines=1 tracebacks=0 half_written=0 "
            f"then: complete={after['complete']} fail_retried={after['fail']} ({line[:60]}...)"
        )


def test_full_disk_during_the_export_leaves_no_half_made_export(full_disk, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(full_disk / "storage"))
    url = f"journal:{tmp_path / 'exp.log'}"
    study_file = tiny_study(tmp_path, "exp", trials=2, epochs=1, subset=40)
    assert main(["worker", str(study_file), "--storage", url, "--quiet", "--no-trial-figures"]) == 0
    journal_before = (tmp_path / "exp.log").read_bytes()
    filler = fill(full_disk, 64 << 10)  # room for a little, not for the weights
    capsys.readouterr()
    code = main(["export", "exp", "--storage", url, "--quiet"])
    out = capsys.readouterr()
    one_fault_line(out.out + out.err, "cannot write the export", "exports/exp/trial-", "free")
    root = full_disk / "storage" / "exports" / "exp"
    left = [p.name for p in root.iterdir()] if root.exists() else []
    assert code == 74 and left == [], left  # no trial-N folder, no temporary one
    assert (tmp_path / "exp.log").read_bytes() == journal_before  # the study unchanged
    filler.unlink()
    assert main(["export", "exp", "--storage", url, "--quiet"]) == 0
    folder = root / (root / "LATEST").read_text().strip()
    assert (folder / "export.json").exists() and (folder / "model.safetensors").exists()
    with capsys.disabled():
        print(
            f"\nRELIABILITY full-disk what=export exit={code} lines=1 tracebacks=0 folders_left=0 "
            f"journal_unchanged=True then: exported={folder.name}"
        )


def test_full_disk_during_a_gan_checkpoint_keeps_the_previous_one(tmp_path):
    import torch

    from mnist_hpo.models.gan import GAN

    model = GAN()
    opt_g, opt_d = torch.optim.Adam(model.generator.parameters()), torch.optim.Adam(model.discriminator.parameters())
    with tmpfs(tmp_path / "small", "40m") as mnt:  # a full-size checkpoint is ~13 MB
        _gan_checkpoint_on(mnt, model, opt_g, opt_d)


def _gan_checkpoint_on(full_disk: Path, model, opt_g, opt_d) -> None:
    import torch

    from mnist_hpo.errors import WriteFailed
    from mnist_hpo.models.gan import GAN
    from mnist_hpo.train import gan as T
    from mnist_hpo.workflows import checkpoints as C

    run = full_disk / "gan"
    C.save_checkpoint(
        run,
        epoch=1,
        model=model,
        opt_g=opt_g,
        opt_d=opt_d,
        rng=torch.Generator().manual_seed(1),
        history=T.GanHistory(),
        settings={"x": 1},
    )
    filler = fill(full_disk, 256 << 10)
    with pytest.raises(WriteFailed) as e:
        C.save_checkpoint(
            run,
            epoch=2,
            model=model,
            opt_g=opt_g,
            opt_d=opt_d,
            rng=torch.Generator().manual_seed(1),
            history=T.GanHistory(),
            settings={"x": 1},
        )
    assert "cannot write a GAN checkpoint to" in str(e.value) and "free" in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["LATEST", "epoch-0001"]
    epoch, _ = C.load_checkpoint(run, model=GAN(), opt_g=opt_g, opt_d=opt_d, rng=torch.Generator(), settings={"x": 1})
    assert epoch == 1
    filler.unlink()
    C.save_checkpoint(
        run,
        epoch=2,
        model=model,
        opt_g=opt_g,
        opt_d=opt_d,
        rng=torch.Generator().manual_seed(1),
        history=T.GanHistory(),
        settings={"x": 1},
    )
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "epoch-0002"
    print(
        "\nRELIABILITY full-disk what=gan-checkpoint exit=74 (WriteFailed) lines=1 kept=epoch-0001 "
        "half_written=0 then: saved=epoch-0002"
    )


def test_full_disk_during_a_journal_append_leaves_no_torn_line(full_disk, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    path = full_disk / "study.log"
    url = f"journal:{path}"
    study_file = tiny_study(tmp_path, "jfull", trials=4, epochs=2, subset=40)
    assert (
        main(["worker", str(study_file), "--storage", url, "--quiet", "--no-trial-figures", "--max-trials", "2"]) == 0
    )
    done_before = {t.number: (t.params, t.value) for t in outcome("jfull", url)["trials"]}
    filler = fill(full_disk, 0)  # appends fit in the journal's last page, then one does not
    # A process of its own: the trial it leaves RUNNING is stale only once its process is gone.
    proc = worker(study_file, url, "--no-trial-figures", workers=1)
    text = proc.communicate(timeout=120)[0]
    code = proc.returncode
    one_fault_line(text, f"cannot write the study's storage to {path}", "the disk is full")
    data = path.read_bytes()
    assert code == 74 and data.endswith(b"\n")  # whole lines only
    assert all(
        t.number not in done_before or (t.params, t.value) == done_before[t.number]
        for t in outcome("jfull", url)["trials"]
    )
    filler.unlink()
    assert main(["worker", str(study_file), "--storage", url, "--quiet", "--no-trial-figures"]) == 0
    after = outcome("jfull", url)
    assert after["complete"] == 4 and after["running"] == 0
    check_retries_same_draw(after["trials"])
    with capsys.disabled():
        print(
            f"\nRELIABILITY full-disk what=journal-append exit={code} lines=1 tracebacks=0 torn_lines=0 "
            f"finished_unchanged=True then: complete={after['complete']} fail_retried={after['fail']}"
        )
