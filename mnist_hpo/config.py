"""Study definitions: ``studies/*.toml`` loaded into validated dataclasses.

Every mistake in a study file becomes one :class:`UserError` line naming the file,
the key and what is expected, before any data is loaded or any training starts.

A study file has four tables::

    [study]    name, dataset, seed, trials, epochs, batch_size, val_fraction, ...
    [model]    type = "autoencoder" | ... and that model's own options (its task's option_schema)
    [sampler]  type = "random" | "grid" | "tpe" | "gp", plus options
    [pruner]   type = "none" | "median" | "successive_halving" | "hyperband", plus options
    [space.NAME]  one table per hyperparameter (see :class:`ParamSpec`)
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data.datasets import dataset_names, is_dataset
from .errors import UserError

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
PARAM_KINDS = ("choices", "normal", "randint", "float", "int")


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
    choices: tuple = ()
    mean: float = 0.0
    std: float = 0.0
    size: int = 0
    include: tuple = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False


@dataclass(frozen=True)
class SamplerConfig:
    type: str = "random"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PrunerConfig:
    type: str = "none"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StudyConfig:
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
    objectives: tuple = ()  # () = the family's metric alone; e.g. ("val_mse", "params") for a Pareto front
    enqueue: tuple = ()  # configurations (name -> value) the study runs first (warm start)
    model_options: dict = field(default_factory=dict)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    space: dict[str, ParamSpec] = field(default_factory=dict)
    source: str = "<memory>"

    def with_overrides(self, **overrides) -> "StudyConfig":
        """A copy with the given fields replaced (None values are ignored), validated again."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        new = dataclasses.replace(self, **changes)
        _check_study_values(new, where=f"{self.source} (after command-line overrides)")
        return new

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StudyConfig":
        """Rebuild a config stored with a study or an export (the inverse of :meth:`as_dict`)."""
        d = dict(d)
        d["objectives"] = tuple(d.get("objectives", ()))
        d["enqueue"] = tuple(dict(e) for e in d.get("enqueue", ()))
        d["sampler"] = SamplerConfig(**d.get("sampler", {}))
        d["pruner"] = PrunerConfig(**d.get("pruner", {}))
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

    def fail(self, key: str, msg: str) -> None:
        raise UserError(f"{self.source}: {key} {msg}")

    def table(self, doc: dict, key: str, required: bool = False) -> dict:
        if key not in doc:
            if required:
                self.fail(f"[{key}]", "table is missing; see studies/ae.toml for an example")
            return {}
        value = doc[key]
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
        return value

    def unknown(self, table: dict, allowed: set, prefix: str) -> None:
        extra = sorted(set(table) - set(allowed))
        if extra:
            self.fail(f"{prefix}.{extra[0]}", f"is not a known key; allowed: {', '.join(sorted(allowed))}")

    def get(self, table: dict, key: str, types: tuple[type, ...], prefix: str, default: Any = ..., ) -> Any:
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


def _type_names(types: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check_study_values(cfg: StudyConfig, where: str) -> None:
    c = Checker(where)
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
    if not is_dataset(cfg.dataset):  # a built-in, or one an installed plugin registers
        c.fail("study.dataset", f"must be one of {', '.join(dataset_names())}, got {cfg.dataset!r}")
    if cfg.batch_trials < 1:
        c.fail("study.batch_trials", f"must be at least 1, got {cfg.batch_trials}")
    if cfg.batch_trials > 1:
        from .tasks import TASKS, registry  # the tasks import this module: imported when first needed

        stackable = [name for name, task in TASKS.items() if task.stackable and registry.is_builtin(name)]
        if not registry.resolve(cfg.model).stackable:
            c.fail("study.batch_trials", f"above 1 is supported for {' and '.join(stackable)} studies, not {cfg.model}")
    if cfg.batch_trials > 1 and cfg.model_options.get("finetune"):
        c.fail("study.batch_trials", "above 1 needs the frozen encoder; set it to 1 with model.finetune = true")
    if cfg.device not in ("auto", "cpu", "cuda") and not (cfg.device.startswith("cuda:") and cfg.device[5:].isdigit()):
        c.fail("study.device", f"must be auto, cpu or cuda[:N], got {cfg.device!r}")
    from .tasks.rules import check_enqueue, check_family, check_objectives  # the tasks import this module

    check_family(cfg, c)
    check_objectives(cfg, c)
    check_enqueue(cfg, c)


def check_config(cfg: StudyConfig) -> None:
    """Validate a config built in Python (e.g. with ``dataclasses.replace``) as a study file is validated."""
    _check_study_values(cfg, cfg.source)


STUDY_KEYS = {
    "name": ((str,), ...), "dataset": ((str,), "mnist"), "idx_dir": ((str,), None), "seed": ((int,), 0),
    "trials": ((int,), 10), "epochs": ((int,), 10), "batch_size": ((int,), 256),
    "val_fraction": ((float,), 0.2), "train_subset": ((int,), None), "test_subset": ((int,), None),
    "retrain": ((bool,), True), "device": ((str,), "auto"), "batch_trials": ((int,), 1),
    "trial_figures": ((bool,), True),
    "objectives": ((list,), []), "enqueue": ((list,), []),
}


def _kind_table(c: Checker, doc: dict, name: str, kinds: dict, default: str, cls):
    """A ``[sampler]`` or ``[pruner]`` table: its ``type`` (one of ``kinds``) and that type's options."""
    t = c.table(doc, name)
    kind = c.get(t, "type", (str,), name, default)
    if kind not in kinds:
        c.fail(f"{name}.type", f"must be one of {', '.join(kinds)}, got {kind!r}")
    c.unknown(t, {"type", *kinds[kind]}, name)
    return cls(kind, {k: v for k, v in t.items() if k != "type"})


def parse_study(doc: dict, source: str = "<memory>") -> StudyConfig:
    """Validate a parsed TOML document and build its :class:`StudyConfig`."""
    c = Checker(source)
    c.unknown(doc, {"study", "model", "sampler", "pruner", "space"}, "top level")
    s = c.table(doc, "study", required=True)
    c.unknown(s, set(STUDY_KEYS), "study")
    values = {k: c.get(s, k, types, "study", default) for k, (types, default) in STUDY_KEYS.items()}
    for i, entry in enumerate(values["enqueue"]):
        if not isinstance(entry, dict):
            c.fail(f"study.enqueue[{i}]", f"must be a table of parameter values, e.g. {{lr = 0.001}}, got {entry!r}")
    values["objectives"], values["enqueue"] = tuple(values["objectives"]), tuple(values["enqueue"])
    if not values["name"].replace("-", "").replace("_", "").isalnum():
        c.fail("study.name", f"may hold letters, digits, '-' and '_' only, got {values['name']!r}")

    m = c.table(doc, "model", required=True)
    model = c.get(m, "type", (str,), "model")
    from .tasks import registry  # the tasks import this module: imported when first needed

    registry.trust_study_file(model)  # running a study file that names an import path is asking to import it
    try:
        task = registry.resolve(model)  # a built-in, an installed plugin or "package.module:ClassName"
    except UserError as e:
        raise UserError(f"{source}: {e}") from None
    schema = task.option_schema  # the family's own options (its task class)
    c.unknown(m, {"type", *schema}, "model")
    options = {}
    for key, (types, default, allowed) in schema.items():
        value = c.get(m, key, types, "model", default)
        if allowed is not None and value not in allowed:
            c.fail(f"model.{key}", f"must be one of {', '.join(map(str, allowed))}, got {value!r}")
        options[key] = value

    sampler = _kind_table(c, doc, "sampler", SAMPLERS, "random", SamplerConfig)
    pruner = _kind_table(c, doc, "pruner", PRUNERS, "none", PrunerConfig)
    for key, value in [*sampler.options.items(), *pruner.options.items()]:
        if key == "multivariate":
            if not isinstance(value, bool):
                c.fail("sampler.multivariate", f"must be true or false, got {value!r}")
        elif key != "max_resource" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            c.fail(key, f"must be a non-negative integer, got {value!r}")

    space_doc = c.table(doc, "space")
    from .hpo.spaces import parse_param  # spaces imports this module

    space = {name: parse_param(c, name, t) for name, t in space_doc.items()}
    if sampler.type == "grid":
        for p in space.values():
            if p.kind in ("float", "int"):
                c.fail(f"space.{p.name}", "is a range; a grid sampler needs choices or a draw")

    cfg = StudyConfig(
        model=model, model_options=options, sampler=sampler, pruner=pruner, space=space, source=source, **values
    )
    _check_study_values(cfg, source)
    return cfg


STUDIES_DIR = Path("studies")


def study_path(arg: str) -> Path:
    """``ae`` means ``studies/ae.toml``; anything with a slash or a .toml suffix is a path."""
    if arg.endswith(".toml") or "/" in arg:
        return Path(arg)
    return STUDIES_DIR / f"{arg}.toml"


def load_study_config(path: str | Path) -> StudyConfig:
    """Read and validate ``path``; every problem is one :class:`UserError` line."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"study file {path} not found; the study files are in studies/") from None
    except OSError as e:
        raise UserError(f"cannot read study file {path} ({e.strerror})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path} is not valid TOML ({e}); fix the file and run again") from None
    return parse_study(doc, source=str(path))
