"""A variational autoencoder on MNIST as an mnist-hpo plugin (model.type = "vae").

The package registers :class:`mnist_hpo_vae.task.VaeTask` as the entry point ``vae`` in the group
``mnist_hpo.tasks`` (see pyproject.toml); mnist-hpo finds it there, and nothing in mnist-hpo names it.
"""

__version__ = "0.1.0"
