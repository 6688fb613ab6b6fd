"""The bodies of the ``mnist-hpo`` subcommands, by what they act on; ``mnist_hpo.cli`` parses the command
line and calls one of :data:`COMMANDS`. Each body imports the stages it calls when it runs, so that
``mnist-hpo --help`` loads no torch or Optuna."""

from __future__ import annotations

from .results import cmd_compare, cmd_explore, cmd_export, cmd_report, cmd_rerun, cmd_show, cmd_verify
from .runs import cmd_data, cmd_gan, cmd_reproduce
from .search import cmd_compact, cmd_dashboard, cmd_delete, cmd_list, cmd_study

COMMANDS = {
    "study": cmd_study,
    "worker": lambda a: cmd_study(a, worker=True),
    "export": cmd_export,
    "show": cmd_show,
    "compare": cmd_compare,
    "rerun": cmd_rerun,
    "verify": cmd_verify,
    "list": cmd_list,
    "delete": cmd_delete,
    "compact": cmd_compact,
    "data": cmd_data,
    "dashboard": cmd_dashboard,
    "explore": cmd_explore,
    "report": cmd_report,
    "gan": cmd_gan,
    "reproduce": cmd_reproduce,
}
