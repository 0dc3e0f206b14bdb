"""Turning a transformers state dict into this project's parameter pytree, and back.

Strict both ways: an encoder key the model does not have, a parameter the checkpoint lacks, or a
shape that does not fit raises `CheckpointError` naming every such key. Keys of task heads that
sit beside the encoder (`lm_head`, `quantizer`, `classifier`, ...) are returned as ignored.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp
import numpy as np

from speechft_jax.checkpoints import hf_keys
from speechft_jax.errors import CheckpointError
from speechft_jax.models import EncoderConfig
from speechft_jax.models.pretrained import abstract_params


def _split_encoder_keys(state: dict, model_type: str) -> tuple[dict, list[str]]:
    """Strip the base-model prefix (`hubert.`...) if present; keys outside it are head keys."""
    base = hf_keys.BASE_MODEL_PREFIX.get(model_type)  # None for DeCoAR 2.0: not a transformers model
    prefix = f"{base}."
    if base is None or not any(key.startswith(prefix) for key in state):
        return dict(state), []
    encoder = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return encoder, sorted(k for k in state if not k.startswith(prefix))


def _short_list(keys, limit=8) -> str:
    keys = list(keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def state_dict_to_params(state: dict, config: EncoderConfig, source: str = "checkpoint"):
    """A transformers state dict (numpy values) -> `(params, ignored_head_keys)`."""
    encoder_state, ignored = _split_encoder_keys(state, config.model_type)
    for key in list(encoder_state):
        for new, old in hf_keys.LEGACY_ALIASES.items():
            if key.endswith("." + old):
                encoder_state[key[: -len(old)] + new] = encoder_state.pop(key)
    flat_abstract = flax.traverse_util.flatten_dict(abstract_params(config))
    param_dtype = jnp.dtype(config.param_dtype)
    flat, missing, mismatched = {}, [], []
    used = set()
    for path, leaf in flat_abstract.items():
        key = hf_keys.hf_key(path)
        if key not in encoder_state:
            missing.append(key)
            continue
        used.add(key)
        value = hf_keys.to_flax_layout(path, np.asarray(encoder_state[key]))
        if tuple(value.shape) != tuple(leaf.shape):
            mismatched.append(f"{key} has shape {tuple(encoder_state[key].shape)}, the model expects "
                              f"{tuple(hf_keys.to_hf_layout(path, np.zeros(leaf.shape, np.int8)).shape)}")
            continue
        flat[path] = jnp.asarray(value, dtype=param_dtype)
    unexpected = [k for k in encoder_state if k not in used and not k.endswith(hf_keys.IGNORED_HF_SUFFIXES)]
    problems = []
    if mismatched:
        problems.append("mismatched shapes: " + "; ".join(mismatched))
    if missing:
        problems.append("missing keys: " + _short_list(missing))
    if unexpected:
        problems.append("unexpected keys: " + _short_list(sorted(unexpected)))
    if problems:
        raise CheckpointError(f"{source}: does not fit a {config.model_type} encoder with this config: "
                              + " | ".join(problems))
    return flax.traverse_util.unflatten_dict(flat), ignored


def params_to_state_dict(params, config: EncoderConfig) -> dict[str, np.ndarray]:
    """The parameter pytree -> a transformers base-model state dict (numpy, float32 or as stored)."""
    if not config.in_transformers:
        raise CheckpointError(f"model_type {config.model_type!r}: transformers has no such model; save it as a "
                              "Flax directory (convert --to flax) or in s3prl's format (convert --to s3prl)")
    out = {}
    for path, value in flax.traverse_util.flatten_dict(flax.linen.unbox(params)).items():
        array = np.asarray(jax.device_get(value))
        out[hf_keys.hf_key(path)] = hf_keys.to_hf_layout(path, array)
    if config.conv_pos_batch_norm:
        out["encoder.pos_conv_embed.batch_norm.num_batches_tracked"] = np.zeros((), np.int64)
    return out
