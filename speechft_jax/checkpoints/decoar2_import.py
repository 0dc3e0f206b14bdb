"""DeCoAR 2.0 checkpoints in s3prl's format (`{"model": state_dict, ...}`), in and out.

s3prl's `upstream/decoar2` builds `Decoar2`: `post_extract_proj` (Linear(80 -> 768), no LayerNorm
before it), then fairseq's wav2vec 2.0 post-LN `TransformerEncoder` (`encoder.pos_conv.0.weight_g /
weight_v / bias`, `encoder.layer_norm`, `encoder.layers.N.self_attn.{q,k,v,out}_proj`,
`self_attn_layer_norm`, `fc1`, `fc2`, `final_layer_norm`), and loads `torch.load(ckpt)["model"]`
into it with `strict=False`. Here the load is strict inside that model: a key it needs that the
file lacks (s3prl would leave it randomly initialised) or an unknown key under `post_extract_proj.`
or `encoder.` is an error. Keys outside the two (the pre-training model's other modules, which
`Decoar2` does not build) are ignored, as s3prl's non-strict load ignores them, and logged.

The sizes come from the shapes; the head count cannot, and is s3prl's fixed 12, as are the
activation (GELU) and the post-LN layers. Dropouts are s3prl's, with layerdrop 0 (its upstream sets
it so). s3prl's names map to this project's through transformers' names (`hf_keys`), whose strict
mapping (`params_io`) then checks every shape. The positional conv's weight norm is read under
torch's old names (`weight_g` / `weight_v`, what `Decoar2` has) or its new ones
(`parametrizations.weight.original0/1`), and written under the old ones.
"""

from __future__ import annotations

import logging
import re

import flax
import jax
import numpy as np

from speechft_jax.checkpoints import hf_keys, params_io, state_dict_io
from speechft_jax.errors import CheckpointError, ConfigError
from speechft_jax.models import EncoderConfig
from speechft_jax.models.config import DECOAR2_FRONT_END
from speechft_jax.models.pretrained import abstract_params

logger = logging.getLogger(__name__)

NUM_ATTENTION_HEADS = 12  # s3prl's Decoar2 fixes it; the weights' shapes cannot tell
ENCODER_PREFIXES = ("post_extract_proj.", "encoder.")
# s3prl module path -> transformers' (`hf_keys`), outside the layers and inside each layer
_TOP_LEVEL = (("post_extract_proj.", "feature_projection.projection."),
              ("encoder.pos_conv.0.", "encoder.pos_conv_embed.conv."),
              ("encoder.layer_norm.", "encoder.layer_norm."))
_IN_LAYER = (("self_attn.q_proj.", "attention.q_proj."), ("self_attn.k_proj.", "attention.k_proj."),
             ("self_attn.v_proj.", "attention.v_proj."), ("self_attn.out_proj.", "attention.out_proj."),
             ("self_attn_layer_norm.", "layer_norm."), ("fc1.", "feed_forward.intermediate_dense."),
             ("fc2.", "feed_forward.output_dense."), ("final_layer_norm.", "final_layer_norm."))
_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(.*)$")


def _old_weight_norm(key: str) -> str:
    """torch's new weight-norm names (`parametrizations.weight.original0/1`) as the old ones
    (`weight_g` / `weight_v`), which s3prl's `Decoar2` is built with."""
    for new, old in hf_keys.LEGACY_ALIASES.items():
        if key.endswith(new):
            return key[: -len(new)] + old
    return key


def _s3prl_key(path: tuple[str, ...]) -> str | None:
    """s3prl's key of a parameter path, or None when `Decoar2` has no such parameter."""
    key = _old_weight_norm(hf_keys.hf_key(path))
    layer = _LAYER.match(key)
    table, prefix, rest = (_IN_LAYER, f"encoder.layers.{layer[1]}.", layer[2]) if layer else (_TOP_LEVEL, "", key)
    for s3prl, transformers in table:
        if rest.startswith(transformers):
            return prefix + s3prl + rest[len(transformers):]
    return None


def is_decoar2_state(state: dict) -> bool:
    """Whether a checkpoint's `model` state dict is s3prl's DeCoAR 2.0 (an input linear straight
    into the transformer; fairseq's HuBERT / wav2vec 2.0 and WavLM have a CNN `feature_extractor`)."""
    weight = state.get("post_extract_proj.weight")  # a numpy array or an unread `safe_unpickle.LazyTensor`
    return (len(getattr(weight, "shape", ())) == 2 and "encoder.pos_conv.0.bias" in state
            and not any(str(key).startswith("feature_extractor.") for key in state))


def _shape(state: dict, key: str, ndim: int, source: str) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"{source}: {key} is missing (not a complete s3prl DeCoAR 2.0 model)")
    shape = tuple(np.shape(state[key]))
    if len(shape) != ndim:
        raise CheckpointError(f"{source}: {key} has shape {shape}, expected {ndim} dimensions")
    return shape


def _config_from_shapes(state: dict, source: str, runtime: dict) -> EncoderConfig:
    hidden, features = _shape(state, "post_extract_proj.weight", 2, source)
    if features != DECOAR2_FRONT_END["conv_dim"][-1]:
        raise CheckpointError(f"{source}: post_extract_proj.weight has shape {(hidden, features)}, expected "
                              f"{DECOAR2_FRONT_END['conv_dim'][-1]} inputs (the filterbank's mel bins)")
    layers = {int(m.group(1)) for m in map(_LAYER.match, state) if m}
    if not layers:
        raise CheckpointError(f"{source}: no encoder.layers.N keys (not a DeCoAR 2.0 transformer)")
    intermediate = _shape(state, "encoder.layers.0.fc1.weight", 2, source)[0]
    pos_conv = _shape(state, "encoder.pos_conv.0.weight_v", 3, source)  # [out, in / groups, kernel]
    _, per_group, kernel = pos_conv
    if per_group == 0 or hidden % per_group:
        raise CheckpointError(f"{source}: encoder.pos_conv.0.weight_v has shape {pos_conv}, expected "
                              f"({hidden}, {hidden} / groups, kernel)")
    # the dropouts and the absence of time masking are the decoar2 defaults of `EncoderConfig`
    hf = dict(model_type="decoar2", hidden_size=hidden, num_hidden_layers=max(layers) + 1,
              num_attention_heads=NUM_ATTENTION_HEADS, intermediate_size=intermediate, hidden_act="gelu",
              num_conv_pos_embeddings=kernel, num_conv_pos_embedding_groups=hidden // per_group)
    try:
        return EncoderConfig.from_hf_dict(hf, source=source, **runtime)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


def decoar2_from_state(state: dict[str, np.ndarray], source: str, runtime: dict):
    """s3prl's DeCoAR 2.0 `model` state dict (numpy arrays) -> `(EncoderConfig, params)`;
    `runtime` holds the compute settings (`dtype`, `param_dtype`, ...)."""
    ignored = sorted(key for key in state if not key.startswith(ENCODER_PREFIXES))
    encoder = {_old_weight_norm(key): value for key, value in state.items() if key.startswith(ENCODER_PREFIXES)}
    state_dict_io.require_finite(encoder, source)
    config = _config_from_shapes(encoder, source, runtime)
    expected = {_s3prl_key(path): path for path in flax.traverse_util.flatten_dict(abstract_params(config))}
    missing = [key for key in expected if key not in encoder]
    unexpected = sorted(key for key in encoder if key not in expected)
    if missing or unexpected:
        problems = (("missing", missing), ("unexpected", unexpected))
        raise CheckpointError(f"{source}: does not fit s3prl's Decoar2 model: "
                              + " | ".join(f"{what} keys: {_short_list(keys)}" for what, keys in problems if keys))
    # shapes are checked by the strict mapping (its messages name transformers' keys)
    renamed = {hf_keys.hf_key(expected[key]): value for key, value in encoder.items()}
    params, _ = params_io.state_dict_to_params(renamed, config, source=source)
    if ignored:
        logger.warning("%s: ignored %d keys outside s3prl's Decoar2 model (%s)", source, len(ignored),
                       _short_list(ignored))
    return config, params


def _short_list(keys, limit: int = 6) -> str:
    return ", ".join(keys[:limit]) + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def decoar2_state_from_params(params, config: EncoderConfig) -> dict[str, np.ndarray]:
    """The parameters -> s3prl's DeCoAR 2.0 `model` state dict (numpy, as stored)."""
    if config.model_type != "decoar2":
        raise CheckpointError(f"model_type {config.model_type!r}: only a decoar2 encoder has s3prl's DeCoAR 2.0 layout")
    out = {}
    for path, value in flax.traverse_util.flatten_dict(flax.linen.unbox(params)).items():
        key = _s3prl_key(path)
        if key is None:  # masked_spec_embed, present only when time masking was switched on
            logger.warning("%s left out: s3prl's Decoar2 has no such parameter", "/".join(path))
            continue
        out[key] = hf_keys.to_hf_layout(path, np.asarray(jax.device_get(value)))
    return out
