"""A study's UUID: what tells two studies of one name in two storages apart.

Each study has one, its user attribute ``uuid``, given when it is created
(:func:`mnist_hpo.hpo.identity.open_study`) or, for an older study, the first time mnist-hpo
writes for it (:func:`ensure_uuid`); every export records it (``docs/storage.md``).
"""

from __future__ import annotations

import uuid

import optuna

UUID_ATTR = "uuid"


def study_uuid(study: optuna.Study) -> str | None:
    """The study's UUID (its user attribute ``uuid``), or None for a study that has none yet."""
    value = study.user_attrs.get(UUID_ATTR)
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def ensure_uuid(study: optuna.Study) -> str:
    """The study's UUID, given to it now if it has none (a write to its storage).

    A study gets one when it is created (:func:`open_study`). One made before UUIDs existed, or by
    another tool (Optuna's CLI), gets one the first time mnist-hpo writes for it: a run, a worker
    joining, an export. Two processes doing so at once both write one; the one stored last holds,
    and whatever is keyed by it reads it back from the storage.
    """
    current = study_uuid(study)
    if current is None:
        given = str(uuid.uuid4())
        study.set_user_attr(UUID_ATTR, given)
        current = study_uuid(study) or given  # read back: another process's, stored last, holds
    return current
