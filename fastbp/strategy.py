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


def choose_strategy(layout, batch_size, n_threads):
    """The strategy ``auto`` picks for this shape (see README, "Strategies")."""
    if n_threads == 1 or batch_size < 2 * n_threads:
        return "serial"
    return "sharded"


def thread_counts(strategy, n_threads):
    """``(numba_threads, blas_threads)`` for a strategy."""
    if strategy == "serial":
        return 1, 1
    if strategy == "blas":
        return 1, n_threads
    return n_threads, 1
