"""Keep Numba's on-disk kernel cache consistent with the kernel sources.

Numba checks a cached kernel against the modification time of the file that
defines it, not of the files it calls or inlines: after an edit of
``activations.py`` alone, ``dense.py``'s cached kernels would still hold the old
activation. So the cache files of the kernel package are dropped whenever a
hash of all its sources changes. This reads a few small files and compiles
nothing.
"""
import hashlib
import importlib.util
from pathlib import Path

STAMP = "fastbp-kernels.sha256"


def drop_stale_kernel_cache():
    """Delete the package's ``*.nbi``/``*.nbc`` files if the kernel sources changed."""
    spec = importlib.util.find_spec("fastbp.kernels")
    if spec is None or not spec.submodule_search_locations:
        return
    source_dir = Path(list(spec.submodule_search_locations)[0])
    digest = hashlib.sha256()
    for path in sorted(source_dir.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    cache_dir = source_dir / "__pycache__"
    stamp = cache_dir / STAMP
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass
    try:
        for stale in list(cache_dir.glob("*.nbi")) + list(cache_dir.glob("*.nbc")):
            stale.unlink()
        cache_dir.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        # a read-only install: Numba then caches elsewhere, keyed by its own rules
        pass
