"""Thread counts of a call: Numba's parallel kernels and the BLAS they call.

Numba's thread count is per calling thread; the BLAS limit (threadpoolctl) is
one setting for the whole process. Calls running at the same time from
several Python threads therefore share it: while any are running, the BLAS
limit is the smallest any of them asked for (never oversubscribed), and the
original setting comes back when the last one ends.

Numba's ``workqueue`` threading layer, its fallback when neither OpenMP nor TBB
can be loaded, aborts the process if two threads launch parallel kernels at the
same time, even kernels set to one thread; under it, fastbp's calls take turns
(``_parallel_gate``, re-entrant so that a callback of a fit may predict).
"""
import os
import threading
from collections import Counter
from contextlib import contextmanager, nullcontext
from numbers import Integral

import numba
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls: load it before scanning)
from threadpoolctl import ThreadpoolController

_controller = None
_lock = threading.Lock()
_active_blas_limits = Counter()  # the limits of the calls now running
_original_blas = None  # threadpoolctl's limiter holding the settings from before them
_serial_launches = threading.RLock()
_layer_is_threadsafe = None


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


def threading_layer_is_threadsafe():
    """Whether Numba's threading layer accepts parallel launches from several threads."""
    global _layer_is_threadsafe
    if _layer_is_threadsafe is None:
        try:
            from numba.np.ufunc.parallel import _launch_threads
            _launch_threads()  # picks and loads the layer, as the first parallel call would
            _layer_is_threadsafe = numba.threading_layer() in ("omp", "tbb")
        except Exception:  # an unknown Numba: assume the worst, calls take turns
            _layer_is_threadsafe = False
    return _layer_is_threadsafe


def _parallel_gate():
    """A lock held around fastbp's calls when the threading layer needs it."""
    return nullcontext() if threading_layer_is_threadsafe() else _serial_launches


def _set_blas_limit(limit):
    """Record a call's BLAS limit and apply the smallest of the running calls'."""
    global _original_blas
    with _lock:
        first = not _active_blas_limits
        _active_blas_limits[limit] += 1
        limiter = _blas_controller().limit(limits=min(_active_blas_limits), user_api="blas")
        if first:  # it remembers the settings from before any fastbp call
            _original_blas = limiter


def _unset_blas_limit(limit):
    with _lock:
        _active_blas_limits[limit] -= 1
        if not _active_blas_limits[limit]:
            del _active_blas_limits[limit]
        if _active_blas_limits:
            _blas_controller().limit(limits=min(_active_blas_limits), user_api="blas")
        else:
            _original_blas.restore_original_limits()


@contextmanager
def thread_limit(numba_threads, blas_threads):
    """Run the body with these thread counts, then restore the previous settings.

    BLAS is limited through threadpoolctl; a BLAS called from inside a
    ``prange`` must get 1 thread, or the two thread pools oversubscribe the cores.
    """
    with _parallel_gate():  # first: a call waiting its turn must not throttle BLAS
        previous = numba.get_num_threads()
        numba.set_num_threads(numba_threads)
        _set_blas_limit(blas_threads)
        try:
            yield
        finally:
            _unset_blas_limit(blas_threads)
            numba.set_num_threads(previous)
