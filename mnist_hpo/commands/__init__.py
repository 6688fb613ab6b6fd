"""The bodies of the ``mnist-hpo`` subcommands, by what they act on.

:mod:`mnist_hpo.cli` parses the command line, runs the command's light checks
(:mod:`mnist_hpo.commands.checks`) and then imports one of these modules: ``search`` (study,
worker, list, delete, compact, dashboard), ``results`` (export, show, compare, rerun, verify,
explore, report) or ``runs`` (data, gan, reproduce). They import the stages at module level,
so nothing here imports them: ``mnist-hpo --help`` loads no torch or Optuna.
"""
