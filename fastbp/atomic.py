"""Atomic file writes: a crash or an error part-way leaves any previous file intact."""
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["write_atomic", "write_bytes_atomic"]


def _umask():
    """The process's umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly process-wide)
    os.umask(mask)
    return mask


def _write_atomic(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, sync it, rename it to ``path``.

    A crash or an exception part-way leaves any previous file at ``path`` as it was.
    The file gets the permissions of the file it replaces, or those a new file
    would get (not the owner-only ones of a temporary file).
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                   dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, mode)
        except OSError:  # a file system without Unix permissions
            pass
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_atomic(path: str | os.PathLike[str], arrays: Mapping[str, npt.ArrayLike]) -> Path:
    """Write ``arrays`` as an ``.npz`` at ``path`` through a temporary file and a rename."""
    # to mypy a key could be savez's allow_pickle; io's never is
    return _write_atomic(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` at ``path`` through a temporary file and a rename."""
    return _write_atomic(path, lambda f: f.write(data))
