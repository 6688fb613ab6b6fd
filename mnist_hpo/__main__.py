"""``python -m mnist_hpo`` is the ``mnist-hpo`` command."""

from .cli import entrypoint

entrypoint()
