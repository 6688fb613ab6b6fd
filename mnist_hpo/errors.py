"""The exceptions a user sees as one line (a mistake, or a fault of the systems around the run), and signals.

:class:`UserError` is a mistake the user can fix (exit 2). :class:`Fault` is a fault of the
infrastructure (the storage unreachable past its patience, a full disk) that ends a run with
its own exit status. SIGINT and SIGTERM are interrupts (exit 130 and 143), which
:func:`shielded` holds back while a write to the storage is in progress, so that an interrupt
never leaves a write half done.
"""

import contextlib
import difflib
import errno
import importlib.util
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType


class UserError(Exception):
    """A mistake in input, configuration or environment that the user can fix.

    The message says what is wrong and what to do, in one line; the CLI prints it
    without a traceback and exits non-zero. In Python, catch it to handle any such mistake:

        >>> from mnist_hpo import UserError, load_study_config
        >>> try:
        ...     load_study_config("studies/ea.toml")
        ... except UserError as e:
        ...     print(e)
        study file studies/ea.toml not found; check the path (the studies that ship with mnist-hpo are named without one: ...)
    """


def did_you_mean(word: str, choices: Iterable[str], shown: str = "{}") -> str:
    """``"did you mean X? "`` for the one of ``choices`` closest to a mistyped ``word`` (difflib's ratio of at
    least 0.6), written as ``shown.format(X)``; ``""`` when none is close. A message puts it before its list:
    ``--trails`` gives ``"…; did you mean --trials? 'mnist-hpo study --help' lists its options"``.
    """
    near = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {shown.format(near[0])}? " if near else ""


def require_extra(module: str, extra: str, what: str) -> None:
    """Stop with one line when ``what`` needs an optional extra (``pip install 'mnist-hpo[extra]'``) that is missing."""
    if importlib.util.find_spec(module) is None:
        raise UserError(
            f"{what} needs the optional '{extra}' extra ({module} is not installed); "
            f"install it with: pip install 'mnist-hpo[{extra}]' (make setup installs it)"
        )


# --- faults of the infrastructure -------------------------------------------------------------

EX_IOERR = 74  # sysexits.h: an error while writing a file (a full disk, a read-only folder)
EX_TEMPFAIL = 75  # sysexits.h: a temporary failure; the same command, run again later, goes on


class Fault(BaseException):
    """A fault of the systems around the run; its message is the one line printed, ``exit_code`` the status.

    A BaseException, like KeyboardInterrupt, so that a trial's own error handling (``except
    Exception``: the trial failed, go on with the next) does not take it for the trial's failure.
    """

    exit_code = 1


class StorageUnavailable(Fault):
    """The storage stayed unreachable longer than the worker's patience (``--storage-patience``)."""

    exit_code = EX_TEMPFAIL


class WriteFailed(Fault):
    """A file could not be written: the disk is full, or the folder is read-only or not writable."""

    exit_code = EX_IOERR


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def causes(e: BaseException | None) -> Iterator[BaseException]:
    """``e``, then what caused it (``__cause__``, else ``__context__``), and so on; each once."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def write_error(e: BaseException) -> int | None:
    """The errno of a failed write that the user must fix (no space, read-only, no permission); None otherwise.

    Also reads the messages of libraries that do not raise OSError (safetensors' SafetensorError).
    """
    for err in causes(e):  # the error, or what caused it
        if isinstance(err, OSError) and err.errno in NO_SPACE + UNWRITABLE:
            return err.errno
        text = str(err)
        for code in NO_SPACE + UNWRITABLE:
            if os.strerror(code) in text:
                return code
        if "database or disk is full" in text:  # SQLite's words for ENOSPC
            return errno.ENOSPC
    return None


def free_space(path: Path) -> str:
    """How much room the file system of ``path`` (or its nearest existing parent) has left, in words."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        free: float = shutil.disk_usage(path).free
    except OSError:
        return "free space unknown"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if free < 1024 or unit == "GiB":
            return f"{free:.0f} {unit} free" if unit == "bytes" else f"{free:.1f} {unit} free"
        free /= 1024
    raise AssertionError  # unreachable


def write_failed(path: Path, what: str, code: int) -> WriteFailed:
    """The one-line fault for a write of ``what`` to ``path`` that failed with ``code`` (see :func:`write_error`)."""
    reason = "the disk is full" if code in NO_SPACE else f"{os.strerror(code).lower()}"
    return WriteFailed(
        f"cannot write {what} to {path}: {reason} ({free_space(path)}); nothing half-written was "
        "kept; make room (or fix the folder's permissions) and run the same command again to go on"
    )


@contextlib.contextmanager
def writing(path: Path, what: str) -> Iterator[None]:
    """Turn a failed write of ``what`` to ``path`` for want of space or permission into one :class:`WriteFailed` line."""
    try:
        yield
    except Fault:
        raise
    except Exception as e:
        code = write_error(e)
        if code is None:
            raise
        raise write_failed(path, what, code) from None


# --- interrupts -------------------------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch scheduler, ``docker stop``), handled like Ctrl-C: the running trial is queued again."""


_shield = threading.local()
_pending: list[type[KeyboardInterrupt]] = []  # an interrupt held back by `shielded`, raised when it ends


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (a write to the storage), and raise them after it.

    Only inside :func:`terminate_as_interrupt` and in the main thread (where Python runs signal
    handlers); elsewhere it does nothing. A second signal while the block still runs is raised at
    once: a write that hangs must not make the run unstoppable.
    """
    depth = getattr(_shield, "depth", 0)
    _shield.depth = depth + 1
    try:
        yield
    finally:
        _shield.depth = depth
    if depth == 0 and _pending and threading.current_thread() is threading.main_thread():
        kind = _pending.pop()
        _pending.clear()
        raise kind()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside, SIGINT raises KeyboardInterrupt and SIGTERM :class:`Terminated` in the main thread, once each,
    held back while :func:`shielded` is on; the old handlers are restored after.

    Later SIGTERMs are ignored so that the cleanup it starts (failing and re-queueing the
    running trial, waiting for workers) is not itself cut off.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        kind = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        if signum == signal.SIGTERM:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if getattr(_shield, "depth", 0) and not _pending:
            _pending.append(kind)  # raised when the write in progress has ended
            return
        _pending.clear()
        raise kind()

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    # A process started with SIGINT ignored (``nohup``, ``cmd &`` without job control) keeps ignoring it.
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, handler)
    _pending.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)
        _pending.clear()


@contextlib.contextmanager
def on_interrupt_say(message: str) -> Iterator[None]:
    """An interrupt (Ctrl-C, SIGTERM) inside the block is reported as ``message`` instead of the line about a
    study's trials (:func:`report`): for work that runs no trial, such as a retrain, that line would be untrue."""
    try:
        yield
    except KeyboardInterrupt as e:
        if str(e):  # already says what happened
            raise
        raise type(e)(message) from None


def report(e: BaseException) -> int:
    """Print the one line for a :class:`UserError`, a :class:`Fault` or an interrupt; its exit status.

    What ``mnist-hpo`` does with them, shared with the worker processes that ``study --workers N`` starts.
    """
    if isinstance(e, UserError):
        print(f"mnist-hpo: error: {e}", file=sys.stderr)
        return 2
    if isinstance(e, Fault):
        print(f"mnist-hpo: {e}", file=sys.stderr)
        return e.exit_code
    if isinstance(e, KeyboardInterrupt):
        what = "terminated" if isinstance(e, Terminated) else "interrupted"
        said = str(e) or (
            "finished trials are stored, the running one is marked failed and queued again; "
            "run the same command again to resume"
        )
        print(f"\nmnist-hpo: {what}; {said}", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    raise e
