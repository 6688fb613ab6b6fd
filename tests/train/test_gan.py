import math

import pytest
import torch
from torch import nn

from mnist_hpo.models.gan import GAN
from mnist_hpo.train import gan as T


def test_tanh_range_scaling():
    x = torch.tensor([[[0, 255]]], dtype=torch.uint8)
    assert T.to_tanh_range(x).flatten().tolist() == [-1.0, 1.0]


class Recorder(nn.Module):
    """Wraps a discriminator and records, per call, whether its batch was real images or generated ones."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, x):
        # Real images sit exactly on the grid k * 2/255 - 1; generator output (Tanh) does not.
        on_grid = ((x.detach() + 1) * 127.5 - ((x.detach() + 1) * 127.5).round()).abs() < 1e-3
        per_image = on_grid.flatten(1).all(1)
        self.calls.append("real" if per_image.all() else "fake" if not per_image.any() else "mixed")
        return self.inner(x)


def _setup(arch="mlp"):
    torch.manual_seed(0)
    gan = GAN(arch=arch)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=2e-4)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=5e-4)
    return gan, opt_g, opt_d


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_alternating_step_updates_both_networks_never_mixing_batches(tiny, arch):
    gan, opt_g, opt_d = _setup(arch)
    disc = Recorder(gan.discriminator)
    before_g = [p.detach().clone() for p in gan.generator.parameters()]
    before_d = [p.detach().clone() for p in gan.discriminator.parameters()]
    images = tiny.train_images[:150]
    d_loss, g_loss = T.train_gan_epoch(
        gan.generator, disc, opt_g, opt_d, images, batch_size=64, latent_dim=100, rng=torch.Generator().manual_seed(0)
    )
    # 3 batches (64, 64, 22): D on real, D on generated, then G through D — never a mixed batch.
    assert disc.calls == ["real", "fake", "fake"] * 3
    assert math.isfinite(d_loss) and math.isfinite(g_loss) and d_loss > 0 and g_loss > 0
    assert all(not torch.equal(a, b) for a, b in zip(before_g, gan.generator.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(before_d, gan.discriminator.parameters()))


def test_fit_gan_scores_only_when_evaluate_says_so(tiny):
    gan, opt_g, opt_d = _setup()
    reported = []
    history = T.fit_gan(
        gan.generator,
        gan.discriminator,
        opt_g,
        opt_d,
        tiny.train_images[:128],
        epochs=3,
        batch_size=64,
        latent_dim=100,
        rng=torch.Generator().manual_seed(0),
        evaluate=lambda e: {"fid": 10.0 - e, "coverage_tv": 0.5} if e != 1 else None,
        on_epoch=lambda e, d, fid: reported.append((e, fid)),
    )
    assert len(history.d_loss) == len(history.g_loss) == len(history.seconds) == 3
    assert history.eval_epochs == [0, 2] and history.fid == [10.0, 8.0]
    assert reported == [(0, 10.0), (2, 8.0)]


def test_non_finite_distance_stops_training(tiny):
    gan, opt_g, opt_d = _setup()
    with pytest.raises(T.NonFiniteLoss):
        T.fit_gan(
            gan.generator,
            gan.discriminator,
            opt_g,
            opt_d,
            tiny.train_images[:128],
            epochs=1,
            batch_size=128,
            latent_dim=100,
            rng=torch.Generator().manual_seed(0),
            evaluate=lambda e: {"fid": float("nan"), "coverage_tv": 0.0},
        )
