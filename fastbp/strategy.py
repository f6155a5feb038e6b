"""How an epoch is run: which kernel, and how many threads go where.

- ``serial``: the whole-epoch kernel on one thread (BLAS single-threaded).
- ``blas``: the same kernel, with BLAS using all threads inside each matrix product.
- ``sharded``: every minibatch split into one shard per thread, each shard's
  forward/backward into a private gradient buffer (BLAS single-threaded inside),
  summed in shard order, then one parallel update.

All three give the same results within float tolerance; ``serial`` and
``sharded`` are bit-identical run to run for a fixed thread count.
"""
STRATEGIES = ("auto", "serial", "blas", "sharded")


def check_strategy(strategy):
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    return strategy


# Below this many forward multiply-adds per thread and step, a second thread
# does not pay for its synchronisation: the T row (38k) runs as fast serially,
# and the S row (1.6M) ran 0.95× to 0.40× as fast with 2 threads as with one,
# depending on what else the shared machine was running, while M (17M) gains
# 1.4-1.5×. README, "Strategies", has the measurements.
PARALLEL_MIN_MACS = 4_000_000


def macs_per_thread(layout, batch_size, n_threads):
    """Forward multiply-adds of one step, divided among the threads."""
    weights = sum(a * b for a, b in zip(layout.sizes[:-1], layout.sizes[1:]))
    return -(-batch_size // n_threads) * weights


def choose_strategy(layout, batch_size, n_threads):
    """The strategy ``auto`` picks for this shape and thread count.

    ``serial`` for one thread or small steps, else ``blas``: measured on the
    benchmark grid with 2 threads, whole-batch BLAS was as fast as or faster
    than sharding on every row from M up (sharding pays a pass over every
    shard's gradient each step).
    """
    if n_threads == 1 or macs_per_thread(layout, batch_size, n_threads) < PARALLEL_MIN_MACS:
        return "serial"
    return "blas"


def thread_counts(strategy, n_threads):
    """``(numba_threads, blas_threads)`` for a strategy."""
    if strategy == "serial":
        return 1, 1
    if strategy == "blas":
        return 1, n_threads
    return n_threads, 1
