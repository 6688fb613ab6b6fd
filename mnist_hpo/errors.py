"""The one exception type a user sees (its message is the single line the CLI prints), and SIGTERM as an interrupt."""

import contextlib
import importlib.util
import signal
import threading


class UserError(Exception):
    """A mistake in input, configuration or environment that the user can fix.

    The message says what is wrong and what to do, in one line; the CLI prints it
    without a traceback and exits non-zero.
    """


def require_extra(module: str, extra: str, what: str) -> None:
    """Stop with one line when ``what`` needs an optional extra (``pip install 'mnist-hpo[extra]'``) that is missing."""
    if importlib.util.find_spec(module) is None:
        raise UserError(f"{what} needs the optional '{extra}' extra ({module} is not installed); "
                        f"install it with: pip install 'mnist-hpo[{extra}]' (make setup installs it)")


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch scheduler, ``docker stop``), handled like Ctrl-C: the running trial is queued again."""


@contextlib.contextmanager
def terminate_as_interrupt():
    """Inside, SIGTERM raises :class:`Terminated` in the main thread, once; the old handler is restored after.

    Later SIGTERMs are ignored so that the cleanup it starts (failing and re-queueing the
    running trial, waiting for workers) is not itself cut off.
    """
    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
