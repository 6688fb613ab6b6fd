"""Stage 1, data: MNIST and Fashion-MNIST held in memory (datasets) and the corruptions a denoising autoencoder learns to undo (noise)."""
