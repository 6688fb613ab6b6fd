"""The images the models learn from: MNIST and Fashion-MNIST held in memory (datasets), read and checked from
their files (sources, integrity), a plugin's data by name (names), and the corruptions a denoising autoencoder learns to
undo (noise)."""
