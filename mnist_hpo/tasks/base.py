"""What every model family provides to the objective, the retrain and the export.

A task owns a model family's data preparation (done once per process), how to
build a model from a trial's parameters, how to train it and how to test it. It
knows nothing of Optuna or of where studies are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

import torch
from torch import nn

from ..config import StudyConfig
from ..data.datasets import Dataset, split_indices
from ..errors import UserError
from .rules import Rule

OnEpoch = Callable[[int, float, float], None]
@dataclass(frozen=True)
class Reference:
    """What the original report printed for one model family's section: its table and its headline numbers."""

    table: str
    caption: str
    columns: list[str]
    rows: list[list]
    headline: dict[str, tuple[str, float]] = field(default_factory=dict)  # export metric -> (what, value)
    note: str = ""


# Every task class with its own model_type, by it, in the order they are defined (mnist_hpo.tasks imports them).
REGISTRY: dict[str, type["Task"]] = {}


def check_device(setting: str, what: str = "") -> None:
    """Refuse a CUDA device this machine does not have, before anything is created.

    ``what`` names where the setting came from (``--device cuda:1``, a study file's key).
    """
    if setting != "cuda" and not setting.startswith("cuda:"):
        return
    what = what or f"device {setting!r}"
    if not torch.cuda.is_available():
        raise UserError(f"{what}: no CUDA device on this machine (torch.cuda.is_available() is False); "
                        "use --device cpu or auto")
    count = torch.cuda.device_count()
    if setting.startswith("cuda:") and int(setting[5:]) >= count:
        raise UserError(f"{what}: this machine has {count} CUDA device{'s' if count != 1 else ''} "
                        f"(cuda:0 to cuda:{count - 1}); use one of them, or --device cpu or auto")


def device_source(cfg: StudyConfig, cli_value: str | None) -> str:
    """How an error names the device setting: the command-line flag if given, else the study file's key."""
    return f"--device {cli_value}" if cli_value else f"{cfg.source}: study.device {cfg.device!r}"


def pick_device(setting: str) -> torch.device:
    check_device(setting)
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


@dataclass
class FitResult:
    """A trained model and its per-epoch curves; ``value`` is the study objective."""

    model: nn.Module
    value: float
    history: dict[str, list[float]] = field(default_factory=dict)


class Task:
    """Base class: subclasses set ``model_type``, ``direction`` and ``metric`` and implement the methods."""

    model_type: str = ""
    direction: str = "minimize"
    metric: str = "val_loss"  # what the objective returns, as it is named in tables and exports
    table_columns: dict[str, str] = {}  # trial user attributes shown in the top-5 table: name -> header
    # What the family accepts: its searchable parameters (any other name in [space] is refused)
    # and its model options' values; checked when a study file is loaded (config.check_config).
    space_rules: dict[str, Rule] = {}
    option_rules: dict[str, Rule] = {}
    # Its [model] options: name -> (accepted TOML types, default, allowed values or None); read by config.py.
    option_schema: dict[str, tuple[tuple[type, ...], Any, tuple | None]] = {}
    stackable = False  # whether its trials can train stacked (study.batch_trials > 1; fit_stacked)
    # The report: its parameters' column headers (name -> header), and its section of the report
    # (key, title, the original report's numbers, the study it reads by default); no section: None.
    headers: dict[str, str] = {}
    section: str | None = None
    section_title: str = ""
    reference: Reference | None = None
    default_study: str = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("model_type"):  # a subclass that only inherits a model_type is no new family
            REGISTRY[cls.model_type] = cls

    def __init__(self, cfg: StudyConfig, data: Dataset) -> None:
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        data = data.subset(cfg.train_subset, cfg.test_subset)
        self.data = data
        train_idx, val_idx = split_indices(len(data.train_images), cfg.val_fraction, cfg.seed)
        self.train_idx, self.val_idx = train_idx, val_idx

    @classmethod
    def resolve(
        cls, cfg: StudyConfig, *, latest_export: Callable[[str], Path], pinned: dict | None = None
    ) -> StudyConfig:
        """Pin model options that refer to stored artefacts to concrete values, before the study opens.

        E.g. "the latest export of study ae" becomes that export's folder. ``latest_export(name)``
        finds a study's latest export; ``pinned`` holds the model options an existing study of
        the same name was run with (None for a new study), so a resumed study keeps its artefacts.
        """
        return cfg

    @classmethod
    def check_resolved(cls, cfg: StudyConfig) -> None:
        """Raise UserError if ``cfg`` still needs :meth:`resolve`; called before a study is created."""

    @classmethod
    def identity_extras(cls, cfg: StudyConfig, dataset_checksum: str) -> dict:
        """What a trial's value depends on beyond the study file and the data (``setting -> value``)."""
        return {}

    def arch(self, params: dict) -> dict:
        """The constructor arguments of the model, from a trial's parameters."""
        raise NotImplementedError

    @classmethod
    def build(cls, arch: dict) -> nn.Module:
        """The model with the given constructor arguments (also used to load an export)."""
        raise NotImplementedError

    def fit(self, params: dict, *, seed: int, epochs: int, full: bool, on_epoch: OnEpoch | None = None) -> FitResult:
        """Train a fresh model.

        ``full=False``: train on the train split, evaluate on the validation split each epoch.
        ``full=True`` (the final retrain): train on all training images; the per-epoch
        evaluation is then on the test set, for the curves only (nothing is selected on it).
        """
        raise NotImplementedError

    def fit_stacked(self, params: list[dict], seeds: list[int], *, epochs: int, on_epoch=None) -> list[dict]:
        """Train several trials at once (``batch_trials`` > 1; see :mod:`mnist_hpo.train.stacked`).

        ``on_epoch(i, epoch, train_loss, val_loss) -> bool`` (False drops trial i). Returns
        one history per trial, with ``"error"`` set where the loss became non-finite.
        """
        raise NotImplementedError(f"{self.model_type} trials cannot be trained stacked; set batch_trials = 1")

    def evaluated_curves(self, history: dict) -> dict[str, str]:
        """Series of ``history`` measured only at the epochs in ``history["eval_epochs"]``: name -> axis label."""
        return {}

    def test(self, model: nn.Module) -> dict[str, float]:
        raise NotImplementedError

    def provenance(self) -> dict:
        """What, besides the weights and the data, the test metrics depend on (recorded in exports)."""
        return {}

    def write_files(self, model: nn.Module, metrics: dict, folder: Path) -> list[str]:
        """Extra files for the export folder (e.g. figures of the test metrics); returns their names."""
        return []
