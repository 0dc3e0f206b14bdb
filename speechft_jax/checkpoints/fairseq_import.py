"""Import of fairseq HuBERT checkpoints (`.pt`), including the pre-training head.

The file is read by the restricted unpickler (no torch, no fairseq, no code from the file runs).
The model config comes from `cfg["model"]` (newer fairseq) or `args` (older); fairseq's
`conv_feature_layers` string is parsed by a small literal evaluator, never by `eval`. Weights are
renamed to transformers' keys and go through the same strict mapping as a transformers checkpoint;
`final_proj` and `label_embs_concat`, which transformers drops, are returned as the pre-training
head for masked-prediction training.
"""

from __future__ import annotations

import ast
import logging
import math
import re
from pathlib import Path

import numpy as np

from speechft_jax.checkpoints import params_io, safe_unpickle, state_dict_io
from speechft_jax.checkpoints.pretraining_head import HEAD_KEYS, head_from_state
from speechft_jax.errors import CheckpointError
from speechft_jax.models import EncoderConfig
from speechft_jax.models.config import MAX_LAYERS, ConfigError

logger = logging.getLogger(__name__)

_DEFAULT_CONV_LAYERS = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"
# fairseq HubertConfig defaults (base model) for fields a checkpoint may leave out
_FAIRSEQ_DEFAULTS = dict(
    encoder_layers=12, encoder_embed_dim=768, encoder_ffn_embed_dim=3072, encoder_attention_heads=12,
    activation_fn="gelu", extractor_mode="default", conv_feature_layers=_DEFAULT_CONV_LAYERS,
    conv_bias=False, conv_pos=128, conv_pos_groups=16, layer_norm_first=False,
    dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, encoder_layerdrop=0.05, dropout_input=0.0,
)
_RENAMES = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)$", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"^feature_extractor\.conv_layers\.0\.2\.(weight|bias)$", r"feature_extractor.conv_layers.0.layer_norm.\1"),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)$", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"^layer_norm\.(weight|bias)$", r"feature_projection.layer_norm.\1"),
    (r"^post_extract_proj\.(weight|bias)$", r"feature_projection.projection.\1"),
    (r"^mask_emb$", r"masked_spec_embed"),
    (r"^encoder\.pos_conv\.0\.(weight_g|weight_v|bias)$", r"encoder.pos_conv_embed.conv.\1"),
    (r"^encoder\.layer_norm\.(weight|bias)$", r"encoder.layer_norm.\1"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)$",
     r"encoder.layers.\1.attention.\2.\3"),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)$", r"encoder.layers.\1.layer_norm.\2"),
    (r"^encoder\.layers\.(\d+)\.fc1\.(weight|bias)$", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"^encoder\.layers\.(\d+)\.fc2\.(weight|bias)$", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)$", r"encoder.layers.\1.final_layer_norm.\2"),
]

# fairseq's activation names that transformers calls otherwise: `gelu_accurate` is the tanh
# approximation, transformers' `gelu_new`
FAIRSEQ_ACTIVATIONS = {"gelu_accurate": "gelu_new"}


def parse_conv_layers(spec: str, source: str = "conv_feature_layers") -> list[tuple[int, int, int]]:
    """Evaluate fairseq's `conv_feature_layers` (lists of (dim, kernel, stride) tuples joined by
    `+` and repeated by `*`) without `eval`: only literals, `+` and `*` are accepted."""

    def evaluate(node):
        if isinstance(node, ast.Expression):
            return evaluate(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [evaluate(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = evaluate(node.left), evaluate(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            sizes = [len(v) if isinstance(v, (list, tuple)) else v for v in (left, right)]
            if isinstance(left, (list, tuple)) != isinstance(right, (list, tuple)) and sizes[0] * sizes[1] > MAX_LAYERS:
                # checked before multiplying: `[(512,10,5)] * 10**20` would take minutes, then all memory
                raise ValueError(f"more than {MAX_LAYERS} layers")
            return left * right
        raise ValueError(f"unsupported element {ast.dump(node)[:60]}")

    try:
        layers = evaluate(ast.parse(str(spec), mode="eval"))
        if not isinstance(layers, list) or not all(
                isinstance(t, tuple) and len(t) == 3 and all(isinstance(v, int) for v in t) for t in layers):
            raise ValueError("expected a list of (dim, kernel, stride) tuples")
    except (SyntaxError, ValueError, TypeError) as err:
        raise CheckpointError(f"{source}: cannot parse {spec!r} ({err})") from None
    return layers


def _model_config(checkpoint: dict, path: Path) -> dict:
    cfg = checkpoint.get("cfg")
    if cfg is not None:
        cfg = safe_unpickle.to_plain(cfg)
        model = cfg.get("model") if isinstance(cfg, dict) else None
        if isinstance(model, dict):
            return model
    args = checkpoint.get("args")
    if args is not None:
        args = safe_unpickle.to_plain(args)
        if isinstance(args, dict):
            return args
    raise CheckpointError(f"{path}: no model configuration found (expected cfg['model'] or args)")


def config_from_fairseq(model_cfg: dict, path: Path, runtime: dict) -> EncoderConfig:
    """A fairseq HuBERT model config -> the equivalent transformers-style `EncoderConfig`."""
    get = lambda key: model_cfg.get(key) if model_cfg.get(key) is not None else _FAIRSEQ_DEFAULTS[key]
    name = str(model_cfg.get("_name", "hubert"))
    if not name.startswith("hubert"):
        raise CheckpointError(f"{path}: model '{name}' is not a fairseq HuBERT model")
    conv = parse_conv_layers(get("conv_feature_layers"), f"{path}: conv_feature_layers")
    extractor = get("extractor_mode")
    if extractor not in ("default", "layer_norm"):
        raise CheckpointError(f"{path}: extractor_mode={extractor!r}, expected 'default' or 'layer_norm'")

    def number(key: str, kind: type):
        value = get(key)
        try:  # inf, a string or a list in the file: one line naming the key, not int()'s traceback
            result = kind(value)
            if isinstance(value, bool) or not math.isfinite(float(value)) or result != float(value):
                raise ValueError
            return result
        except (TypeError, ValueError, OverflowError):
            raise CheckpointError(f"{path}: {key}={value!r:.40}, expected {'an integer' if kind is int else 'a number'}"
                                  ) from None

    hf = dict(
        model_type="hubert",
        hidden_size=number("encoder_embed_dim", int),
        num_hidden_layers=number("encoder_layers", int),
        num_attention_heads=number("encoder_attention_heads", int),
        intermediate_size=number("encoder_ffn_embed_dim", int),
        hidden_act=FAIRSEQ_ACTIVATIONS.get(str(get("activation_fn")), str(get("activation_fn"))),
        hidden_dropout=number("dropout", float),
        attention_dropout=number("attention_dropout", float),
        activation_dropout=number("activation_dropout", float),
        feat_proj_dropout=number("dropout_input", float),
        layerdrop=number("encoder_layerdrop", float),
        feat_extract_norm="group" if extractor == "default" else "layer",
        feat_extract_activation="gelu",
        conv_dim=[c[0] for c in conv], conv_kernel=[c[1] for c in conv], conv_stride=[c[2] for c in conv],
        conv_bias=bool(get("conv_bias")),
        num_conv_pos_embeddings=number("conv_pos", int),
        num_conv_pos_embedding_groups=number("conv_pos_groups", int),
        do_stable_layer_norm=bool(get("layer_norm_first")),
        feat_proj_layer_norm=True,
        architectures=["HubertModel"],
    )
    try:
        return EncoderConfig.from_hf_dict(hf, source=str(path), **runtime)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


def rename_fairseq_keys(state: dict) -> tuple[dict, dict]:
    """fairseq HuBERT keys -> `(transformers keys for the encoder, pre-training head keys)`."""
    encoder, head = {}, {}
    for key, value in state.items():
        if key in HEAD_KEYS:
            head[key] = value
            continue
        for pattern, replacement in _RENAMES:
            new, count = re.subn(pattern, replacement, key)
            if count:
                encoder[new] = value
                break
        else:
            encoder[key] = value  # left as is: reported as unexpected by the strict mapping
    return encoder, head


def load_fairseq_hubert(path, runtime: dict):
    """Read a fairseq HuBERT checkpoint -> `(config, params, pretraining_head or None)`."""
    path = Path(path)
    checkpoint = safe_unpickle.load_torch_zip(path)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise CheckpointError(f"{path}: not a fairseq checkpoint (expected a dict with a 'model' state dict)")
    config = config_from_fairseq(_model_config(checkpoint, path), path, runtime)
    arrays = {k: v.numpy() for k, v in checkpoint["model"].items() if isinstance(v, safe_unpickle.LazyTensor)}
    state_dict_io.require_finite(arrays, path)
    encoder_state, head_state = rename_fairseq_keys(arrays)
    if "feature_projection.projection.weight" not in encoder_state and config.conv_dim[-1] == config.hidden_size:
        # fairseq has no projection when the CNN already has the model width: it is the identity
        encoder_state["feature_projection.projection.weight"] = np.eye(config.hidden_size, dtype=np.float32)
        encoder_state["feature_projection.projection.bias"] = np.zeros(config.hidden_size, np.float32)
    if "masked_spec_embed" not in encoder_state:
        raise CheckpointError(f"{path}: mask_emb is missing")
    params, _ = params_io.state_dict_to_params(encoder_state, config, source=str(path))
    missing = [k for k in HEAD_KEYS if k not in head_state]
    if head_state and missing:
        # fairseq's remove_pretraining_modules drops final_proj, a checkpoint without label
        # dictionaries has no label_embs_concat: the encoder is complete all the same
        logger.warning(f"{path}: incomplete pre-training head (missing {', '.join(missing)}); loaded the encoder "
                       "without it (continued HuBERT pre-training starts a new head)")
    head = head_from_state(head_state, str(path)) if head_state and not missing else None
    return config, params, head
