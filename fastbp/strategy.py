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
``n_jobs``, agree within float tolerance (they sum in other orders). ``auto``
is the strategy this machine runs fastest for the problem, priced once and
recorded (``fastbp.tuning``), so it too gives the same bits run after run.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .kernels import network_functions as NF

if TYPE_CHECKING:
    from .architecture import Layout

__all__ = [
    "STRATEGIES", "ENTRY", "SLOTS", "UNIT_ALIGN", "check_strategy", "thread_counts", "unit_bounds"
]

STRATEGIES = ("auto", "serial", "blas", "sharded", "columns")

# The entry kernel each strategy runs, simplest strategy first (fewer threads, nothing
# to sum, no other fit kept waiting).
ENTRY = {"serial": "train_epoch", "blas": "train_epoch", "sharded": "train_epoch_sharded",
         "columns": "train_epoch_columns"}
# The functions that kernel calls by address (``kernels.network_functions``): the
# network's own, and the parallel epochs' prange bodies.
SLOTS = {strategy: NF.ENTRY_SLOTS[entry] for strategy, entry in ENTRY.items()}


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    return strategy


def thread_counts(strategy: str, parts: int, threads: int | None) -> tuple[int | None, int]:
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


def unit_bounds(layout: Layout, parts: int) -> npt.NDArray[np.int64]:
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
