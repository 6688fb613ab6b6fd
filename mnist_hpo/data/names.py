"""The datasets' names, built-in and from plugins, without torch: a study file's ``study.dataset`` is checked
against them (:mod:`mnist_hpo.config`, and the command line before it loads anything heavy)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

DATASETS = ("mnist", "fashion-mnist")
DATASET_GROUP = "mnist_hpo.datasets"  # the entry-point group a plugin registers its dataset in


def plugin_datasets() -> dict[str, Any]:
    """The installed distributions' datasets (entry points in :data:`DATASET_GROUP`), by name."""
    return {ep.name: ep for ep in metadata.entry_points(group=DATASET_GROUP)}


def is_dataset(name: str) -> bool:
    return name in DATASETS or name in plugin_datasets()


def dataset_names() -> list[str]:
    return [*DATASETS, *sorted(plugin_datasets())]
