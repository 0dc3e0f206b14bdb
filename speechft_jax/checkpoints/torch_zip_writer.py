"""Writing PyTorch zip checkpoints (`torch.save`'s format) without torch.

Export to fairseq and s3prl needs `.pt` files those projects `torch.load`. The pickle is emitted
opcode by opcode from a closed vocabulary (dicts, lists, tuples, strings, integers, floats, booleans,
None and NumPy arrays), so nothing but data can end up in the file: the only globals named are the
ones `torch.load(weights_only=True)` allows (`torch._utils._rebuild_tensor_v2`, storage types and
`collections.OrderedDict`), and `safe_unpickle` reads it back. Arrays become contiguous tensors,
one storage each, stored uncompressed and aligned to 64 bytes as torch writes them.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile

import ml_dtypes
import numpy as np

from speechft_jax.errors import CheckpointError

_STORAGE_NAMES = {
    np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float16): "HalfStorage", np.dtype(ml_dtypes.bfloat16): "BFloat16Storage",
    np.dtype(np.int64): "LongStorage", np.dtype(np.int32): "IntStorage", np.dtype(np.int16): "ShortStorage",
    np.dtype(np.int8): "CharStorage", np.dtype(np.uint8): "ByteStorage", np.dtype(np.bool_): "BoolStorage",
}
_ALIGNMENT = 64
_ARCHIVE = "archive"


class _PickleWriter:
    """Protocol-2 opcodes for the data vocabulary above; arrays go to `self.storages`."""

    def __init__(self):
        self.out = io.BytesIO()
        self.storages: list[bytes] = []

    def write(self, obj, where: str = "checkpoint") -> None:
        w = self.out.write
        if obj is None:
            w(b"N")
        elif obj is True or obj is False:
            w(b"\x88" if obj else b"\x89")
        elif isinstance(obj, int):
            if 0 <= obj < 2 ** 31:
                w(b"J" + struct.pack("<i", obj))
            else:
                data = obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True)
                if len(data) > 255:
                    raise CheckpointError(f"{where}: integer {obj:.3e} is too large to store")
                w(b"\x8a" + bytes([len(data)]) + data)
        elif isinstance(obj, float):
            w(b"G" + struct.pack(">d", obj))
        elif isinstance(obj, str):
            data = obj.encode("utf-8")
            w(b"X" + struct.pack("<I", len(data)) + data)
        elif isinstance(obj, (list, tuple)):
            w(b"]" if isinstance(obj, list) else b"(")
            if isinstance(obj, list) and obj:
                w(b"(")
            for i, item in enumerate(obj):
                self.write(item, f"{where}[{i}]")
            w((b"e" if obj else b"") if isinstance(obj, list) else b"t")
        elif isinstance(obj, dict):
            w(b"}")
            if obj:
                w(b"(")
                for key, value in obj.items():
                    self.write(key, where)
                    self.write(value, f"{where}[{key!r}]")
                w(b"u")
        elif isinstance(obj, np.ndarray) or isinstance(obj, np.generic):
            self._tensor(np.asarray(obj), where)
        else:
            raise CheckpointError(f"{where}: cannot store a {type(obj).__name__} in a checkpoint "
                                  "(expected plain data or an array)")

    def _global(self, module: str, name: str) -> None:
        self.out.write(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def _tensor(self, array: np.ndarray, where: str) -> None:
        if array.dtype not in _STORAGE_NAMES:
            raise CheckpointError(f"{where}: arrays of dtype {array.dtype} cannot be stored as a torch tensor")
        array = np.require(array, requirements="C")  # ascontiguousarray would make a scalar 1-d
        key = str(len(self.storages))
        self.storages.append(array.tobytes())
        strides = tuple(int(math.prod(array.shape[i + 1:])) for i in range(array.ndim))
        w = self.out.write
        self._global("torch._utils", "_rebuild_tensor_v2")
        w(b"(")  # the arguments: (storage, offset, size, stride, requires_grad, backward_hooks)
        w(b"(")  # the persistent id of the storage
        self.write("storage")
        self._global("torch", _STORAGE_NAMES[array.dtype])
        self.write(key)
        self.write("cpu")
        self.write(int(array.size))
        w(b"tQ")  # BINPERSID
        self.write(0)
        self.write(tuple(int(n) for n in array.shape))
        self.write(strides)
        self.write(False)
        self._global("collections", "OrderedDict")
        w(b")R")  # OrderedDict()
        w(b"tR")  # _rebuild_tensor_v2(*args)


def torch_save_bytes(obj) -> bytes:
    """The bytes of a `torch.save(obj)` file for `obj` made of plain data and NumPy arrays."""
    writer = _PickleWriter()
    writer.out.write(b"\x80\x02")
    writer.write(obj)
    writer.out.write(b".")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(f"{_ARCHIVE}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            # pad the local header's extra field so that the data starts on a 64-byte boundary
            header = 30 + len(info.filename.encode())
            offset = buffer.tell() + header + 4
            info.extra = b"\xfe\xca" + struct.pack("<H", (-offset) % _ALIGNMENT) + b"\0" * ((-offset) % _ALIGNMENT)
            archive.writestr(info, data)

        add("data.pkl", writer.out.getvalue())
        add("byteorder", b"little")
        for key, data in enumerate(writer.storages):
            add(f"data/{key}", data)
        add("version", b"3\n")
    return buffer.getvalue()
