"""Features of K merged encoders in one jitted program: the alpha sweep's forward pass.

`sweep_forward(config)` compiles (once per padded batch shape) a function of
`(theta_0, theta_ft, alphas [K], audio, audio_mask)` that maps over the alphas with `lax.map`:
inside the loop it forms `interpolate(theta_0, theta_ft, alpha)` and runs the encoder, so the
merged weights never leave the device and K alphas cost K forward passes and one compilation.
`sweep_feature_sets(...)` runs it over a source and returns one `FeatureSet` per alpha.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from speechft_jax.evaluate.features import FeatureSet, collect_feature_sets
from speechft_jax.merge import interpolate
from speechft_jax.models import EncoderConfig, SpeechEncoder


@functools.lru_cache(maxsize=8)
def sweep_forward(config: EncoderConfig):
    """The jitted `(theta_0, theta_ft, alphas, audio, audio_mask) -> (states [K, L+1, B, T, D], frame_mask)`."""
    module = SpeechEncoder(config)

    def one(theta_0, theta_ft, alpha, audio, audio_mask):
        out = module.apply({"params": interpolate(theta_0, theta_ft, alpha)}, audio, audio_mask)
        return jnp.stack(out.hidden_states), out.frame_mask

    def forward(theta_0, theta_ft, alphas, audio, audio_mask):
        states, masks = jax.lax.map(lambda a: one(theta_0, theta_ft, a, audio, audio_mask), alphas)
        return states, masks[0]

    return jax.jit(forward)


def sweep_feature_sets(bundle, theta_ft, alphas, source, label_spec, *, batch_size: int = 8,
                       desc: str = "sweep features") -> list[FeatureSet]:
    """One `FeatureSet` per alpha over `source` (theta_0 = `bundle.params`)."""
    alphas = jnp.asarray(alphas, jnp.float32)
    forward = sweep_forward(bundle.config)
    return collect_feature_sets(bundle, source, label_spec,
                                lambda audio, mask: forward(bundle.params, theta_ft, alphas, audio, mask),
                                batch_size=batch_size, desc=desc)
