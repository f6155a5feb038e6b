"""How an epoch is run: which kernel, into how many parts, on how many threads.

- ``serial``: the whole-epoch kernel on one thread (BLAS single-threaded).
- ``blas``: the same kernel, with BLAS using one thread per part inside each
  matrix product (such a call runs alone among fastbp's calls, see ``_threads``).
- ``sharded``: every minibatch split into one shard per part, each shard's
  forward/backward into a private gradient buffer (BLAS single-threaded inside),
  summed in shard order, then one parallel update.
- ``columns``: every hidden layer's units split into parts; each part's thread
  computes, differentiates and updates the weights of its own units (BLAS
  single-threaded inside). Needs a hidden layer; without one it runs ``serial``.

The number of parts comes from ``n_jobs`` (``_threads.parts_for``), never from
the threads that happen to run them: each strategy gives bit-identical results
for the same data and settings at any thread count from 1 to the number of
parts, alone or beside other calls. Different strategies, or different
``n_jobs``, agree within float tolerance (they sum in other orders).
"""
import numpy as np

__all__ = [
    "STRATEGIES", "PARALLEL_MIN_MACS", "PARALLEL_MIN_WEIGHTS", "UNIT_ALIGN", "check_strategy",
    "macs_per_part", "choose_strategy", "resolve", "thread_counts", "unit_bounds"
]

STRATEGIES = ("auto", "serial", "blas", "sharded", "columns")


def check_strategy(strategy):
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    return strategy


# ``columns`` pays off only with enough work per part and step (six parallel
# phases to synchronise: the T row, 38k multiply-adds per part, ran 1.5x slower
# than ``serial``) and enough weights per part (each part's gradient and update
# loops): on a 2-core Xeon, 64-100-10 with batch 200 (3.7k weights and 0.74M
# multiply-adds per part) ran 0.82x as fast as ``serial``, 256-100-10 (13.5k
# weights) 1.10x, 784-128-10 1.33x. docs/design.md has the table.
PARALLEL_MIN_MACS = 500_000
PARALLEL_MIN_WEIGHTS = 12_000


def macs_per_part(layout, batch_size, parts):
    """Forward multiply-adds of one step, divided among the parts."""
    weights = sum(a * b for a, b in zip(layout.sizes[:-1], layout.sizes[1:]))
    return -(-batch_size // parts) * weights


def choose_strategy(layout, batch_size, parts):
    """The strategy ``auto`` picks for this shape and number of parts.

    ``serial`` for one part, no hidden layer, or small steps or weights per
    part; else ``columns``: measured on the benchmark grid with 2 threads it
    was the fastest on S and M (1.4x and 1.1x faster than ``blas``) and tied
    with ``blas`` on L and XL, where the matrix products dominate either way.
    It depends on the settings and the shape only, so it does not change with
    the threads available.
    """
    weights = sum(a * b for a, b in zip(layout.sizes[:-1], layout.sizes[1:]))
    if (parts == 1 or len(layout.sizes) < 3
            or macs_per_part(layout, batch_size, parts) < PARALLEL_MIN_MACS
            or weights / parts < PARALLEL_MIN_WEIGHTS):
        return "serial"
    return "columns"


def resolve(strategy, layout, batch_size, parts):
    """The strategy that runs: ``auto`` chosen, ``columns`` without a hidden layer → ``serial``."""
    if strategy == "auto":
        return choose_strategy(layout, batch_size, parts)
    if strategy == "columns" and len(layout.sizes) < 3:
        return "serial"  # no hidden layer to split
    return strategy


def thread_counts(strategy, parts, threads):
    """``(numba_threads, blas_threads)`` for a strategy with ``parts`` parts on ``threads``.

    ``numba_threads`` None: the strategy runs no parallel kernel.
    """
    if strategy == "serial":
        return None, 1
    if strategy == "blas":
        return None, parts
    return threads, 1


# Column blocks start on multiples of this many units (64 bytes of float32),
# so two threads never write the same cache line of a row.
UNIT_ALIGN = 16


def unit_bounds(layout, parts):
    """``(n_layers, parts + 1)`` int64: each hidden layer's units split into parts.

    Block edges are rounded to multiples of ``UNIT_ALIGN`` when the layer is
    wide enough; the output layer's row is not used (it is split by the rows
    of its weights, i.e. by the last hidden layer's blocks).
    """
    bounds = np.zeros((len(layout.sizes) - 1, parts + 1), dtype=np.int64)
    for l, units in enumerate(layout.sizes[1:]):
        align = UNIT_ALIGN if units >= UNIT_ALIGN * parts else 1
        for t in range(parts + 1):
            bounds[l, t] = min(units, round(units * t / parts / align) * align)
        bounds[l, parts] = units
    return bounds
