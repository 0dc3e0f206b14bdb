"""Import of fairseq HuBERT and wav2vec 2.0 and unilm WavLM checkpoints (`.pt`), with their
pre-training heads.

The file is read by the restricted unpickler (no torch, no fairseq, no code from the file runs).
The model config comes from `cfg["model"]` (newer fairseq), `args` (older fairseq) or `cfg` itself
(unilm's WavLM: a plain dict of the model config); the model kind from its `_name`, else its
`arch`, else from the keys only one kind has. fairseq's `conv_feature_layers` string is parsed by a
small literal evaluator, never by `eval`. Weights are renamed to transformers' keys
(`fairseq_keys`) and go through the same strict mapping as a transformers checkpoint; the modules
that exist only for pre-training (HuBERT's `final_proj` and `label_embs_concat`, wav2vec 2.0's
quantizer, `project_q` and `final_proj`), which transformers drops, come back as the pre-training
head, and `normalize` (fairseq's `task.normalize`, unilm's `cfg["normalize"]`) beside them.
HuBERT and WavLM mark the frames of padded batches by fairseq's rule (`frame_mask: fairseq`),
wav2vec 2.0 by the conv length formula, as fairseq does for each.
"""

from __future__ import annotations

import ast
import dataclasses
import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from speechft_jax.checkpoints import params_io, safe_unpickle, state_dict_io
from speechft_jax.checkpoints.fairseq_keys import (CONFIG_NAMES, KIND_NAMES, KINDS, WAVLM_CONFIG_NAMES, fairseq_key,
                                                   transformers_key, transformers_value)
from speechft_jax.checkpoints.pretraining_head import head_from_state, is_head_key, missing_head_keys
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
# where fairseq's Wav2Vec2Config and unilm's WavLMConfig default otherwise
_KIND_DEFAULTS = {
    "hubert": {},
    "wav2vec2": dict(encoder_layerdrop=0.0),
    "wavlm": dict(encoder_layerdrop=0.0, relative_position_embedding=False, num_buckets=320, max_distance=1280,
                  gru_rel_pos=False),
}
_INTEGERS = ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads",
             "conv_pos", "conv_pos_groups", "num_buckets", "max_distance")
_BOOLEANS = ("conv_bias", "layer_norm_first")
# model settings that build an encoder this port does not have, with the value that does not
_UNSUPPORTED = {
    "layer_type": ("transformer", "a conformer encoder"),
    "pos_conv_depth": (1, "a positional conv of several layers"),
    "quantize_input": (False, "quantised encoder input"),
}
# every frame rule is the one fairseq (unilm) itself applies to padded batches of that kind
_FRAME_MASKS = {"hubert": "fairseq", "wav2vec2": "transformers", "wavlm": "fairseq"}
_FINE_TUNED_SUFFIXES = ("_ctc", "_seq2seq")


@dataclasses.dataclass(frozen=True)
class ImportedEncoder:
    """What a fairseq / unilm checkpoint holds: the encoder's config and parameters, its
    pre-training head (None without one) and whether its audio is normalised per utterance."""

    config: EncoderConfig
    params: Any
    pretraining_head: dict | None
    normalize: bool


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


def _checkpoint_config(checkpoint: dict, path: Path) -> tuple[dict, object]:
    """`(model config, normalize)`: fairseq's `cfg["model"]` and `cfg["task"]["normalize"]`, old
    fairseq's `args` (normalize in it), or unilm's WavLM `cfg` (the model config, normalize in it)."""
    cfg = checkpoint.get("cfg")
    if cfg is not None:
        cfg = safe_unpickle.to_plain(cfg)
        if not isinstance(cfg, dict):
            raise CheckpointError(f"{path}: cfg is a {type(cfg).__name__}, expected a mapping (fairseq's cfg with a "
                                  "'model' entry, or unilm's WavLM model config)")
        if "model" not in cfg and "task" not in cfg:  # unilm's WavLM: the model config itself
            return cfg, cfg.get("normalize")
        model, task = cfg.get("model"), cfg.get("task")
        if not isinstance(model, dict):
            raise CheckpointError(f"{path}: cfg['model'] is {type(model).__name__}, expected a mapping of the model "
                                  "config")
        return model, task.get("normalize") if isinstance(task, dict) else None
    args = checkpoint.get("args")
    if args is not None:
        args = safe_unpickle.to_plain(args)
        if isinstance(args, dict):
            return args, args.get("normalize")
        raise CheckpointError(f"{path}: args is a {type(args).__name__}, expected a Namespace of the model config")
    raise CheckpointError(f"{path}: no model configuration found (expected cfg['model'], args, or unilm's cfg)")


def model_kind(model_cfg: dict, keys, source) -> str:
    """"hubert", "wav2vec2" or "wavlm": from the config's `_name`, else `arch`, else the keys
    (or settings) only one kind has; anything else is a one-line `CheckpointError`."""
    for field in ("_name", "arch"):
        name = model_cfg.get(field)
        if name is None:
            continue
        kind = next((k for k in KINDS if str(name).startswith(k)), None)
        if str(name).endswith(_FINE_TUNED_SUFFIXES):
            raise CheckpointError(f"{source}: {field}={name!r:.60} is a fine-tuned fairseq model (its encoder under "
                                  "w2v_encoder.w2v_model), not supported: load the pre-trained checkpoint it "
                                  "started from")
        if kind is None:
            raise CheckpointError(f"{source}: {field}={name!r:.60} is not a pre-trained fairseq HuBERT, wav2vec 2.0 "
                                  "or WavLM model")
        return kind
    keys = list(keys)
    if model_cfg.get("relative_position_embedding") or any(".self_attn.grep_linear." in k for k in keys):
        return "wavlm"
    if any(k.startswith(("quantizer.", "project_q.")) for k in keys):
        return "wav2vec2"
    if "label_embs_concat" in keys:
        return "hubert"
    raise CheckpointError(f"{source}: cannot tell the model kind: the config has no _name or arch, and no key marks "
                          "one (label_embs_concat: HuBERT, quantizer.*: wav2vec 2.0, self_attn.grep_linear: WavLM)")


def config_from_fairseq(model_cfg: dict, path, runtime: dict, kind: str | None = None) -> EncoderConfig:
    """A fairseq (unilm) model config of a `kind` model (default: from its `_name` / `arch`) ->
    the equivalent transformers-style `EncoderConfig`."""
    kind = model_kind(model_cfg, (), path) if kind is None else kind
    defaults = {**_FAIRSEQ_DEFAULTS, **_KIND_DEFAULTS[kind]}
    get = lambda key: model_cfg.get(key) if model_cfg.get(key) is not None else defaults[key]
    for key, (supported, what) in _UNSUPPORTED.items():
        if model_cfg.get(key, supported) not in (None, supported):
            raise CheckpointError(f"{path}: {key}={model_cfg[key]!r:.40} ({what}) is not supported, "
                                  f"expected {supported!r}")
    if kind == "wavlm":
        for key in ("relative_position_embedding", "gru_rel_pos"):
            if get(key) is not True:  # transformers' WavLM always has both
                raise CheckpointError(f"{path}: {key}={get(key)!r:.40}, expected True for a WavLM model")
    conv = parse_conv_layers(get("conv_feature_layers"), f"{path}: conv_feature_layers")
    extractor = get("extractor_mode")
    if extractor not in ("default", "layer_norm"):
        raise CheckpointError(f"{path}: extractor_mode={extractor!r}, expected 'default' or 'layer_norm'")

    def value(key: str):
        raw = get(key)
        if key in _BOOLEANS:
            if not isinstance(raw, bool):
                raise CheckpointError(f"{path}: {key}={raw!r:.40}, expected true or false")
            return raw
        if key in ("activation_fn", "extractor_mode"):
            return transformers_value(key, str(raw))
        number_type = int if key in _INTEGERS else float
        try:  # inf, a string or a list in the file: one line naming the key, not int()'s traceback
            result = number_type(raw)
            if isinstance(raw, bool) or not math.isfinite(float(raw)) or result != float(raw):
                raise ValueError
            return result
        except (TypeError, ValueError, OverflowError):
            raise CheckpointError(f"{path}: {key}={raw!r:.40}, expected "
                                  f"{'an integer' if number_type is int else 'a number'}") from None

    names = CONFIG_NAMES + (WAVLM_CONFIG_NAMES if kind == "wavlm" else ())
    hf = {transformers: value(fairseq) for fairseq, transformers in names}
    hf.update(
        model_type=kind, feat_extract_activation="gelu", feat_proj_layer_norm=True, frame_mask=_FRAME_MASKS[kind],
        conv_dim=[c[0] for c in conv], conv_kernel=[c[1] for c in conv], conv_stride=[c[2] for c in conv],
    )
    try:
        return EncoderConfig.from_hf_dict(hf, source=str(path), **runtime)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


def rename_fairseq_keys(state: dict, kind: str = "hubert") -> tuple[dict, dict]:
    """fairseq (unilm) keys of a `kind` model -> `(transformers keys for the encoder, pre-training
    head keys)`; a key no rule knows is kept as is (the strict mapping reports it)."""
    encoder, head = {}, {}
    for key, value in state.items():
        if is_head_key(kind, key):
            head[key] = value
        else:
            encoder[transformers_key(key) or key] = value
    return encoder, head


def _normalize(value, source) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise CheckpointError(f"{source}: normalize={value!r:.40}, expected true or false")
    return value


def encoder_from_fairseq(model_cfg: dict, arrays: dict, source, runtime: dict, normalize=None,
                         kind: str | None = None) -> ImportedEncoder:
    """A fairseq (unilm) model config and state dict (numpy arrays, fairseq's key names) -> the
    encoder, its pre-training head and `normalize`; a missing key or a shape that does not fit
    is a `CheckpointError` naming the key as the file does."""
    normalize = _normalize(normalize, source)  # a config error before any weight is mapped
    kind = model_kind(model_cfg, arrays, source) if kind is None else kind
    config = config_from_fairseq(model_cfg, source, runtime, kind)
    state_dict_io.require_finite(arrays, source)
    encoder_state, head_state = rename_fairseq_keys(arrays, kind)
    if "feature_projection.projection.weight" not in encoder_state and config.conv_dim[-1] == config.hidden_size:
        # fairseq has no projection when the CNN already has the model width: it is the identity
        encoder_state["feature_projection.projection.weight"] = np.eye(config.hidden_size, dtype=np.float32)
        encoder_state["feature_projection.projection.bias"] = np.zeros(config.hidden_size, np.float32)
    try:
        params, _ = params_io.state_dict_to_params(encoder_state, config, source=str(source))
    except CheckpointError as err:  # name the keys as the file does
        raise CheckpointError(re.sub(r"[\w.]+", lambda m: _file_key(m.group(), config), str(err))) from None
    missing = missing_head_keys(kind, head_state)
    if head_state and missing:
        # fairseq's remove_pretraining_modules drops final_proj, a checkpoint without label
        # dictionaries has no label_embs_concat: the encoder is complete all the same
        logger.warning(f"{source}: incomplete pre-training head (missing {', '.join(missing)}); loaded the encoder "
                       f"without it (continued pre-training starts a new head)")
    head = head_from_state(head_state, str(source), "wav2vec2" if kind == "wav2vec2" else "hubert",
                           config.hidden_size) if head_state and not missing else None
    return ImportedEncoder(config, params, head, normalize)


def _file_key(word: str, config: EncoderConfig) -> str:
    """A transformers key in an error message -> the fairseq key; any other word unchanged."""
    try:
        return fairseq_key(word, config) if "." in word else word
    except CheckpointError:
        return word


def load_fairseq(path, runtime: dict, checkpoint: dict | None = None) -> ImportedEncoder:
    """Read a fairseq HuBERT / wav2vec 2.0 or a unilm WavLM checkpoint (module docstring);
    `checkpoint` is the file's content when the caller has already unpickled it."""
    path = Path(path)
    checkpoint = safe_unpickle.load_torch_zip(path) if checkpoint is None else checkpoint
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise CheckpointError(f"{path}: not a fairseq checkpoint (expected a dict with a 'model' state dict)")
    model_cfg, normalize = _checkpoint_config(checkpoint, path)
    arrays = safe_unpickle.tensor_arrays(checkpoint["model"])
    imported = encoder_from_fairseq(model_cfg, arrays, path, runtime, normalize)
    logger.info(f"{path}: a {KIND_NAMES[imported.config.model_type]} encoder"
                + (", with its pre-training head" if imported.pretraining_head is not None else ""))
    return imported
