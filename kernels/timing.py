"""Kernels that time this machine for ``fastbp.tuning``: what a parallel phase costs, and
how fast the parts' matrix products run when they run at the same time."""
import numpy as np
from numba import prange

from ._config import parallel_kernel
from .blas_threads import single_threaded_blas

__all__ = ["parallel_touch", "concurrent_products"]


@parallel_kernel
def parallel_touch(out):
    """``out[p] += 1`` for every part ``p``: the cost of one ``prange`` over the parts."""
    for p in prange(out.shape[0]):
        out[p] += 1.0


@parallel_kernel
def concurrent_products(a, b, out, reps):
    """``out[p] = a[p] @ b[p]``, ``reps`` times, every part on its own thread at once.

    As inside the parallel epochs: BLAS on one thread in each worker, the
    parts sharing the memory bus and the caches.
    """
    for q in prange(a.shape[0]):
        p = np.int64(q)
        single_threaded_blas()
        for _ in range(reps):
            np.dot(a[p], b[p], out[p])
