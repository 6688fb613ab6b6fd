"""What the studies and their models show: anytime curves by protocol (anytime), which settings matter (importance),
trials stuck on the mean-image plateau (plateau), an export's latent space (explore) and every noise against every
denoiser (noise_cross)."""
