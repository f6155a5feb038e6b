"""Data-parallel throughput over MPI: one epoch per grid row, run under ``mpiexec``.

    mpiexec -n 1 python -m bench.distributed --rows S,M
    mpiexec -n 2 python -m bench.distributed --rows S,M

Each rank takes an equal share of the row's samples; the global batch is the
grid's. Reports (rank 0, JSON on the last line) per row: the median epoch time
over ``--repeats`` epochs after a warm-up epoch, samples/s, the time per step
spent in the gradient ``Allreduce`` (waiting for the slower rank included),
the compute time per step (the rest), and the reduced message size.
``--threads`` sets each rank's BLAS threads (default: the cores divided by the
ranks).
"""
import argparse
import json
import os
import time

import numpy as np

import fastbp
from fastbp.distributed import DistributedTrainer
from fastbp.optim import SGD

from .grid import GRID, LR, MOMENTUM, make_data


def measure(row, comm, repeats, threads):
    sizes, batch, n = GRID[row]
    X, y = make_data(row)
    shard = np.array_split(np.arange(n), comm.size)[comm.rank]
    X, y = X[shard], y[shard]
    model = fastbp.MLP(sizes, seed=0)
    trainer = DistributedTrainer(model, comm)
    optimizer = SGD(LR, momentum=MOMENTUM)
    trainer.fit(X, y, optimizer=optimizer, epochs=1, batch_size=batch, verbose=0,
                n_jobs=threads)  # warm-up: compilation, first touch
    times, reduce_times, steps = [], [], []
    for _ in range(repeats):
        comm.Barrier()
        r0, c0 = trainer.allreduce_seconds, trainer.allreduce_calls
        start = time.perf_counter()
        trainer.fit(X, y, optimizer=optimizer, epochs=1, batch_size=batch, verbose=0,
                    n_jobs=threads)
        times.append(time.perf_counter() - start)
        reduce_times.append(trainer.allreduce_seconds - r0)
        steps.append(trainer.allreduce_calls - c0)
    epoch = float(np.median(times))
    reduce_per_step = float(np.median(np.array(reduce_times) / np.array(steps)))
    per_step = epoch / steps[0]
    return {"row": row, "ranks": comm.size, "threads_per_rank": threads,
            "epoch_s": epoch, "samples_per_s": n / epoch, "steps": steps[0],
            "step_ms": per_step * 1e3, "allreduce_ms_per_step": reduce_per_step * 1e3,
            "compute_ms_per_step": (per_step - reduce_per_step) * 1e3,
            "message_bytes": (model.n_params + 2) * model.dtype.itemsize}


def emit(results, path=None):
    """The results as JSON on the last line of the output, and in ``path`` if given."""
    print(json.dumps(results))
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=1)


def main(argv=None):
    from mpi4py import MPI
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="S,M")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", help="also write the results here (rank 0)")
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    threads = args.threads or max(1, (os.cpu_count() or 1) // comm.size)
    results = [measure(row, comm, args.repeats, threads) for row in args.rows.split(",")]
    if comm.rank == 0:
        for r in results:
            print(f"{r['row']}: {r['ranks']} rank(s) x {r['threads_per_rank']} thread(s): "
                  f"{r['samples_per_s']:,.0f} samples/s, step {r['step_ms']:.3f} ms "
                  f"(Allreduce {r['allreduce_ms_per_step']:.3f} ms of "
                  f"{r['message_bytes'] / 1e6:.2f} MB)")
        emit(results, args.json)


if __name__ == "__main__":
    main()
