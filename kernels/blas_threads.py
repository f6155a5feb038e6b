"""BLAS's thread count, set per calling thread.

BLAS results depend on how many threads BLAS uses (OpenBLAS's ``sgemm`` on a
32 × 784 by 784 × 128 product gives other bits with 1 and 2 threads), and a
multi-threaded call's result even depends on what other threads ask of BLAS at
the same moment (measured: 170 of 200 two-thread products differed while
another thread ran one-thread products). The process-wide setting that
threadpoolctl changes does not help either: set from a thread other than the
main one it did not take effect here (OpenBLAS 0.3.30).

So fastbp sets the count for the calling thread only, with the BLAS library's
thread-local call (``openblas_set_num_threads_local``, or MKL's
``MKL_Set_Num_Threads_Local``), found in the library behind SciPy's
``cython_blas``, which Numba's ``np.dot`` calls. Kernels call it inside their
``prange`` bodies (``single_threaded_blas``) so that Numba's worker threads
run BLAS on one thread each; the Python layer calls it around every kernel
(``fastbp._threads``). Registered under a name of its own, the function
resolves in cached kernels too. Without such a function (another BLAS) it is a
no-op, and ``AVAILABLE`` is False.
"""
import ctypes

import llvmlite.binding as llvm
from numba import cfunc, types

from ._config import kernel

SYMBOL = "fastbp_set_blas_threads_local"
_CANDIDATES = ("openblas_set_num_threads_local", "MKL_Set_Num_Threads_Local")


def _no_local_setting():
    """A C function ``int(int)`` that does nothing, for a BLAS without a thread-local setter."""
    @cfunc(types.intc(types.intc), cache=True)
    def ignore(n):
        return 0
    return ignore


def _find():
    """``(ctypes function, address)`` of the thread-local setter, or ``(None, None)``."""
    import scipy.linalg.cython_blas as blas
    library = ctypes.CDLL(blas.__file__)  # symbols are looked up in its dependencies too
    for name in _CANDIDATES:
        try:
            fn = getattr(library, name)
        except AttributeError:
            continue
        fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int]
        return fn, ctypes.cast(fn, ctypes.c_void_p).value
    return None, None


set_local, _address = _find()
AVAILABLE = set_local is not None
llvm.add_symbol(SYMBOL, _address if AVAILABLE else _no_local_setting().address)
_SET = types.ExternalFunction(SYMBOL, types.intc(types.intc))


@kernel
def single_threaded_blas():
    """Make this thread's BLAS calls single-threaded; returns the previous setting."""
    return _SET(1)
