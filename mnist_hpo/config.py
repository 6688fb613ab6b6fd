"""Study definitions: ``studies/*.toml`` loaded into validated dataclasses.

Every mistake in a study file becomes one :class:`UserError` line naming the file,
the key and what is expected, before any data is loaded or any training starts.

A study file has four tables::

    [study]    name, dataset, seed, trials, epochs, batch_size, val_fraction, ...
    [model]    type = "autoencoder" | ... and that model's own options
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

from .data.datasets import DATASETS
from .errors import UserError

# Each model type's own options: name -> (accepted types, default, allowed values or None).
MODEL_OPTIONS: dict[str, dict[str, tuple[tuple[type, ...], Any, tuple | None]]] = {
    "autoencoder": {},
    # Denoising autoencoder: the noise the encoder's input gets (see mnist_hpo/data/noise.py).
    "denoising": {
        "noise": ((str,), "gaussian", ("gaussian", "salt_and_pepper", "mix")),
        "noise_mean": ((int, float), 0.0, None),
        "noise_std": ((int, float), 0.1, None),
        "noise_amount": ((int, float), 0.1, None),  # salt-and-pepper: fraction of pixels replaced
        "clip": ((bool,), True, None),  # clip the noisy image to [0, 1]
    },
    # Classifier on a trained encoder: encoder_export "" = the latest export of encoder_study.
    "classifier": {
        "encoder_export": ((str,), "", None),
        "encoder_study": ((str,), "ae", None),
        "encoder_sha256": ((str,), "", None),  # filled in when the study starts; checked afterwards
        "finetune": ((bool,), False, None),
    },
    # GAN: architecture and how often / on how many samples the Fréchet distance is measured.
    "gan": {
        "arch": ((str,), "mlp", ("mlp", "dcgan")),
        "latent_dim": ((int,), 100, None),
        "eval_every": ((int,), 1, None),
        "eval_samples": ((int,), 2000, None),
        "final_samples": ((int,), 10000, None),
    },
}
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
STACKABLE = ("autoencoder", "classifier")  # model types whose trials can train stacked (batch_trials)
PARAM_KINDS = ("choices", "normal", "randint", "float", "int")


@dataclass(frozen=True)
class Rule:
    """The values a model family accepts for one hyperparameter or model option.

    Each task declares its own (``Task.space_rules``, ``Task.option_rules``), so a new
    family brings its constraints with it; :func:`check_config` applies them to every
    value of every list (drawn lists after drawing) and to both ends of every range.
    ``kind`` is ``"int"``, ``"float"`` (ints accepted) or ``"choice"`` (one of ``choices``).
    Bounds are inclusive unless ``low_open`` / ``high_open``.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    required: bool = True  # a study of the family must search it (it has no default)

    def describe(self) -> str:
        if self.kind == "choice":
            return f"one of {', '.join(map(str, self.choices))}"
        what = "an integer" if self.kind == "int" else "a number"
        if self.low is not None and self.high is not None:
            return f"{what} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{what} {'above' if self.low_open else 'of at least'} {self.low:g}"
        if self.high is not None:
            return f"{what} {'below' if self.high_open else 'of at most'} {self.high:g}"
        return what

    def accepts(self, value: Any) -> bool:
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        types = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, types) or value != value:  # value != value: NaN
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True


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
    batch_trials: int = 1  # trials trained together in one process (mnist_hpo.train.stacked); see STACKABLE
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

class _Checker:
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
    c = _Checker(where)
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
    if cfg.dataset not in DATASETS:
        c.fail("study.dataset", f"must be one of {', '.join(DATASETS)}, got {cfg.dataset!r}")
    if cfg.batch_trials < 1:
        c.fail("study.batch_trials", f"must be at least 1, got {cfg.batch_trials}")
    if cfg.batch_trials > 1 and cfg.model not in STACKABLE:
        c.fail("study.batch_trials", f"above 1 is supported for {' and '.join(STACKABLE)} studies, not {cfg.model}")
    if cfg.batch_trials > 1 and cfg.model_options.get("finetune"):
        c.fail("study.batch_trials", "above 1 needs the frozen encoder; set it to 1 with model.finetune = true")
    if cfg.device not in ("auto", "cpu", "cuda") and not (cfg.device.startswith("cuda:") and cfg.device[5:].isdigit()):
        c.fail("study.device", f"must be auto, cpu or cuda[:N], got {cfg.device!r}")
    _check_family(cfg, c)
    _check_objectives(cfg, c)
    _check_enqueue(cfg, c)


def _check_objectives(cfg: StudyConfig, c: _Checker) -> None:
    """Several objectives: the family's metric first, then extra ones; Optuna prunes no multi-objective trial."""
    from .hpo.objective import EXTRA_OBJECTIVES
    from .tasks import task_class

    if not cfg.objectives:
        return
    metric = task_class(cfg.model).metric
    allowed = ", ".join([metric, *EXTRA_OBJECTIVES])
    for name in cfg.objectives:
        if not isinstance(name, str) or name not in (metric, *EXTRA_OBJECTIVES):
            c.fail("study.objectives", f"holds {name!r}; each objective must be one of {allowed}")
    if cfg.objectives[0] != metric or len(set(cfg.objectives)) != len(cfg.objectives):
        c.fail("study.objectives", f"must start with the model's metric {metric!r} and name each objective once, "
                                   f"e.g. [\"{metric}\", \"params\"]")
    if len(cfg.objectives) > 1:
        if cfg.pruner.type != "none":
            c.fail("pruner.type", f"must be \"none\" with several objectives (Optuna cannot prune multi-objective "
                                  f"trials), got {cfg.pruner.type!r}")
        if cfg.batch_trials > 1:
            c.fail("study.batch_trials", "must be 1 with several objectives (stacked trials have one objective)")


def _check_enqueue(cfg: StudyConfig, c: _Checker) -> None:
    """Every enqueued value a value the study's space can suggest (Optuna refuses any other categorical value)."""
    from .hpo.spaces import draw_list

    for i, entry in enumerate(cfg.enqueue):
        where = f"study.enqueue[{i}]"
        if not isinstance(entry, dict) or not entry:
            c.fail(where, f"must be a table of parameter values, e.g. {{lr = 0.001}}, got {entry!r}")
        for name, value in entry.items():
            spec = cfg.space.get(name)
            if spec is None:
                c.fail(f"{where}.{name}", f"is not a parameter of the study's space; it has {', '.join(cfg.space)}")
            if spec.kind in ("float", "int"):
                types = (int,) if spec.kind == "int" else (int, float)
                if isinstance(value, bool) or not isinstance(value, types) or not spec.low <= value <= spec.high:
                    c.fail(f"{where}.{name}", f"must be {'an integer' if spec.kind == 'int' else 'a number'} in the "
                                              f"range [{spec.low:g}, {spec.high:g}], got {value!r}")
                continue
            allowed = list(dict.fromkeys(draw_list(spec, cfg.seed)))
            if (isinstance(value, bool) and not any(isinstance(v, bool) for v in allowed)) or value not in allowed:
                c.fail(f"{where}.{name}", f"is {value!r}, which the space's list does not hold (the sampler can only "
                                          f"suggest {', '.join(map(repr, allowed))}); pick one of them, or make "
                                          f"space.{name} a range")


def check_config(cfg: StudyConfig) -> None:
    """Validate a config built in Python (e.g. with ``dataclasses.replace``) as a study file is validated."""
    _check_study_values(cfg, cfg.source)


def _check_family(cfg: StudyConfig, c: _Checker) -> None:
    """Every model option and every value of the search space against the model family's rules."""
    from .hpo.spaces import draw_list  # numpy only; spaces imports this module
    from .tasks import task_class  # the tasks import this module: imported when first needed

    task = task_class(cfg.model)
    family = f"the {cfg.model} model"
    for key, rule in task.option_rules.items():
        value = cfg.model_options.get(key)
        if value is not None and not rule.accepts(value):
            c.fail(f"model.{key}", f"must be {rule.describe()}, got {value!r}")
    rules = task.space_rules
    for name, spec in cfg.space.items():
        if name not in rules:
            c.fail(f"space.{name}", f"is not a parameter of {family}; it has {', '.join(rules)}")
        rule = rules[name]
        if spec.kind in ("float", "int"):
            if rule.kind == "choice":
                c.fail(f"space.{name}", f"is a choice ({rule.describe()}), not a range; give choices = [...]")
            if rule.kind == "int" and spec.kind == "float":
                c.fail(f"space.{name}.range", "must be 'int': this parameter is an integer")
            for end in ("low", "high"):
                value = getattr(spec, end)
                if not rule.accepts(value):
                    c.fail(f"space.{name}.{end}", f"must be {rule.describe()}, got {value!r}")
            continue
        for value in draw_list(spec, cfg.seed):
            if not rule.accepts(value):
                drawn = "" if spec.kind == "choices" or value in spec.include else f" (drawn with seed {cfg.seed})"
                c.fail(f"space.{name}", f"holds {value!r}{drawn}; every value must be {rule.describe()}")
    missing = [name for name, rule in rules.items() if rule.required and name not in cfg.space]
    if missing:
        c.fail(f"space.{missing[0]}", f"is missing; {family} needs {', '.join(n for n, r in rules.items() if r.required)}")


def _parse_param(c: _Checker, name: str, t: Any) -> ParamSpec:
    prefix = f"space.{name}"
    if not isinstance(t, dict):
        c.fail(prefix, "must be a table, e.g. choices = [1, 2, 3]")
    if "choices" in t:
        c.unknown(t, {"choices"}, prefix)
        choices = c.get(t, "choices", (list,), prefix)
        if not choices:
            c.fail(f"{prefix}.choices", "must not be empty")
        for v in choices:
            if not isinstance(v, (int, float, str, bool)):
                c.fail(f"{prefix}.choices", f"may hold numbers, strings or booleans, not {v!r}")
        return ParamSpec(name, "choices", choices=tuple(choices))
    kind = c.get(t, "draw", (str,), prefix, default=None) or c.get(t, "range", (str,), prefix, default=None)
    if "draw" in t:
        if kind == "normal":
            c.unknown(t, {"draw", "mean", "std", "size", "include"}, prefix)
            std = float(c.get(t, "std", (int, float), prefix))
            if std <= 0:
                c.fail(f"{prefix}.std", f"must be positive, got {std}")
            size = _positive_int(c, t, "size", prefix)
            include = c.get(t, "include", (list,), prefix, default=[])
            for v in include:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    c.fail(f"{prefix}.include", f"must hold numbers, got {v!r}")
            return ParamSpec(name, "normal", mean=float(c.get(t, "mean", (int, float), prefix)), std=std,
                             size=size, include=tuple(float(v) for v in include))
        if kind == "randint":
            c.unknown(t, {"draw", "low", "high", "size"}, prefix)
            low = c.get(t, "low", (int,), prefix)
            high = c.get(t, "high", (int,), prefix)
            if high <= low:
                c.fail(f"{prefix}.high", f"must be greater than low ({low}), got {high}")
            return ParamSpec(name, "randint", low=low, high=high, size=_positive_int(c, t, "size", prefix))
        c.fail(f"{prefix}.draw", f"must be 'normal' or 'randint', got {kind!r}")
    if "range" in t:
        if kind not in ("float", "int"):
            c.fail(f"{prefix}.range", f"must be 'float' or 'int', got {kind!r}")
        c.unknown(t, {"range", "low", "high", "log"}, prefix)
        types = (int, float) if kind == "float" else (int,)
        low = c.get(t, "low", types, prefix)
        high = c.get(t, "high", types, prefix)
        log = c.get(t, "log", (bool,), prefix, default=False)
        if high <= low:
            c.fail(f"{prefix}.high", f"must be greater than low ({low}), got {high}")
        if log and low <= 0:
            c.fail(f"{prefix}.low", f"must be positive on a log scale, got {low}")
        return ParamSpec(name, kind, low=low, high=high, log=log)
    c.fail(prefix, "needs one of: choices = [...], draw = 'normal'|'randint', range = 'float'|'int'")
    raise AssertionError  # unreachable


def _positive_int(c: _Checker, t: dict, key: str, prefix: str) -> int:
    value = c.get(t, key, (int,), prefix)
    if value < 1:
        c.fail(f"{prefix}.{key}", f"must be at least 1, got {value}")
    return value


STUDY_KEYS = {
    "name": ((str,), ...), "dataset": ((str,), "mnist"), "idx_dir": ((str,), None), "seed": ((int,), 0),
    "trials": ((int,), 10), "epochs": ((int,), 10), "batch_size": ((int,), 256),
    "val_fraction": ((float,), 0.2), "train_subset": ((int,), None), "test_subset": ((int,), None),
    "retrain": ((bool,), True), "device": ((str,), "auto"), "batch_trials": ((int,), 1),
    "objectives": ((list,), []), "enqueue": ((list,), []),
}


def _kind_table(c: _Checker, doc: dict, name: str, kinds: dict, default: str, cls):
    """A ``[sampler]`` or ``[pruner]`` table: its ``type`` (one of ``kinds``) and that type's options."""
    t = c.table(doc, name)
    kind = c.get(t, "type", (str,), name, default)
    if kind not in kinds:
        c.fail(f"{name}.type", f"must be one of {', '.join(kinds)}, got {kind!r}")
    c.unknown(t, {"type", *kinds[kind]}, name)
    return cls(kind, {k: v for k, v in t.items() if k != "type"})


def parse_study(doc: dict, source: str = "<memory>") -> StudyConfig:
    """Validate a parsed TOML document and build its :class:`StudyConfig`."""
    c = _Checker(source)
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
    if model not in MODEL_OPTIONS:
        c.fail("model.type", f"must be one of {', '.join(MODEL_OPTIONS)}, got {model!r}")
    schema = MODEL_OPTIONS[model]
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
    space = {name: _parse_param(c, name, t) for name, t in space_doc.items()}
    if sampler.type == "grid":
        for p in space.values():
            if p.kind in ("float", "int"):
                c.fail(f"space.{p.name}", "is a range; a grid sampler needs choices or a draw")

    cfg = StudyConfig(
        model=model, model_options=options, sampler=sampler, pruner=pruner, space=space, source=source, **values
    )
    _check_study_values(cfg, source)
    return cfg


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
