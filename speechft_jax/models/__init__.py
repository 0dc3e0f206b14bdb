"""Flax ports of the HuBERT, wav2vec 2.0 and WavLM encoders."""

from speechft_jax.models.config import ConfigError, EncoderConfig
from speechft_jax.models.encoder import EncoderOutput, SpeechEncoder

__all__ = ["ConfigError", "EncoderConfig", "EncoderOutput", "SpeechEncoder"]
