"""The encoder as a user holds it: `PretrainedBundle` (config, parameters, Flax module), its
parameter initialisation, and `extract_features`, which runs it under a cached `jax.jit`.

`init_params(config, rng)` draws fresh parameters; `abstract_params(config)` gives their shapes
and dtypes without allocating (the `boxed` variants keep the logical axis names sharding reads).
`init_encoder(config, seed)` is a randomly initialised bundle. `check_same_architecture` tells
whether two bundles can share parameters (merging, similarity). Reading and writing bundles in
file formats is `speechft_jax.checkpoints`'.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp

from speechft_jax.errors import MergeError
from speechft_jax.models.config import TRAINING_SETTINGS, EncoderConfig
from speechft_jax.models.encoder import SpeechEncoder


@dataclasses.dataclass
class PretrainedBundle:
    """An encoder ready to run: its config, its parameters, and the Flax module.

    `pretraining_head` holds HuBERT's `final_proj` / `label_embs_concat` when the source was a
    fairseq checkpoint (transformers drops them); `preprocessor` is the feature-extractor config
    (`do_normalize`, `sampling_rate`).
    """

    config: EncoderConfig
    params: Any
    module: SpeechEncoder
    source: str = ""
    preprocessor: dict = dataclasses.field(default_factory=dict)
    pretraining_head: Any = None

    def replace(self, **changes) -> "PretrainedBundle":
        return dataclasses.replace(self, **changes)

    def with_runtime(self, **settings) -> "PretrainedBundle":
        """The same weights run with other compute settings (`EncoderConfig.runtime_settings()` keys:
        `dtype`, `remat`, `batch_independent`, ...), with the config and module to match."""
        unknown = sorted(set(settings) - set(self.config.runtime_settings()))
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a compute setting of EncoderConfig")
        config = self.config.replace(**settings)
        return dataclasses.replace(self, config=config, module=SpeechEncoder(config))


# ---------------------------------------------------------------------------------- parameters
def init_boxed_params(config: EncoderConfig, rng):
    """Freshly initialised encoder parameters, boxed with their logical axis names."""
    dummy = jnp.zeros((1, max(config.receptive_field, 400)), jnp.float32)
    return SpeechEncoder(config).init(rng, dummy)["params"]


def init_params(config: EncoderConfig, rng):
    """Freshly initialised encoder parameters (unboxed), from the PRNG key `rng`."""
    return flax.linen.unbox(init_boxed_params(config, rng))


def abstract_boxed_params(config: EncoderConfig):
    """Shapes, dtypes and logical axis names of the encoder's parameters (no memory allocated)."""
    return jax.eval_shape(lambda: init_boxed_params(config, jax.random.PRNGKey(0)))


def abstract_params(config: EncoderConfig):
    """Shapes and dtypes of the encoder's parameters (no memory allocated)."""
    return flax.linen.unbox(abstract_boxed_params(config))


def init_encoder(config: EncoderConfig, seed: int = 0, preprocessor: dict | None = None) -> PretrainedBundle:
    """A randomly initialised encoder (for pre-training from scratch and for tests)."""
    params = jax.jit(lambda rng: init_params(config, rng))(jax.random.PRNGKey(seed))
    preprocessor = {"do_normalize": False, "sampling_rate": 16000} if preprocessor is None else preprocessor
    return PretrainedBundle(config, params, SpeechEncoder(config), f"random init (seed {seed})", preprocessor)


def check_same_architecture(base, other, base_name: str, other_name: str) -> None:
    """Raise `MergeError` unless two loaded encoders (`PretrainedBundle`s) have the same config,
    naming the keys that differ; training settings (dropouts, SpecAugment) may differ."""
    a, b = base.config.to_hf_dict(), other.config.to_hf_dict()
    differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in TRAINING_SETTINGS)
    if differing:
        raise MergeError(f"{other_name}: its config differs from {base_name} in {', '.join(differing[:5])}")


# ---------------------------------------------------------------------------------- features
@functools.lru_cache(maxsize=32)
def _compiled_forward(config: EncoderConfig, with_mask: bool):
    module = SpeechEncoder(config)

    def forward(params, waveforms, attention_mask):
        out = module.apply({"params": params}, waveforms, attention_mask if with_mask else None)
        return jnp.stack(out.hidden_states), out.frame_mask

    return jax.jit(forward)


def extract_features(bundle: PretrainedBundle, waveforms, attention_mask=None, params=None):
    """Every hidden state of the encoder.

    Args:
      waveforms: float32 `[batch, samples]`.
      attention_mask: 0/1 `[batch, samples]` (right padding), or None for no padding.
      params: parameters to use instead of the bundle's (e.g. merged weights).
    Returns:
      `(hidden_states [L+1, batch, frames, hidden], frame_mask [batch, frames] bool)`.
    """
    waveforms = jnp.asarray(waveforms, jnp.float32)
    if waveforms.ndim != 2:
        raise ValueError(f"waveforms: expected shape [batch, samples], got {tuple(waveforms.shape)}")
    if waveforms.shape[1] < bundle.config.receptive_field:
        raise ValueError(f"waveforms: {waveforms.shape[1]} samples is shorter than the CNN's receptive field "
                         f"({bundle.config.receptive_field} samples)")
    if attention_mask is not None:
        attention_mask = jnp.asarray(attention_mask, jnp.int32)
        if attention_mask.shape != waveforms.shape:
            raise ValueError(f"attention_mask: expected shape {tuple(waveforms.shape)}, got {tuple(attention_mask.shape)}")
    else:
        attention_mask = jnp.zeros((), jnp.int32)
    forward = _compiled_forward(bundle.config, attention_mask.ndim == 2)
    return forward(bundle.params if params is None else params, waveforms, attention_mask)


def compiled_forward_cache_size(bundle: PretrainedBundle, with_mask: bool = True) -> int:
    """How many programs `extract_features` has compiled for this config (for tests and benches)."""
    return _compiled_forward(bundle.config, with_mask)._cache_size()
