"""Plain ``nn.Module`` models with typed constructor arguments; nothing here knows Optuna."""

from .autoencoder import Autoencoder, Decoder, Encoder, xavier_init
from .classifier import EncoderClassifier, Head
from .fid_net import FidNet
from .gan import GAN, DCDiscriminator, DCGenerator, MLPDiscriminator, MLPGenerator, sample_sphere

__all__ = [
    "Autoencoder",
    "Decoder",
    "Encoder",
    "xavier_init",
    "EncoderClassifier",
    "Head",
    "FidNet",
    "GAN",
    "DCDiscriminator",
    "DCGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "sample_sphere",
]
