"""Input checks shared by the public API. Every failure is a ValueError naming the problem."""
from numbers import Integral, Real

import numpy as np

from .kernels.checks import peak_magnitude


def magnitude_limit(dtype):
    """The largest magnitude ``dtype`` can square: about 1.8e19 for float32, 1.3e154 for float64.

    Training squares values of the inputs' scale (the squared error, Adam's
    second moment), so beyond this a fit can only overflow; in float32 that is
    well within reach of real data given in the wrong units.
    """
    return float(np.sqrt(np.finfo(dtype).max))


def too_large(name, peak, dtype):
    limit = magnitude_limit(dtype)
    return (f"{name} holds values up to {peak:.3g} in magnitude, too large for "
            f"{np.dtype(dtype).name} (squares overflow beyond {limit:.2g}): scale them down "
            "or use dtype='float64'")


def value_problem(arr, name):
    """Why the float array ``arr`` cannot be computed with (NaN, infinity, values too large
    for its dtype), or None."""
    peak = peak_magnitude(arr.reshape(-1))
    if not np.isfinite(peak):
        return f"{name} contains NaN or infinity"
    if peak > magnitude_limit(arr.dtype):
        return too_large(name, peak, arr.dtype)
    return None


def check_array(X, name, dtype, ndim=2) -> np.ndarray:
    """``X`` as a C-contiguous array of ``dtype`` (a copy only when needed), finite and
    within ``magnitude_limit(dtype)``."""
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
        raise ValueError(f"{name} has no samples (shape {arr.shape})" if ndim == 2
                         else f"{name} is empty")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {arr.shape})")
    source = arr
    with np.errstate(over="ignore"):  # reported below, by name
        arr = np.ascontiguousarray(source, dtype=dtype)
    problem = value_problem(arr, name)
    if (problem is not None and source.dtype.kind == "f"
            and source.dtype.itemsize > arr.dtype.itemsize and np.isfinite(source).all()):
        # finite values beyond the dtype's range became infinite in the cast: say so
        problem = too_large(name, float(np.abs(source).max()), arr.dtype)
    if problem is not None:
        raise ValueError(problem)
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
