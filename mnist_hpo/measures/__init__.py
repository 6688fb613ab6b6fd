"""Per-model measures, below the tasks that use them: the Fréchet distance and its judge (:mod:`.frechet`),
reconstructions of fixed images (:mod:`.recon`), the latent space (:mod:`.latent`) and the mean-image
plateau of a reconstruction model (:mod:`.mean_image`)."""
