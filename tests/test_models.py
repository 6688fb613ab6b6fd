import pytest
import torch
from torch import nn

from mnist_hpo.models import Autoencoder


@pytest.mark.parametrize("latent_dim,nh1", [(2, 50), (9, 149)])
def test_autoencoder_shapes(latent_dim, nh1):
    model = Autoencoder(latent_dim, nh1)
    x = torch.rand(5, 1, 28, 28)
    z = model.encoder(x)
    assert z.shape == (5, latent_dim)
    with torch.no_grad():
        y = model.decoder(z)
    assert y.shape == (5, 1, 28, 28)
    assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_parameter_count_matches_the_report_architecture():
    latent, nh1 = 9, 87
    conv = (1 * 8 * 9 + 8) + (8 * 16 * 9 + 16) + (16 * 32 * 9 + 32)
    enc_lin = (288 * nh1 + nh1) + (nh1 * latent + latent)
    dec_lin = (latent * nh1 + nh1) + (nh1 * 288 + 288)
    deconv = (32 * 16 * 9 + 16) + (16 * 8 * 9 + 8) + (8 * 1 * 9 + 1)
    model = Autoencoder(latent, nh1)
    assert sum(p.numel() for p in model.encoder.parameters()) == conv + enc_lin
    assert sum(p.numel() for p in model.parameters()) == conv + enc_lin + dec_lin + deconv


def test_xavier_init_zero_bias():
    model = Autoencoder(4, 60)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            assert torch.count_nonzero(m.bias) == 0
    # Xavier-uniform bound for Linear(288, 60): sqrt(6 / (288 + 60))
    w = model.encoder.linear[0].weight
    assert float(w.detach().abs().max()) <= (6 / (288 + 60)) ** 0.5 + 1e-6


def test_encoder_is_detachable():
    model = Autoencoder(3, 50)
    assert isinstance(model.encoder, nn.Module) and isinstance(model.decoder, nn.Module)
    assert not set(model.encoder.parameters()) & set(model.decoder.parameters())
