"""One run at a time per output directory: an exclusive `flock` on `<output_dir>/.lock`.

The lock file names its holder (pid and host) for the second run's error message. The OS drops a
flock when the holding process ends, however it ends, so a lock file left behind by a killed run
is no obstacle: only a live holder blocks. In a multi-process run only process 0 takes the lock
(the other processes write into the directory it holds). On a filesystem without `flock` (some
network mounts) the run goes on unlocked, with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import warnings
from pathlib import Path

from speechft_jax.models.config import ConfigError

LOCK_NAME = ".lock"


class RunDirectoryInUse(ConfigError):
    """Another live process holds the output directory's lock (the message names it)."""


@contextlib.contextmanager
def run_directory_lock(directory):
    """Hold the lock of the existing `directory` for the `with` block; `RunDirectoryInUse` if a
    live process holds it already."""
    path = Path(directory) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        locked = True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "a process that did not say"
            raise RunDirectoryInUse(f"output_dir={directory}: another run is using this directory ({holder}; "
                                    f"lock {path}); wait for it to end or choose another output_dir") from None
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            warnings.warn(f"{path}: this filesystem cannot lock files ({err.strerror}); nothing stops a "
                          "second run from writing into this output_dir")
            locked = False
        if locked:
            # the file is kept (never unlinked): a process that opened it to wait would otherwise
            # lock a file that no longer exists while a third one creates and locks a new one
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
