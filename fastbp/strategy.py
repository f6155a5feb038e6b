"""How an epoch is run: which kernel, and how many threads go where.

- ``serial``: the whole-epoch kernel on one thread (BLAS single-threaded).
- ``blas``: the same kernel, with BLAS using all threads inside each matrix product.
- ``sharded``: every minibatch split into one shard per thread, each shard's
  forward/backward into a private gradient buffer (BLAS single-threaded inside),
  summed in shard order, then one parallel update.
- ``columns``: every hidden layer's units split among the threads; each thread
  computes, differentiates and updates the weights of its own units (BLAS
  single-threaded inside). Needs a hidden layer; without one it runs ``serial``.

All three give the same results within float tolerance; ``serial`` and
``sharded`` are bit-identical run to run for a fixed thread count.
"""
STRATEGIES = ("auto", "serial", "blas", "sharded", "columns")


def check_strategy(strategy):
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    return strategy


# Below this many forward multiply-adds per thread and step, a second thread
# does not pay for its synchronisation (six parallel phases per step): the T
# row (38k) ran 1.5x slower with ``columns`` than ``serial``; the S row (1.6M)
# ran 1.57x faster. README, "Strategies", has the measurements.
PARALLEL_MIN_MACS = 500_000


def macs_per_thread(layout, batch_size, n_threads):
    """Forward multiply-adds of one step, divided among the threads."""
    weights = sum(a * b for a, b in zip(layout.sizes[:-1], layout.sizes[1:]))
    return -(-batch_size // n_threads) * weights


def choose_strategy(layout, batch_size, n_threads):
    """The strategy ``auto`` picks for this shape and thread count.

    ``serial`` for one thread, no hidden layer, or small steps; else
    ``columns``: measured on the benchmark grid with 2 threads it was the
    fastest on S and M (1.4x and 1.1x faster than ``blas``) and tied with
    ``blas`` on L and XL, where the matrix products dominate either way.
    """
    if (n_threads == 1 or len(layout.sizes) < 3
            or macs_per_thread(layout, batch_size, n_threads) < PARALLEL_MIN_MACS):
        return "serial"
    return "columns"


def thread_counts(strategy, n_threads):
    """``(numba_threads, blas_threads)`` for a strategy."""
    if strategy == "serial":
        return 1, 1
    if strategy == "blas":
        return 1, n_threads
    return n_threads, 1


# Column blocks start on multiples of this many units (64 bytes of float32),
# so two threads never write the same cache line of a row.
UNIT_ALIGN = 16


def unit_bounds(layout, n_threads):
    """``(n_layers, n_threads + 1)`` int64: each hidden layer's units split among threads.

    Block edges are rounded to multiples of ``UNIT_ALIGN`` when the layer is
    wide enough; the output layer's row is not used (it is split by the rows
    of its weights, i.e. by the last hidden layer's blocks).
    """
    import numpy as np
    bounds = np.zeros((len(layout.sizes) - 1, n_threads + 1), dtype=np.int64)
    for l, units in enumerate(layout.sizes[1:]):
        align = UNIT_ALIGN if units >= UNIT_ALIGN * n_threads else 1
        for t in range(n_threads + 1):
            bounds[l, t] = min(units, round(units * t / n_threads / align) * align)
        bounds[l, n_threads] = units
    return bounds
