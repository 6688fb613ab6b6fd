"""mnist-hpo: Optuna hyperparameter studies for the models of an MNIST unsupervised-learning report.

The public Python API, from a study file to a loaded model (about a minute on two CPU cores;
each name's own docstring has a shorter example, and ``tests/test_api.py`` runs them all)::

    >>> from mnist_hpo import export_best, latest_export, load_export, load_study_config, run_study
    >>> cfg = load_study_config("ae").with_overrides(
    ...     study_name="ae-quick", trials=2, epochs=1, subset=1000, test_subset=500)  # another study: its own name
    >>> study = run_study(cfg, progress=False)      # runs or resumes it, stored in storage/mnist_hpo.db
    >>> len(study.trials)
    2
    >>> folder = export_best("ae-quick", progress=False)  # retrain the best trial on the 1000 images, test, export
    >>> export_best("ae-quick", progress=False) == folder  # already exported: returned after a sha256 check
    True
    >>> latest_export("ae-quick") == folder
    True
    >>> model, meta = load_export(folder)            # an nn.Module (eval mode, CPU) and its export.json
    >>> sorted(meta["metrics"])
    ['test_mse', 'val_mse']

Overrides that change what a trial means (epochs, subset, seed, ...) need a new ``study_name``
(:meth:`StudyConfig.with_overrides`): the study ``ae`` stays the one its shipped file (``mnist_hpo/studies/ae.toml``) describes.

The names are imported when first used (PEP 562 ``__getattr__``): ``import mnist_hpo`` and
``mnist-hpo --help`` load no torch or Optuna.
"""

from __future__ import annotations

import importlib
from typing import Any

# Where each public name lives; importing those modules loads torch and Optuna (about 2 s), so
# it happens on first use of a name, not on `import mnist_hpo` (which every command does).
_API = {
    "StudyConfig": "mnist_hpo.core.schema",
    "UserError": "mnist_hpo.errors",
    "export_best": "mnist_hpo.artifacts.export",
    "export_study_trial": "mnist_hpo.artifacts.export",
    "latest_export": "mnist_hpo.artifacts.export",
    "load_export": "mnist_hpo.artifacts.loading",
    "load_study_config": "mnist_hpo.config",
    "run_study": "mnist_hpo.hpo.run",
}

__all__ = sorted(_API)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'mnist_hpo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
