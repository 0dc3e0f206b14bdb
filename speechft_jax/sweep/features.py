"""Features of K merged encoders in one jitted program: the alpha sweep's forward pass.

`sweep_forward(config)` compiles (once per padded batch shape) a function of
`(theta_0, theta_ft, alphas [K], audio, audio_mask)` that maps over the alphas with `lax.map`:
inside the loop it forms `interpolate(theta_0, theta_ft, alpha)` and runs the encoder, so the
merged weights never leave the device and K alphas cost K forward passes and one compilation.
With `shared_cnn=True` (theta_0 and theta_ft have the same CNN, as after stable fine-tuning, which
freezes it) the CNN runs once, before the loop, and the K encoders share its output: the sweep
then costs one CNN pass and K passes of the rest. `sweep_feature_sets(...)` runs it over a source
(choosing `shared_cnn` by comparing the two CNNs) and returns one `FeatureSet` per alpha.
`merged_encoders(bundle, theta_ft, alphas, shared_cnn)` is the same program as the probes'
`FrozenEncoders` (`evaluate/probe_training.py`), so the K alphas' probes train together on it.
"""

from __future__ import annotations

import functools
import hashlib

import jax
import jax.numpy as jnp

from speechft_jax.evaluate.features import FeatureSet, collect_feature_sets
from speechft_jax.evaluate.frozen_encoders import FrozenEncoders
from speechft_jax.merge import interpolate
from speechft_jax.models import EncoderConfig, SpeechEncoder
from speechft_jax.models.encoder import front_end
from speechft_jax.tree_math import params_fingerprint

CNN = "feature_extractor"


@functools.lru_cache(maxsize=8)
def sweep_forward(config: EncoderConfig, shared_cnn: bool = False):
    """The jitted `(theta_0, theta_ft, alphas, audio, audio_mask) -> (states [K, L+1, B, T, D], frame_mask)`.

    `shared_cnn=True` runs theta_0's CNN once for all alphas; only valid when theta_ft's CNN equals it.
    """
    module = SpeechEncoder(config)

    def forward(theta_0, theta_ft, alphas, audio, audio_mask):
        cnn = front_end(config).apply({"params": theta_0.get(CNN, {})}, audio, audio_mask) if shared_cnn else None

        def one(alpha):
            out = module.apply({"params": interpolate(theta_0, theta_ft, alpha)}, audio, audio_mask,
                               cnn_features=cnn)
            return jnp.stack(out.hidden_states), out.frame_mask

        states, masks = jax.lax.map(one, alphas)
        return states, masks[0]

    return jax.jit(forward)


@functools.lru_cache(maxsize=8)
def _merged_forward(config: EncoderConfig, shared_cnn: bool):
    # one function per (config, shared_cnn), so that jitted probe steps built on it are reused
    sweep = sweep_forward(config, shared_cnn)

    def forward(inputs, audio, audio_mask):
        return sweep(inputs["theta_0"], inputs["theta_ft"], inputs["alphas"], audio, audio_mask)

    return forward


def merged_encoders(bundle, theta_ft, alphas, shared_cnn: bool) -> FrozenEncoders:
    """The K = len(alphas) merges of theta_0 (`bundle.params`) and `theta_ft` as `FrozenEncoders`;
    `shared_cnn` as in `sweep_feature_sets`."""
    alphas = [float(a) for a in alphas]
    digest = hashlib.sha1(" ".join([params_fingerprint(bundle.params), params_fingerprint(theta_ft)]
                                   + [repr(a) for a in alphas]).encode()).hexdigest()[:16]
    inputs = {"theta_0": bundle.params, "theta_ft": theta_ft, "alphas": jnp.asarray(alphas, jnp.float32)}
    return FrozenEncoders(bundle, _merged_forward(bundle.config, shared_cnn), inputs, len(alphas), digest)


def same_cnn(theta_0, theta_ft) -> bool:
    """Whether the two encoders' CNN weights are equal (stable fine-tuning freezes the CNN); true
    for DeCoAR 2.0, whose filterbank front end has no weights."""
    pairs = zip(jax.tree_util.tree_leaves(theta_0.get(CNN, {})), jax.tree_util.tree_leaves(theta_ft.get(CNN, {})))
    return all(a.shape == b.shape and bool(jnp.array_equal(a, b)) for a, b in pairs)


def sweep_feature_sets(bundle, theta_ft, alphas, source, label_spec, *, shared_cnn: bool, batch_size: int = 8,
                       desc: str = "sweep features") -> list[FeatureSet]:
    """One `FeatureSet` per alpha over `source` (theta_0 = `bundle.params`); `shared_cnn` is
    `same_cnn(bundle.params, theta_ft)`, computed once by the caller for all its sources."""
    alphas = jnp.asarray(alphas, jnp.float32)
    forward = sweep_forward(bundle.config, shared_cnn)
    return collect_feature_sets(bundle, source, label_spec,
                                lambda audio, mask: forward(bundle.params, theta_ft, alphas, audio, mask),
                                batch_size=batch_size, desc=desc)
