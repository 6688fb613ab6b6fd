"""Workflows that string the stages together: the long GAN run (``mnist-hpo gan``) and ``make reproduce``."""
