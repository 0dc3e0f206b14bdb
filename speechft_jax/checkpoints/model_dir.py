"""Model directories and files in, `PretrainedBundle`s out, and back.

`load_pretrained` reads a transformers model directory, a hub id, a fairseq / unilm / s3prl `.pt`
(`pt_formats`) or this project's own Flax directory (a parameter holding NaN or Inf, in any format, is an error naming
its key and file); `save_pretrained` writes a transformers directory and `save_flax` a Flax one,
each replacing whatever model the directory held so that it never holds two.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import numpy as np

from speechft_jax import files as atomic_files  # `files` names the files of a model below
from speechft_jax.checkpoints import params_io, pt_formats, state_dict_io
from speechft_jax.checkpoints.pretraining_head import HEAD_NAME, head_to_state, read_head
from speechft_jax.errors import CheckpointError, ConfigError
from speechft_jax.models import EncoderConfig, SpeechEncoder
from speechft_jax.models.pretrained import PretrainedBundle, abstract_params

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
PREPROCESSOR_NAME = "preprocessor_config.json"
FLAX_PARAMS_NAME = "speechft_params.msgpack"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
_HUB_PATTERNS = (
    [CONFIG_NAME, PREPROCESSOR_NAME, state_dict_io.SAFETENSORS_NAME, state_dict_io.SAFETENSORS_INDEX,
     "model-*.safetensors"],
    [CONFIG_NAME, PREPROCESSOR_NAME, state_dict_io.TORCH_NAME, state_dict_io.TORCH_INDEX, "pytorch_model-*.bin"],
)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror})") from None
    except ValueError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None


def _load_dir(directory: Path, runtime: dict) -> PretrainedBundle:
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise CheckpointError(f"{directory}: {CONFIG_NAME} is missing")
    hf = _read_json(config_path)
    saved_runtime = hf.pop("speechft_jax", {}) if isinstance(hf, dict) else {}
    try:
        config = EncoderConfig.from_hf_dict(hf, source=str(config_path), **{**saved_runtime, **runtime})
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    preprocessor = _read_json(directory / PREPROCESSOR_NAME) if (directory / PREPROCESSOR_NAME).is_file() else {}
    head = None
    if (directory / FLAX_PARAMS_NAME).is_file():
        params, head = _read_flax_params(directory / FLAX_PARAMS_NAME, config)
        weights = FLAX_PARAMS_NAME
    else:
        head = read_head(directory)
        state, weights = state_dict_io.read_model_dir(directory)
        params, ignored = params_io.state_dict_to_params(state, config, source=str(directory / weights))
        if ignored:
            log.warning("%s: ignored %d keys outside the encoder (task heads): %s", directory, len(ignored),
                        ", ".join(ignored[:6]) + (" ..." if len(ignored) > 6 else ""))
    return PretrainedBundle(config, params, SpeechEncoder(config), f"{directory}/{weights}", preprocessor, head)


def _download(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - a dependency of transformers
        raise CheckpointError(f"{repo_id}: loading from the hub needs huggingface_hub") from None
    last_error = None
    for patterns in _HUB_PATTERNS:
        try:
            path = Path(snapshot_download(repo_id, allow_patterns=patterns))
        except Exception as err:  # offline, unknown repo, no network: report below
            last_error = err
            continue
        if (path / CONFIG_NAME).is_file() and (any(path.glob("*.safetensors")) or any(path.glob("*.bin"))):
            return path
    reason = f" ({type(last_error).__name__}: {last_error})" if last_error else ""
    raise CheckpointError(f"{repo_id}: not a local path, and no model could be fetched from the Hugging Face hub"
                          f" with config.json and weights{reason}")


def load_pretrained(source, dtype: str = "float32", param_dtype: str = "float32", remat: bool = False,
                    scan_layers: bool = False, like: PretrainedBundle | None = None) -> PretrainedBundle:
    """Load an encoder from a transformers directory, a hub id, a `.pt` of the fairseq / s3prl
    world (`pt_formats`: fairseq HuBERT and wav2vec 2.0, unilm WavLM, s3prl's converted, DeCoAR 2.0
    and downstream checkpoints), or a directory written by this project.

    `dtype` is the compute dtype, `param_dtype` the stored one; `remat` rematerialises each layer
    in the backward pass; `scan_layers` runs alike layers as one `lax.scan` (the same function
    and parameter layout, a shorter compile for deep models). `like`: the pre-trained model whose
    architecture a weights-only file (an s3prl downstream checkpoint) has; other sources ignore it.
    """
    runtime = {"dtype": dtype, "param_dtype": param_dtype, "remat": remat, "scan_layers": scan_layers}
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_dir(path, runtime)
    if path.is_file():
        if path.suffix in pt_formats.PT_SUFFIXES:
            return pt_formats.load_pt(path, runtime, like)
        raise CheckpointError(f"{path}: expected a model directory or a {'/'.join(pt_formats.PT_SUFFIXES)} file "
                              "(fairseq, unilm or s3prl)")
    if isinstance(source, str) and _HUB_ID.match(source) and not source.startswith((".", "~")):
        return _load_dir(_download(source), runtime)
    raise CheckpointError(f"{source}: no such file or directory")


# ---------------------------------------------------------------------------------- export
# The files of a saved model in any format this project or transformers writes: a directory that
# holds one of them holds a model, and writing another model there replaces or removes them all.
_MODEL_FILE_PATTERNS = (
    CONFIG_NAME, PREPROCESSOR_NAME, FLAX_PARAMS_NAME, HEAD_NAME,
    state_dict_io.SAFETENSORS_NAME, state_dict_io.SAFETENSORS_INDEX, "model-*.safetensors",
    state_dict_io.TORCH_NAME, state_dict_io.TORCH_INDEX, "pytorch_model-*.bin",
    "flax_model*.msgpack*", "tf_model*.h5*",
)


def model_files(directory) -> list[Path]:
    """The files in `directory` that belong to a saved model (config, weights of any format,
    pre-training head, and the shards a shard index names); empty when it holds none."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = {p for pattern in _MODEL_FILE_PATTERNS for p in directory.glob(pattern) if p.is_file()}
    for index in [p for p in found if p.name.endswith(".index.json")]:
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # an unreadable index names nothing more
        # only plain names: an index must not make us touch files outside the directory
        found |= {directory / s for s in shards if isinstance(s, str) and Path(s).name == s
                  and (directory / s).is_file()}
    return sorted(found)


def refuse_to_replace(directory, overwrite: bool, name: str) -> None:
    """A `ConfigError` when `directory` already holds a model and `overwrite` (a command's
    `--overwrite`) is not set; `name` is how the user gave the directory (`--out DIR`)."""
    held = model_files(directory)
    if held and not overwrite:
        raise ConfigError(f"{name}: already holds a model ({', '.join(p.name for p in held[:3])}); "
                          "pass --overwrite to replace it")


def _write_model(out_dir, files: dict[str, bytes]) -> Path:
    """Make `out_dir` hold exactly the model in `files` (file name -> contents, `config.json`
    among them): every model file of another format is removed, so that no loader (this
    project's or transformers') can find a second model there. Nothing is touched until every
    new file is written and synced beside its destination."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CheckpointError(f"{out_dir}: exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    staged = []
    try:
        for name, data in files.items():
            staged.append((out_dir / name, atomic_files.write_temp(out_dir / name, data)))
    except BaseException:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
        raise
    # config.json leaves first and comes back last: a crash in between leaves a directory that
    # does not load (no config) rather than one that loads a mix of two models
    for path in model_files(out_dir):
        if path.name == CONFIG_NAME or path.name not in files:
            path.unlink()
    for path, tmp in sorted(staged, key=lambda item: item[0].name == CONFIG_NAME):
        os.replace(tmp, path)
    return out_dir


def save_pretrained(bundle: PretrainedBundle, out_dir, params=None) -> Path:
    """Write `config.json` + `model.safetensors` that transformers' `AutoModel` loads.

    `params` overrides the bundle's (e.g. merged weights). A pre-training head goes beside the
    model in `pretraining_head.safetensors` (transformers ignores it). A model already in
    `out_dir`, in any format, is replaced: its files are overwritten or removed (see `_write_model`).
    """
    params = bundle.params if params is None else params
    state = params_io.params_to_state_dict(params, bundle.config)
    files = {state_dict_io.SAFETENSORS_NAME: state_dict_io.safetensors_bytes(state),
             CONFIG_NAME: atomic_files.json_bytes(bundle.config.to_hf_dict(), sort_keys=True)}
    if bundle.pretraining_head is not None:
        files[HEAD_NAME] = state_dict_io.safetensors_bytes(head_to_state(bundle.pretraining_head))
    if bundle.preprocessor:
        files[PREPROCESSOR_NAME] = atomic_files.json_bytes(bundle.preprocessor, sort_keys=True)
    return _write_model(out_dir, files)


def save_flax(bundle: PretrainedBundle, out_dir, params=None) -> Path:
    """Write this project's Flax directory: `config.json` + msgpack params (and pre-training head).
    A model already in `out_dir`, in any format, is replaced as by `save_pretrained`."""
    params = bundle.params if params is None else params
    tree = {"params": jax.device_get(params)}
    if bundle.pretraining_head is not None:
        tree["pretraining_head"] = jax.device_get(bundle.pretraining_head)
    config = bundle.config.to_hf_dict()
    config["speechft_jax"] = bundle.config.runtime_settings()
    files = {FLAX_PARAMS_NAME: flax.serialization.msgpack_serialize(jax.tree_util.tree_map(np.asarray, tree)),
             CONFIG_NAME: atomic_files.json_bytes(config, sort_keys=True)}
    if bundle.preprocessor:
        files[PREPROCESSOR_NAME] = atomic_files.json_bytes(bundle.preprocessor, sort_keys=True)
    return _write_model(out_dir, files)


def save_encoder(bundle: PretrainedBundle, out_dir, params=None) -> Path:
    """Write `bundle` where users of its family look for it: a transformers directory, or this
    project's Flax directory for a model transformers lacks (DeCoAR 2.0)."""
    save = save_pretrained if bundle.config.in_transformers else save_flax
    return save(bundle, out_dir, params=params)


def _read_flax_params(path: Path, config: EncoderConfig):
    try:
        tree = flax.serialization.msgpack_restore(path.read_bytes())
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable msgpack parameter file ({err})") from None
    if "params" not in tree:
        raise CheckpointError(f"{path}: has no 'params' entry")
    expected = flax.traverse_util.flatten_dict(abstract_params(config))
    found = flax.traverse_util.flatten_dict(tree["params"])
    problems = sorted("/".join(p) for p in set(expected) ^ set(found))
    problems += ["/".join(p) + f" has shape {found[p].shape}, expected {expected[p].shape}"
                 for p in set(expected) & set(found) if tuple(found[p].shape) != tuple(expected[p].shape)]
    if problems:
        raise CheckpointError(f"{path}: parameters do not fit the config: " + "; ".join(problems[:8]))
    state_dict_io.require_finite(flax.traverse_util.flatten_dict(tree, sep="/"), path)
    dtype = jnp.dtype(config.param_dtype)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), tree["params"])
    head = tree.get("pretraining_head")
    head = None if head is None else jax.tree_util.tree_map(jnp.asarray, head)
    return params, head
