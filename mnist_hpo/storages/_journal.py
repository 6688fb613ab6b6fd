"""Journal storage: a study as one append-only text file, for git and for several processes without a server.

``--storage journal:PATH`` stores a study in Optuna's ``JournalStorage`` with its file
backend: one JSON line per change, appended under a lock file (``PATH.lock``), so several
processes on one machine, or on machines sharing a file system, can work on one study, and
git keeps the file well (it only grows at the end).

Optuna 5's journal storage has no heartbeat, so a worker killed mid-trial would leave its
trial RUNNING for ever. This module adds what the RDB storage's heartbeat gives:

* a worker writes an ``owner`` user attribute on each trial it runs (host, boot id, pid and
  the process's start time) and refreshes its ``beat`` every ``interval`` seconds;
* :func:`fail_stale_trials` marks FAIL every RUNNING trial whose owner is gone: on this
  machine (same boot) when its process no longer exists, elsewhere when its beat is older than
  ``grace`` seconds, and queues it again with the same parameters and user attributes (so the
  same seed), at most :data:`MAX_RETRY` times, as Optuna's ``RetryHeartbeatStaleTrialCallback``
  does for RDB storage.

A power loss can leave the file's last line half-written; :func:`open_journal` cuts such a
line off (it was never acknowledged to its writer) instead of failing on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from ..errors import UserError
from ._heartbeat import MAX_RETRY
from ._outage import DEFAULT_PATIENCE, make_patient
from ._timeouts import journal_lock_grace
from ._urls import JOURNAL_PREFIX as PREFIX  # one spelling of the prefix, also read by the command line's checks
from ._urls import storage_folder_ready

OWNER = "owner"  # the user attribute naming the process that runs a trial


def is_journal_url(url: str) -> bool:
    return url.startswith(PREFIX)


def journal_path(url: str) -> Path:
    path = url[len(PREFIX) :]
    if not path:
        raise UserError("storage 'journal:' needs a file path, e.g. --storage journal:results/journals/ae.log")
    return Path(path)


@contextmanager
def journal_lock(path: Path, grace: int | None = None) -> Iterator[None]:
    """Hold the lock that Optuna's file backend takes for every append (``PATH.lock``).

    A lock file nobody released for ``grace`` seconds (default: at the default patience) is taken
    for one left by a dead process and removed (:func:`._timeouts.journal_lock_grace`).
    """
    grace = journal_lock_grace(DEFAULT_PATIENCE) if grace is None else grace
    lock = JournalFileOpenLock(str(path), grace_period=grace)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _ends_mid_line(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def _repair_tail(path: Path) -> None:
    """Cut off a last line without its newline: a write cut short by a crash or power loss.

    Another process may be appending at this moment (a worker joining a running study), so a
    file seen ending mid-line is looked at again under the writers' lock: a live write has ended
    by then, and only what is still cut short is cut off.
    """
    if not _ends_mid_line(path):
        return
    with journal_lock(path):
        if not _ends_mid_line(path):
            return
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - (1 << 20)))
            tail = f.read()
            cut = tail.rfind(b"\n")
            keep = (size - len(tail) + cut + 1) if cut >= 0 else 0
            f.truncate(keep)
    print(f"mnist-hpo: {path}: removed a half-written last line ({size - keep} bytes) left by a crash", file=sys.stderr)


def _check_journal_file(path: Path) -> None:
    with open(path, "rb") as f:
        first = f.readline()
    if not first:
        return
    try:
        ok = isinstance(json.loads(first), dict) and "op_code" in json.loads(first)
    except ValueError:
        ok = False
    if not ok:
        raise UserError(
            f"{path} is not an Optuna journal file; point --storage journal:PATH at a journal or a new file"
        )


class WholeLinesBackend(JournalFileBackend):
    """Optuna's file backend, whose append is whole or nothing: a write that fails part-way (a full disk)
    is cut back to where the file ended, so the journal never holds a torn line for a live process to read."""

    def __init__(self, path: Path, lock_grace: int | None = None) -> None:
        super().__init__(str(path), lock_obj=JournalFileOpenLock(str(path)))
        self.path, self.lock_grace = path, lock_grace

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode("utf-8")
        with journal_lock(self.path, self.lock_grace):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                size = os.fstat(fd).st_size
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                except BaseException:
                    # cannot even cut it back (read-only now)? the next open removes the half line
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                    raise
            finally:
                os.close(fd)


def open_journal(url: str, *, patience: float | None = None) -> JournalStorage:
    """The journal storage at ``journal:PATH`` (the file created if missing, its folder only if it is the
    default storage folder); every problem is one clear line.

    Its calls ride out a file system that is away for up to ``patience`` seconds (see :mod:`._outage`).
    """
    path = journal_path(url)
    folder = path.parent
    storage_folder_ready(path)  # only the default storage folder is made; any other must exist
    if path.is_dir():
        raise UserError(f"{path} is a folder; --storage journal:PATH needs a file, e.g. {path}/study.log")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"storage {path} is not writable; fix its permissions or choose another journal path")
    if path.exists():
        _check_journal_file(path)
        _repair_tail(path)
    backend = WholeLinesBackend(path, journal_lock_grace(DEFAULT_PATIENCE if patience is None else patience))
    try:
        return make_patient(JournalStorage, backend, where=str(path), patience=patience, path=path, journal=True)
    except (ValueError, KeyError) as e:
        raise UserError(f"{path} is not a readable Optuna journal ({e}); point --storage at another file") from None


# --- who runs a trial, and whether it still does ------------------------------------------------


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The process's start time since boot (clock ticks), to tell a live process from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def this_process() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "boot": _boot_id(),
        "pid": pid,
        "start": _process_start(pid),
        "beat": time.time(),
    }


def _alive_here(owner: dict[str, Any]) -> bool:
    pid = int(owner.get("pid", -1))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    start = _process_start(pid)
    return not start or not owner.get("start") or start == owner["start"]


def is_stale(trial: FrozenTrial, *, grace: float, now: float | None = None) -> bool:
    """Whether a RUNNING trial's process is gone (see the module docstring)."""
    if trial.state != TrialState.RUNNING:
        return False
    now = time.time() if now is None else now
    owner = trial.user_attrs.get(OWNER)
    if not isinstance(owner, dict):
        # Not claimed yet (a trial is claimed milliseconds after it starts): stale once the grace is over.
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        return now - started > grace
    me = this_process()
    if owner.get("host") == me["host"] and owner.get("boot") == me["boot"] and me["boot"]:
        return not _alive_here(owner)
    return now - float(owner.get("beat", 0)) > grace


def _attempts(trial: FrozenTrial, interrupted: bool) -> tuple[list[int], list[int]]:
    """The numbers of the trial's attempts so far (its retry history and itself), and those of them interrupted."""
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    return history, [*trial.system_attrs.get("interrupted", []), *([trial.number] if interrupted else [])]


def retried(trial: FrozenTrial, *, max_retry: int = MAX_RETRY, interrupted: bool = False) -> bool:
    """Whether :func:`retry` queues ``trial`` (FAIL) again: after an interruption always, after a crash
    up to ``max_retry`` times."""
    history, interruptions = _attempts(trial, interrupted)
    return len(history) - len(interruptions) <= max_retry


def retry(
    study: optuna.Study, trial: FrozenTrial, *, max_retry: int = MAX_RETRY, interrupted: bool = False
) -> int | None:
    """Queue ``trial`` (FAIL) again with its parameters and user attributes; the retry's number, or None.

    Like Optuna's ``RetryHeartbeatStaleTrialCallback`` (``failed_trial``, ``retry_history``), with
    two differences. The new trial does not inherit the dead process's ``owner``, so nobody takes
    the queued retry for a stale trial of that process. And only crashes count toward
    ``max_retry``: an ``interrupted`` trial (Ctrl-C, SIGTERM: the user stopping the run, as a
    record resumed over many sessions is) is listed in the system attribute ``interrupted`` and
    queued again however often that happens, so no draw of the study is ever lost to it.
    """
    history, interruptions = _attempts(trial, interrupted)
    if not retried(trial, max_retry=max_retry, interrupted=interrupted):
        print(
            f"mnist-hpo: trial {trial.number} of study {study.study_name}: its process died "
            f"{len(history) - len(interruptions)} times "
            f"(trials {', '.join(str(n) for n in history if n not in interruptions)}); not retried again, "
            "its parameters stay in the study as FAIL trials",
            file=sys.stderr,
        )
        return None
    system_attrs = {
        **trial.system_attrs,
        "failed_trial": history[0],
        "retry_history": history,
        "interrupted": interruptions,
    }
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k != OWNER}
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=user_attrs,
            system_attrs=system_attrs,
        )
    )
    return len(study.get_trials(deepcopy=False)) - 1


def fail_stale_trials(study: optuna.Study, *, grace: float) -> list[int]:
    """Mark FAIL each RUNNING trial whose process is gone and queue its retry; the numbers failed."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_stale(trial, grace=grace):
            continue
        try:
            study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another worker failed it first
        now = datetime.now().isoformat(timespec="seconds")
        fresh = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
        if retry(study, fresh) is not None:
            print(
                f"mnist-hpo: trial {trial.number} of study {study.study_name} was left running by a process "
                f"that is gone; marked failed at {now} and queued again with the same parameters and seed",
                file=sys.stderr,
            )
        failed.append(trial.number)
    return failed


@contextmanager
def keep_alive(trials: optuna.Trial | list[optuna.Trial], *, interval: float) -> Iterator[None]:
    """Claim ``trials`` for this process and refresh their beat every ``interval`` s while the block runs.

    One thread beats for all of them (a stack of trials trained together has one too); a trial
    that finished meanwhile is skipped.
    """
    trials = trials if isinstance(trials, list) else [trials]
    owner = this_process()
    for trial in trials:
        trial.set_user_attr(OWNER, owner)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            for trial in trials:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        trial.set_user_attr(OWNER, {**owner, "beat": time.time()})
                except Exception:  # the trial finished under us, or the file is briefly busy: next beat
                    if stop.is_set():
                        return

    thread = threading.Thread(target=beat, name="journal-beat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
