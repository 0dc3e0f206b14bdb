"""The encoder a run starts from (theta_0): a pre-trained checkpoint, or a config to initialise.

`ModelConfig` is a training config's `model` section. `start_encoder(model_config, config_dir)`
returns a `PretrainedBundle` whose config carries the run's compute settings and fine-tuning
overrides; for a random start its `params` are None and the loop initialises them inside
`jax.jit` with the run's shardings (`init_fn`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

import jax

from speechft_jax.checkpoints import load_pretrained
from speechft_jax.config_loading import SEED, check, resolve_path
from speechft_jax.models import EncoderConfig, SpeechEncoder
from speechft_jax.models.config import TRAINING_SETTINGS, ConfigError
from speechft_jax.models.filterbank_init import filterbank_cnn
from speechft_jax.models.pretrained import PretrainedBundle, init_params


@dataclass(frozen=True)
class ModelConfig:
    """The encoder to fine-tune (a training config's `model` section).

    `pretrained`: a transformers directory, a hub id, a fairseq `.pt` or a speechft Flax
    directory. Or `config`: a transformers `config.json` for a randomly initialised encoder
    (seeded by `init_seed`; `cnn_init: filterbank` starts its CNN as a mel-spaced Gabor filterbank
    followed by per-channel averages, `models/filterbank_init.py`); a relative path is looked up
    from the working directory, then next to the YAML file, then next to each file of its `base:`
    chain. `overrides`: `EncoderConfig` training settings to change (`models.config.TRAINING_SETTINGS`:
    SpecAugment's `mask_time_prob`, dropouts). `dtype` / `param_dtype` (float32, bfloat16), `remat` (recompute
    each layer in the backward pass) and `scan_layers` (alike layers as one `lax.scan`: shorter
    compiles for deep models) change how it runs, not what it computes. `batch_independent` takes a
    group-norm CNN's statistics over each utterance's own samples, not over its padded batch
    (transformers' way, the default), so that an utterance trains on the features it would have alone.
    """

    pretrained: str | None = None
    config: str | None = None
    init_seed: Annotated[int, SEED] = 0
    cnn_init: Literal["random", "filterbank"] = "random"
    dtype: Literal["float32", "bfloat16"] = "float32"
    param_dtype: Literal["float32", "bfloat16"] = "float32"
    remat: bool = False
    scan_layers: bool = False
    batch_independent: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    def validate(self):
        if (self.pretrained is None) == (self.config is None):
            raise ConfigError(f"pretrained={self.pretrained!r}, config={self.config!r}: expected exactly "
                              "one of them (a checkpoint, or a config.json for random initialisation)")
        if self.cnn_init != "random" and self.pretrained is not None:
            raise ConfigError(f"cnn_init={self.cnn_init!r}: only for a random start (model.config), "
                              f"not for model.pretrained={self.pretrained!r}")
        for key in self.overrides:
            check(key in TRAINING_SETTINGS, f"overrides.{key}", self.overrides[key],
                  f"an overridable encoder setting (one of {', '.join(TRAINING_SETTINGS)})")
        try:  # the values' own ranges (the encoder's validation), before any checkpoint is read
            EncoderConfig().replace(**self.overrides)
        except ConfigError as err:
            raise ConfigError(f"overrides.{str(err).removeprefix('encoder config: ')}") from None


def _with_overrides(config: EncoderConfig, overrides: dict, spec_augment: bool) -> EncoderConfig:
    for key in overrides:
        if key not in TRAINING_SETTINGS:  # what a run may change in a pre-trained encoder's config
            raise ConfigError(f"model.overrides.{key}: not an overridable encoder setting "
                              f"(allowed: {', '.join(TRAINING_SETTINGS)})")
    changes = dict(overrides)
    if not spec_augment:
        changes["apply_spec_augment"] = False
    if config.has_masked_spec_embed != config.replace(**changes).has_masked_spec_embed:
        # masked_spec_embed exists only when a mask probability is > 0; a checkpoint fixes it
        raise ConfigError("model.overrides: a mask probability cannot move between 0 and > 0 "
                          "(it adds or removes the masked_spec_embed parameter); use "
                          "apply_spec_augment or finetune.spec_augment to switch masking off")
    return config.replace(**changes) if changes else config


def start_encoder(model: ModelConfig, config_dir: Path | Sequence[Path] | None = None, *, spec_augment: bool = True) -> PretrainedBundle:
    """theta_0 as a bundle (params None for a random start; see the module docstring)."""
    runtime = dict(dtype=model.dtype, param_dtype=model.param_dtype, remat=model.remat, scan_layers=model.scan_layers)
    if model.pretrained is not None:
        bundle = load_pretrained(str(resolve_path(model.pretrained, config_dir)), **runtime)
        config = _with_overrides(bundle.config, model.overrides, spec_augment)
        config = config.replace(batch_independent=model.batch_independent)  # not the saved directory's
        return bundle.replace(config=config, module=SpeechEncoder(config))
    path = resolve_path(model.config, config_dir)
    try:
        hf = json.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"model.config={model.config!r}: cannot read it ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"model.config={model.config!r}: not valid JSON ({err.msg}, line {err.lineno})") from None
    config = EncoderConfig.from_hf_dict(hf, source=str(path), **runtime, batch_independent=model.batch_independent)
    config = _with_overrides(config, model.overrides, spec_augment)
    preprocessor = {"do_normalize": False, "sampling_rate": 16000, "feature_size": 1,
                    "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True,
                    "feature_extractor_type": "Wav2Vec2FeatureExtractor"}
    return PretrainedBundle(config, None, SpeechEncoder(config), f"random init (seed {model.init_seed}"
                            f"{', filterbank CNN' if model.cnn_init == 'filterbank' else ''})", preprocessor)


def init_fn(config: EncoderConfig, seed: int, cnn_init: str = "random"):
    """A zero-argument function that initialises the encoder (jit it with `out_shardings`);
    `cnn_init="filterbank"` then sets its CNN with `filterbank_cnn`."""
    if cnn_init == "filterbank":  # a CNN it cannot start is a ConfigError when the function is traced
        return lambda: filterbank_cnn(config, init_params(config, jax.random.PRNGKey(seed)))
    return lambda: init_params(config, jax.random.PRNGKey(seed))
