import numpy as np
import torch

from mnist_hpo.measures import recon
from mnist_hpo.models import Autoencoder


def test_reconstruction_rows(tiny):
    torch.manual_seed(0)
    model = Autoencoder(latent_dim=3, nh1=20)
    images = tiny.test_images[:6]
    assert recon.reconstructs(model) and not recon.reconstructs(model.encoder)
    rows = recon.reconstruction_rows(images, [("a", model), ("b", model)])
    assert [label for label, _ in rows] == ["images", "a", "b"]
    assert all(arr.shape == (6, 28, 28) for _, arr in rows)
    np.testing.assert_allclose(rows[0][1], images.numpy() / 255.0)
    assert model.training  # put back as it was

    def corrupt(x, g):
        return x + 0.5 * torch.randn(x.shape, generator=g)

    rows = recon.reconstruction_rows(images, [("a", model)], corrupt=corrupt)
    assert [label for label, _ in rows] == ["images", "noisy input", "a"]
    assert rows[1][1].min() >= 0 and rows[1][1].max() <= 1  # shown clipped
