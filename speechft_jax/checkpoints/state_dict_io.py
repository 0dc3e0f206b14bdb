"""Reading and writing flat state dicts (key -> numpy array) in safetensors and PyTorch files.

`.bin` files are read with `torch.load(weights_only=True)`, which refuses anything but tensors and
plain containers; safetensors files cannot hold code at all. A tensor holding NaN or Inf is an
error naming its key and file (`require_finite`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from speechft_jax.errors import CheckpointError

SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_NAME = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    try:
        out = {}
        with safe_open(str(path), framework="flax") as f:
            for key in f.keys():
                out[key] = np.asarray(f.get_tensor(key))
    except Exception as err:  # safetensors raises several types for a damaged file
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    require_finite(out, path)
    return out


def read_torch_bin(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path}: reading PyTorch .bin checkpoints needs torch; install it with "
            "pip install -e '.[torch]' (or convert the checkpoint to safetensors)") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: refused or unreadable PyTorch checkpoint ({err})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(state).__name__}")
    out = {key: _torch_to_numpy(value) for key, value in state.items() if hasattr(value, "detach")}
    require_finite(out, path)
    return out


def _torch_to_numpy(tensor) -> np.ndarray:
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def _read_sharded(directory: Path, index_name: str, reader) -> dict[str, np.ndarray]:
    index_path = directory / index_name
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{index_path}: not a valid shard index ({err})") from None
    out = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = directory / shard
        if not shard_path.is_file():
            raise CheckpointError(f"{index_path}: names shard {shard}, which is missing")
        out.update(reader(shard_path))
    return out


def read_model_dir(directory: Path) -> tuple[dict[str, np.ndarray], str]:
    """The state dict of a transformers model directory, and the file it came from."""
    if (directory / SAFETENSORS_NAME).is_file():
        return read_safetensors(directory / SAFETENSORS_NAME), SAFETENSORS_NAME
    if (directory / SAFETENSORS_INDEX).is_file():
        return _read_sharded(directory, SAFETENSORS_INDEX, read_safetensors), SAFETENSORS_INDEX
    if (directory / TORCH_NAME).is_file():
        return read_torch_bin(directory / TORCH_NAME), TORCH_NAME
    if (directory / TORCH_INDEX).is_file():
        return _read_sharded(directory, TORCH_INDEX, read_torch_bin), TORCH_INDEX
    raise CheckpointError(
        f"{directory}: no weights file found, expected {SAFETENSORS_NAME}, {SAFETENSORS_INDEX}, "
        f"{TORCH_NAME} or {TORCH_INDEX}")


def require_finite(arrays, source) -> None:
    """Raise `CheckpointError` naming the first key (in `arrays`' order) whose floating-point
    values include NaN or Inf: a diverged run's weights must not load as if they were a model."""
    for key, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.kind not in "fc" and array.dtype.name != "bfloat16":
            continue  # integer and boolean buffers are always finite
        finite = np.isfinite(array)
        if not finite.all():
            raise CheckpointError(f"{source}: parameter {key} holds non-finite values ({array.size - int(finite.sum())}"
                                  f" of {array.size} are NaN or Inf)")


def safetensors_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    """A safetensors file holding `tensors` (marked as PyTorch layout, as transformers expects)."""
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata={"format": "pt"})
