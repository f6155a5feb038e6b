"""Matrix products on blocks of flat buffers, straight through BLAS ``?gemm``.

``np.dot`` in Numba only takes contiguous arrays. The parallel kernels need
products on column blocks (every row of a block is a piece of a wider row),
which BLAS handles natively through its leading dimension. This module calls
the ``?gemm`` that Numba itself uses for ``np.dot`` (its helper
``numba_xxgemm``, which forwards to SciPy's BLAS), so the compiled kernels stay
cacheable and link against the same library.

Matrices here are row-major: a matrix is a flat array starting at its first
element, plus its row stride ``ld``. BLAS is column-major; a row-major
``(m, n)`` matrix is the column-major ``(n, m)`` transpose, so
``C = op(A) @ op(B)`` is computed as ``Cᵀ = op(B)ᵀ @ op(A)ᵀ``.
"""
from numba import types

from ._config import kernel

NO_TRANS = 78  # ord("N")
TRANS = 84  # ord("T")

_XXGEMM = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char, types.intp, types.intp, types.intp,
    types.voidptr, types.voidptr, types.intp, types.voidptr, types.intp,
    types.voidptr, types.voidptr, types.intp))


@kernel
def gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, alpha_beta):
    """``C = alpha · op(A) @ op(B) + beta · C`` on row-major blocks, in place.

    Parameters
    ----------
    trans_a, trans_b : ``NO_TRANS`` or ``TRANS``
        ``op(A)`` is ``A`` or ``Aᵀ``; ``A`` is stored as ``(m, k)`` or ``(k, m)``.
    m, n, k : int
        ``op(A)`` is ``(m, k)``, ``op(B)`` is ``(k, n)``, ``C`` is ``(m, n)``.
    a, b, c : 1-d arrays of one float dtype
        Each starts at its matrix's first element (a slice of a flat buffer).
    lda, ldb, ldc : int
        Row strides, at least the stored number of columns.
    alpha_beta : array ``[alpha, beta]`` of the same dtype

    Returns the BLAS helper's status (0 on success).
    """
    kind = 115 if a.itemsize == 4 else 100  # ord("s"), ord("d")
    return _XXGEMM(kind, trans_b, trans_a, n, m, k, alpha_beta.ctypes, b.ctypes, ldb,
                   a.ctypes, lda, alpha_beta[1:].ctypes, c.ctypes, ldc)
