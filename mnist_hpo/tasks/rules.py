"""What a model family accepts, and the checks of a study file that depend on its family.

Each task declares its :class:`Rule` s (``Task.space_rules``, ``Task.option_rules``);
:func:`mnist_hpo.config.check_config` calls the functions here after the family-independent
checks, so a new family brings its constraints with it and ``config.py`` names no family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Checker, StudyConfig


@dataclass(frozen=True)
class Rule:
    """The values a model family accepts for one hyperparameter or model option.

    Each task declares its own (``Task.space_rules``, ``Task.option_rules``), so a new
    family brings its constraints with it; :func:`mnist_hpo.config.check_config` applies them to every
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


def check_family(cfg: StudyConfig, c: Checker) -> None:
    """Every model option and every value of the search space against the model family's rules."""
    from ..hpo.spaces import draw_list  # numpy only; spaces imports this module
    from . import task_class  # the tasks import this module: imported when first needed

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


def check_objectives(cfg: StudyConfig, c: Checker) -> None:
    """Several objectives: the family's metric first, then extra ones; Optuna prunes no multi-objective trial."""
    from ..hpo.objective import EXTRA_OBJECTIVES
    from . import task_class

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


def check_enqueue(cfg: StudyConfig, c: Checker) -> None:
    """Every enqueued value a value the study's space can suggest (Optuna refuses any other categorical value)."""
    from ..hpo.spaces import draw_list

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
