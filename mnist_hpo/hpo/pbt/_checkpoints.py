"""A segment's checkpoints in the study's artifact store, and training one segment from one.

A checkpoint is one safetensors file (:mod:`mnist_hpo.train.state`: the model's weights, its
optimizers' state, the family's extras as JSON in the header), attached to the trial that
ended with it (in the storage folder's ``checkpoints/``) and recorded there with its sha256 (user attribute ``pbt_end``). A segment
that starts from it records the same sha256 (``pbt.start``), and the file is checked against
it before it is loaded: an exploit copies exactly its parent's checkpoint, and ``rerun``
loads exactly what the segment started from. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import optuna

from ...errors import UserError
from ...storages import artifact_store, attach_files, checkpoints_dir
from ...tasks import FitResult, OnEpoch, Task
from ...train.state import TrainingState, state_bytes, state_from_bytes


def save_checkpoint(trial: optuna.Trial, state: TrainingState, name: str) -> dict[str, Any]:
    """Attach ``state`` to the running ``trial`` as file ``name``; its record: ``{"artifact", "sha256"}``."""
    data = state_bytes(state)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        (artifact,) = attach_files(trial, [path], folder=checkpoints_dir())
    return {"artifact": artifact, "sha256": hashlib.sha256(data).hexdigest()}


def load_checkpoint(record: dict[str, Any], where: str) -> TrainingState:
    """The checkpoint ``record`` names, after checking its sha256; ``where`` names whose it is in an error."""
    path = checkpoints_dir() / record["artifact"]
    try:
        with artifact_store(checkpoints_dir()).open_reader(record["artifact"]) as f:
            data = f.read()
    except (OSError, optuna.artifacts.exceptions.ArtifactNotFound):
        raise UserError(
            f"{where}: its checkpoint {path} is missing (a population-based study's checkpoints live in "
            "its storage folder's checkpoints/, MNIST_HPO_STORAGE_DIR); copy them there with the "
            "study"
        ) from None
    sha = hashlib.sha256(data).hexdigest()
    if sha != record["sha256"]:
        raise UserError(
            f"{where}: checkpoint {path} has sha256 {sha[:16]}…, the study recorded "
            f"{record['sha256'][:16]}…; it was changed, so nothing trained from it can be trusted"
        )
    try:
        return state_from_bytes(data)
    except ValueError as e:
        raise UserError(f"{where}: checkpoint {path} cannot be read ({e})") from None


def train_segment(
    task: Task,
    params: dict[str, Any],
    *,
    seed: int,
    start: TrainingState | None,
    epochs: int,
    on_epoch: OnEpoch | None = None,
) -> tuple[FitResult, TrainingState]:
    """Train one segment: a fresh start seeded by ``seed``, ``start`` loaded into it (None: generation 0),
    ``epochs`` epochs; the result and the state it ended in."""
    training = task.start_training(params, seed=seed)
    if start is not None:
        task.restore_state(training, start)
    result = task.train_epochs(training, params, epochs=epochs, on_epoch=on_epoch)
    return result, task.save_state(training)
