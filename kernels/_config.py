"""The one place where the jit flags of every kernel live.

``FASTMATH`` is an explicit flag set rather than ``fastmath=True``: it leaves out
``nnan`` and ``ninf`` so that non-finite values keep their IEEE meaning and a
diverging fit can be detected.

``ERROR_MODEL = "numpy"``: a float division by zero gives inf or NaN instead of
raising. Python's error model puts a zero test and a branch before every
division, which kept loops from vectorising (measured: a tanh loop with one
division ran at 6.6 ns per element, 0.7 ns without the test).

Five decorators:

- ``kernel``: a function compiled on first call and cached on disk.
- ``unfused_kernel``: the same without FMA contraction, for the update rules
  (their rounding must not depend on where they were compiled).
- ``parallel_kernel``: the same with ``parallel=True`` (its ``prange`` loops run
  on Numba's threads).
- ``inline``: a scalar helper inlined into its caller, so that the caller's loop
  vectorises with the helper inside. Only for small functions: Numba inlines
  by copying the callee's IR, which cost ~0.2 s per call site for larger ones.
- ``generic``: a small building block that takes a network's scalar
  functions (an activation, a loss term) as arguments, inlined into the
  kernel that calls it. Inlined, the function arguments become that kernel's
  own globals and its loops are compiled with them inside; a called function
  would receive them as pointers to Python objects, which Numba refuses to
  cache ("dynamic globals"), and every kernel above would then recompile in
  every process.
"""
import numba

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})
CACHE = True
NOGIL = True
ERROR_MODEL = "numpy"


def _jit(fastmath=FASTMATH, **flags):
    return numba.njit(fastmath=set(fastmath), nogil=NOGIL, error_model=ERROR_MODEL, **flags)


def kernel(fn):
    """Compile ``fn`` lazily as a Numba kernel with the project's flags."""
    return _jit(cache=CACHE)(fn)


def unfused_kernel(fn):
    """A kernel whose multiply-adds are never fused into FMAs (``contract`` left out).

    For the update rules: a float64 AdamW step compiled in the running process
    and the same step loaded from the cache by the next one differed in the
    last bit (1.8e-15 after 20 steps), fused in one and not in the other.
    Without contraction the rounding is written in the source, so both agree.
    """
    return _jit(fastmath=FASTMATH - {"contract"}, cache=CACHE)(fn)


def parallel_kernel(fn):
    """Compile ``fn`` lazily with ``parallel=True``: its ``prange`` loops run on Numba's threads."""
    return _jit(parallel=True, cache=CACHE)(fn)


def inline(fn):
    """Compile ``fn`` as a scalar helper that is always inlined into its caller."""
    return _jit(inline="always", cache=CACHE)(fn)


def generic(fn):
    """Inline ``fn``, which takes scalar functions as arguments, into its callers (see above)."""
    return _jit(inline="always", cache=False)(fn)
