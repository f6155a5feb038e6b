"""Input checks as kernels: one pass, no temporary arrays."""
from ._config import kernel


@kernel
def all_finite(a):
    """True when no entry of the 1-D array ``a`` is NaN or infinite.

    ``x · 0`` is 0 for every finite ``x`` and NaN for ±inf and NaN, so the sum
    is 0 exactly when all entries are finite (the fastmath flags keep NaN and
    inf semantics, so this is not folded away); unlike ``np.isfinite(a).all()``
    it allocates nothing.
    """
    total = a[0] * 0
    for i in range(a.shape[0]):
        total += a[i] * 0
    return total == 0
