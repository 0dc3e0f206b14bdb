"""Where the probes' hidden states come from: K frozen encoders behind one jittable forward.

`FrozenEncoders` holds a pure `forward(inputs, audio [B, S], audio_mask [B, S]) -> (states
[K, L+1, B, T, D], frame_mask [B, T])`, the arrays it reads (`inputs`: weights, alphas), the bundle
that fixes the architecture and preprocessing (config, `do_normalize`, receptive field), K, and a
`fingerprint` of everything the states depend on, which keys feature caches and probe checkpoints.
The probes call `forward` inside their jitted step (on the fly) or once per utterance into a
feature cache. `single_encoder(bundle, params)` is one encoder (K = 1); the alpha sweep's K merged
encoders are `sweep.features.merged_encoders`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax

from speechft_jax.models.config import EncoderConfig
from speechft_jax.models.encoder import SpeechEncoder
from speechft_jax.models.pretrained import PretrainedBundle, extract_features
from speechft_jax.tree_math import params_fingerprint


@dataclasses.dataclass(frozen=True)
class FrozenEncoders:
    """K frozen encoders behind one jittable forward (module docstring)."""

    bundle: PretrainedBundle
    forward: Callable
    inputs: Any
    count: int
    fingerprint: str

    @property
    def num_states(self) -> int:
        """L+1: the CNN's projected output and every transformer layer."""
        return self.bundle.config.num_hidden_layers + 1

    @property
    def hidden(self) -> int:
        return self.bundle.config.hidden_size

    def states(self, audio, audio_mask):
        """`forward` on this object's inputs, jitted (feature extraction, outside the probes' step)."""
        return _jitted(self.forward)(self.inputs, audio, audio_mask)


_jitted = functools.lru_cache(maxsize=16)(jax.jit)  # one compiled extraction per forward


@functools.lru_cache(maxsize=16)
def _single_forward(config: EncoderConfig) -> Callable:
    # one function per architecture, so that jitted probe steps built on it are reused across calls
    architecture = PretrainedBundle(config, None, SpeechEncoder(config))

    def forward(params, audio, audio_mask):
        states, frame_mask = extract_features(architecture, audio, audio_mask, params)
        return states[None], frame_mask

    return forward


def single_encoder(bundle: PretrainedBundle, params=None) -> FrozenEncoders:
    """`bundle`'s encoder (or `params` in its shape) as K = 1 frozen encoders."""
    params = bundle.params if params is None else params
    return FrozenEncoders(bundle, _single_forward(bundle.config), params, 1, params_fingerprint(params))
