"""The names of the fairseq / unilm world and transformers', both ways: state-dict keys and model
config fields of HuBERT and wav2vec 2.0 (fairseq) and WavLM (unilm).

The three share one layout of the encoder's weights. Each key rule is a pair of templates, one per
side, with placeholders (`{n}` a layer index, `{w}` weight or bias, `{proj}` an attention
projection); both directions are read from the same pair, so they cannot drift apart. The config
table pairs fairseq's field names with transformers' the same way; `fairseq_model_config` and
`fairseq_state_from_params` write a bundle back in fairseq's (unilm's) names and PyTorch layouts,
such that importing what they write gives the bundle back.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re

import numpy as np

from speechft_jax.checkpoints import params_io
from speechft_jax.checkpoints.pretraining_head import WAV2VEC2_HEAD, head_kind, head_to_state
from speechft_jax.errors import CheckpointError
from speechft_jax.models import EncoderConfig

logger = logging.getLogger(__name__)

KINDS = ("hubert", "wav2vec2", "wavlm")
KIND_NAMES = {"hubert": "HuBERT", "wav2vec2": "wav2vec 2.0", "wavlm": "WavLM"}
_PLACEHOLDERS = {"n": r"\d+", "w": "weight|bias", "proj": "q_proj|k_proj|v_proj|out_proj"}


@functools.lru_cache(maxsize=None)
def _pattern(template: str) -> re.Pattern:
    """A key template as a regex whose named groups are its placeholders."""
    parts = re.split(r"\{(\w+)\}", template)  # literal, name, literal, name, ...
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>{_PLACEHOLDERS[p]})" for i, p in enumerate(parts))
    return re.compile(f"^{regex}$")


@dataclasses.dataclass(frozen=True)
class KeyRule:
    """One fairseq key template and its transformers twin; `cnn_norm` ("group" / "layer") limits a
    rule to that kind of CNN (the first layer's norm sits at another index in each)."""

    fairseq: str
    transformers: str
    cnn_norm: str | None = None

    def to_transformers(self, key: str) -> str | None:
        match = _pattern(self.fairseq).match(key)
        return None if match is None else self.transformers.format(**match.groupdict())

    def to_fairseq(self, key: str, cnn_norm: str) -> str | None:
        if self.cnn_norm not in (None, cnn_norm):
            return None
        match = _pattern(self.transformers).match(key)
        return None if match is None else self.fairseq.format(**match.groupdict())


KEY_RULES = (
    KeyRule("feature_extractor.conv_layers.{n}.0.{w}", "feature_extractor.conv_layers.{n}.conv.{w}"),
    KeyRule("feature_extractor.conv_layers.0.2.{w}", "feature_extractor.conv_layers.0.layer_norm.{w}", "group"),
    KeyRule("feature_extractor.conv_layers.{n}.2.1.{w}", "feature_extractor.conv_layers.{n}.layer_norm.{w}", "layer"),
    KeyRule("layer_norm.{w}", "feature_projection.layer_norm.{w}"),
    KeyRule("post_extract_proj.{w}", "feature_projection.projection.{w}"),
    KeyRule("mask_emb", "masked_spec_embed"),
    KeyRule("encoder.pos_conv.0.weight_g", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    KeyRule("encoder.pos_conv.0.weight_v", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    KeyRule("encoder.pos_conv.0.bias", "encoder.pos_conv_embed.conv.bias"),
    KeyRule("encoder.layer_norm.{w}", "encoder.layer_norm.{w}"),
    KeyRule("encoder.layers.{n}.self_attn.{proj}.{w}", "encoder.layers.{n}.attention.{proj}.{w}"),
    KeyRule("encoder.layers.{n}.self_attn_layer_norm.{w}", "encoder.layers.{n}.layer_norm.{w}"),
    KeyRule("encoder.layers.{n}.fc1.{w}", "encoder.layers.{n}.feed_forward.intermediate_dense.{w}"),
    KeyRule("encoder.layers.{n}.fc2.{w}", "encoder.layers.{n}.feed_forward.output_dense.{w}"),
    KeyRule("encoder.layers.{n}.final_layer_norm.{w}", "encoder.layers.{n}.final_layer_norm.{w}"),
    # WavLM (unilm): the bucketed relative position bias (layer 0) and its gate (every layer)
    KeyRule("encoder.layers.{n}.self_attn.relative_attention_bias.weight",
            "encoder.layers.{n}.attention.rel_attn_embed.weight"),
    KeyRule("encoder.layers.{n}.self_attn.grep_linear.{w}", "encoder.layers.{n}.attention.gru_rel_pos_linear.{w}"),
    KeyRule("encoder.layers.{n}.self_attn.grep_a", "encoder.layers.{n}.attention.gru_rel_pos_const"),
)
# a fairseq CNN whose last width is the model's has no post_extract_proj: the projection is the identity
_PROJECTION = ("feature_projection.projection.weight", "feature_projection.projection.bias")


def transformers_key(key: str) -> str | None:
    """The transformers key of a fairseq / unilm encoder key, or None when no rule knows it."""
    for rule in KEY_RULES:
        new = rule.to_transformers(key)
        if new is not None:
            return new
    return None


def fairseq_key(key: str, config: EncoderConfig) -> str:
    """The fairseq / unilm key of a transformers encoder key of a model with `config`."""
    for rule in KEY_RULES:
        new = rule.to_fairseq(key, config.feat_extract_norm)
        if new is not None:
            return new
    raise CheckpointError(f"{key}: no fairseq name for this transformers key")


# ---------------------------------------------------------------------------------- model config
# (fairseq / unilm field, transformers field): the same value on both sides unless VALUE_NAMES says
CONFIG_NAMES = (
    ("encoder_layers", "num_hidden_layers"),
    ("encoder_embed_dim", "hidden_size"),
    ("encoder_ffn_embed_dim", "intermediate_size"),
    ("encoder_attention_heads", "num_attention_heads"),
    ("activation_fn", "hidden_act"),
    ("dropout", "hidden_dropout"),
    ("attention_dropout", "attention_dropout"),
    ("activation_dropout", "activation_dropout"),
    ("dropout_input", "feat_proj_dropout"),
    ("encoder_layerdrop", "layerdrop"),
    ("extractor_mode", "feat_extract_norm"),
    ("conv_bias", "conv_bias"),
    ("conv_pos", "num_conv_pos_embeddings"),
    ("conv_pos_groups", "num_conv_pos_embedding_groups"),
    ("layer_norm_first", "do_stable_layer_norm"),
)
WAVLM_CONFIG_NAMES = (("num_buckets", "num_buckets"), ("max_distance", "max_bucket_distance"))
# fairseq value -> transformers value, per field; `gelu_accurate` is the tanh approximation
VALUE_NAMES = {
    "activation_fn": {"gelu_accurate": "gelu_new"},
    "extractor_mode": {"default": "group", "layer_norm": "layer"},
}
# transformers activations that compute what a fairseq one does under another name (export only)
_SAME_ACTIVATION = {"gelu_pytorch_tanh": "gelu_accurate", "silu": "swish"}
_FAIRSEQ_ACTIVATIONS = ("gelu", "gelu_accurate", "gelu_fast", "relu", "tanh", "swish")
# fairseq's `_name` of each kind's model and task
_MODEL_NAMES = {"hubert": "hubert", "wav2vec2": "wav2vec2"}
_TASK_NAMES = {"hubert": "hubert_pretraining", "wav2vec2": "audio_pretraining"}
SAMPLE_RATE = 16000


def transformers_value(field: str, value):
    """A fairseq config value in transformers' terms (`gelu_accurate` -> `gelu_new`, ...)."""
    return VALUE_NAMES.get(field, {}).get(value, value) if isinstance(value, str) else value


def _fairseq_value(field: str, value):
    inverse = {v: k for k, v in VALUE_NAMES.get(field, {}).items()}
    if field == "activation_fn":
        value = _SAME_ACTIVATION.get(value, value)
    return inverse.get(value, value)


def conv_layers_string(config: EncoderConfig) -> str:
    """fairseq's `conv_feature_layers`: runs of equal (dim, kernel, stride) layers written as
    `[(d,k,s)] * n`, joined by ` + ` (the standard CNN gives fairseq's own default string)."""
    layers = list(zip(config.conv_dim, config.conv_kernel, config.conv_stride))
    runs: list[list] = []
    for layer in layers:
        if runs and runs[-1][0] == layer:
            runs[-1][1] += 1
        else:
            runs.append([layer, 1])
    return " + ".join(f"[({d},{k},{s})]" + (f" * {n}" if n > 1 else "") for (d, k, s), n in runs)


def _exportable(config: EncoderConfig) -> None:
    """Refuse, in one line, what fairseq's and unilm's encoders cannot express."""
    if config.model_type not in KINDS:
        raise CheckpointError(f"model_type {config.model_type!r}: no fairseq or unilm form (expected one of "
                              f"{', '.join(KINDS)})")
    problems = []
    if config.conv_pos_batch_norm:
        problems.append("conv_pos_batch_norm=true (a batch-normed positional conv)")
    if not config.uses_projection_layer_norm:
        problems.append("feat_proj_layer_norm=false (no LayerNorm before the projection)")
    if config.feat_extract_activation != "gelu":
        problems.append(f"feat_extract_activation={config.feat_extract_activation!r} (fairseq's CNN uses gelu)")
    if config.layer_norm_eps != 1e-5:
        problems.append(f"layer_norm_eps={config.layer_norm_eps} (fairseq's LayerNorm uses 1e-5)")
    activation = _fairseq_value("activation_fn", config.hidden_act)
    if activation not in _FAIRSEQ_ACTIVATIONS:
        problems.append(f"hidden_act={config.hidden_act!r} (fairseq has none of that name)")
    if problems:
        raise CheckpointError(f"a {config.model_type} encoder with {'; '.join(problems)} has no fairseq form")


def _head_for(config: EncoderConfig, pretraining_head, warn: bool):
    """The head an export of `config`'s kind can hold (HuBERT's for HuBERT, wav2vec 2.0's for
    wav2vec 2.0, none for unilm's WavLM), or None (with a warning, if `warn`, when one is left out)."""
    if pretraining_head is None:
        return None
    kind = head_kind(pretraining_head)
    if kind == config.model_type:
        return pretraining_head
    where = "unilm's WavLM has no place for a pre-training head" if config.model_type == "wavlm" else (
        f"a fairseq {KIND_NAMES[config.model_type]} checkpoint cannot hold a {KIND_NAMES[kind]} head")
    if warn:
        logger.warning(f"{where}: the {KIND_NAMES[kind]} pre-training head is left out of the export")
    return None


def fairseq_model_config(config: EncoderConfig, normalize: bool, pretraining_head=None) -> tuple[dict, dict]:
    """`(model_cfg, task_cfg)` in fairseq's names for a HuBERT or wav2vec 2.0 encoder, in unilm's
    for WavLM (whose checkpoint holds the model config alone: `normalize` is in `model_cfg` and
    `task_cfg` is empty). The shapes of the pre-training head, when given, set `final_dim` and
    the quantizer's sizes. Raises `CheckpointError` for what fairseq cannot express."""
    _exportable(config)
    hf = config.to_hf_dict()
    model = {fs: _fairseq_value(fs, hf[tf]) for fs, tf in CONFIG_NAMES}
    model["conv_feature_layers"] = conv_layers_string(config)
    head = _head_for(config, pretraining_head, warn=False)  # the state's export warns
    if config.model_type == "wavlm":
        model.update({fs: hf[tf] for fs, tf in WAVLM_CONFIG_NAMES})
        model.update(relative_position_embedding=True, gru_rel_pos=True, normalize=bool(normalize))
        return model, {}
    model["_name"] = _MODEL_NAMES[config.model_type]
    task = {"_name": _TASK_NAMES[config.model_type], "normalize": bool(normalize), "sample_rate": SAMPLE_RATE}
    if config.model_type == "hubert":
        label_rate = SAMPLE_RATE / config.total_stride
        model["label_rate"] = task["label_rate"] = int(label_rate) if label_rate == int(label_rate) else label_rate
        if head is not None:
            model["final_dim"] = int(np.shape(head["final_proj"]["kernel"])[1])
    elif head is not None:
        model.update(_wav2vec2_head_config(head[WAV2VEC2_HEAD]))
    return model, task


def _wav2vec2_head_config(state: dict) -> dict:
    """fairseq's wav2vec 2.0 fields that size the head, read back from its shapes."""
    final_dim = int(np.shape(state["final_proj.weight"])[0])
    out = {"final_dim": final_dim, "target_glu": "target_glu.0.weight" in state,
           "quantize_targets": "quantizer.vars" in state}
    if out["quantize_targets"]:
        _, codewords, var_dim = np.shape(state["quantizer.vars"])
        vq_dim = int(np.shape(state["project_q.weight"])[1])
        groups = vq_dim // int(var_dim)
        out.update(latent_groups=groups, latent_vars=int(codewords) // groups, latent_dim=vq_dim)
    return out


def fairseq_state_from_params(params, config: EncoderConfig, pretraining_head=None) -> dict[str, np.ndarray]:
    """The encoder (and the pre-training head its kind can hold) as a fairseq / unilm state dict:
    fairseq's key names, PyTorch layouts, numpy arrays."""
    _exportable(config)
    transformers_state = params_io.params_to_state_dict(params, config)
    if config.conv_dim[-1] == config.hidden_size:
        weight, bias = (transformers_state.pop(k) for k in _PROJECTION)
        if not (np.array_equal(weight, np.eye(config.hidden_size)) and not np.any(bias)):
            raise CheckpointError(f"a {config.model_type} encoder whose CNN width equals hidden_size="
                                  f"{config.hidden_size} has no fairseq form unless its projection is the identity")
    state = {fairseq_key(key, config): value for key, value in transformers_state.items()}
    if "mask_emb" not in state:  # fairseq's models always have it (it serves masking in training only)
        state["mask_emb"] = np.zeros(config.hidden_size, np.float32)
    head = _head_for(config, pretraining_head, warn=True)
    if head is not None:
        state.update(head_to_state(head))
    return state
