"""Can the gradient reduction overlap the computation here? Run under ``mpiexec``.

    mpiexec -n 2 python -m bench.overlap --rows S,M
    MPICH_ASYNC_PROGRESS=1 mpiexec -n 2 python -m bench.overlap --rows S,M

Times ``--steps`` training steps of a grid row's local batch (one thread per
rank), three ways, interleaved over ``--repeats`` rounds (medians):

- ``compute``: forward and backward alone;
- ``blocking``: each step's gradient reduced by ``Allreduce`` after it is
  computed (what ``fastbp.distributed`` does);
- ``overlapped``: each step's reduction started with ``Iallreduce`` and waited
  for only after the *next* step's forward and backward.

``overlapped`` is not a valid training step (its update would use a stale
gradient); it is the most that overlapping the reduction with the backward
pass could save, because it gives the reduction a whole step of computation to
hide behind, where a layer-by-layer overlap gets at most the backward pass.
"""
import argparse
import time

import numpy as np

import fastbp
from fastbp import specialize
from fastbp._threads import kernel_threads
from fastbp.kernels import records as R
from fastbp.kernels.network import gather_rows

from .distributed import emit
from .grid import GRID, make_data

MODES = ("compute", "blocking", "overlapped")


def steps_timer(row, comm, MPI):
    sizes, batch, _ = GRID[row]
    mine = batch // comm.size + (comm.rank < batch % comm.size)
    X, y = make_data(row)
    model = fastbp.MLP(sizes, seed=0)
    layout = model.network.layout
    X, Y = model.network.check_X(X, "X"), model.network.check_targets(y, X.shape[0], "y")
    x_batch = np.empty(mine * X.shape[1], dtype=model.dtype)
    y_batch = np.empty(mine * Y.shape[1], dtype=model.dtype)
    acts, zs, deltas = layout.workspace(mine, model.dtype)
    grads = [np.zeros(model.n_params + 2, dtype=model.dtype) for _ in range(2)]
    rows = np.arange(mine) + comm.rank * mine
    network = model.network.record(model.network.functions())
    no_l2 = R.l2_only(model.dtype)
    forward_backward = specialize.entry("forward_backward", model.dtype)

    def step(out):
        xb, yb = gather_rows(X, Y, rows, 0, mine, x_batch, y_batch)
        out[-2] = forward_backward(network, no_l2, xb, yb, 1.0,
                                   R.workspace(acts, zs, deltas, grads=out[:model.n_params]))

    def run(mode, n_steps):
        comm.Barrier()
        start = time.perf_counter()
        request = None
        for s in range(n_steps):
            current = grads[s % 2]
            step(current)
            if mode == "blocking":
                comm.Allreduce(MPI.IN_PLACE, current, op=MPI.SUM)
            elif mode == "overlapped":
                if request is not None:
                    request.Wait()
                request = comm.Iallreduce(MPI.IN_PLACE, current, op=MPI.SUM)
        if request is not None:
            request.Wait()
        comm.Barrier()
        return (time.perf_counter() - start) / n_steps

    return run, (model.n_params + 2) * model.dtype.itemsize


def main(argv=None):
    import os
    from mpi4py import MPI
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="S,M")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="also write the results here (rank 0)")
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    results = []
    with kernel_threads(None, 1):
        for row in args.rows.split(","):
            run, message = steps_timer(row, comm, MPI)
            for mode in MODES:
                run(mode, 10)  # warm-up: compilation, first touch
            times = {mode: [] for mode in MODES}
            for _ in range(args.repeats):
                for mode in MODES:
                    times[mode].append(run(mode, args.steps))
            ms = {mode: float(np.median(t)) * 1e3 for mode, t in times.items()}
            results.append({"row": row, "ranks": comm.size, "message_bytes": message,
                            "async_progress": os.environ.get("MPICH_ASYNC_PROGRESS", "0"),
                            **{f"{mode}_ms_per_step": v for mode, v in ms.items()}})
    if comm.rank == 0:
        for r in results:
            c, b, o = (r[f"{m}_ms_per_step"] for m in MODES)
            hidden = (b - o) / (b - c) if b > c else float("nan")
            print(f"{r['row']} ({r['message_bytes'] / 1e6:.2f} MB, async progress "
                  f"{r['async_progress']}): compute {c:.3f} ms, blocking {b:.3f} ms, "
                  f"overlapped {o:.3f} ms per step: {hidden:.0%} of the reduction hidden")
        emit(results, args.json)


if __name__ == "__main__":
    main()
