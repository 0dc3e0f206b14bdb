"""The key map between this project's Flax parameter paths and transformers' state-dict keys.

A Flax path such as `("encoder", "layers_3", "attention", "q_proj", "kernel")` is the transformers
key `encoder.layers.3.attention.q_proj.weight`, transposed. Every rule is here, in both directions.
"""

from __future__ import annotations

import re

import numpy as np

BASE_MODEL_PREFIX = {"hubert": "hubert", "wav2vec2": "wav2vec2", "wavlm": "wavlm"}
# leaf name -> transformers leaf name
_LEAF_TO_HF = {
    "kernel": "weight",
    "scale": "weight",
    "embedding": "weight",
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
    "mean": "running_mean",
    "var": "running_var",
}
# older transformers checkpoints store weight norm as weight_g / weight_v
LEGACY_ALIASES = {
    "parametrizations.weight.original0": "weight_g",
    "parametrizations.weight.original1": "weight_v",
}
# buffers transformers keeps but the encoder does not need
IGNORED_HF_SUFFIXES = ("num_batches_tracked",)
_INDEXED = re.compile(r"^(.*)_(\d+)$")


def hf_key(path: tuple[str, ...]) -> str:
    """The transformers state-dict key of a Flax parameter path."""
    parts = []
    for name in path[:-1]:
        match = _INDEXED.match(name)
        parts.extend([match.group(1), match.group(2)] if match else [name])
    parts.append(_LEAF_TO_HF.get(path[-1], path[-1]))
    return ".".join(parts)


def _needs_transpose(path: tuple[str, ...], ndim: int) -> bool:
    return (path[-1] == "kernel" and ndim in (2, 3)) or path[-1] in ("weight_g", "weight_v")


def to_flax_layout(path: tuple[str, ...], array: np.ndarray) -> np.ndarray:
    """A transformers tensor (as numpy) in the Flax layout of `path`."""
    if _needs_transpose(path, array.ndim):
        # Linear (out, in) -> (in, out); Conv1d (out, in, k) -> (k, in, out).
        return np.ascontiguousarray(array.T)
    return array


def to_hf_layout(path: tuple[str, ...], array: np.ndarray) -> np.ndarray:
    """The inverse of `to_flax_layout` (both transposes are their own inverse)."""
    return to_flax_layout(path, array)
