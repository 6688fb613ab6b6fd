"""Plain ``nn.Module`` models with typed constructor arguments; nothing here knows Optuna."""

from .autoencoder import Autoencoder, Decoder, Encoder, xavier_init
from .classifier import EncoderClassifier, Head

__all__ = ["Autoencoder", "Decoder", "Encoder", "xavier_init"]
__all__ += ["EncoderClassifier", "Head"]
