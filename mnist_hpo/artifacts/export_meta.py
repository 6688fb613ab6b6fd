"""What every export records of how it was made, beside its model: data, versions, config, weights, time."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from ..core.schema import StudyConfig
from ..data.datasets import Dataset
from ..data.integrity import sha256_file

WEIGHTS = "model.safetensors"


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("mnist-hpo", "torch", "optuna", "numpy", "safetensors"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def run_record(cfg: StudyConfig, data: Dataset, weights: Path) -> dict[str, Any]:
    """The export's dataset (name, checksum), package versions, whole study config, weights' sha256 and time."""
    return {
        "dataset": {"name": data.name, "checksum": data.checksum},
        "versions": package_versions(),
        "config": json.loads(json.dumps(cfg.as_dict(), default=str)),
        "weights": {"file": weights.name, "sha256": sha256_file(weights)},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
