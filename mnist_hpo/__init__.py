"""mnist-hpo: Optuna hyperparameter studies for the models of an MNIST unsupervised-learning report.

The public Python API::

    from mnist_hpo import load_study_config, run_study, export_best, load_export

    cfg = load_study_config("studies/ae.toml").with_overrides(trials=3, epochs=1)
    study = run_study(cfg)                 # runs or resumes, persisted to storage/
    folder = export_best(cfg.name)         # retrain the best trial on all 60k, test, export
    other = export_best(cfg.name, trial=2) # or any other complete trial (export_study_trial(name, 2))
    model, meta = load_export(folder)      # an nn.Module and its metadata
"""

from .config import StudyConfig, load_study_config
from .errors import UserError
from .artifacts.export import export_best, export_study_trial, latest_export, load_export
from .hpo.run import run_study

__all__ = ["StudyConfig", "UserError", "export_best", "export_study_trial", "latest_export", "load_export", "load_study_config", "run_study"]
__version__ = "0.1.0"
