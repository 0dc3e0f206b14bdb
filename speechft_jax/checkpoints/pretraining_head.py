"""The pre-training heads kept beside an encoder: fairseq's key names, PyTorch layout, a safetensors file.

transformers' base models have no place for the modules that exist only for pre-training, so a
transformers directory written by this project keeps them beside `model.safetensors` in
`pretraining_head.safetensors` (transformers ignores the file), under fairseq's key names. In
memory a head is one of two kinds:
- HuBERT's, which the masked-prediction objective computes with: `{"final_proj": {"kernel":
  [hidden, final_dim], "bias": [final_dim]}, "label_embs_concat": [classes, final_dim]}`;
- wav2vec 2.0's, kept only so that an export gives it back: `{"wav2vec2": {fairseq key: array}}`
  holding the quantizer (`quantizer.vars`, `quantizer.weight_proj.*`), `project_q.*`,
  `final_proj.*` and `target_glu.*` (when the model has it) in PyTorch layout.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from speechft_jax.checkpoints import state_dict_io
from speechft_jax.errors import CheckpointError

HEAD_NAME = "pretraining_head.safetensors"
HEAD_KEYS = ("final_proj.weight", "final_proj.bias", "label_embs_concat")  # HuBERT's
WAV2VEC2_HEAD = "wav2vec2"  # the key of a wav2vec 2.0 head's arrays
# the modules of fairseq's Wav2Vec2Model that `remove_pretraining_modules` drops
WAV2VEC2_HEAD_PREFIXES = ("quantizer.", "project_q.", "target_glu.", "final_proj.")
# what a wav2vec 2.0 head holds at least (no quantizer when `quantize_targets` is off)
WAV2VEC2_HEAD_KEYS = ("project_q.weight", "project_q.bias", "final_proj.weight", "final_proj.bias")


def head_kind(head) -> str | None:
    """"hubert" or "wav2vec2" for a head in memory, None for no head."""
    if head is None:
        return None
    return "wav2vec2" if WAV2VEC2_HEAD in head else "hubert"


def is_head_key(kind: str, key: str) -> bool:
    """Whether the fairseq key `key` belongs to the pre-training head of a `kind` model (a WavLM
    trained in fairseq has HuBERT's)."""
    return key.startswith(WAV2VEC2_HEAD_PREFIXES) if kind == "wav2vec2" else key in HEAD_KEYS


def missing_head_keys(kind: str, state: dict) -> list[str]:
    """The keys a complete head of a `kind` model needs that `state` lacks."""
    return [k for k in (WAV2VEC2_HEAD_KEYS if kind == "wav2vec2" else HEAD_KEYS) if k not in state]


def head_from_state(state: dict, source: str, kind: str = "hubert", hidden_size: int | None = None) -> dict:
    """fairseq-named arrays -> the head of a `kind` model; a missing key, a shape clash between
    them or with the encoder's `hidden_size` names `source`."""
    missing = missing_head_keys(kind, state)
    if missing:
        raise CheckpointError(f"{source}: incomplete pre-training head, missing {', '.join(missing)}")
    state = {k: np.asarray(v) for k, v in state.items()}
    shapes = ", ".join(f"{k} {state[k].shape}" for k in sorted(state))
    weight, bias = state["final_proj.weight"], state["final_proj.bias"]
    fits = weight.ndim == 2 and bias.shape == weight.shape[:1] and hidden_size in (None, weight.shape[-1])
    if kind == "wav2vec2":
        project_w, project_b = state["project_q.weight"], state["project_q.bias"]
        fits = fits and project_w.ndim == 2 and project_w.shape[0] == weight.shape[0] and project_b.shape == bias.shape
        if "quantizer.vars" in state:
            codewords, proj = state["quantizer.vars"], state.get("quantizer.weight_proj.weight")
            fits = fits and codewords.ndim == 3 and codewords.shape[0] == 1 and (
                proj is None or (proj.ndim == 2 and proj.shape[0] == codewords.shape[1]))
    else:
        labels = state["label_embs_concat"]
        fits = fits and labels.ndim == 2 and labels.shape[1] == weight.shape[0]
    if not fits:
        expected = "" if hidden_size is None else f" (the encoder's hidden_size is {hidden_size})"
        raise CheckpointError(f"{source}: pre-training head shapes do not fit: {shapes}{expected}")
    if kind == "wav2vec2":
        return {WAV2VEC2_HEAD: {k: jnp.asarray(v) for k, v in state.items()}}
    return {"final_proj": {"kernel": jnp.asarray(weight.T), "bias": jnp.asarray(bias)},
            "label_embs_concat": jnp.asarray(state["label_embs_concat"])}


def head_to_state(head) -> dict[str, np.ndarray]:
    """A head in memory -> its fairseq-named arrays (PyTorch layout, float32)."""
    head = jax.device_get(head)
    if head_kind(head) == "wav2vec2":
        return {k: np.asarray(v, np.float32) for k, v in head[WAV2VEC2_HEAD].items()}
    return {"final_proj.weight": np.ascontiguousarray(np.asarray(head["final_proj"]["kernel"], np.float32).T),
            "final_proj.bias": np.asarray(head["final_proj"]["bias"], np.float32),
            "label_embs_concat": np.asarray(head["label_embs_concat"], np.float32)}


def read_head(directory: Path) -> dict | None:
    """The head stored in `directory`, or None when it has none."""
    path = Path(directory) / HEAD_NAME
    if not path.is_file():
        return None
    state = state_dict_io.read_safetensors(path)
    # only wav2vec 2.0's head has modules besides final_proj
    kind = "wav2vec2" if any(k.startswith(WAV2VEC2_HEAD_PREFIXES[:3]) for k in state) else "hubert"
    return head_from_state(state, str(path), kind)
