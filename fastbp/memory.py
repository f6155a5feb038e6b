"""Refusing work whose buffers would not fit in memory, before allocating them.

NumPy's ``empty`` succeeds for almost any size on Linux (memory is committed
when first written), so an oversized model or fit would not fail cleanly: the
kernel's out-of-memory killer would end the process half-way. fastbp instead
estimates the bytes a call will allocate and raises ``MemoryError`` with the
estimate when it exceeds what the machine (or the container's memory limit)
has available.
"""
from pathlib import Path

__all__ = [
    "RESERVE_FRACTION", "CHECK_FROM_BYTES", "available_bytes", "format_bytes", "check_fits"
]

# Headroom kept free for Python, NumPy temporaries and the rest of the system.
RESERVE_FRACTION = 0.1
# Requests below this are not checked: reading /proc costs ~0.1 ms, a one-row predict 11 µs.
CHECK_FROM_BYTES = 64 * 2 ** 20


def _read_int(path):
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _meminfo_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_bytes() -> int | None:
    """Bytes this process can still allocate, or None where it cannot be told.

    The smaller of the system's available memory and what the cgroup (v2 or
    v1) memory limit leaves.
    """
    candidates = [_meminfo_available()]
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:  # v1 "no limit" is huge
            candidates.append(max(limit - usage, 0))
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def check_fits(n_bytes: float, what: str) -> None:
    """Raise ``MemoryError`` if ``n_bytes`` more would not fit in the available memory."""
    if n_bytes < CHECK_FROM_BYTES:
        return
    available = available_bytes()
    if available is None:
        return
    usable = available * (1 - RESERVE_FRACTION)
    if n_bytes > usable:
        raise MemoryError(f"{what}: about {format_bytes(n_bytes)} of memory needed, only "
                          f"{format_bytes(available)} available; use fewer or smaller "
                          "layers, a smaller batch or fewer threads")
