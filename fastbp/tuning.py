"""``strategy="auto"``: the strategy this machine runs fastest, priced here and recorded once.

The strategies (``fastbp.strategy``) differ in how a step's matrix products
are spread over the parts: ``serial`` runs them on one BLAS thread, ``blas``
on one BLAS thread per part, ``sharded`` gives each part its rows of the
batch, ``columns`` each part its units of every hidden layer. Which is fastest
depends on this CPU, its BLAS and the shapes, so it is never read from a table
made on another machine. For a new problem (layer sizes, batch size, dtype,
parts) this module prices one step of each candidate from timings taken here:

- the step's products (forward, weight gradient, δ of every layer) as each
  strategy issues them: all on one BLAS thread; all on ``parts`` BLAS threads;
  ``parts`` threads at once, each with its rows or its columns, one BLAS thread
  each (run concurrently, so memory and cache contention are in the figure);
- the elementwise work (activations, δ, the update) as passes over the
  buffers, divided among the parts by the parallel strategies;
- the cost of a parallel phase (one ``prange`` over the parts), times the
  phases of a step, and the sum of the shards' gradients.

No epoch kernel is compiled or run to decide: pricing costs milliseconds
(about three seconds for the XL grid row) where compiling the candidates
would cost tens of seconds. The choice is written to the cache directory,
under an identity of this machine (CPU model and flags, core count, BLAS
library and version, Numba version), and every later process reads it back:
since the strategy fixes the order of the sums, a recorded choice is what
makes ``auto`` give the same bits run after run. Two processes pricing the
same problem at once agree on the first record written. ``forget()`` removes
the records (the next fit prices again); ``strategy=`` pins one.

A price taken while another process holds a core is not recorded: a parallel
phase then waits for a scheduler time slice (8 ms against 2-3 µs on an idle
machine here, one CPU-bound process beside a 2-core pricing), which prices
every parallel strategy far too high, and the record would keep that moment's
choice for good. Such a fit runs the choice of the moment, and a later fit
prices again. The test is physical, not tuned: a phase of a few microseconds'
work that takes a millisecond (``BUSY_PHASE_SECONDS``, longer than any thread
wake-up, shorter than a time slice) means a part waited for a core.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numba
import numpy as np
import numpy.typing as npt

from ._threads import kernel_threads, parts_for
from ._validation import check_int
from .strategy import ENTRY

if TYPE_CHECKING:
    from .architecture import Layout

__all__ = ["resolve", "choose", "decide", "price", "forget", "records_dir", "machine_id"]

logger = logging.getLogger("fastbp.tuning")

_lock = threading.Lock()
_chosen: dict[str, str] = {}  # this process's decisions: key -> strategy
# key -> a quick price of serial's step, for fits too short to record a choice
_priced: dict[str, float] = {}
_machine: str | None = None


# ------------------------------------------------------------------ records
def machine_id() -> str:
    """A short hash of what decides the timings: CPU, cores, BLAS, Numba."""
    global _machine
    if _machine is None:
        parts = [platform.machine(), str(os.cpu_count()), numba.__version__, _cpu(), _blas()]
        _machine = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return _machine


def _cpu():
    """The first processor's model name and flags (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [l for l in f.read().split("\n\n")[0].splitlines()
                     if l.split(":")[0].strip() in ("model name", "flags", "Features",
                                                     "CPU part")]
        if lines:
            return ";".join(lines)
    except OSError:
        pass
    return platform.processor()


def _blas():
    try:
        from threadpoolctl import threadpool_info
        # sorted: threadpoolctl lists the loaded libraries in an order that varies between
        # processes (NumPy's and SciPy's OpenBLAS swapped places), which changed the identity
        return ";".join(sorted(
            f"{i.get('internal_api')}:{i.get('version')}:{i.get('architecture')}"
            for i in threadpool_info() if i.get("user_api") == "blas"))
    except Exception:  # threadpoolctl missing or failing: the CPU identity still holds
        return ""


def records_dir() -> Path:
    """Where this machine's choices are recorded."""
    from .specialize import cache_root
    return cache_root() / "strategies" / machine_id()


def _key(sizes, batch_size, dtype, parts):
    return f"{'-'.join(map(str, sizes))}|batch={batch_size}|{np.dtype(dtype).name}|parts={parts}"


def _path(key):
    return records_dir() / (hashlib.sha256(key.encode()).hexdigest()[:20] + ".json")


def _read(key):
    try:
        record = json.loads(_path(key).read_text())
    except (OSError, ValueError):
        return None
    return record.get("strategy") if record.get("key") == key else None


def _write_first(key, record):
    """Write ``record`` unless another process has; returns the strategy on disk (or ours)."""
    path = _path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        try:
            os.link(tmp, path)  # fails if a record exists: the first one written wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    except OSError as e:  # a read-only cache: the choice holds for this process only
        logger.warning("fastbp: could not record the strategy in %s (%s)", path.parent, e)
        return record["strategy"]
    return _read(key) or record["strategy"]


def forget() -> None:
    """Remove this machine's recorded choices: the next fit of each problem prices again."""
    with _lock:
        _chosen.clear()
        _priced.clear()
        folder = records_dir()
        if folder.is_dir():
            for path in folder.glob("*.json"):
                path.unlink(missing_ok=True)


# ------------------------------------------------------------------ the choice
def _candidates(sizes):
    """The strategies for these layer sizes: ``columns`` needs a hidden layer to split."""
    return tuple(ENTRY) if len(sizes) > 2 else tuple(ENTRY)[:3]


# What pricing a problem costs, about (0.1-0.5 s for small networks here, a few seconds for
# the largest, whose fits repay it many times): a fit that could save less than this and
# the compile, even with a perfect split over the parts, runs serial without pricing.
PRICING_SECONDS = 1.0

# A parallel phase with nothing to do that takes this long means a part waited for a core
# (see the module docstring): the machine is busy, and a price taken now is not recorded.
BUSY_PHASE_SECONDS = 1e-3

# Prices closer than this to the lowest count as a tie, which the simpler strategy (the
# earlier in ENTRY) wins: pricing repeated on one machine varies by about this much.
TIE = 0.05


def _best(seconds):
    low = min(seconds.values())
    return next(s for s in ENTRY if s in seconds and seconds[s] <= low * (1 + TIE))


def _compile_seconds(dtype):
    """``name -> seconds`` that compiling a strategy's epoch kernel would take now."""
    from .specialize import entry_compile_seconds
    found = {}

    def seconds(name):
        if name not in found:
            found[name] = entry_compile_seconds(ENTRY[name], dtype)
        return found[name]
    return seconds


def resolve(strategy: str, layout: Layout, batch_size: int, parts: int, dtype: npt.DTypeLike,
            steps: int | None = None) -> str:
    """The strategy that runs: ``auto`` chosen for this machine (``choose``; ``steps`` is
    how many optimizer steps the fit takes), ``columns`` without a hidden layer →
    ``serial``."""
    if strategy == "auto":
        return choose(tuple(layout.sizes), batch_size, dtype, parts, steps)
    if strategy == "columns" and len(layout.sizes) < 3:
        return "serial"  # no hidden layer to split
    return strategy


def choose(sizes: tuple[int, ...], batch_size: int, dtype: npt.DTypeLike, parts: int,
           steps: int | None = None) -> str:
    """The recorded strategy of this problem on this machine, priced first if there is none.

    One part has nothing to split: ``serial``. ``steps``, the optimizer steps
    the fit will take, lets a short fit skip what it cannot repay: with a
    perfect split it could not save the pricing and a parallel kernel's
    compile, it runs ``serial`` after a quick price of it; if the strategy
    priced fastest has not compiled and would not repay compiling, it runs the
    one with the least ``price × steps + compile``. Neither records anything
    (a later, longer fit decides again); the strategy priced fastest is
    recorded as soon as a fit runs it.
    """
    if parts == 1:
        return "serial"
    key = _key(sizes, batch_size, dtype, parts)
    with _lock:
        found = _chosen.get(key) or _read(key)
        if found is not None:
            _chosen[key] = found
            return found
        start = time.perf_counter()
        compile_seconds = _compile_seconds(dtype)

        def worth(name, fastest):  # could it repay its compile and the pricing in this fit?
            return steps is None or (fastest * steps * (1 - 1 / parts)
                                     > compile_seconds(name) + PRICING_SECONDS)
        if steps is not None:  # a fit too short to repay compiling a parallel epoch: serial
            quick = _priced.get(key)
            if quick is None:
                quick = _priced[key] = _serial_seconds(sizes, batch_size, dtype)
            if not any(worth(n, quick) for n in _candidates(sizes)[2:]):
                return "serial"  # not recorded: a longer fit decides again
        with kernel_threads(None, parts):  # alone among fastbp's calls while it times
            busy = _launch_seconds(parts) >= BUSY_PHASE_SECONDS
            seconds = price(sizes, batch_size, dtype, parts, worth)
            busy = busy or _launch_seconds(parts) >= BUSY_PHASE_SECONDS
        best = _best(seconds)
        left_out = len(seconds) < len(_candidates(sizes))
        if steps is not None:
            total = {s: t * steps + compile_seconds(s) for s, t in seconds.items()}
            affordable = _best(total)
            if affordable != best or left_out:
                logger.info("fastbp: %s runs %s this time: no faster strategy would repay "
                            "compiling it in %d steps", key, affordable, steps)
                return affordable
        if busy:
            logger.info("fastbp: %s runs %s this time: the machine is busy (another process "
                        "holds a core), so the price is not recorded", key, best)
            return best
        record = {"key": key, "strategy": best, "predicted_step_seconds": seconds,
                  "priced_in_seconds": time.perf_counter() - start,
                  "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        found = _chosen[key] = _write_first(key, record)
        logger.info("fastbp: strategy for %s: %s (priced on this machine: %s)", key, found,
                    ", ".join(f"{k} {v * 1e6:.0f} µs" for k, v in seconds.items()))
    return found


def decide(layer_sizes: Sequence[int], batch_size: int, dtype: npt.DTypeLike = "float32",
           n_jobs: int | None = None) -> str:
    """Price and record ``auto``'s strategy for a problem now, as a long fit would; returns it.

    For a series of short fits of one problem (one epoch at a time, ``partial_fit``
    loops, benchmarks): each alone is too short to repay pricing and runs
    ``serial``; after this call they all run the recorded choice. Bad arguments
    raise ValueError before anything is priced.
    """
    from .architecture import check_dtype, check_layer_sizes
    sizes = tuple(check_layer_sizes(layer_sizes))
    batch_size = check_int(batch_size, "batch_size")
    dtype = np.dtype(check_dtype(dtype))
    return choose(sizes, batch_size, dtype, parts_for(n_jobs))


def price(sizes: Sequence[int], batch_size: int, dtype: npt.DTypeLike, parts: int,
          worth: Callable[[str, float], bool] | None = None) -> dict[str, float]:
    """Predicted seconds of one training step for each candidate strategy on this machine.

    A parallel strategy whose best case (its parts' products timed one at a
    time, as if they ran side by side for free, plus its phases) is no faster
    than ``serial`` or ``blas`` is priced at that best case: it cannot win, and
    its products are not run concurrently. ``worth(name, fastest_seconds)``, if
    given, says whether a parallel strategy is worth pricing at all (from the
    faster of ``serial`` and ``blas``); one that is not is left out.
    """
    dtype = np.dtype(dtype)
    layers = list(zip(sizes[:-1], sizes[1:]))
    B, P = batch_size, parts
    n_params = sum(a * b + b for a, b in layers)
    units = sum(b for _, b in layers)
    whole = _products(layers, B)
    # activations, their derivatives and δ (three passes over the units), the gathered
    # batch, and the update (three passes over the parameters)
    elementwise = _elementwise_seconds(3 * B * units + B * sizes[0] + 3 * n_params, dtype)
    seconds = {"serial": _alone(whole, dtype, 1) + elementwise,
               "blas": _alone(whole, dtype, P) + elementwise}
    fastest = min(seconds.values())
    names = [n for n in _candidates(sizes)[2:] if worth is None or worth(n, fastest)]
    if not names:
        return seconds
    launch = _launch_seconds(P)
    for name in names:
        if name == "sharded":
            own, single = _products(layers, -(-B // P)), []
            rest = elementwise / P + _elementwise_seconds(n_params, dtype) + 2 * launch
        else:
            a, b = layers[-1]
            own, single = _products(layers, B, parts=P), [(B, a, b)]
            rest = elementwise / P + (2 * (len(layers) - 1) + 3) * launch
        extra = rest + (_alone(single, dtype, 1) if single else 0.0)
        one_part = _alone(own, dtype, 1)
        seconds[name] = one_part + extra
        if one_part + extra < fastest:
            # never above the parts run one after another: a slower figure is a hiccup
            # of the timing (a thread descheduled), not the strategy
            seconds[name] = min(_side_by_side(own, dtype, P), P * one_part) + extra
    return seconds


def _serial_seconds(sizes, batch_size, dtype):
    """A quick price of ``serial``'s step (fewer, shorter timings than ``price``)."""
    dtype = np.dtype(dtype)
    layers = list(zip(sizes[:-1], sizes[1:]))
    n_params = sum(a * b + b for a, b in layers)
    values = 3 * batch_size * sum(b for _, b in layers) + batch_size * sizes[0] + 3 * n_params
    return (_alone(_products(layers, batch_size), dtype, 1, trials=1, budget=0.001)
            + _elementwise_seconds(values, dtype, trials=1, budget=0.001))


def _products(layers, batch, parts=None):
    """``(m, k, n)`` of a step's products: forward, weight gradient and δ of every layer.

    With ``parts``, one part's share under ``columns``: its units of each hidden
    layer, and its rows of the output layer's weights.
    """
    shapes = []
    for l, (a, b) in enumerate(layers):
        if parts is None:
            shapes += [(batch, a, b), (a, batch, b)] + ([(batch, b, a)] if l else [])
        elif l < len(layers) - 1:
            w = -(-b // parts)
            shapes += [(batch, a, w), (a, batch, w)] + ([(batch, w, a)] if l else [])
        else:
            r = -(-a // parts)
            shapes += [(r, batch, b), (batch, b, r)]
    return shapes


def _operands(shapes, dtype, copies=None):
    rng = np.random.default_rng(0)
    lead = () if copies is None else (copies,)
    return [(rng.standard_normal(lead + (m, k)).astype(dtype),
             rng.standard_normal(lead + (k, n)).astype(dtype),
             np.empty(lead + (m, n), dtype=dtype)) for m, k, n in shapes]


def _alone(shapes, dtype, blas_threads, trials=5, budget=0.005):
    """Seconds of the products ``shapes`` one after the other, NumPy's per-call cost removed."""
    work = _operands(shapes, dtype)

    def run():
        for x, y, out in work:
            np.matmul(x, y, out=out)
    return max(0.0, _timed(run, blas_threads, trials, budget=budget)
               - len(work) * _call_seconds(dtype))


def _side_by_side(shapes, dtype, parts):
    """Seconds of the products ``shapes`` when ``parts`` threads each run them at once."""
    from .kernels.timing import concurrent_products
    total = 0.0
    for a, b, out in _operands(shapes, dtype, copies=parts):
        reps = _repeats(lambda: concurrent_products(a, b, out, 1))
        total += _timed(lambda: concurrent_products(a, b, out, reps), 1, parallel=parts) / reps
    return total


# ------------------------------------------------------------------ timings
def _repeats(fn, budget=0.005):
    """Calls of ``fn`` that take about ``budget`` seconds (at least one)."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, min(200, int(budget / max(once, 1e-7))))


def _timed(fn, blas_threads, trials=5, parallel=None, budget=0.005):
    """Seconds per call of ``fn`` (best of ``trials``), NumPy's BLAS on ``blas_threads``
    threads and Numba's parallel kernels on ``parallel`` threads."""
    from threadpoolctl import threadpool_limits
    threads = None if parallel is None else min(parallel, numba.config.NUMBA_NUM_THREADS)
    with kernel_threads(threads, 1), threadpool_limits(blas_threads, user_api="blas"):
        n = _repeats(fn, budget)
        best = np.inf
        for _ in range(trials):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best = min(best, (time.perf_counter() - start) / n)
    return best


_call_cost: dict[object, float] = {}  # dtype -> seconds


def _call_seconds(dtype):
    """What one ``np.matmul`` call costs beyond its arithmetic (the kernels call BLAS directly)."""
    if dtype not in _call_cost:
        x, out = np.ones((1, 1), dtype), np.empty((1, 1), dtype)
        _call_cost[dtype] = _timed(lambda: np.matmul(x, x, out=out), 1, trials=3)
    return _call_cost[dtype]


def _elementwise_seconds(n_values, dtype, trials=5, budget=0.005):
    """One read-modify-write pass over ``n_values`` values of ``dtype``."""
    buf = np.ones(max(1, n_values), dtype=dtype)
    return _timed(lambda: np.multiply(buf, 1.0, out=buf), 1, trials, budget=budget)


def _launch_seconds(parts):
    """One parallel phase over ``parts`` parts: a ``prange`` that does nothing else.

    In the steady state of an epoch's back-to-back phases: a few calls first wake
    the threads (and load the kernel), which an epoch pays once, not per phase.
    """
    from .kernels.timing import parallel_touch
    out = np.zeros(parts)
    with kernel_threads(min(parts, numba.config.NUMBA_NUM_THREADS), 1):
        for _ in range(3):
            parallel_touch(out)
    return _timed(lambda: parallel_touch(out), blas_threads=1, parallel=parts)
