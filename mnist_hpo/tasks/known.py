"""The task classes this process knows, by ``model_type``: every class that defines one registers here.

Kept apart from the protocol (:mod:`.base`) and from finding a family by name (:mod:`.registry`, which
also loads plugins): this is only the record of what was defined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Task

# Every task class with its own model_type, by it, in the order they are defined (mnist_hpo.tasks imports them).
REGISTRY: dict[str, type[Task]] = {}
# The package's own families, as first defined: a plugin declaring one's model_type cannot replace it here.
BUILTIN: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> None:
    """Record a task class defining ``model_type``; the package's own keep their name as built-ins."""
    REGISTRY[cls.model_type] = cls
    if cls.__module__.startswith("mnist_hpo.") and cls.model_type not in BUILTIN:
        BUILTIN[cls.model_type] = cls
