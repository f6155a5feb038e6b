"""Thread counts of a call: Numba's parallel kernels and the BLAS they call."""
import os
from contextlib import contextmanager
from numbers import Integral

import numba
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls: load it before scanning)
from threadpoolctl import ThreadpoolController

_controller = None


def _blas_controller():
    """One scan of the loaded BLAS libraries per process (a scan costs milliseconds)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def resolve_n_jobs(n_jobs):
    """Threads to use: None → Numba's current setting; -1 → all; k ≥ 1 → k (capped)."""
    if n_jobs is None:
        return numba.get_num_threads()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be None, -1 or a positive integer, got {n_jobs!r}")
    limit = numba.config.NUMBA_NUM_THREADS
    return limit if n_jobs == -1 else min(int(n_jobs), limit, os.cpu_count() or 1)


@contextmanager
def thread_limit(numba_threads, blas_threads):
    """Run the body with these thread counts, then restore the previous settings.

    BLAS is limited through threadpoolctl; a BLAS called from inside a
    ``prange`` must get 1 thread, or the two thread pools oversubscribe the cores.
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(numba_threads)
    try:
        with _blas_controller().limit(limits=blas_threads, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)
