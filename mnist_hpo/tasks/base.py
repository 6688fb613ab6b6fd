"""The task protocol: what a model family provides, and all it provides, to be tuned.

This is what a user implements to tune their own model (subclass :class:`Task`; defining
the class registers its ``model_type``). A family gives:

- how to build a model from a trial's parameters (:meth:`Task.arch`, :meth:`Task.build`);
- how to train it, reporting each epoch's validation value (:meth:`Task.fit`);
- how to test it (:meth:`Task.test`);
- its metric's name and direction (:attr:`Task.metric`, :attr:`Task.direction`);
- which parameters and options it accepts (:attr:`Task.space_rules`,
  :attr:`Task.option_schema`, :attr:`Task.option_rules`).

Everything else is optional, with a default here. A family that can also start a training,
train it for some epochs and save and restore its state (:meth:`Task.start_training`,
:meth:`Task.train_epochs`, :meth:`Task.save_state`, :meth:`Task.restore_state`) can be trained
by population-based training (a study file's ``[pbt]``; see docs/pbt.md). A task knows nothing of Optuna, of
where studies are stored, or of the report: the report's tables, headers and reference
numbers for a family are the report's (:mod:`mnist_hpo.report.families`, keyed by
``model_type``); a family without any gets its parameter names as column headers.

Data: ``self.data`` is a :class:`mnist_hpo.data.datasets.Dataset`: ``train_images`` [N, 28, 28]
and ``test_images`` [M, 28, 28] as ``torch.uint8`` in 0..255 (``to_float`` makes them float32
in [0, 1]), ``train_labels`` / ``test_labels`` as ``torch.int64`` digits 0..9;
``self.train_idx`` / ``self.val_idx`` index the validation split of the training images.

Keep this protocol stable: plugins (``examples/``) implement it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..core.parse import Option
from ..core.schema import StudyConfig
from ..data.datasets import Dataset, split_indices
from ..train.state import TrainingState, capture, restore
from .devices import pick_device
from .known import register
from .rules import Rule

# on_epoch(epoch, train_loss, val_value): epoch is 0-based; val_value is the metric the study optimises.
OnEpoch = Callable[[int, float, float], None]
# fit_stacked's on_epoch(i, epoch, train_loss, val_loss) -> keep training trial i?
OnStackedEpoch = Callable[[int, int, float, float], bool]


@dataclass
class FitResult:
    """A trained model and its per-epoch curves; ``value`` is the study objective."""

    model: nn.Module
    value: float
    history: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Training:
    """A model being trained, with what its training needs to go on (population-based training's hooks).

    ``optimizers`` by name (their state is saved with the weights); ``generator`` draws the batch
    order (and any noise) of the epochs to come; ``extras``: JSON values the family carries from
    one segment to the next (saved too).
    """

    model: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    generator: torch.Generator
    extras: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    """A model family. Subclasses set the class attributes below and implement the four abstract methods."""

    # --- required: what the family is -------------------------------------------------------------
    model_type: str = ""  # the name a study file's model.type gives (defining a subclass with one registers it)
    metric: str = "val_loss"  # what fit's value and on_epoch's val_value are, named as in tables and exports
    direction: Literal["minimize", "maximize"] = "minimize"  # or "maximize": which way the metric is better

    # --- required: what the family accepts (checked when a study is loaded; mnist_hpo.tasks.check_config) ---
    # Its searchable parameters: name -> Rule (any other name in [space] is refused; a required one must be searched).
    space_rules: dict[str, Rule] = {}
    # Its [model] options: name -> Option(accepted TOML types, default, allowed values or None).
    option_schema: dict[str, Option] = {}
    # Ranges of those options' values: name -> Rule.
    option_rules: dict[str, Rule] = {}

    # --- optional ------------------------------------------------------------------------------------
    stackable = False  # whether its trials can train stacked (study.batch_trials > 1; fit_stacked)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("model_type"):  # a subclass that only inherits a model_type is no new family
            register(cls)

    def __init__(self, cfg: StudyConfig, data: Dataset) -> None:
        """Prepare the family's data once per process: ``self.data`` (the study's subset), the split, the device."""
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        data = data.subset(cfg.train_subset, cfg.test_subset)
        self.data = data
        train_idx, val_idx = split_indices(len(data.train_images), cfg.val_fraction, cfg.seed)
        self.train_idx, self.val_idx = train_idx, val_idx

    # --- required: build, train, test ----------------------------------------------------------------
    @abstractmethod
    def arch(self, params: dict[str, Any]) -> dict[str, Any]:
        """The model's constructor arguments (JSON values), from a trial's parameters; stored in exports."""

    @classmethod
    @abstractmethod
    def build(cls, arch: dict[str, Any]) -> nn.Module:
        """The model with the given constructor arguments (also used to load an export, so a classmethod)."""

    @abstractmethod
    def fit(
        self, params: dict[str, Any], *, seed: int, epochs: int, full: bool, on_epoch: OnEpoch | None = None
    ) -> FitResult:
        """Train a fresh model, seeded by ``seed`` alone; call ``on_epoch`` after every epoch.

        ``full=False``: train on the train split, evaluate on the validation split each epoch
        (the value passed to ``on_epoch`` is what the study reports and prunes on).
        ``full=True`` (the final retrain): train on all training images; the per-epoch
        evaluation is then on the test set, for the curves only (nothing is selected on it).
        ``on_epoch`` may raise ``optuna.TrialPruned``: let it through.
        """

    @abstractmethod
    def test(self, model: nn.Module) -> dict[str, Any]:
        """The trained model's test metrics (JSON values), e.g. ``{"test_mse": 0.0172}``."""

    # --- optional hooks, with their defaults -----------------------------------------------------------
    @classmethod
    def resolve(
        cls, cfg: StudyConfig, *, latest_export: Callable[[str], Path], pinned: dict[str, Any] | None = None
    ) -> StudyConfig:
        """Pin model options that refer to stored artefacts to concrete values, before the study opens.

        E.g. "the latest export of study ae" becomes that export's folder. ``latest_export(name)``
        finds a study's latest export; ``pinned`` holds the model options an existing study of
        the same name was run with (None for a new study), so a resumed study keeps its artefacts.
        """
        return cfg

    @classmethod  # noqa: B027  (a hook: does nothing unless a family overrides it)
    def check_resolved(cls, cfg: StudyConfig) -> None:
        """Raise UserError if ``cfg`` still needs :meth:`resolve`; called before a study is created."""

    @classmethod
    def identity_extras(cls, cfg: StudyConfig, dataset_checksum: str) -> dict[str, Any]:
        """What a trial's value depends on beyond the study file and the data (``setting -> value``)."""
        return {}

    def fit_stacked(
        self, params: list[dict[str, Any]], seeds: list[int], *, epochs: int, on_epoch: OnStackedEpoch | None = None
    ) -> list[dict[str, Any]]:
        """Train several trials at once (``batch_trials`` > 1; see :mod:`mnist_hpo.train.stacked`).

        ``on_epoch(i, epoch, train_loss, val_loss) -> bool`` (False drops trial i). Returns
        one history per trial, with ``"error"`` set where the loss became non-finite.
        """
        raise NotImplementedError(f"{self.model_type} trials cannot be trained stacked; set batch_trials = 1")

    def evaluated_curves(self, history: dict[str, Any]) -> dict[str, str]:
        """Series of ``history`` measured only at the epochs in ``history["eval_epochs"]``: name -> axis label."""
        return {}

    def provenance(self) -> dict[str, Any]:
        """What, besides the weights and the data, the test metrics depend on (recorded in exports)."""
        return {}

    def write_files(self, model: nn.Module, metrics: dict[str, Any], folder: Path) -> list[str]:
        """Extra files for the export folder (e.g. figures of the test metrics); returns their names."""
        return []

    # --- optional: population-based training (a study file's [pbt]; docs/pbt.md) ----------------------
    # The parameters that may change between two segments of a member's training (learning rates,
    # say), which explore may perturb; every other parameter shapes the model and is fixed at the start.
    pbt_mutable: tuple[str, ...] = ()

    def start_training(self, params: dict[str, Any], *, seed: int) -> Training:
        """A fresh model and its optimizers for ``params``, everything seeded by ``seed`` alone."""
        raise NotImplementedError(f"{self.model_type} cannot be trained by population-based training")

    def train_epochs(
        self, training: Training, params: dict[str, Any], *, epochs: int, on_epoch: OnEpoch | None = None
    ) -> FitResult:
        """Train ``training`` ``epochs`` more epochs on the train split, evaluating on the validation split.

        As :meth:`fit` with ``full=False``, from wherever ``training`` stands; ``on_epoch``'s epochs
        count from 0 within this call, and the result's ``value`` is the metric after its last epoch.
        """
        raise NotImplementedError(f"{self.model_type} cannot be trained by population-based training")

    def save_state(self, training: Training) -> TrainingState:
        """What :meth:`restore_state` needs to go on: by default the weights, the optimizers' state and the extras."""
        return capture(training.model, training.optimizers, training.extras)

    def restore_state(self, training: Training, state: TrainingState) -> None:
        """Load ``state`` into a :meth:`start_training` result, keeping its optimizers' hyperparameters."""
        restore(state, training.model, training.optimizers)
        training.extras = dict(state.extras)

    @classmethod
    def trains_in_segments(cls) -> bool:
        """Whether the family has the hooks population-based training needs."""
        return cls.start_training is not Task.start_training and cls.train_epochs is not Task.train_epochs
