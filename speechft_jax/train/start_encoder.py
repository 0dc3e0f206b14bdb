"""The encoder a run starts from (theta_0): a pre-trained checkpoint, or a config to initialise.

`start_encoder(model_config, config_dir)` returns a `PretrainedBundle` whose config carries the
run's compute settings and fine-tuning overrides; for a random start its `params` are None and
the loop initialises them inside `jax.jit` with the run's shardings (`init_fn`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import jax

from speechft_jax.checkpoints import PretrainedBundle, load_pretrained
from speechft_jax.checkpoints.params_io import init_params
from speechft_jax.models import EncoderConfig, SpeechEncoder
from speechft_jax.models.config import TRAINING_SETTINGS, ConfigError
from speechft_jax.models.filterbank_init import filterbank_cnn
from speechft_jax.train.config import ModelConfig


def resolve_path(path: str, config_dir: Path | Sequence[Path] | None) -> Path:
    """`path` as given when it exists (or is absolute), else next to the first YAML file that has it
    (`config_dir`: the folder of the run's YAML file, or the folders of its `base:` chain,
    `config_loading.config_dirs`)."""
    candidate = Path(path).expanduser()
    if candidate.exists() or candidate.is_absolute() or config_dir is None:
        return candidate
    for folder in [config_dir] if isinstance(config_dir, (str, Path)) else config_dir:
        beside = Path(folder) / candidate
        if beside.exists():
            return beside
    return candidate


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
        return bundle.replace(config=config, module=SpeechEncoder(config))
    path = resolve_path(model.config, config_dir)
    try:
        hf = json.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"model.config={model.config!r}: cannot read it ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"model.config={model.config!r}: not valid JSON ({err.msg}, line {err.lineno})") from None
    config = EncoderConfig.from_hf_dict(hf, source=str(path), **runtime)
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
