"""Thread counts of a call: how work is split, and how many threads run it.

Two numbers, kept apart so that results never depend on timing:

- the number of **parts** (shards of a batch, column blocks of a layer) is
  fixed by the settings: ``n_jobs`` if given, else the cores this process may
  use (``numba.config.NUMBA_DEFAULT_NUM_THREADS``, the affinity mask). It
  decides the reduction order, so the same settings give the same bits;
- the number of **threads** that run those parts is at most the parts, Numba's
  thread count in the calling thread, and what the caller allows (1 for a fit
  started from a worker thread): it changes the speed, never the result.

BLAS results depend on BLAS's own thread count, and a multi-threaded BLAS call
on what other threads do with BLAS at the same time (``kernels.blas_threads``).
So every fastbp call sets BLAS's thread count for its own thread
(``kernel_threads``; the kernels do the same in their worker threads): one
thread for every kernel but the ``blas`` strategy and L-BFGS, which use one
BLAS thread per part and run alone among fastbp's calls (others wait for
them, and they wait for others). Nested calls from the same thread (a
callback that predicts) never wait. BLAS work that other libraries start in
other threads at the same moment can still change the results of those two.

Numba's ``workqueue`` threading layer, its fallback when neither OpenMP nor TBB
can be loaded, aborts the process if two threads launch parallel kernels at the
same time, even kernels set to one thread; under it, fastbp's calls take turns
(``_parallel_gate``, re-entrant so that a callback of a fit may predict).
"""
import threading
from contextlib import nullcontext
from numbers import Integral

import numba

from .kernels import blas_threads

_controller = None
_serial_launches = threading.RLock()
_layer_is_threadsafe = None


def _set_blas_threads(n):
    """Set BLAS's thread count for the calling thread; returns the previous setting.

    Through the BLAS's thread-local call; without one (another BLAS than
    OpenBLAS or MKL), through threadpoolctl's process-wide setting, which
    gives no guarantee from threads other than the main one.
    """
    if blas_threads.AVAILABLE:
        return blas_threads.set_local(n)
    global _controller
    if _controller is None:
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba calls, before the scan)
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    previous = [c.num_threads for c in _controller.select(user_api="blas").lib_controllers]
    _controller.limit(limits=n, user_api="blas")
    return max(previous, default=n)


def check_n_jobs(n_jobs):
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral)
                               or n_jobs == 0 or n_jobs < -1):
        raise ValueError(f"n_jobs must be None, -1 or a positive integer, got {n_jobs!r}")
    return n_jobs


def parts_for(n_jobs):
    """How many parts the work is split into: ``n_jobs``, or the usable cores for None and -1."""
    check_n_jobs(n_jobs)
    if n_jobs is None or n_jobs == -1:
        return max(1, int(numba.config.NUMBA_DEFAULT_NUM_THREADS))
    return int(n_jobs)


def threads_for(n_jobs, parts, allowed=None):
    """How many threads run ``parts`` parts: never more than Numba allows in this thread.

    ``n_jobs`` None follows Numba's current setting in the calling thread
    (``numba.set_num_threads``); ``allowed`` is a further cap from the caller.
    """
    threads = min(parts, numba.config.NUMBA_NUM_THREADS)
    if n_jobs is None:
        threads = min(threads, numba.get_num_threads())
    if allowed is not None:
        threads = min(threads, allowed)
    return max(1, threads)


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


class _AloneWithManyBlasThreads:
    """Lets a call that wants several BLAS threads run alone among fastbp's calls.

    A multi-threaded BLAS call's result changes when other threads call BLAS at
    the same time; single-threaded calls do not disturb each other, so their
    path is one lock and a counter (every prediction takes it).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._running = 0  # calls running with one BLAS thread
        self._mine = threading.local()  # .running: how many of them this thread runs
        self._owner = None  # the thread running alone
        self._depth = 0

    def acquire(self, n):
        me = threading.get_ident()
        mine = getattr(self._mine, "running", 0)
        with self._lock:
            if self._owner == me:  # nested in this thread's own call that runs alone
                self._depth += 1
                return
            if n == 1:
                while self._owner is not None:
                    self._cond.wait()
                self._running += 1
                self._mine.running = mine + 1
                return
            # alone: wait until only this thread's own (suspended) calls remain
            while self._owner is not None or self._running > mine:
                self._cond.wait()
            self._owner, self._depth = me, 1

    def release(self, n):
        with self._lock:
            if self._owner == threading.get_ident():
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._cond.notify_all()
                return
            self._running -= 1
            self._mine.running -= 1
            self._cond.notify_all()


_turns = _AloneWithManyBlasThreads()
_no_gate = nullcontext()


class kernel_threads:
    """Run the body with these thread counts, then restore the previous settings.

    ``numba_threads`` is Numba's thread count for the parallel kernels the body
    runs (None: the body runs none, and it is left alone); ``blas_threads``
    is BLAS's thread count in the calling thread (the kernels' worker threads
    set 1 for themselves). With ``blas_threads`` > 1 the body runs alone among
    fastbp's calls (see the module docstring). A class rather than a
    generator-based context manager: it wraps every predict call, and costs
    2 µs this way.
    """

    __slots__ = ("numba_threads", "blas_threads", "_gate", "_previous", "_previous_blas")

    def __init__(self, numba_threads, blas_threads):
        self.numba_threads, self.blas_threads = numba_threads, blas_threads

    def __enter__(self):
        # first: a call waiting its turn must hold nothing (only parallel kernels need it)
        self._gate = _no_gate if self.numba_threads is None else _parallel_gate()
        self._gate.__enter__()
        try:
            _turns.acquire(self.blas_threads)
        except BaseException:
            self._gate.__exit__(None, None, None)
            raise
        if self.numba_threads is not None:
            self._previous = numba.get_num_threads()
            numba.set_num_threads(self.numba_threads)
        self._previous_blas = _set_blas_threads(self.blas_threads)
        return self

    def __exit__(self, kind, value, traceback):
        try:
            _set_blas_threads(self._previous_blas)
            if self.numba_threads is not None:
                numba.set_num_threads(self._previous)
            _turns.release(self.blas_threads)
        finally:
            self._gate.__exit__(kind, value, traceback)
        return False
