"""Small matrix products: OpenBLAS against products written as Numba loops.

    python -m bench.small_products

Prints µs per product and GFLOP/s for the shapes of the small grid rows (T, SC, S), float32,
for the same BLAS call the kernels make (``np.dot`` with an output array, inside a compiled
loop), a 4-row register-blocked loop and a plain loop. The figures decided that the epoch
kernels keep their products in BLAS (docs/design.md, "A small network's step").
"""
import time

import numba
import numpy as np

FLAGS = {"nsz", "arcp", "contract", "afn", "reassoc"}  # the kernels' fastmath set
SHAPES = [(32, 64, 32), (32, 32, 10), (200, 24, 8), (200, 8, 2), (32, 784, 128)]


@numba.njit(fastmath=FLAGS, error_model="numpy")
def blocked(A, B, C):
    """``C = A @ B``, four rows of ``A`` per pass over ``B``; the inner loop vectorises."""
    m, k = A.shape
    n = B.shape[1]
    i = 0
    while i + 4 <= m:
        C[i:i + 4] = 0
        for p in range(k):
            a0, a1, a2, a3 = A[i, p], A[i + 1, p], A[i + 2, p], A[i + 3, p]
            for j in range(n):
                b = B[p, j]
                C[i, j] += a0 * b
                C[i + 1, j] += a1 * b
                C[i + 2, j] += a2 * b
                C[i + 3, j] += a3 * b
        i += 4
    for r in range(i, m):
        C[r] = 0
        for p in range(k):
            a = A[r, p]
            for j in range(n):
                C[r, j] += a * B[p, j]


@numba.njit(fastmath=FLAGS, error_model="numpy")
def plain(A, B, C):
    m, k = A.shape
    for i in range(m):
        C[i] = 0
        for p in range(k):
            a = A[i, p]
            for j in range(B.shape[1]):
                C[i, j] += a * B[p, j]


@numba.njit(fastmath=FLAGS, error_model="numpy")
def blas(A, B, C):
    np.dot(A, B, C)


@numba.njit
def repeat(product, A, B, C, times):
    for _ in range(times):
        product(A, B, C)


def seconds(product, A, B, C, trials=5):
    times = max(10, int(2e8 / (2 * A.size * B.shape[1])))
    repeat(product, A, B, C, 2)
    best = np.inf
    for _ in range(trials):
        start = time.perf_counter()
        repeat(product, A, B, C, times)
        best = min(best, (time.perf_counter() - start) / times)
    return best


def main():
    rng = np.random.default_rng(0)
    print(f"{'m x k @ k x n':<20}" + "".join(f"{name:>22}" for name in ("BLAS", "blocked", "plain")))
    for m, k, n in SHAPES:
        A = rng.random((m, k), dtype=np.float32)
        B = rng.random((k, n), dtype=np.float32)
        C = np.empty((m, n), np.float32)
        cells = []
        for product in (blas, blocked, plain):
            product(A, B, C)
            np.testing.assert_allclose(C, A @ B, rtol=1e-4)
            t = seconds(product, A, B, C)
            cells.append(f"{t * 1e6:9.2f} µs {2 * m * k * n / t / 1e9:6.1f} GF/s")
        print(f"{f'{m} x {k} @ {k} x {n}':<20}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
