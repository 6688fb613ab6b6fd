"""The checks of a study that depend on its model family and its data: the family's rules applied.

:func:`check_config` is what every study passes before anything trains: the values that
hold for any family (:func:`mnist_hpo.core.schema.check_values`), the dataset's name, then
the family's own constraints (its :class:`~mnist_hpo.tasks.rules.Rule` s, whether it can
stack trials or be trained by population-based training, its metric among the objectives) and the
warm-start values.
"""

from __future__ import annotations

from ..core.pbt import check_pbt
from ..core.schema import EXTRA_OBJECTIVES, Checker, StudyConfig, check_values
from ..core.space import check_enqueue, draw_list
from ..data.names import dataset_names, is_dataset
from ..errors import did_you_mean
from . import registry
from .known import REGISTRY


def check_config(cfg: StudyConfig, where: str | None = None) -> None:
    """Validate a config (loaded from a file or built in Python) as a study file is validated."""
    c = Checker(where or cfg.source)
    check_values(cfg, c)
    if not is_dataset(cfg.dataset):  # a built-in, or one an installed plugin registers
        c.fail("study.dataset", f"must be one of {', '.join(dataset_names())}, got {cfg.dataset!r}")
    if cfg.batch_trials > 1:
        stackable = [name for name, task in REGISTRY.items() if task.stackable and registry.is_builtin(name)]
        if not registry.resolve(cfg.model).stackable:
            c.fail("study.batch_trials", f"above 1 is supported for {' and '.join(stackable)} studies, not {cfg.model}")
    check_family(cfg, c)
    check_pbt(cfg, c)
    check_pbt_family(cfg, c)
    check_objectives(cfg, c)
    check_enqueue(cfg, c)


def check_family(cfg: StudyConfig, c: Checker) -> None:
    """Every model option and every value of the search space against the model family's rules."""
    task = registry.resolve(cfg.model)
    family = f"the {cfg.model} model"
    for key, rule in task.option_rules.items():
        value = cfg.model_options.get(key)
        if value is not None and not rule.accepts(value):
            c.fail(f"model.{key}", f"must be {rule.describe()}, got {value!r}")
    rules = task.space_rules
    for name, spec in cfg.space.items():
        if name not in rules:
            c.fail(
                f"space.{name}", f"is not a parameter of {family}; {did_you_mean(name, rules)}it has {', '.join(rules)}"
            )
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
        c.fail(
            f"space.{missing[0]}", f"is missing; {family} needs {', '.join(n for n, r in rules.items() if r.required)}"
        )


def check_pbt_family(cfg: StudyConfig, c: Checker) -> None:
    """``[pbt]``: the family has the hooks population-based training needs, and lets each mutable parameter change."""
    if cfg.pbt is None:
        return
    task = registry.resolve(cfg.model)
    if not task.trains_in_segments():
        able = [name for name, t in REGISTRY.items() if t.trains_in_segments() and registry.is_builtin(name)]
        c.fail(
            "[pbt]",
            f"needs a model family that can save and restore its training state; {cfg.model} cannot "
            f"(population-based training supports {', '.join(able)} and plugins with the hooks of "
            "docs/plugins.md); remove [pbt] to run independent trials",
        )
    for name in cfg.pbt.mutable:
        if name not in task.pbt_mutable:
            allowed = ", ".join(task.pbt_mutable) or "none"
            c.fail(
                "pbt.mutable",
                f"names {name!r}, which cannot change while {cfg.model} trains (it shapes the model "
                f"or its optimizer); it may change: {allowed}",
            )


def check_objectives(cfg: StudyConfig, c: Checker) -> None:
    """Several objectives: the family's metric first, then extra ones; Optuna prunes no multi-objective trial."""
    if not cfg.objectives:
        return
    metric = registry.resolve(cfg.model).metric
    allowed = ", ".join([metric, *EXTRA_OBJECTIVES])
    for name in cfg.objectives:
        if not isinstance(name, str) or name not in (metric, *EXTRA_OBJECTIVES):
            c.fail("study.objectives", f"holds {name!r}; each objective must be one of {allowed}")
    if cfg.objectives[0] != metric or len(set(cfg.objectives)) != len(cfg.objectives):
        c.fail(
            "study.objectives",
            f'must start with the model\'s metric {metric!r} and name each objective once, e.g. ["{metric}", "params"]',
        )
    if len(cfg.objectives) > 1:
        if cfg.pruner.type != "none":
            c.fail(
                "pruner.type",
                f'must be "none" with several objectives (Optuna cannot prune multi-objective '
                f"trials), got {cfg.pruner.type!r}",
            )
        if cfg.batch_trials > 1:
            c.fail("study.batch_trials", "must be 1 with several objectives (stacked trials have one objective)")
