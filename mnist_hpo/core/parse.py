"""Reading a study file's tables into the values of :mod:`mnist_hpo.core.schema`'s dataclasses.

The checks of a file's shape: its sections, the ``[study]`` keys and their types (from
:data:`mnist_hpo.core.settings.STUDY_SETTINGS`), a ``[model]`` table against its family's options,
``[sampler]``, ``[pruner]`` and each ``[space.NAME]``. Every mistake is one :class:`UserError` line
naming the file and the key (:class:`~mnist_hpo.core.schema.Checker`). No model family is known here:
:mod:`mnist_hpo.config` reads a whole file through this module and the family's own checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple, TypeVar

from ..errors import did_you_mean
from .schema import (
    PRUNERS,
    SAMPLERS,
    SECTIONS,
    Checker,
    ParamSpec,
    PrunerConfig,
    SamplerConfig,
    StudyConfig,
    check_study_name,
)
from .settings import STUDY_SETTINGS

_Config = TypeVar("_Config", SamplerConfig, PrunerConfig)

# The keys of [study]: the TOML types each accepts, and its default, StudyConfig's (one place):
# a field without a default (name) is required.
_FIELDS = {f.name: f for f in dataclasses.fields(StudyConfig)}
STUDY_KEYS = {
    s.key: (s.types, ... if _FIELDS[s.key].default is dataclasses.MISSING else _FIELDS[s.key].default)
    for s in STUDY_SETTINGS
}


def check_sections(c: Checker, doc: Mapping[str, Any]) -> None:
    """Fail on the first top-level name that is not one of :data:`SECTIONS`, naming the closest section."""
    extra = sorted(set(doc) - set(SECTIONS))
    if not extra:
        return
    key, listed = extra[0], ", ".join(f"[{s}]" for s in SECTIONS)
    if not isinstance(doc[key], dict):  # a key above every table: its section's header is missing
        home = "[study]" if key in STUDY_KEYS else f"its section ({listed})"
        c.fail(key, f"is above every section; put it under {home}")
    c.fail(f"[{key}]", f"is not a known section; {did_you_mean(key, SECTIONS, '[{}]')}allowed: {listed}")


def study_table(c: Checker, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The top level and the ``[study]`` table: the values of :class:`StudyConfig`'s own fields."""
    check_sections(c, doc)
    s = c.table(doc, "study", required=True)
    c.unknown(s, set(STUDY_KEYS), "study")
    values = {k: c.get(s, k, types, "study", default) for k, (types, default) in STUDY_KEYS.items()}
    for i, entry in enumerate(values["enqueue"]):
        if not isinstance(entry, dict):
            c.fail(f"study.enqueue[{i}]", f"must be a table of parameter values, e.g. {{lr = 0.001}}, got {entry!r}")
    values["objectives"], values["enqueue"] = tuple(values["objectives"]), tuple(values["enqueue"])
    check_study_name(c, values["name"])
    return values


def parse_study_head(doc: Mapping[str, Any], source: str = "<memory>") -> tuple[dict[str, Any], dict[str, Any], str]:
    """The checks of a study file that need no model family (so no torch): its tables, the ``[study]``
    keys and their types, and ``model.type`` given; the ``[study]`` values, the ``[model]`` table and its type.

    The command line runs them before it imports anything heavy; :func:`mnist_hpo.config.parse_study`
    starts with them.
    """
    c = Checker(source)
    values = study_table(c, doc)
    m = c.table(doc, "model", required=True)
    return values, m, c.get(m, "type", (str,), "model")


class Option(NamedTuple):
    """One ``[model]`` option a family accepts (:attr:`mnist_hpo.tasks.Task.option_schema`): its TOML types,
    its default, and the values allowed (None: any of those types)."""

    types: tuple[type, ...]
    default: Any
    allowed: tuple[Any, ...] | None = None


def model_options(c: Checker, m: Mapping[str, Any], schema: Mapping[str, Option]) -> dict[str, Any]:
    """A ``[model]`` table's options against a family's ``option_schema`` (name -> :class:`Option`; a plugin
    written before it may give the same three values as a plain tuple)."""
    c.unknown(m, {"type", *schema}, "model")
    options: dict[str, Any] = {}
    for key, spec in schema.items():
        types, default, allowed = Option(*spec)
        value = c.get(m, key, types, "model", default)
        if allowed is not None and value not in allowed:
            c.fail(f"model.{key}", f"must be one of {', '.join(map(str, allowed))}, got {value!r}")
        options[key] = value
    return options


def _kind_table(
    c: Checker,
    doc: Mapping[str, Any],
    name: str,
    kinds: Mapping[str, Collection[str]],
    default: str,
    cls: Callable[[str, dict[str, Any]], _Config],
) -> _Config:
    """A ``[sampler]`` or ``[pruner]`` table: its ``type`` (one of ``kinds``) and that type's options."""
    t = c.table(doc, name)
    kind: str = c.get(t, "type", (str,), name, default)
    if kind not in kinds:
        c.fail(f"{name}.type", f"must be one of {', '.join(kinds)}, got {kind!r}")
    c.unknown(t, {"type", *kinds[kind]}, name)
    return cls(kind, {k: v for k, v in t.items() if k != "type"})


def search_tables(c: Checker, doc: Mapping[str, Any]) -> tuple[SamplerConfig, PrunerConfig, dict[str, ParamSpec]]:
    """The ``[sampler]``, ``[pruner]`` and ``[space.*]`` tables."""
    sampler = _kind_table(c, doc, "sampler", SAMPLERS, "random", SamplerConfig)
    pruner = _kind_table(c, doc, "pruner", PRUNERS, "none", PrunerConfig)
    for key, value in [*sampler.options.items(), *pruner.options.items()]:
        if key == "multivariate":
            if not isinstance(value, bool):
                c.fail("sampler.multivariate", f"must be true or false, got {value!r}")
        elif key != "max_resource" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            c.fail(key, f"must be a non-negative integer, got {value!r}")
    space = {name: parse_param(c, name, t) for name, t in c.table(doc, "space").items()}
    if sampler.type == "grid":
        for p in space.values():
            if p.kind in ("float", "int"):
                c.fail(f"space.{p.name}", "is a range; a grid sampler needs choices or a draw")
    return sampler, pruner, space


def parse_param(c: Checker, name: str, t: Any) -> ParamSpec:
    """A study file's ``[space.NAME]`` table as a :class:`ParamSpec`; any mistake is one ``c.fail`` line."""
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
            return ParamSpec(
                name,
                "normal",
                mean=float(c.get(t, "mean", (int, float), prefix)),
                std=std,
                size=size,
                include=tuple(float(v) for v in include),
            )
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


def _positive_int(c: Checker, t: Mapping[str, Any], key: str, prefix: str) -> int:
    value: int = c.get(t, key, (int,), prefix)
    if value < 1:
        c.fail(f"{prefix}.{key}", f"must be at least 1, got {value}")
    return value
