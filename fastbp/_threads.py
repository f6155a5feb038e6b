"""Thread count of a call: Numba's parallel kernels and the BLAS they call."""
import os
from contextlib import contextmanager
from numbers import Integral

import numba
from threadpoolctl import threadpool_limits


def resolve_n_jobs(n_jobs):
    """None → leave as is; -1 → all cores; k ≥ 1 → k (capped at Numba's maximum)."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be None, -1 or a positive integer, got {n_jobs!r}")
    limit = numba.config.NUMBA_NUM_THREADS
    return limit if n_jobs == -1 else min(int(n_jobs), limit, os.cpu_count() or 1)


@contextmanager
def thread_limit(n_jobs):
    """Run the body with ``n_jobs`` threads, then restore the previous settings."""
    n = resolve_n_jobs(n_jobs)
    if n is None:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)
