"""Model families as tasks, by the ``model.type`` of a study file.

A family is its task class (``tasks/<family>.py``): defining it registers it, with its options,
its search-space rules, its table headers and its section of the report, so config.py and
report/ read them from here and name no family.
"""

from __future__ import annotations

from ..config import StudyConfig
from ..data.datasets import Dataset
from ..train.numerics import flush_denormals
from .base import REGISTRY, FitResult, Reference, Task, check_device, device_source, pick_device

# Importing a family's module registers its task (Task.__init_subclass__); this order is the registry's,
# so that of the report's sections and of the model types an error lists.
from . import autoencoder, denoising, classifier, gan  # noqa: E402,F401  isort: skip
from . import registry  # noqa: E402  isort: skip

TASKS: dict[str, type[Task]] = REGISTRY


def param_headers() -> dict[str, str]:
    """Every family's parameter column headers (the report's names), for tables of any study."""
    merged: dict[str, str] = {}
    for task in TASKS.values():
        for name, header in task.headers.items():
            if merged.setdefault(name, header) != header:
                raise AssertionError(f"{task.model_type} names parameter {name} {header!r}, another family "
                                     f"{merged[name]!r}: one parameter, one header")
    return merged


def task_class(model_type: str) -> type[Task]:
    """The task class of ``model_type``: a built-in, an installed plugin or a trusted import path (see registry.py)."""
    return registry.resolve(model_type)


def make_task(cfg: StudyConfig, data: Dataset) -> Task:
    # Every training run builds its task here, so this is where the process's CPU arithmetic is
    # set (denormals flushed; see train/numerics.py); a rerun then sets its trial's recorded mode.
    flush_denormals(True)
    return task_class(cfg.model)(cfg, data)


__all__ = ["FitResult", "Reference", "TASKS", "Task", "check_device", "device_source", "make_task", "param_headers", "pick_device", "task_class"]
