"""Model families as tasks, by the ``model.type`` of a study file."""

from __future__ import annotations

from ..config import StudyConfig
from ..data.datasets import Dataset
from .autoencoder import AutoencoderTask
from .base import FitResult, Task, check_device, device_source, pick_device
from .classifier import ClassifierTask
from .denoising import DenoisingTask
from .gan import GanTask

TASKS: dict[str, type[Task]] = {
    AutoencoderTask.model_type: AutoencoderTask,
    DenoisingTask.model_type: DenoisingTask,
    ClassifierTask.model_type: ClassifierTask,
    GanTask.model_type: GanTask,
}


def task_class(model_type: str) -> type[Task]:
    return TASKS[model_type]


def make_task(cfg: StudyConfig, data: Dataset) -> Task:
    return TASKS[cfg.model](cfg, data)


__all__ = ["FitResult", "TASKS", "Task", "check_device", "device_source", "make_task", "pick_device", "task_class"]
