"""A restricted reader for PyTorch's zip checkpoints (`torch.save`), needing neither torch nor
fairseq, and never executing code from the file.

The pickle inside may name only allowlisted globals: torch's tensor rebuild functions and storage
types (served by functions of this module), plain containers, and configuration classes
(`argparse.Namespace`, `omegaconf.*`, `fairseq.*`, `typing.*`) that are rebuilt as inert records
holding their data. Any other global (`os.system`, `builtins.eval`, `subprocess.*`, ...) raises
`CheckpointError` before anything is called. Tensors are read lazily from the archive.

Nothing in the pickle is trusted about memory either: every storage's element count is checked
against the bytes of its archive entry, and every tensor's offset, sizes and strides against its
storage (no negative values, rank <= 8, at most 2**34 elements), before any view of the data is
made; a violation is a `CheckpointError` naming the file and the storage.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import zipfile
import zlib
from pathlib import Path

import ml_dtypes
import numpy as np

from speechft_jax.errors import CheckpointError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
# Modules whose classes are rebuilt as inert records (data only, never instantiated for real).
_RECORD_MODULES = ("omegaconf", "fairseq", "typing", "argparse", "enum", "pathlib")
# Bounds on what a tensor in a checkpoint may claim (torch's own limit on rank is 64; encoders use <= 3).
MAX_RANK = 8
MAX_NUMEL = 2 ** 34
_SAFE_BUILTINS = {"dict": dict, "list": list, "tuple": tuple, "set": set, "frozenset": frozenset,
                  "str": str, "int": int, "float": float, "bool": bool, "bytes": bytes,
                  "bytearray": bytearray, "complex": complex, "slice": slice, "object": object}


class InertRecord:
    """Stands in for a configuration object: keeps the constructor arguments and the state."""

    record_class = "?"

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state):
        self.state = state

    def __reduce__(self):  # never pickled again by us
        raise TypeError("InertRecord is read-only")

    def __repr__(self):
        return f"<{self.record_class} record>"


def _record_class(module: str, name: str) -> type:
    return type(name, (InertRecord,), {"record_class": f"{module}.{name}"})


class _StorageType:
    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


class LazyTensor:
    """A tensor in the archive, already checked to lie inside its storage: `.numpy()` reads it."""

    def __init__(self, storage: "_Storage", offset: int, size: tuple, stride: tuple):
        self._storage, self._offset, self.shape, self._stride = storage, offset, size, stride

    @property
    def dtype(self):
        return self._storage.dtype

    def numpy(self) -> np.ndarray:
        flat = self._storage.array()
        if not self.shape:
            return flat[self._offset].copy()
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self._offset:], shape=self.shape, strides=[s * itemsize for s in self._stride])
        return np.array(view)


class _Storage:
    def __init__(self, archive: zipfile.ZipFile, name: str, dtype: np.dtype, numel: int, source: str):
        self._archive, self.name, self.dtype, self.numel, self._source = archive, name, dtype, numel, source
        self._array = None

    def array(self) -> np.ndarray:
        """The storage's `numel` elements; a short or damaged archive entry is a `CheckpointError`."""
        if self._array is None:
            try:
                data = self._archive.read(self.name)
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
                raise CheckpointError(f"{self._source}: storage {self.name} is unreadable ({err})") from None
            needed = self.numel * self.dtype.itemsize
            if len(data) < needed:  # never let numpy look past the bytes we hold
                raise CheckpointError(f"{self._source}: storage {self.name} holds {len(data)} bytes, "
                                      f"its {self.numel} {self.dtype} elements need {needed}")
            self._array = np.frombuffer(data, dtype=self.dtype, count=self.numel)
        return self._array


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor_problem(storage: _Storage, offset, size, stride) -> str | None:
    """Why a tensor view (offset, size, stride in elements) does not fit inside its storage, or None."""
    if not isinstance(size, tuple) or not isinstance(stride, tuple) or len(size) != len(stride):
        return f"size {size!r:.60} and stride {stride!r:.60} are not two tuples of one length"
    if len(size) > MAX_RANK:
        return f"rank {len(size)} is above {MAX_RANK}"
    if not all(_is_count(v) for v in (offset, *size, *stride)):
        return f"offset {offset!r:.30}, size {size} and stride {stride} must be non-negative integers"
    numel = math.prod(size)
    if numel > MAX_NUMEL:
        return f"size {size} has {numel} elements, above the limit of 2**34"
    if numel == 0:
        return None if offset <= storage.numel else f"offset {offset} is past its {storage.numel} elements"
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.numel:
        return (f"offset {offset}, size {size} and stride {stride} reach element {last}, "
                f"past its {storage.numel} elements")
    return None


def _rebuild_parameter(data, *unused):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, source: str):
        super().__init__(file)
        self._archive, self._prefix, self._source = archive, prefix, source

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return self._rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "collections" and name == "defaultdict":  # omegaconf's containers hold one; its
            return collections.defaultdict  # factory is itself an allowed global, and is never called here
        # pickle protocol 2 (torch.save's default) names the builtins module `__builtin__`, and
        # Python 2's pickles name its big integers `__builtin__.long`
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if module == "__builtin__" and name == "long":
            return int
        if module.split(".")[0] in _RECORD_MODULES:
            return _record_class(module, name)
        raise CheckpointError(f"{self._source}: refused to load: the pickle asks for {module}.{name}, "
                              "which is not on the allowlist of data types (it could run code)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self._source}: unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"{self._source}: unsupported storage type {storage_type!r:.80}")
        name = f"{self._prefix}data/{key}"
        try:
            size = self._archive.getinfo(name).file_size
        except KeyError:
            raise CheckpointError(f"{self._source}: storage {name!r:.80} is not in the archive") from None
        itemsize = storage_type.dtype.itemsize
        if not _is_count(numel) or numel * itemsize > size:
            raise CheckpointError(f"{self._source}: storage {name} claims {numel!r:.30} {storage_type.dtype} "
                                  f"elements, its archive entry holds {size} bytes ({size // itemsize} elements)")
        return _Storage(self._archive, name, storage_type.dtype, numel, self._source)

    def _rebuild_tensor(self, storage, offset, size, stride, *unused):
        if not isinstance(storage, _Storage):
            raise CheckpointError(f"{self._source}: a tensor's storage is a {type(storage).__name__}, "
                                  "expected an archive storage")
        problem = _tensor_problem(storage, offset, size, stride)
        if problem:
            raise CheckpointError(f"{self._source}: a tensor in storage {storage.name} does not fit it: {problem}")
        return LazyTensor(storage, offset, size, stride)


def load_torch_zip(path) -> object:
    """Unpickle a `torch.save` zip file safely; tensors come back as `LazyTensor`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a PyTorch zip checkpoint (the legacy pre-1.6 format and plain "
                              "pickles are not supported; re-save it with a current torch.save)")
    archive = zipfile.ZipFile(path)
    pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
    if len(pickles) != 1:
        raise CheckpointError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = f"{prefix}byteorder"
    if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
        raise CheckpointError(f"{path}: big-endian checkpoints are not supported")
    unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), archive, prefix, str(path))
    try:
        return unpickler.load()
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"{path}: unreadable checkpoint pickle ({type(err).__name__}: {err})") from None


def tensor_arrays(state: dict) -> dict:
    """The tensors of an unpickled state dict read as numpy arrays (other entries left out)."""
    return {k: v.numpy() for k, v in state.items() if isinstance(v, LazyTensor)}


def to_plain(obj):
    """Records, namespaces and containers -> plain dicts/lists/values (for reading configs)."""
    if isinstance(obj, InertRecord):
        state = obj.state
        if isinstance(state, dict):
            if "_content" in state:  # omegaconf containers
                return to_plain(state["_content"])
            if "_val" in state:      # omegaconf value nodes
                return to_plain(state["_val"])
            return {k: to_plain(v) for k, v in state.items()}
        if state is None and len(obj.args) == 1:  # enums and similar: the value
            return to_plain(obj.args[0])
        return to_plain(state)
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj
