"""Model families as tasks, by the ``model.type`` of a study file.

A family is its task class (``tasks/<family>.py``, implementing the protocol of
:mod:`mnist_hpo.tasks.base`): defining it registers it, with its options and its
search-space rules, so config.py reads them from here and names no family. A plugin's task
class imports what it needs from this package, its public API (docs/plugins.md): ``Task``, ``FitResult``,
``OnEpoch``, ``Rule``, ``Option`` and ``NonFiniteLoss``.
"""

from __future__ import annotations

from ..core.parse import Option
from ..core.schema import StudyConfig
from ..data.datasets import Dataset
from ..train.loops import NonFiniteLoss  # a plugin's fit raises it when its loss diverges
from ..train.numerics import flush_denormals
from .base import FitResult, OnEpoch, Task, Training
from .checks import check_config
from .devices import check_device, device_source, pick_device
from .rules import Rule

# Importing a family's module registers its task (Task.__init_subclass__); this order is the registry's,
# so that of the model types an error lists.
from . import autoencoder, denoising, classifier, gan  # noqa: F401  isort: skip
from . import registry  # isort: skip


def task_class(model_type: str) -> type[Task]:
    """The task class of ``model_type``: a built-in, an installed plugin or a trusted import path (see registry.py)."""
    return registry.resolve(model_type)


def make_task(cfg: StudyConfig, data: Dataset) -> Task:
    # Every training run builds its task here, so this is where the process's CPU arithmetic is
    # set (denormals flushed; see train/numerics.py); a rerun then sets its trial's recorded mode.
    flush_denormals(True)
    return task_class(cfg.model)(cfg, data)


__all__ = [
    "FitResult",
    "NonFiniteLoss",
    "OnEpoch",
    "Option",
    "Rule",
    "Task",
    "Training",
    "check_config",
    "check_device",
    "device_source",
    "make_task",
    "pick_device",
    "task_class",
]
