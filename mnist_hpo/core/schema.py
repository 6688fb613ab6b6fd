"""The study file's schema: the dataclasses a study is, and the checks of their values.

A study file has these tables::

    [study]    name, dataset, seed, trials, epochs, batch_size, val_fraction, ...
    [model]    type = "autoencoder" | ... and that model's own options (its task's option_schema)
    [sampler]  type = "random" | "grid" | "tpe" | "gp", plus options
    [pruner]   type = "none" | "median" | "successive_halving" | "hyperband", plus options
    [space.NAME]  one table per hyperparameter (see :class:`ParamSpec`)
    [pbt]      optional: population-based training (:mod:`mnist_hpo.core.pbt`)

The ``[study]`` keys, their types and their command-line flags are one table,
:data:`mnist_hpo.core.settings.STUDY_SETTINGS`; a file's tables are read by :mod:`mnist_hpo.core.parse`.
This module knows no model family: whether a value suits the family is checked by
:func:`mnist_hpo.tasks.check_config`, and :mod:`mnist_hpo.config` loads a file through both.
Every mistake is one :class:`UserError` line naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from ..errors import UserError, did_you_mean
from .names import RULE, name_problem, shown
from .settings import FLAG_KEYWORDS

SAMPLERS = {
    "random": {"seed"},
    "grid": {"seed"},
    "tpe": {"seed", "n_startup_trials", "multivariate"},
    "gp": {"seed", "n_startup_trials"},
}
PRUNERS = {
    "none": set(),
    "median": {"n_startup_trials", "n_warmup_steps"},
    "successive_halving": {"min_resource", "reduction_factor", "min_early_stopping_rate", "bootstrap_count"},
    "hyperband": {"min_resource", "max_resource", "reduction_factor", "bootstrap_count"},
}
SECTIONS = ("study", "model", "sampler", "pruner", "space", "pbt")  # a study file's tables, in the order it writes them
PARAM_KINDS = ("choices", "normal", "randint", "float", "int")
# The settings that change what a trial's value means (the study file's part of a study's identity,
# mnist_hpo.hpo.identity): a config with one of them changed is another study and needs its own name.
NEW_STUDY = (
    "model",
    "dataset",
    "idx_dir",
    "seed",
    "epochs",
    "batch_size",
    "val_fraction",
    "train_subset",
    "test_subset",
    "objectives",
    "model_options",
    "sampler",
    "pruner",
    "space",
    "pbt",
)
OVERRIDE_LABELS = {"train_subset": "subset", "test_subset": "test"}  # in a suggested study name
# Objectives a study may add to its model family's validation metric (``[study] objectives``).
EXTRA_OBJECTIVES: dict[str, Literal["minimize", "maximize"]] = {
    "params": "minimize"
}  # the number of parameters of the trial's model


@dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter.

    kind ``choices``: an explicit list. ``normal``: ``size`` values drawn from
    Normal(mean, std), non-positive draws redrawn, ``include`` values put first.
    ``randint``: ``size`` integers drawn uniformly from [low, high). ``float`` / ``int``:
    a continuous or integer range [low, high] (``log`` for a log scale), for TPE and GP.
    """

    name: str
    kind: str
    choices: tuple[Any, ...] = ()
    mean: float = 0.0
    std: float = 0.0
    size: int = 0
    include: tuple[float, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False


@dataclass(frozen=True)
class SamplerConfig:
    type: str = "random"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PrunerConfig:
    type: str = "none"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PbtConfig:
    """A ``[pbt]`` table: population-based training's settings (defaults: Ray Tune's; :mod:`mnist_hpo.core.pbt`)."""

    population: int
    interval: int  # epochs per segment
    mutable: tuple[str, ...] = ()  # the parameters explore may change; the others are fixed at the start
    quantile: float = 0.25
    resample_probability: float = 0.25
    factors: tuple[float, ...] = (0.8, 1.2)


@dataclass(frozen=True)
class StudyConfig:
    """A validated study file: the study's name, model, data, budget, sampler, pruner and search space.

    Made by :func:`~mnist_hpo.config.load_study_config` (or :func:`~mnist_hpo.config.parse_study`
    from a parsed document); it is frozen, and :meth:`with_overrides` makes a changed copy. The fields
    are the study file's keys (see ``mnist_hpo/studies/ae.toml``); ``model_options`` holds the ``[model]`` table's
    options, ``space`` one :class:`ParamSpec` per hyperparameter.

    >>> from mnist_hpo import load_study_config
    >>> cfg = load_study_config("ae")
    >>> cfg.sampler.type, sorted(cfg.space)
    ('random', ['latent_dim', 'lr', 'nh1', 'optimizer', 'weight_decay'])
    >>> StudyConfig.from_dict(cfg.as_dict()) == cfg
    True
    """

    name: str
    model: str
    dataset: str = "mnist"
    idx_dir: str | None = None
    seed: int = 0
    trials: int = 10
    epochs: int = 10
    batch_size: int = 256
    val_fraction: float = 0.2
    train_subset: int | None = None
    test_subset: int | None = None
    retrain: bool = True
    device: str = "auto"
    trial_figures: bool = True  # attach each trained trial's reconstructions (optuna-dashboard shows them)
    batch_trials: int = 1  # trials trained together in one process (mnist_hpo.train.stacked); see Task.stackable
    objectives: tuple[str, ...] = ()  # () = the family's metric alone; e.g. ("val_mse", "params") for a Pareto front
    enqueue: tuple[dict[str, Any], ...] = ()  # configurations (name -> value) the study runs first (warm start)
    model_options: dict[str, Any] = field(default_factory=dict)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    space: dict[str, ParamSpec] = field(default_factory=dict)
    pbt: PbtConfig | None = None  # population-based training instead of independent trials
    source: str = "<memory>"

    def with_overrides(self, **overrides: Any) -> StudyConfig:
        """A copy with some settings replaced, its values checked again.

        The keywords are the settings of :class:`StudyConfig` (``trials``, ``epochs``, ``train_subset``,
        ``seed``, ``device``, ...), plus the names of their command-line flags where they differ
        (:data:`mnist_hpo.core.settings.FLAG_KEYWORDS`): ``study_name`` (the same as ``name``) and ``subset``
        (the same as ``train_subset``, like ``--subset``). A value of ``None`` leaves that setting as it is, so
        options that were not given can be passed through. Any other keyword is one :class:`UserError`
        that lists the accepted ones. The values that hold for any family are checked here; those
        against the model family (:func:`mnist_hpo.tasks.check_config`) where the config is used:
        ``run_study`` and every task check it before anything trains.

        **A new meaning needs a new name.** Settings that change what a trial's value means (those in
        :data:`NEW_STUDY`: ``epochs``, ``seed``, ``dataset``, ``train_subset``, ``test_subset``,
        ``batch_size``, ``val_fraction``, the model's options, the sampler, pruner, space and objectives)
        make another study, so changing one requires ``study_name=``. Without it the copy would keep the
        file's name, and running it would create that study with other settings (after which the file's
        own run is refused as "created with other settings"), or be refused by it. Passing the current
        name keeps it on purpose (e.g. a GAN run continued for more epochs). Settings that keep trials
        comparable (``trials``, ``device``, ``batch_trials``, ``retrain``, ``trial_figures``,
        ``enqueue``) keep the name. The command line's rule is the same: ``--epochs``, ``--subset`` and
        ``--seed`` need ``--study-name``.

        >>> from mnist_hpo import load_study_config
        >>> cfg = load_study_config("ae")
        >>> cfg.with_overrides(trials=3).name
        'ae'
        >>> short = cfg.with_overrides(study_name="ae-short", trials=3, epochs=1, subset=2000)
        >>> short.name, short.trials, short.epochs, short.train_subset
        ('ae-short', 3, 1, 2000)
        >>> cfg.with_overrides(epochs=1)
        Traceback (most recent call last):
        mnist_hpo.errors.UserError: with_overrides(epochs=1) changes what a trial means, so it is another study: name it, e.g. study_name='ae-epochs1' (--study-name on the command line)
        >>> cfg.with_overrides(epoch=1)
        Traceback (most recent call last):
        mnist_hpo.errors.UserError: with_overrides: unknown setting 'epoch'; accepted: batch_size, batch_trials, dataset, device, enqueue, epochs, idx_dir, model, model_options, name, objectives, pbt, pruner, retrain, sampler, seed, source, space, study_name, subset, test_subset, train_subset, trial_figures, trials, val_fraction
        """
        accepted = {f.name for f in dataclasses.fields(self)} | set(FLAG_KEYWORDS)
        unknown = sorted(set(overrides) - accepted)
        if unknown:
            raise UserError(
                f"with_overrides: unknown setting{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; accepted: {', '.join(sorted(accepted))}"
            )
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if value is None:
                continue
            field_name = FLAG_KEYWORDS.get(key, key)
            if field_name in changes and changes[field_name] != value:
                raise UserError(
                    f"with_overrides: {key}={value!r} and {field_name}={changes[field_name]!r} "
                    "set the same setting; pass one of them"
                )
            changes[field_name] = value
        new = dataclasses.replace(self, **changes)
        check_values(new, Checker(f"{self.source} (after command-line overrides)"))
        new_meaning = [k for k in NEW_STUDY if k in changes and changes[k] != getattr(self, k)]
        if new_meaning and "name" not in changes:
            shown = ", ".join(f"{k}={changes[k]!r}" for k in new_meaning)
            suggestion = "-".join(
                [
                    self.name,
                    *(
                        f"{OVERRIDE_LABELS.get(k, k.replace('_', '-'))}{changes[k]}"
                        for k in new_meaning
                        if isinstance(changes[k], (int, str))
                    ),
                ]
            )
            raise UserError(
                f"with_overrides({shown}) changes what a trial means, so it is another study: name it, "
                f"e.g. study_name={suggestion!r} (--study-name on the command line)"
            )
        return new

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyConfig:
        """Rebuild a config stored with a study or an export (the inverse of :meth:`as_dict`)."""
        d = dict(d)
        d["objectives"] = tuple(d.get("objectives", ()))
        d["enqueue"] = tuple(dict(e) for e in d.get("enqueue", ()))
        d["sampler"] = SamplerConfig(**d.get("sampler", {}))
        d["pruner"] = PrunerConfig(**d.get("pruner", {}))
        pbt = d.get("pbt")
        d["pbt"] = (
            PbtConfig(**{**pbt, "mutable": tuple(pbt["mutable"]), "factors": tuple(pbt["factors"])}) if pbt else None
        )
        d["space"] = {
            k: ParamSpec(**{**v, "choices": tuple(v.get("choices", ())), "include": tuple(v.get("include", ()))})
            for k, v in d.get("space", {}).items()
        }
        return cls(**d)


# --- validation helpers ----------------------------------------------------------------


class Checker:
    """Raises a study file's mistakes as :class:`UserError` lines that name the file and the key."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, msg: str) -> NoReturn:
        raise UserError(f"{self.source}: {key} {msg}")

    def table(self, doc: Mapping[str, Any], key: str, required: bool = False) -> dict[str, Any]:
        if key not in doc:
            if required:
                self.fail(f"[{key}]", "table is missing; see mnist_hpo/studies/ae.toml for an example")
            return {}
        value = doc[key]
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
        return value

    def unknown(self, table: Mapping[str, Any], allowed: Collection[str], prefix: str) -> None:
        """Fail on the first key of ``table`` (the table ``[prefix]``) that is not ``allowed``, naming the closest."""
        extra = sorted(set(table) - set(allowed))
        if extra:
            self.fail(
                f"{prefix}.{extra[0]}",
                f"is not a known key; {did_you_mean(extra[0], allowed)}allowed: {', '.join(sorted(allowed))}",
            )

    def get(
        self,
        table: Mapping[str, Any],
        key: str,
        types: tuple[type, ...],
        prefix: str,
        default: Any = ...,
    ) -> Any:
        if key not in table:
            if default is ...:
                self.fail(f"{prefix}.{key}", "is required")
            return default
        value = table[key]
        # bool is an int subclass; never accept it where a number is meant.
        if isinstance(value, bool) and bool not in types:
            self.fail(f"{prefix}.{key}", f"must be {_type_names(types)}, got {value!r}")
        if not isinstance(value, types):
            self.fail(f"{prefix}.{key}", f"must be {_type_names(types)}, got {value!r}")
        return value


def check_study_name(c: Checker, name: str) -> None:
    """A name that will be joined into paths: the safe set of :mod:`mnist_hpo.core.names`."""
    problem = name_problem(name)
    if problem:
        c.fail("study.name", f"{shown(name)} {problem}; {RULE}")


def _type_names(types: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def check_values(cfg: StudyConfig, c: Checker) -> None:
    """The values of ``[study]`` that hold for any model family and any data."""
    check_study_name(c, cfg.name)
    if cfg.trials < 1:
        c.fail("study.trials", f"must be at least 1, got {cfg.trials}")
    if cfg.epochs < 1:
        c.fail("study.epochs", f"must be at least 1, got {cfg.epochs}")
    if cfg.batch_size < 1:
        c.fail("study.batch_size", f"must be at least 1, got {cfg.batch_size}")
    if not 0.0 < cfg.val_fraction < 1.0:
        c.fail("study.val_fraction", f"must be between 0 and 1, got {cfg.val_fraction}")
    for key in ("train_subset", "test_subset"):
        value = getattr(cfg, key)
        if value is not None and value < 10:
            c.fail(f"study.{key}", f"must be at least 10 images, got {value}")
    if cfg.batch_trials < 1:
        c.fail("study.batch_trials", f"must be at least 1, got {cfg.batch_trials}")
    if cfg.batch_trials > 1 and cfg.model_options.get("finetune"):
        c.fail("study.batch_trials", "above 1 needs the frozen encoder; set it to 1 with model.finetune = true")
    if cfg.device not in ("auto", "cpu", "cuda") and not (cfg.device.startswith("cuda:") and cfg.device[5:].isdigit()):
        c.fail("study.device", f"must be auto, cpu or cuda[:N], got {cfg.device!r}")
