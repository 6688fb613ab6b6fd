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
    from mnist_hpo.models import EncoderClassifier

    torch.manual_seed(0)
    # The classifier's encoder is loaded from an autoencoder export; its head is initialised here.
    for model in (Autoencoder(4, 60), EncoderClassifier(latent_dim=4, encoder_nh1=60, nh1=120, dropout=0.1).head):
        layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
        assert layers
        for m in layers:
            assert torch.count_nonzero(m.bias) == 0
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
            bound = (6 / (fan_in + fan_out)) ** 0.5  # Xavier-uniform: U(-bound, bound)
            w = m.weight.detach().abs()
            # PyTorch's default (Kaiming-uniform, a = sqrt(5)) has bound 1/sqrt(fan_in): for Linear(288, 60)
            # 0.059 against Xavier's 0.131, so both ends of the range are checked, and the spread.
            assert float(w.max()) <= bound + 1e-6
            if w.numel() >= 1000:
                assert float(w.max()) >= 0.98 * bound, m
            assert float(m.weight.detach().std()) == pytest.approx(bound / 3**0.5, rel=0.15), m


def test_encoder_is_detachable():
    model = Autoencoder(3, 50)
    assert isinstance(model.encoder, nn.Module) and isinstance(model.decoder, nn.Module)
    assert not set(model.encoder.parameters()) & set(model.decoder.parameters())
