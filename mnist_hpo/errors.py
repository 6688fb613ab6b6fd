"""The one exception type a user sees: its message is the single line the CLI prints."""


class UserError(Exception):
    """A mistake in input, configuration or environment that the user can fix.

    The message says what is wrong and what to do, in one line; the CLI prints it
    without a traceback and exits non-zero.
    """


def require_extra(module: str, extra: str, what: str) -> None:
    """Stop with one line when ``what`` needs an optional extra (``pip install 'mnist-hpo[extra]'``) that is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UserError(f"{what} needs the optional '{extra}' extra ({module} is not installed); "
                        f"install it with: pip install 'mnist-hpo[{extra}]' (make setup installs it)")
