"""speechft-jax: Speech-FT for HuBERT, wav2vec 2.0 and WavLM in JAX/Flax.

The public API:
  load_pretrained(source)            -> PretrainedBundle (.config, .params, .module)
  extract_features(bundle, waveforms, attention_mask=None, params=None)
                                     -> (hidden_states [L+1, B, T, D], frame_mask [B, T])
  save_pretrained(bundle, out_dir, params=None)  -> a transformers model directory
  interpolate(theta_0, theta_ft, alpha)          -> (1 - alpha) theta_0 + alpha theta_ft
  merge_task_vectors(theta_0, [theta_1, ...], alpha, weights=None)
"""

from pathlib import Path

from speechft_jax.checkpoints import CheckpointError, load_pretrained, save_flax, save_pretrained
from speechft_jax.errors import SpeechFTError
from speechft_jax.merge import MergeError, interpolate, merge_task_vectors
from speechft_jax.models import ConfigError, EncoderConfig, SpeechEncoder
from speechft_jax.models.pretrained import PretrainedBundle, extract_features, init_encoder

__version__ = "0.1.0"
# the tiny HuBERT pre-trained on the demo corpus that ships with the package (a transformers directory)
TINY_HUBERT_DIR = Path(__file__).parent / "assets" / "tiny-hubert"
__all__ = ["CheckpointError", "ConfigError", "EncoderConfig", "MergeError", "PretrainedBundle", "SpeechEncoder",
           "SpeechFTError", "TINY_HUBERT_DIR", "extract_features", "init_encoder", "interpolate", "load_pretrained",
           "merge_task_vectors", "save_flax", "save_pretrained"]
