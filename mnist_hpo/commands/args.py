"""The typed arguments of each command, made once from the parsed command line by :mod:`mnist_hpo.cli`.

Past the command line nothing reads an argparse ``Namespace``: the light checks (:mod:`.checks`) and
the commands' bodies take these. The study settings a command's flags override (the rows of
:data:`mnist_hpo.core.settings.STUDY_SETTINGS` with a flag) are one mapping, ``overrides``, from
setting to value, holding only the flags given; :meth:`StudyConfig.with_overrides` takes it as it is.
A field's name is its flag's (``--warm-start-trials``: ``warm_start_trials``); the defaults are the
parser's, in :mod:`mnist_hpo.cli`.

Only the standard library is imported here: the command line reads it before any heavy import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

_T = TypeVar("_T")


def given(overrides: Mapping[str, object], key: str, kind: type[_T]) -> _T | None:
    """The value of setting ``key`` in ``overrides``, None where its flag was not given; it is a ``kind`` (what
    the parser reads the flag's kind as: ``int`` for "count" and "int", ``str`` for "text")."""
    value = overrides.get(key)
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"override {key}={value!r} is no {kind.__name__}")
    return value


@dataclass(frozen=True)
class RunArgs:
    """``study`` and ``worker``: a study file, its overrides, and how to run it."""

    study: str
    overrides: Mapping[str, object]
    storage: str | None
    quiet: bool
    warm_start: str | None
    warm_start_trials: int
    storage_patience: int | None
    workers: int = 1  # study only
    no_retrain: bool = False  # study only
    max_trials: int | None = None  # worker only


@dataclass(frozen=True)
class ExportArgs:
    name: str
    trial: int | None
    redo: bool
    storage: str | None
    quiet: bool


@dataclass(frozen=True)
class ShowArgs:
    name: str
    storage: str | None
    k: int


@dataclass(frozen=True)
class CompareArgs:
    studies: list[str]
    storage: str | None
    journals: str | None
    out: str | None
    target: float


@dataclass(frozen=True)
class RerunArgs:
    name: str
    trial: int
    storage: str | None


@dataclass(frozen=True)
class VerifyArgs:
    path: str
    storage: str | None
    journals: str | None
    rescore: bool


@dataclass(frozen=True)
class ListArgs:
    storage: str | None


@dataclass(frozen=True)
class DeleteArgs:
    name: str
    storage: str | None
    yes: bool


@dataclass(frozen=True)
class CompactArgs:
    paths: list[str]


@dataclass(frozen=True)
class DataArgs:
    dataset: str
    idx_dir: str | None


@dataclass(frozen=True)
class ExploreArgs:
    export: str | None
    study: str
    points: int
    tsne_points: int
    tsne_iter: int
    noise_mean: float
    noise_std: float
    sample: int
    interpolate: Sequence[int]  # two; argparse's nargs=2 gives a list
    threads: int
    seed: int
    out: str | None


@dataclass(frozen=True)
class ReportArgs:
    storage: str | None
    out: str | None
    journals: str | None
    study: list[str]  # SECTION=NAME items


@dataclass(frozen=True)
class GanArgs:
    study: str
    overrides: Mapping[str, object]
    run: str | None
    every: int
    fresh: bool


@dataclass(frozen=True)
class ReproduceArgs:
    out: str
    only: str | None
    workers: int | None
    overrides: Mapping[str, object]
    gan_epochs: int | None
    quiet: bool


@dataclass(frozen=True)
class DashboardArgs:
    storage: str | None
    host: str
    port: int
    allow_remote: bool


# Each command's arguments; mnist_hpo.cli fills one from the parsed command line by field name.
ARGS: dict[str, type] = {
    "study": RunArgs,
    "worker": RunArgs,
    "export": ExportArgs,
    "show": ShowArgs,
    "compare": CompareArgs,
    "rerun": RerunArgs,
    "verify": VerifyArgs,
    "list": ListArgs,
    "delete": DeleteArgs,
    "compact": CompactArgs,
    "data": DataArgs,
    "explore": ExploreArgs,
    "report": ReportArgs,
    "gan": GanArgs,
    "reproduce": ReproduceArgs,
    "dashboard": DashboardArgs,
}
