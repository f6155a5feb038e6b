"""Keep Numba's on-disk kernel cache consistent with the kernel sources.

Numba checks a cached kernel against the modification time of the file that
defines it, not of the files it calls or inlines: after an edit of
``network.py`` alone, ``columns.py``'s cached kernels would still hold the old
code. So the cache files of the kernel package are dropped whenever a hash of
all its sources changes. The kernels generated per network live in a
directory named by the same hash (``fastbp.specialize``). This reads a few
small files and compiles nothing.
"""
import hashlib
from pathlib import Path

STAMP = "fastbp-kernels.sha256"
SOURCE_DIR = Path(__file__).parent


def sources_digest():
    """A hash of every kernel source file."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE_DIR.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def drop_stale_kernel_cache():
    """Delete the package's ``*.nbi``/``*.nbc`` files if the kernel sources changed."""
    digest = sources_digest()
    cache_dir = SOURCE_DIR / "__pycache__"
    stamp = cache_dir / STAMP
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    try:
        for stale in list(cache_dir.glob("*.nbi")) + list(cache_dir.glob("*.nbc")):
            stale.unlink()
        cache_dir.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        # a read-only install: Numba then caches elsewhere, keyed by its own rules
        pass
