"""Files attached to trials and studies (figures, checkpoints), as optuna-dashboard shows them.

They live on this machine's disk, in ``storage/artifacts`` next to the database
(:func:`~._urls.artifacts_dir`; population-based training's checkpoints in ``storage/checkpoints``),
in Optuna's file artifact store; each file is written whole or not at all.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import optuna

from ..data.integrity import write_atomically
from ..errors import writing
from ._urls import artifacts_dir


class WholeFileArtifactStore(optuna.artifacts.FileSystemArtifactStore):
    """Optuna's file artifact store, whose files are written whole or not at all (:func:`write_atomically`):
    a full disk leaves no half figure, and is one line naming the file."""

    def __init__(self, base_path: Path) -> None:
        super().__init__(base_path)
        self.base = Path(base_path)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        path = self.base / artifact_id
        if path.resolve().parent != self.base.resolve():
            raise ValueError(f"Invalid artifact_id: {artifact_id}")  # as Optuna's store refuses it
        write_atomically(path, lambda f: shutil.copyfileobj(content_body, f), what="a figure attached to a trial")


def artifact_store(folder: Path | None = None) -> optuna.artifacts.FileSystemArtifactStore:
    """Files attached to trials live on this machine's disk, next to the database (``folder``:
    another store than the figures', e.g. :func:`~._urls.checkpoints_dir`)."""
    folder = artifacts_dir() if folder is None else folder
    with writing(folder, "the folder of files attached to trials"):
        folder.mkdir(parents=True, exist_ok=True)
    return WholeFileArtifactStore(folder)


def attach_files(
    target: optuna.Trial | optuna.Study,
    files: list[Path],
    *,
    rename: Callable[[Path], str] | None = None,
    folder: Path | None = None,
) -> list[str]:
    """Attach ``files`` to a running trial or a study (shown under that name, ``rename(f)`` if given); their ids.

    A study's file of the same name is replaced in place (a re-export's figures): Optuna's artifact
    metadata is an attribute that can be set but not removed, so a new upload would list it twice.
    """
    store = artifact_store(folder)
    existing = (
        {a.filename: a.artifact_id for a in optuna.artifacts.get_all_artifact_meta(target)}
        if isinstance(target, optuna.Study)
        else {}
    )
    ids = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in map(Path, files):
            if rename is not None:
                f = Path(shutil.copy(f, Path(tmp) / rename(f)))
            if f.name in existing:
                with open(f, "rb") as body:
                    store.write(existing[f.name], body)
                ids.append(existing[f.name])
            else:
                ids.append(
                    optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(f), study_or_trial=target)
                )
    return ids
