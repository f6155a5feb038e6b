"""Input checks as kernels: one pass, no temporary arrays."""
import numpy as np

from ._config import kernel


@kernel
def all_finite(a):
    """True when no entry of the 1-D array ``a`` is NaN or infinite.

    ``x · 0`` is 0 for every finite ``x`` and NaN for ±inf and NaN, so the sum
    is 0 exactly when all entries are finite (the fastmath flags keep NaN and
    inf semantics, so this is not folded away); unlike ``np.isfinite(a).all()``
    it allocates nothing.
    """
    if a.shape[0] == 0:
        return True
    total = a[0] * 0
    for i in range(a.shape[0]):
        total += a[i] * 0
    return total == 0


@kernel
def peak_magnitude(a):
    """``max |a|`` of the 1-D array ``a`` (0 if empty), or inf if an entry is NaN or inf.

    One pass for both of the input checks (finite, not too large).
    """
    if a.shape[0] == 0:
        return 0.0
    total = a[0] * 0
    peak = abs(a[0])
    for i in range(a.shape[0]):
        total += a[i] * 0
        v = abs(a[i])
        peak = v if v > peak else peak
    return float(peak) if total == 0 else np.inf
