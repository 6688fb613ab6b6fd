"""Study files (``mnist_hpo/studies/*.toml`` shipped, or a path of your own) loaded, checked against their model family, as a :class:`StudyConfig`.

Every mistake in a study file becomes one :class:`UserError` line naming the file,
the key, the value and what is allowed, before any data is loaded or any training starts.
The file's shape is :mod:`mnist_hpo.core.parse`'s and its dataclasses :mod:`mnist_hpo.core.schema`'s
(the command line's light checks import them from core, without the model families and torch); what its values must be for its
model family is the family's (:func:`mnist_hpo.tasks.check_config`). This module sits above both: it finds the family
named by ``model.type`` and reads that family's options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .core.parse import model_options, parse_study_head, search_tables
from .core.pbt import pbt_table
from .core.schema import Checker, StudyConfig
from .core.study_files import read_study_document, study_path, study_source
from .errors import UserError
from .tasks import check_config, registry


def parse_study(doc: dict[str, Any], source: str = "<memory>") -> StudyConfig:
    """Validate a parsed TOML document and build its :class:`StudyConfig`."""
    c = Checker(source)
    values, m, model = parse_study_head(doc, source)
    registry.trust_study_file(model)  # running a study file that names an import path is asking to import it
    try:
        task = registry.resolve(model)  # a built-in, an installed plugin or "package.module:ClassName"
    except UserError as e:
        raise UserError(f"{source}: {e}") from None
    options = model_options(c, m, task.option_schema)  # the family's own options (its task class)
    sampler, pruner, space = search_tables(c, doc)
    cfg = StudyConfig(
        model=model,
        model_options=options,
        sampler=sampler,
        pruner=pruner,
        space=space,
        pbt=pbt_table(c, doc),
        source=source,
        **values,
    )
    check_config(cfg)
    return cfg


def load_study_config(path: str | Path) -> StudyConfig:
    """Read and validate a study file; every problem is one :class:`UserError` line.

    ``path`` is the name of a study that ships with the package (``"ae"``), or the path of a
    file of your own (anything with a slash or a ``.toml`` suffix), as ``mnist-hpo study`` takes it.

    >>> cfg = load_study_config("ae")
    >>> cfg.name, cfg.model, cfg.trials, cfg.epochs
    ('ae', 'autoencoder', 50, 50)
    >>> load_study_config("studies/nothing.toml")
    Traceback (most recent call last):
    mnist_hpo.errors.UserError: study file studies/nothing.toml not found; check the path (the studies that ship with mnist-hpo are named without one: ...)
    """
    path = study_path(path)
    return parse_study(read_study_document(path), source=study_source(path))
