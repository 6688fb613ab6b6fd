"""The ``mnist-hpo`` command line: the parser, the checks made before any heavy import, and ``main``.

``main(argv) -> int`` is what tests call; ``entrypoint`` is the console script. The flags that
override a study setting are made from the settings' table (:mod:`mnist_hpo.core.settings`); the
parsed command line becomes the command's typed arguments (:mod:`mnist_hpo.commands.args`) here, once.
Every user mistake is one ``mnist-hpo: error: …`` line and exit status 2; Ctrl-C
is exit status 130 with the finished trials kept.

This module imports no torch, Optuna, NumPy or SQLAlchemy: ``--help``, a command's
``--help`` and the mistakes :mod:`mnist_hpo.commands.checks` finds (a missing study file,
a malformed storage URL, a storage that does not exist, …) answer in a fraction of a
second. A command's body is imported from :data:`COMMANDS` only when it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys

from .commands.args import ARGS
from .commands.checks import CHECKS
from .commands.parsers import PARSERS
from .core.settings import flags_on
from .errors import Fault, UserError, did_you_mean, report, terminate_as_interrupt

DESCRIPTION = """\
Hyperparameter studies with Optuna for the models of an MNIST unsupervised-learning report
(convolutional autoencoder, denoising autoencoder, classifier on its codes, GAN): run a study,
retrain and export its best trial, compare studies, and rebuild the report.
"""
EPILOG = """\
examples:
  mnist-hpo study ae --study-name ae-quick --trials 3 --epochs 1 --subset 2000   a short study
  mnist-hpo show ae-quick                                                         its trials
  mnist-hpo study ae                                    the report's autoencoder search, in full
  mnist-hpo dashboard                                   optuna-dashboard on the default storage

Storage: sqlite:///storage/mnist_hpo.db unless --storage or $MNIST_HPO_STORAGE says otherwise.
'mnist-hpo COMMAND --help' describes each command.
"""
COMMANDS = {
    name: f"mnist_hpo.commands.{module}:cmd_{name}"
    for module, names in (
        ("search", ("study", "worker", "list", "delete", "compact", "dashboard")),
        ("results", ("export", "show", "compare", "rerun", "verify", "explore", "report")),
        ("runs", ("data", "gan", "reproduce")),
    )
    for name in names
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist-hpo", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (text, add_arguments) in PARSERS.items():
        add_arguments(sub.add_parser(name, help=text))
    return parser


def typed(args: argparse.Namespace):
    """The parsed command line as its command's typed arguments (:mod:`mnist_hpo.commands.args`).

    The flags that override study settings are gathered into ``overrides`` (setting -> value), the ones given only.
    """
    values = vars(args)
    overrides = {s.key: values[s.key] for s, _ in flags_on(args.command) if values[s.key] is not None}
    cls = ARGS[args.command]
    return cls(
        **{
            f.name: overrides if f.name == "overrides" else values[f.name]
            for f in dataclasses.fields(cls)
            if f.name == "overrides" or f.name in values
        }
    )


def unrecognized(parser: argparse.ArgumentParser, command: str, extra: list[str]) -> UserError:
    """The one line for arguments that no option of ``command`` takes, with the closest option when one is close.

    argparse's own message names neither the command nor what was meant, and comes after the usage.
    """
    # argparse keeps its actions private; reading them is the only way to know a command's option strings.
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = [s for a in commands[command]._actions for s in a.option_strings]
    hint = next((h for arg in extra if arg.startswith("-") and (h := did_you_mean(arg.split("=", 1)[0], options))), "")
    return UserError(
        f"unrecognized argument{'s' if len(extra) > 1 else ''} for {command}: {' '.join(extra)}; "
        f"{hint}'mnist-hpo {command} --help' lists its options"
    )


def command(name: str):
    """The function that runs command ``name``: its module is imported here, the one place that loads the stack."""
    module, _, function = COMMANDS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as e:  # argparse already printed its one-line usage error
        return int(e.code or 0)
    try:
        if extra:
            raise unrecognized(parser, args.command, extra)
        settings = typed(args)
        check = CHECKS.get(args.command)
        if check is not None:
            check(settings)  # the mistakes found without torch or Optuna: they answer at once
        if getattr(args, "trust_plugin", None):
            from .tasks.registry import trust  # the task registry loads torch: only when a plugin is trusted

            trust(args.trust_plugin)
        run = command(args.command)
        with terminate_as_interrupt():
            return run(settings)
    except (UserError, Fault, KeyboardInterrupt) as e:
        return report(e)  # one line; a fault of the infrastructure has its own status (75: storage away)


def entrypoint() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `mnist-hpo show ae | head`: the reader has what it wanted
        # Python would report the pipe again while flushing at exit; point stdout at nothing first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    sys.exit(code)
