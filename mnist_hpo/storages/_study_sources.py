"""Where stored studies are found: one storage URL, or a folder of journal files (one per study).

The reproduction record keeps each study in its own journal (``results/journals/<study>.log``);
the report and ``mnist-hpo compare`` read such a folder as one source of studies.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from ._open import open_storage
from ._urls import default_storage_url


class Studies:
    """Where the report finds its studies: one storage, or a folder of journals (one file per study)."""

    def __init__(self, storage_url: str | None = None, journals: Path | None = None) -> None:
        self.journals = Path(journals) if journals is not None else None
        self.storage = None if self.journals is not None else open_storage(storage_url)
        self.label = str(self.journals) if self.journals is not None else (storage_url or default_storage_url())

    def names(self) -> list[str]:
        if self.journals is not None:
            return sorted(p.stem for p in self.journals.glob("*.log"))
        assert self.storage is not None  # opened when there is no folder of journals
        return [s.study_name for s in optuna.get_all_study_summaries(self.storage)]

    def storage_of(self, name: str) -> optuna.storages.BaseStorage | None:
        if self.journals is None:
            return self.storage
        path = self.journals / f"{name}.log"
        return open_storage(f"journal:{path}") if path.exists() else None

    def load(self, name: str) -> optuna.Study | None:
        storage = self.storage_of(name)
        if storage is None:
            return None
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            return None
