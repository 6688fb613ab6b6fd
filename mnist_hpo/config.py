"""Study files: ``studies/*.toml`` loaded, checked against their model family, as a :class:`StudyConfig`.

Every mistake in a study file becomes one :class:`UserError` line naming the file,
the key, the value and what is allowed, before any data is loaded or any training starts.
The file's shape is :mod:`mnist_hpo.core.schema`'s (its dataclasses are importable from
here as before); what its values must be for its model family is the family's
(:func:`mnist_hpo.tasks.check_config`). This module sits above both: it finds the family
named by ``model.type`` and reads that family's options.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from .core.schema import (  # noqa: F401  (the schema's names, importable from here as before)
    PARAM_KINDS, PRUNERS, SAMPLERS, STUDY_KEYS, Checker, ParamSpec, PrunerConfig, SamplerConfig, StudyConfig,
    model_options, search_tables, study_table,
)
from .errors import UserError
from .tasks import check_config, registry  # noqa: F401  (check_config: importable from here as before)


def parse_study(doc: dict, source: str = "<memory>") -> StudyConfig:
    """Validate a parsed TOML document and build its :class:`StudyConfig`."""
    c = Checker(source)
    values = study_table(c, doc)
    m = c.table(doc, "model", required=True)
    model = c.get(m, "type", (str,), "model")
    registry.trust_study_file(model)  # running a study file that names an import path is asking to import it
    try:
        task = registry.resolve(model)  # a built-in, an installed plugin or "package.module:ClassName"
    except UserError as e:
        raise UserError(f"{source}: {e}") from None
    options = model_options(c, m, task.option_schema)  # the family's own options (its task class)
    sampler, pruner, space = search_tables(c, doc)
    cfg = StudyConfig(
        model=model, model_options=options, sampler=sampler, pruner=pruner, space=space, source=source, **values
    )
    check_config(cfg)
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
