"""Atomic file writes: a crash or a full disk leaves either the old file or the new one, never a
torn mix. Each write goes to a hidden temporary file beside its destination, is synced to disk,
and is then `os.replace`d onto it. `write_check_error` tells whether a folder takes files at all."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_temp(path: Path, data: bytes) -> Path:
    """Write `data`, synced to disk, to a hidden temporary file beside `path`; `os.replace` it
    onto `path` to publish it. A failed write removes the temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves either the old file or the new one."""
    os.replace(write_temp(path, data), path)


def json_bytes(obj, **dumps_kwargs) -> bytes:
    """`obj` as indented JSON with one trailing newline."""
    return (json.dumps(obj, indent=2, **dumps_kwargs) + "\n").encode()


def atomic_write_json(path: Path, obj, **dumps_kwargs) -> None:
    """`obj` as indented JSON (one trailing newline), written atomically."""
    atomic_write_bytes(path, json_bytes(obj, **dumps_kwargs))


def write_check_error(directory: Path) -> OSError | None:
    """Create `directory` if needed and a file in it: the `OSError` that stopped it, or None when
    it is writable (`os.access` says yes to root and on some network mounts: only a write tells)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        return err
    return None
