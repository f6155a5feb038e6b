"""The one place where the jit flags of every kernel live.

``FASTMATH`` is an explicit flag set rather than ``fastmath=True``: it leaves out
``nnan`` and ``ninf`` so that non-finite values keep their IEEE meaning and a
diverging fit can be detected.

``ERROR_MODEL = "numpy"``: a float division by zero gives inf or NaN instead of
raising. Python's error model puts a zero test and a branch before every
division, which kept loops from vectorising (measured: a tanh loop with one
division ran at 6.6 ns per element, 0.7 ns without the test).
"""
import numba

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})
CACHE = True
NOGIL = True
ERROR_MODEL = "numpy"


def kernel(fn):
    """Compile ``fn`` lazily as a Numba kernel with the project's flags."""
    return numba.njit(fastmath=set(FASTMATH), cache=CACHE, nogil=NOGIL,
                      error_model=ERROR_MODEL)(fn)


def inline(fn):
    """Compile ``fn`` as a scalar helper that is always inlined into its caller."""
    return numba.njit(inline="always", fastmath=set(FASTMATH), cache=CACHE, nogil=NOGIL,
                      error_model=ERROR_MODEL)(fn)


def parallel_kernel(fn):
    """Compile ``fn`` lazily with ``parallel=True``: its ``prange`` loops run on Numba's threads."""
    return numba.njit(parallel=True, fastmath=set(FASTMATH), cache=CACHE, nogil=NOGIL,
                      error_model=ERROR_MODEL)(fn)
