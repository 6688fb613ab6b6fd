import math

import pytest
import torch

from mnist_hpo.models.gan import GAN, sample_sphere


def test_sphere_sampling_has_norm_sqrt_dim_and_no_preferred_direction():
    z = sample_sphere(4000, 100, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 100)
    assert torch.allclose(z.norm(dim=1), torch.full((4000,), math.sqrt(100.0)), atol=1e-4)
    # Uniform on the sphere: the mean vector is near 0 (each coordinate has std 1/sqrt(4000)).
    assert z.mean(0).abs().max() < 0.1
    again = sample_sphere(4000, 100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, again)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_generator_and_discriminator_shapes_and_ranges(arch):
    torch.manual_seed(0)
    gan = GAN(arch=arch)
    z = sample_sphere(16, 100) * 5  # far outside the training sphere: Tanh must still bound the output
    images = gan(z)
    assert images.shape == (16, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1
    assert images.std() > 0  # not a constant image
    logits = gan.discriminator(images)
    assert logits.shape == (16,)
    samples = gan.sample(8, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (8, 1, 28, 28) and gan.generator.training  # sample() restores train mode


def test_mlp_matches_the_reports_table_4():
    gan = GAN(arch="mlp", slope=0.2, dropout=0.3)
    g = [m for m in gan.generator.modules() if isinstance(m, torch.nn.Linear)]
    d = [m for m in gan.discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in g] == [(100, 256), (256, 512), (512, 784)]
    assert [(m.in_features, m.out_features) for m in d] == [(784, 512), (512, 256), (256, 1)]
    slopes = {m.negative_slope for m in gan.modules() if isinstance(m, torch.nn.LeakyReLU)}
    drops = {m.p for m in gan.modules() if isinstance(m, torch.nn.Dropout)}
    assert slopes == {0.2} and drops == {0.3}


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="mlp, dcgan"):
        GAN(arch="resnet")
