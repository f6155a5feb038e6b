"""Reading some rows of an ``.npz`` or ``.npy`` array without the rest: each MPI rank
reads its own shard of data larger than one machine's memory (``fastbp train
--distributed``): :func:`array_header` and :func:`load_rows`. Never unpickles."""
import zipfile

import numpy as np
from numpy.lib import format as npy

__all__ = ["array_header", "load_rows"]


def _npy_header(f, path, name):
    """``(shape, dtype, fortran)`` from the ``.npy`` header at ``f``'s position."""
    version = npy.read_magic(f)
    read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran, dtype = read_header(f)
    if dtype.hasobject:
        raise ValueError(f"{path}: {name} holds Python objects, which fastbp never loads")
    return shape, dtype, fortran


def array_header(path, name):
    """``(shape, dtype, fortran, offset)`` of array ``name`` of an ``.npz`` (or an ``.npy``).

    Reads the array's header only. ``offset`` is where its data starts in the
    file, or None for a compressed ``.npz`` member (which cannot be
    memory-mapped). Never unpickles.
    """
    path = str(path)
    if path.endswith(".npy"):
        with open(path, "rb") as f:
            return (*_npy_header(f, path, name), f.tell())
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(name + ".npy")
        except KeyError:
            raise ValueError(f"{path} has no array {name!r}") from None
        if info.compress_type != zipfile.ZIP_STORED:
            with archive.open(info) as member:
                return (*_npy_header(member, path, name), None)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the member's local header: its name and extra field follow
        f.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
               + int.from_bytes(local[28:30], "little"))
        return (*_npy_header(f, path, name), f.tell())


def _compressed_rows(path, name, start, stop):
    """Rows of a compressed member, decompressed as a stream: the rows before
    ``start`` are skipped, the rows after ``stop`` never decompressed, and only
    this rank's rows are held in memory (a Fortran-ordered array is read whole)."""
    with zipfile.ZipFile(str(path)) as archive, archive.open(name + ".npy") as member:
        shape, dtype, fortran = _npy_header(member, path, name)
        if fortran or not shape:
            member.seek(0)
            return np.array(npy.read_array(member, allow_pickle=False)[start:stop])
        rows = range(shape[0])[start:stop]
        row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
        to_skip = rows.start * row_bytes
        while to_skip:  # in pieces: the skipped rows are never held
            to_skip -= len(member.read(min(to_skip, 1 << 24)))
        data = bytearray(len(rows) * row_bytes)
        if member.readinto(data) != len(data):
            raise ValueError(f"{path}: {name} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape((len(rows), *shape[1:]))


def load_rows(path, name, start, stop):
    """Rows ``start:stop`` of array ``name`` of an ``.npz`` (or of an ``.npy``), read alone.

    For data larger than one machine's memory: each rank reads only its own
    rows. Members of an uncompressed ``.npz`` (``np.savez``) and ``.npy``
    files are memory-mapped, so only the requested rows are read from disk; a
    compressed member (``np.savez_compressed``) is decompressed as a stream up
    to the last requested row, holding only the requested rows. Never unpickles.
    """
    shape, dtype, fortran, offset = array_header(path, name)
    if offset is None:
        return _compressed_rows(path, name, start, stop)
    rows = np.memmap(str(path), dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")
    return np.array(rows[start:stop])
