import pytest
import torch
from torch import nn

from mnist_hpo.data.noise import Noise, fixed_noisy_copy, gaussian, salt_and_pepper
from mnist_hpo.train.loops import train_autoencoder_epoch


def gray(n=64):
    return torch.full((n, 1, 28, 28), 0.5)


def test_gaussian_statistics():
    clean = gray()
    diff = gaussian(clean, torch.Generator().manual_seed(0), std=0.1) - clean
    assert abs(diff.mean().item()) < 0.002
    assert diff.std().item() == pytest.approx(0.1, rel=0.02)
    shifted = gaussian(clean, torch.Generator().manual_seed(0), std=0.1, mean=0.2) - clean
    assert shifted.mean().item() == pytest.approx(0.2, abs=0.002)


def test_clipping_keeps_images_valid():
    clean = torch.zeros(32, 1, 28, 28)  # black background: half the Gaussian noise is negative
    clipped = Noise("gaussian", std=0.1, clip=True)(clean, torch.Generator().manual_seed(1))
    raw = Noise("gaussian", std=0.1, clip=False)(clean, torch.Generator().manual_seed(1))
    assert clipped.min().item() == 0.0 and clipped.max().item() <= 1.0
    assert raw.min().item() < -0.2
    assert torch.equal(clipped, raw.clamp(0, 1))


def test_salt_and_pepper_statistics():
    clean = gray()
    noisy = salt_and_pepper(clean, torch.Generator().manual_seed(2), amount=0.2)
    changed = noisy != clean
    assert changed.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(noisy[changed].unique().tolist()) == {0.0, 1.0}
    assert (noisy[changed] == 1).float().mean().item() == pytest.approx(0.5, abs=0.02)


def test_mix_gives_each_image_one_kind():
    clean = gray(200)
    noisy = Noise("mix", std=0.05, amount=0.2, clip=False)(clean, torch.Generator().manual_seed(3))
    has_extremes = ((noisy == 0) | (noisy == 1)).flatten(1).any(1)
    gaussian_like = (noisy != clean).flatten(1).all(1)
    assert torch.equal(has_extremes, ~gaussian_like)  # exactly one kind per image
    assert 60 < has_extremes.sum().item() < 140


@pytest.mark.parametrize("kind", ["gaussian", "salt_and_pepper", "mix"])
def test_clean_batch_is_untouched_and_noise_is_fresh_per_call(kind):
    clean = gray(8)
    before = clean.clone()
    noise, g = Noise(kind), torch.Generator().manual_seed(4)
    first, second = noise(clean, g), noise(clean, g)
    assert torch.equal(clean, before)
    assert not torch.equal(first, second)  # the next batch gets new noise
    assert torch.equal(first, noise(clean, torch.Generator().manual_seed(4)))  # same state, same noise


def test_training_target_is_the_clean_image():
    # A model that returns its input: if the loss compared it with the noisy input it would be 0.
    class Identity(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return x * self.scale

    images = torch.full((512, 28, 28), 128, dtype=torch.uint8)
    model = Identity()
    loss = train_autoencoder_epoch(
        model,
        images,
        torch.optim.SGD(model.parameters(), lr=0.0),
        batch_size=128,
        generator=torch.Generator().manual_seed(0),
        corrupt=Noise("gaussian", std=0.1, clip=False),
    )
    assert loss == pytest.approx(0.01, rel=0.05)


def test_fixed_noisy_copy_is_seeded(tiny):
    images = tiny.test_images
    noise = Noise("gaussian")
    a, b = fixed_noisy_copy(images, noise, 7), fixed_noisy_copy(images, noise, 7)
    assert a.shape == (len(images), 1, 28, 28)
    assert torch.equal(a, b)
    assert not torch.equal(a, fixed_noisy_copy(images, noise, 8))


@pytest.mark.parametrize("kwargs", [{"kind": "speckle"}, {"std": 0.0}, {"amount": 1.5}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        Noise(**kwargs)
