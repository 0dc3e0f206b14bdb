"""HuBERT's pre-training head on disk: fairseq's key names, PyTorch layout, a safetensors file.

transformers' `HubertModel` has no place for `final_proj` and `label_embs_concat`, so a
transformers directory written by this project keeps them beside `model.safetensors` in
`pretraining_head.safetensors` (transformers ignores the file). In memory the head is
`{"final_proj": {"kernel": [hidden, final_dim], "bias": [final_dim]}, "label_embs_concat": [classes, final_dim]}`.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from speechft_jax.checkpoints import state_dict_io
from speechft_jax.errors import CheckpointError

HEAD_NAME = "pretraining_head.safetensors"
HEAD_KEYS = ("final_proj.weight", "final_proj.bias", "label_embs_concat")


def head_from_state(state: dict, source: str) -> dict:
    """fairseq-named arrays -> the head tree; a missing key or a shape clash names `source`."""
    missing = [k for k in HEAD_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{source}: incomplete pre-training head, missing {', '.join(missing)}")
    weight, bias, labels = (np.asarray(state[k]) for k in HEAD_KEYS)
    if weight.ndim != 2 or bias.shape != weight.shape[:1] or labels.ndim != 2 or labels.shape[1] != weight.shape[0]:
        raise CheckpointError(f"{source}: pre-training head shapes do not fit: final_proj.weight {weight.shape}, "
                              f"final_proj.bias {bias.shape}, label_embs_concat {labels.shape}")
    return {"final_proj": {"kernel": jnp.asarray(weight.T), "bias": jnp.asarray(bias)},
            "label_embs_concat": jnp.asarray(labels)}


def head_to_state(head) -> dict[str, np.ndarray]:
    head = jax.device_get(head)
    return {"final_proj.weight": np.ascontiguousarray(np.asarray(head["final_proj"]["kernel"], np.float32).T),
            "final_proj.bias": np.asarray(head["final_proj"]["bias"], np.float32),
            "label_embs_concat": np.asarray(head["label_embs_concat"], np.float32)}


def read_head(directory: Path) -> dict | None:
    """The head stored in `directory`, or None when it has none."""
    path = Path(directory) / HEAD_NAME
    if not path.is_file():
        return None
    return head_from_state(state_dict_io.read_safetensors(path), str(path))
