"""Stage 1, data: MNIST and Fashion-MNIST held in memory (datasets) and the corruptions a denoising autoencoder learns to undo (noise)."""

# Here, not in datasets (which imports torch): the study file's check of study.dataset needs only the names.
DATASETS = ("mnist", "fashion-mnist")
