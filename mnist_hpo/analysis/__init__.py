"""Stage 7, analysis of trained models: the latent space (latent, explore), reconstructions (recon), and generated-digit quality (frechet: Fréchet distance and class coverage)."""
