"""Which device a task trains on: a study's ``device`` setting checked against this machine, and chosen."""

from __future__ import annotations

import torch

from ..core.schema import StudyConfig
from ..errors import UserError


def check_device(setting: str, what: str = "") -> None:
    """Refuse a CUDA device this machine does not have, before anything is created.

    ``what`` names where the setting came from (``--device cuda:1``, a study file's key).
    """
    if setting != "cuda" and not setting.startswith("cuda:"):
        return
    what = what or f"device {setting!r}"
    if not torch.cuda.is_available():
        raise UserError(
            f"{what}: no CUDA device on this machine (torch.cuda.is_available() is False); use --device cpu or auto"
        )
    count = torch.cuda.device_count()
    if setting.startswith("cuda:") and int(setting[5:]) >= count:
        raise UserError(
            f"{what}: this machine has {count} CUDA device{'s' if count != 1 else ''} "
            f"(cuda:0 to cuda:{count - 1}); use one of them, or --device cpu or auto"
        )


def device_source(cfg: StudyConfig, cli_value: str | None) -> str:
    """How an error names the device setting: the command-line flag if given, else the study file's key."""
    return f"--device {cli_value}" if cli_value else f"{cfg.source}: study.device {cfg.device!r}"


def pick_device(setting: str) -> torch.device:
    check_device(setting)
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)
