"""The encoder configuration: one frozen dataclass for HuBERT, wav2vec 2.0, WavLM and DeCoAR 2.0.

`EncoderConfig.from_hf_dict` reads a transformers `config.json` (as a dict); `to_hf_dict` writes
one back that `transformers.AutoConfig` accepts. Fields not used by the encoder (CTC vocabulary,
classifier sizes, quantizer settings, ...) ride along untouched in `hf_extra`, so a round trip
through this project keeps the original file's content.

DeCoAR 2.0 (`model_type: "decoar2"`, s3prl's `upstream/decoar2`; transformers has no such model)
has no CNN: a Kaldi log-mel filterbank (80 bins, 25 ms frames every 10 ms) with per-utterance CMVN,
of which every second frame is kept, feeds a `Linear(80 -> hidden)` without LayerNorm, then the
wav2vec 2.0 post-LN transformer. Its config carries `conv_kernel=(400, 1)`, `conv_stride=(160, 2)`,
`conv_dim=(80, 80)` (`DECOAR2_FRONT_END`): the conv length formula over them is exactly the
filterbank's frame count `1 + (samples - 400) // 160` followed by keeping frames 0, 2, 4, ...
(`ceil(n / 2) = (n - 1) // 2 + 1`), so `num_frames`, `receptive_field` (400), `total_stride` (320),
the frame mask and the data pipeline's length buckets need no special case; conv_dim[-1] is the
front end's width. A decoar2 config with other values is refused.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

from speechft_jax.errors import ConfigError, short_repr

MODEL_TYPES = ("hubert", "wav2vec2", "wavlm", "decoar2")
# DeCoAR 2.0's filterbank front end written as the conv fields that give its frame count (module
# docstring), with the architecture it fixes: no LayerNorm before the input linear, post-LN layers.
DECOAR2_FRONT_END: dict[str, Any] = dict(conv_dim=(80, 80), conv_kernel=(400, 1), conv_stride=(160, 2),
                                         feat_proj_layer_norm=False, do_stable_layer_norm=False)
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish", "tanh")
DTYPES = ("float32", "bfloat16", "float16")
# Which frames of a padded batch are valid: "transformers" counts them with the conv length formula,
# "fairseq" (fairseq's and s3prl's HuBERT / WavLM) marks a frame padding only when all of its samples
# are (`forward_padding_mask`), which can keep one or two frames more on a short utterance.
FRAME_MASKS = ("transformers", "fairseq")

# The architecture fields this project reads, with transformers' defaults for a base model.
_ARCH_DEFAULTS: dict[str, Any] = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    hidden_dropout=0.1,
    activation_dropout=0.1,
    attention_dropout=0.1,
    feat_proj_dropout=0.0,
    layerdrop=0.1,
    layer_norm_eps=1e-5,
    initializer_range=0.02,
    feat_extract_norm="group",
    feat_extract_activation="gelu",
    conv_dim=(512, 512, 512, 512, 512, 512, 512),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_bias=False,
    num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16,
    conv_pos_batch_norm=False,
    feat_proj_layer_norm=True,
    do_stable_layer_norm=False,
    apply_spec_augment=True,
    mask_time_prob=0.05,
    mask_time_length=10,
    mask_time_min_masks=2,
    mask_feature_prob=0.0,
    mask_feature_length=10,
    mask_feature_min_masks=0,
    num_buckets=320,
    max_bucket_distance=800,
)
# A decoar2 config.json's defaults where they differ: s3prl's Decoar2 (input dropout 0.1, no
# activation dropout; s3prl's upstream sets layerdrop 0) has no mask embedding, hence no time masking.
_DECOAR2_DEFAULTS: dict[str, Any] = dict(DECOAR2_FRONT_END, feat_proj_dropout=0.1, activation_dropout=0.0,
                                         layerdrop=0.0, mask_time_prob=0.0)
# Settings of this project, not of the checkpoint: never written to config.json.
_RUNTIME_FIELDS = ("dtype", "param_dtype", "remat", "scan_layers", "batch_independent")
# How an encoder trains (dropouts, SpecAugment), not what it computes in eval mode: a fine-tuning
# run may change them, and two encoders that differ only in them can be merged.
TRAINING_SETTINGS = ("hidden_dropout", "activation_dropout", "attention_dropout", "feat_proj_dropout",
                     "layerdrop", "apply_spec_augment", "mask_time_prob", "mask_time_length",
                     "mask_time_min_masks", "mask_feature_prob", "mask_feature_length",
                     "mask_feature_min_masks")
# transformers options that change the encoder in ways this port does not implement.
_UNSUPPORTED_IF_SET = {
    "add_adapter": "the output adapter of speech-to-text checkpoints",
    "adapter_attn_dim": "MMS attention adapters",
}
# Bounds on the shape, far above any real encoder (XLS-R 2B: width 1920, 48 layers, FFN 7680),
# so that a typo such as `conv_dim: [512, 1e20]` is refused before anything is allocated.
MAX_WIDTH = 65536            # hidden_size, intermediate_size, conv_dim[i], heads, groups
MAX_LAYERS = 256             # num_hidden_layers, and the number of CNN layers
MAX_KERNEL = 4096            # conv_kernel[i], conv_stride[i], num_conv_pos_embeddings
MAX_PARAMETERS = 5 * 10**9   # the estimated parameter count (`estimated_parameters`)
_INT_RANGES = {
    "hidden_size": (1, MAX_WIDTH), "num_hidden_layers": (1, MAX_LAYERS),
    "num_attention_heads": (1, MAX_WIDTH), "intermediate_size": (1, MAX_WIDTH),
    "num_conv_pos_embeddings": (1, MAX_KERNEL), "num_conv_pos_embedding_groups": (1, MAX_WIDTH),
    "mask_time_length": (1, MAX_WIDTH), "mask_feature_length": (1, MAX_WIDTH),
    "mask_time_min_masks": (0, MAX_WIDTH), "mask_feature_min_masks": (0, MAX_WIDTH),
    "num_buckets": (1, MAX_WIDTH), "max_bucket_distance": (1, 2**20),
}
_CONV_RANGES = {"conv_dim": (1, MAX_WIDTH), "conv_kernel": (1, MAX_KERNEL), "conv_stride": (1, MAX_KERNEL)}
_BOOLEANS = ("conv_bias", "conv_pos_batch_norm", "feat_proj_layer_norm", "do_stable_layer_norm",
             "apply_spec_augment", "remat", "scan_layers", "batch_independent")


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Architecture of a HuBERT / wav2vec 2.0 / WavLM encoder, plus compute settings."""

    model_type: str = "hubert"
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    activation_dropout: float = 0.1
    attention_dropout: float = 0.1
    feat_proj_dropout: float = 0.0
    layerdrop: float = 0.1
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    feat_extract_norm: str = "group"
    feat_extract_activation: str = "gelu"
    conv_dim: tuple[int, ...] = (512, 512, 512, 512, 512, 512, 512)
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_bias: bool = False
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    conv_pos_batch_norm: bool = False
    feat_proj_layer_norm: bool = True
    do_stable_layer_norm: bool = False
    apply_spec_augment: bool = True
    mask_time_prob: float = 0.05
    mask_time_length: int = 10
    mask_time_min_masks: int = 2
    mask_feature_prob: float = 0.0
    mask_feature_length: int = 10
    mask_feature_min_masks: int = 0
    num_buckets: int = 320
    max_bucket_distance: int = 800
    frame_mask: str = "transformers"  # the frame rule of padded batches (FRAME_MASKS), set from the source format
    # compute settings
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat: bool = False
    scan_layers: bool = False  # run runs of alike layers as one lax.scan (faster compiles for deep models)
    # a group-norm CNN's statistics over each utterance's valid frames only, so that its features
    # in a padded batch equal its unpadded forward (transformers normalises over the padding too)
    batch_independent: bool = False
    # the rest of config.json, kept for export; not part of equality or hashing
    hf_extra: dict = dataclasses.field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self):
        for name, (low, high) in _CONV_RANGES.items():
            values = getattr(self, name)
            if not isinstance(values, (list, tuple)) or len(values) > MAX_LAYERS:
                raise ConfigError(f"encoder config: {name}={short_repr(values)}, expected a list of at most "
                                  f"{MAX_LAYERS} integers")
            for i, v in enumerate(values):  # checked before int(): int(inf) and int(1e20) must not run
                if not isinstance(v, numbers.Integral) or isinstance(v, bool) or not low <= v <= high:
                    raise ConfigError(f"encoder config: {name}[{i}]={short_repr(v)}, expected an integer in "
                                      f"[{low}, {high}]")
            object.__setattr__(self, name, tuple(int(v) for v in values))
        self.validate()

    # ------------------------------------------------------------------ derived sizes
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def num_feat_extract_layers(self) -> int:
        return len(self.conv_dim)

    @property
    def has_relative_position_bias(self) -> bool:
        return self.model_type == "wavlm"

    @property
    def has_masked_spec_embed(self) -> bool:
        """transformers creates `masked_spec_embed` only when some masking probability is > 0."""
        return self.mask_time_prob > 0.0 or self.mask_feature_prob > 0.0

    @property
    def uses_projection_layer_norm(self) -> bool:
        return self.model_type not in ("hubert", "decoar2") or self.feat_proj_layer_norm

    @property
    def in_transformers(self) -> bool:
        """Whether transformers has this model family (it has no DeCoAR 2.0)."""
        return self.model_type != "decoar2"

    @property
    def receptive_field(self) -> int:
        """Samples one CNN output frame sees (400 for the standard 16 kHz CNN)."""
        field = 1
        for kernel, stride in zip(reversed(self.conv_kernel), reversed(self.conv_stride)):
            field = (field - 1) * stride + kernel
        return field

    @property
    def total_stride(self) -> int:
        out = 1
        for stride in self.conv_stride:
            out *= stride
        return out

    def estimated_parameters(self) -> int:
        """About how many parameters this shape has (CNN, projection, positional conv, layers)."""
        widths = (1,) + self.conv_dim
        cnn = sum(k * c_in * c_out for k, c_in, c_out in zip(self.conv_kernel, widths, widths[1:]))
        h = self.hidden_size
        positional = self.num_conv_pos_embeddings * h * h // self.num_conv_pos_embedding_groups
        layers = self.num_hidden_layers * (4 * h * h + 2 * h * self.intermediate_size)
        return cnn + self.conv_dim[-1] * h + positional + layers

    def num_frames(self, num_samples: int) -> int:
        """CNN output frames for an input of `num_samples` samples (0 when too short)."""
        length = num_samples
        for kernel, stride in zip(self.conv_kernel, self.conv_stride):
            length = (length - kernel) // stride + 1
            if length <= 0:
                return 0
        return length

    def replace(self, **changes) -> "EncoderConfig":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        def fail(key, value, expected):
            raise ConfigError(f"encoder config: {key}={short_repr(value)}, expected {expected}")

        if self.model_type not in MODEL_TYPES:
            fail("model_type", self.model_type, f"one of {', '.join(MODEL_TYPES)}")
        for key, (low, high) in _INT_RANGES.items():
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                fail(key, value, f"an integer in [{low}, {high}]")
        for key in _BOOLEANS:
            if not isinstance(getattr(self, key), bool):
                fail(key, getattr(self, key), "true or false")
        number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
        if not number(self.layer_norm_eps) or not 0.0 < self.layer_norm_eps <= 1.0:
            fail("layer_norm_eps", self.layer_norm_eps, "a number in (0, 1]")
        if not number(self.initializer_range) or not 0.0 <= self.initializer_range <= 10.0:
            fail("initializer_range", self.initializer_range, "a number in [0, 10]")
        if self.hidden_size % self.num_attention_heads:
            fail("num_attention_heads", self.num_attention_heads,
                 f"a divisor of hidden_size={self.hidden_size}")
        if self.hidden_size % self.num_conv_pos_embedding_groups:
            fail("num_conv_pos_embedding_groups", self.num_conv_pos_embedding_groups,
                 f"a divisor of hidden_size={self.hidden_size}")
        if not (len(self.conv_dim) == len(self.conv_stride) == len(self.conv_kernel) >= 1):
            fail("conv_dim/conv_stride/conv_kernel", (self.conv_dim, self.conv_stride, self.conv_kernel),
                 "three non-empty lists of equal length")
        if self.feat_extract_norm not in ("group", "layer"):
            fail("feat_extract_norm", self.feat_extract_norm, "'group' or 'layer'")
        for key in ("hidden_act", "feat_extract_activation"):
            if getattr(self, key) not in ACTIVATIONS:
                fail(key, getattr(self, key), f"one of {', '.join(ACTIVATIONS)}")
        for key in ("hidden_dropout", "activation_dropout", "attention_dropout", "feat_proj_dropout",
                    "layerdrop", "mask_time_prob", "mask_feature_prob"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                fail(key, value, "a number in [0, 1]")
        for key in ("dtype", "param_dtype"):
            if getattr(self, key) not in DTYPES:
                fail(key, getattr(self, key), f"one of {', '.join(DTYPES)}")
        if self.frame_mask not in FRAME_MASKS:
            fail("frame_mask", self.frame_mask, f"one of {', '.join(FRAME_MASKS)}")
        if self.conv_pos_batch_norm and self.model_type != "hubert":
            fail("conv_pos_batch_norm", True, "False for model_type other than 'hubert'")
        if self.model_type == "decoar2":
            for key, value in DECOAR2_FRONT_END.items():
                if getattr(self, key) != value:
                    fail(key, getattr(self, key), f"{short_repr(value)} for model_type 'decoar2' (its filterbank "
                         "front end and post-LN transformer)")
            if self.frame_mask != "transformers":  # s3prl pads filterbank frames: the length formula
                fail("frame_mask", self.frame_mask, "'transformers' for model_type 'decoar2'")
        if self.estimated_parameters() > MAX_PARAMETERS:  # each size in range, but together too big
            fail("hidden_size/num_hidden_layers/intermediate_size",
                 (self.hidden_size, self.num_hidden_layers, self.intermediate_size),
                 f"a shape of at most {MAX_PARAMETERS:.0e} parameters (this one has about "
                 f"{self.estimated_parameters():.1e})")

    # ------------------------------------------------------------------ Hugging Face
    @classmethod
    def from_hf_dict(cls, hf: dict, source: str = "config.json", **runtime) -> "EncoderConfig":
        """Build from a transformers config dict; `runtime` sets dtype, param_dtype, remat."""
        if not isinstance(hf, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(hf).__name__}")
        model_type = hf.get("model_type")
        if model_type not in MODEL_TYPES:
            raise ConfigError(
                f"{source}: model_type={model_type!r} is not supported, expected one of {', '.join(MODEL_TYPES)}")
        for key, what in _UNSUPPORTED_IF_SET.items():
            if hf.get(key):
                raise ConfigError(f"{source}: {key}={hf[key]!r} ({what}) is not supported by speechft-jax")
        values = {"model_type": model_type}
        defaults = {**_ARCH_DEFAULTS, **(_DECOAR2_DEFAULTS if model_type == "decoar2" else {})}
        for key, default in defaults.items():
            value = hf.get(key, default)
            if isinstance(default, tuple):
                if not isinstance(value, (list, tuple)):
                    raise ConfigError(f"{source}: {key}={value!r}, expected a list of integers")
                value = tuple(value)
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{source}: {key}={value!r}, expected true or false")
            elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            values[key] = value
        if model_type not in ("hubert", "decoar2"):  # only these can be without the projection LayerNorm
            values["feat_proj_layer_norm"] = True
        values["frame_mask"] = hf.get("frame_mask", "transformers")
        extra = {k: v for k, v in hf.items() if k not in values}
        try:
            return cls(**values, **runtime, hf_extra=extra)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None

    def to_hf_dict(self) -> dict:
        """A transformers config dict (the architecture class is the base model's)."""
        out = dict(self.hf_extra)
        out.pop("transformers_version", None)
        for key in _ARCH_DEFAULTS:
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, tuple) else value
        out["model_type"] = self.model_type
        if self.frame_mask != "transformers":  # transformers ignores the key (its own rule is the formula)
            out["frame_mask"] = self.frame_mask
        else:
            out.pop("frame_mask", None)
        if self.model_type not in ("hubert", "decoar2"):
            out.pop("feat_proj_layer_norm", None)
        if self.model_type != "hubert":
            out.pop("conv_pos_batch_norm", None)
        if self.model_type != "wavlm":
            out.pop("num_buckets", None)
            out.pop("max_bucket_distance", None)
        out["architectures"] = [{"hubert": "HubertModel", "wav2vec2": "Wav2Vec2Model",
                                 "wavlm": "WavLMModel",
                                 "decoar2": "Decoar2"}[self.model_type]]  # s3prl's class: transformers has none
        out["num_feat_extract_layers"] = self.num_feat_extract_layers
        return out

    def runtime_settings(self) -> dict:
        return {key: getattr(self, key) for key in _RUNTIME_FIELDS}
