"""The `.pt` files of the fairseq / s3prl world, in and out.

In (`load_pt`), whatever the file is, through the restricted unpickler: a fairseq HuBERT or
wav2vec 2.0 checkpoint, a unilm WavLM one, s3prl's converted upstream checkpoint (HuBERT,
wav2vec 2.0), s3prl's DeCoAR 2.0 checkpoint, or an s3prl downstream checkpoint's `Upstream`
weights; the last holds no architecture, so it needs the pre-trained model the run started from
(`like`), whose config, frame rule and preprocessing it takes.

Out (`save_pt`), `fmt="fairseq"`: a fairseq checkpoint (`cfg` with the model and task sections,
`model`; unilm's `cfg` + `model` for WavLM), which the official Speech-FT merge reads and s3prl's
converter turns into its own; `fmt="s3prl"`: what s3prl's upstream experts load (the converted
layout for HuBERT and wav2vec 2.0, unilm's for WavLM, `model` for DeCoAR 2.0). Both loaders are
strict about the pre-training modules of HuBERT (`final_proj`) and wav2vec 2.0 (quantizer,
`project_q`, `final_proj`): an encoder without its head gets zero placeholders of fairseq's default
sizes, named in a note, so that the file loads; they play no part in the encoder's output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speechft_jax.checkpoints import decoar2_import, fairseq_import, fairseq_keys, s3prl_formats, safe_unpickle
from speechft_jax.checkpoints.torch_zip_writer import torch_save_bytes
from speechft_jax.errors import CheckpointError
from speechft_jax.files import atomic_write_bytes
from speechft_jax.models import SpeechEncoder
from speechft_jax.models.pretrained import PretrainedBundle, check_same_architecture

PT_SUFFIXES = (".pt", ".pth", ".ckpt")
PT_FORMATS = ("fairseq", "s3prl")
_PLACEHOLDER_FINAL_DIM = 256   # fairseq's HuBERT final_dim default
_CRITERIA = {"hubert": "HubertCriterion", "wav2vec2": "Wav2vecCriterion"}


# ---------------------------------------------------------------------------------- in
def load_pt(path, runtime: dict, like: PretrainedBundle | None = None) -> PretrainedBundle:
    """A `PretrainedBundle` from any `.pt` layout above (`like`: see the module docstring)."""
    path = Path(path)
    checkpoint = safe_unpickle.load_torch_zip(path)
    if s3prl_formats.is_downstream(checkpoint):
        return _load_upstream_weights(checkpoint, path, runtime, like)
    if s3prl_formats.is_converted(checkpoint):
        checkpoint = s3prl_formats.converted_to_fairseq(checkpoint, str(path))
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if isinstance(state, dict) and decoar2_import.is_decoar2_state(state):
        config, params = decoar2_import.decoar2_from_state(safe_unpickle.tensor_arrays(state), str(path), runtime)
        return PretrainedBundle(config, params, SpeechEncoder(config), str(path),
                                {"do_normalize": False, "sampling_rate": 16000})
    imported = fairseq_import.load_fairseq(path, runtime, checkpoint)
    return PretrainedBundle(imported.config, imported.params, SpeechEncoder(imported.config), str(path),
                            {"do_normalize": imported.normalize, "sampling_rate": 16000}, imported.pretraining_head)


def _load_upstream_weights(checkpoint: dict, path: Path, runtime: dict, like) -> PretrainedBundle:
    if like is None:
        raise CheckpointError(f"{path}: an s3prl downstream checkpoint holds the fine-tuned weights only; give "
                              "the pre-trained model the run started from (--like, or the merge's base model)")
    arrays = safe_unpickle.tensor_arrays(s3prl_formats.upstream_state(checkpoint, str(path)))
    if like.config.model_type == "decoar2":
        config, params = decoar2_import.decoar2_from_state(arrays, str(path), runtime)
        head = None
    else:
        normalize = bool(like.preprocessor.get("do_normalize"))
        model_cfg, _ = fairseq_keys.fairseq_model_config(like.config, normalize, like.pretraining_head)
        imported = fairseq_import.encoder_from_fairseq(model_cfg, arrays, path, runtime, normalize,
                                                       like.config.model_type)
        config, params, head = imported.config, imported.params, imported.pretraining_head
    bundle = PretrainedBundle(config, params, SpeechEncoder(config), f"{path} ({s3prl_formats.UPSTREAM_KEY})",
                              dict(like.preprocessor), head)
    check_same_architecture(like, bundle, like.source, str(path))
    # what the file cannot say (training settings, the frame rule, transformers' extra fields) is like's
    config = like.config.replace(**runtime)
    return bundle.replace(config=config, module=SpeechEncoder(config))


# ---------------------------------------------------------------------------------- out
def _placeholder_head(config, state: dict) -> tuple[dict, list[str]]:
    """Zero pre-training modules of fairseq's default sizes for a HuBERT or wav2vec 2.0 state
    without them (fairseq and s3prl load strictly); `(arrays, their keys)`."""
    hidden = config.hidden_size
    if config.model_type == "hubert" and "final_proj.weight" not in state:
        extra = {"final_proj.weight": np.zeros((_PLACEHOLDER_FINAL_DIM, hidden), np.float32),
                 "final_proj.bias": np.zeros(_PLACEHOLDER_FINAL_DIM, np.float32)}
    elif config.model_type == "wav2vec2" and "final_proj.weight" not in state:
        # quantize_targets false (fairseq's default): project_q maps the CNN output to final_dim
        extra = {"project_q.weight": np.zeros((hidden, config.conv_dim[-1]), np.float32),
                 "project_q.bias": np.zeros(hidden, np.float32),
                 "final_proj.weight": np.zeros((hidden, hidden), np.float32),
                 "final_proj.bias": np.zeros(hidden, np.float32)}
    else:
        extra = {}
    return extra, sorted(extra)


def _dictionaries_symbols(state: dict) -> list:
    """Label dictionaries for s3prl's HuBERT: their lengths size `label_embs_concat`; the symbols
    themselves are not in any checkpoint this project reads, so they are placeholders (fairseq's
    four special symbols, then the class indices). No `label_embs_concat`: `[None]` (no labels)."""
    labels = state.get("label_embs_concat")
    if labels is None:
        return [None]
    specials = ["<s>", "<pad>", "</s>", "<unk>"][: labels.shape[0]]
    return [specials + [str(i) for i in range(labels.shape[0] - len(specials))]]


def pt_checkpoint(bundle: PretrainedBundle, fmt: str, params=None) -> tuple[dict, list[str]]:
    """`(the checkpoint dict to save, the keys written as zero placeholders)` for `fmt`."""
    if fmt not in PT_FORMATS:
        raise CheckpointError(f"format {fmt!r}: expected one of {', '.join(PT_FORMATS)}")
    params = bundle.params if params is None else params
    config = bundle.config
    if config.model_type == "decoar2":
        if fmt == "fairseq":
            raise CheckpointError("DeCoAR 2.0 has no fairseq checkpoint (s3prl's is its own): use --to s3prl")
        return {"model": decoar2_import.decoar2_state_from_params(params, config)}, []
    normalize = bool(bundle.preprocessor.get("do_normalize"))
    model_cfg, task_cfg = fairseq_keys.fairseq_model_config(config, normalize, bundle.pretraining_head)
    state = fairseq_keys.fairseq_state_from_params(params, config, bundle.pretraining_head)
    if config.model_type == "wavlm":  # unilm's layout, which s3prl's WavLM expert reads as it is
        return {"cfg": model_cfg, "model": state}, []
    placeholders, placeholder_keys = _placeholder_head(config, state)
    if placeholders:
        state = {**state, **placeholders}
        final_dim = _PLACEHOLDER_FINAL_DIM if config.model_type == "hubert" else config.hidden_size
        model_cfg = dict(model_cfg, final_dim=final_dim, **({"quantize_targets": False}
                                                           if config.model_type == "wav2vec2" else {}))
    if fmt == "s3prl":
        symbols = _dictionaries_symbols(state) if config.model_type == "hubert" else None
        return s3prl_formats.converted_checkpoint(model_cfg, task_cfg, state, symbols), placeholder_keys
    history = [{"criterion_name": _CRITERIA[config.model_type], "optimizer_name": "", "lr_scheduler_state": {},
                "num_updates": 0}]
    return {"args": None, "cfg": {"_name": None, "model": model_cfg, "task": task_cfg}, "model": state,
            "optimizer_history": history, "extra_state": {}, "last_optimizer_state": None}, placeholder_keys


def save_pt(bundle: PretrainedBundle, out_path, fmt: str, params=None) -> tuple[Path, list[str]]:
    """Write `bundle` (or `params` in its architecture) as a `fmt` `.pt` file, atomically;
    returns the path and the keys written as zero placeholders (for the caller's note)."""
    checkpoint, placeholder_keys = pt_checkpoint(bundle, fmt, params)
    out_path = Path(out_path)
    if out_path.is_dir():
        raise CheckpointError(f"{out_path}: is a directory, expected the path of the {fmt} .pt file to write")
    if out_path.suffix not in PT_SUFFIXES:
        raise CheckpointError(f"{out_path}: expected a file name ending in {', '.join(PT_SUFFIXES)} for a {fmt} "
                              "checkpoint")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_path, torch_save_bytes(checkpoint))
    return out_path, placeholder_keys
