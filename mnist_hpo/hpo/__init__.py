"""The hyperparameter search with Optuna: a study's identity, its search space suggested (suggestions), each trial
trained and scored (objective, trials), samplers, warm starts, the run loop and its worker processes with their
supervision, and population-based training (:mod:`.pbt`). Where studies are stored is :mod:`mnist_hpo.storages`."""
