"""Input checks shared by the public API. Every failure is a ValueError naming the problem."""
from numbers import Integral, Real

import numpy as np

from .kernels.checks import all_finite


def check_array(X, name, dtype, ndim=2):
    """``X`` as a C-contiguous, finite array of ``dtype`` (a copy only when needed)."""
    if hasattr(X, "toarray") and not isinstance(X, np.ndarray):
        raise ValueError(f"{name} is a sparse matrix; pass a dense array (X.toarray())")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no samples (shape {arr.shape})")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {arr.shape})")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not all_finite(arr.reshape(-1)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def check_int(value, name, low=1, allow_none=False):
    """An int ``>= low`` (or None when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_fraction(value, name):
    """A float strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)
