"""``fastbp train DATA --distributed``: one process per MPI rank, each with its own rows.

Run under ``mpiexec -n P fastbp train DATA --distributed ...``. The rows are
split into P shards: an ``.npz`` in contiguous row blocks that each rank reads
alone (memory-mapped, or a compressed member decompressed as a stream; see
``fastbp.cli.npz_rows.load_rows``), so no rank holds the whole file; a CSV, an
embedded or a synthetic data set is small enough to read whole, and is
shuffled (with ``--seed``) before the split. Each rank holds out
``--test-fraction`` of its shard for testing; rank 0 also holds out
``--val-fraction`` of its training rows for validation and early stopping.

Everything the single-process command computes from the whole data set is
computed from sums over the ranks: the class list, the standardisation of the
features and of a regression target, the default batch and the test scores,
so the saved model is used exactly like one trained in one process. Only rank
0 prints and writes files.

A user mistake found on any rank (a shard with NaN, too few rows, ...) is
agreed on before any rank goes on, so every rank exits with status 2 and rank
0 prints one line naming the rank, instead of the others waiting for it.

The steps it shares with the single-process command are in
:mod:`fastbp.cli.train_common`.
"""
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..distributed import DEFAULT_TIMEOUT, Watchdog, ranks_problems
from .data import (MAX_CLASSES_INFERRED, check_finite, check_npz_arrays, decide_task,
                   encode_targets, load_data, table_options, target_facts)
from .errors import CLIError
from .npz_rows import array_header, load_rows
from .scaling import fit_target, moments, standardised
from .train_common import (default_batch_size, epoch_callbacks, finish, interrupted,
                           new_model, test_sums, test_summary, train_options)

__all__ = ["train_distributed"]


def _world():
    from .._optional import require
    try:
        return require("mpi4py.MPI", "fastbp train --distributed", "mpi").COMM_WORLD
    except ImportError as exc:
        raise CLIError(str(exc)) from None


class _Ranks:
    """The command's collective calls, each watched: a rank that died or hangs aborts the
    job with a message after ``timeout`` seconds instead of leaving the others waiting."""

    def __init__(self, comm, timeout=DEFAULT_TIMEOUT):
        from mpi4py import MPI
        self.comm, self.MPI = comm, MPI
        self.rank, self.size = comm.rank, comm.size
        self.watchdog = Watchdog(comm, timeout)

    def allgather(self, value, what):
        with self.watchdog.waiting(what):
            return self.comm.allgather(value)

    def total(self, values, what="summing over the ranks"):
        """Element-wise sums of ``values`` over the ranks (float64)."""
        values = np.array(values, dtype=float)
        with self.watchdog.waiting(what):
            self.comm.Allreduce(self.MPI.IN_PLACE, values, op=self.MPI.SUM)
        return values

    def threads_per_rank(self):
        """The cores of this machine shared among the ranks running on it."""
        with self.watchdog.waiting("counting the ranks on each machine"):
            on_this_machine = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED).size
        return max(1, len(os.sched_getaffinity(0)) // on_this_machine)

    def agreed(self, local, what):
        """Run ``local()`` on every rank; if it failed on any rank, fail on every rank.

        Everything that depends on a rank's own rows runs through here: a rank
        that raised alone would leave the others waiting in their next collective.
        """
        try:
            result, problem = local(), None
        except (CLIError, ValueError) as exc:
            result, problem = None, str(exc)
        except Exception as exc:  # e.g. an OSError reading this rank's rows
            result, problem = None, f"{type(exc).__name__}: {exc}"
        message = ranks_problems(self.allgather(problem, what))
        if message:
            raise CLIError(message)
        return result


def _shard(args, synthetic, rank, size):
    """``(X, y, features)``: this rank's rows."""
    path = Path(args.data)
    if synthetic is None and path.suffix == ".npz" and path.exists():
        import zipfile
        if args.target is not None:
            raise CLIError(f"--target names a column of a CSV or Parquet file; {args.data} "
                           "is neither")
        try:
            with zipfile.ZipFile(path) as archive:
                arrays = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
            if "X" not in arrays or "y" not in arrays:
                raise CLIError(f"{args.data}: an .npz needs arrays 'X' and 'y', found "
                               f"{', '.join(arrays) or 'none'}")
            x_shape, x_dtype, _, _ = array_header(path, "X")
            y_shape = array_header(path, "y")[0]
        except (CLIError, ValueError):
            raise
        except Exception as exc:
            raise CLIError(f"{args.data}: cannot read the .npz ({exc})") from None
        check_npz_arrays(args.data, x_shape, x_dtype, y_shape)
        n = x_shape[0]
        first, stop = n * rank // size, n * (rank + 1) // size
        X = load_rows(path, "X", first, stop).astype(float)
        return X, load_rows(path, "y", first, stop), None
    X, y, features = load_data(args.data, args.target, synthetic, args.seed,
                               **table_options(args, notes=rank == 0))
    order = np.random.default_rng(args.seed).permutation(len(X))
    mine = order[len(X) * rank // size:len(X) * (rank + 1) // size]
    return X[mine], y[mine], features


def _split(args, X, targets, classification, rank):
    """This rank's ``(X_train, X_test, y_train, y_test)``, stratified where the shard allows."""
    from sklearn.model_selection import train_test_split
    if len(X) < 2:
        raise CLIError(f"its shard has {len(X)} row(s); each rank needs at least 2 "
                       "(one to train on, one to test)")
    split = dict(test_size=args.test_fraction, random_state=args.seed + rank)
    try:
        return train_test_split(X, targets, stratify=targets if classification else None,
                                **split)
    except ValueError:  # a class with a single row in this shard
        return train_test_split(X, targets, **split)


def _hold_out_validation(args, X, y):
    """Rank 0's ``(X_fit, y_fit, validation_data)``."""
    if not args.val_fraction:
        return X, y, None
    n_val = int(round(args.val_fraction * len(X)))
    if not 1 <= n_val < len(X):
        raise CLIError(f"--val-fraction {args.val_fraction} leaves {n_val} of rank 0's "
                       f"{len(X)} training rows for validation; need at least one on each side")
    order = np.random.default_rng(args.seed).permutation(len(X))
    return X[order[n_val:]], y[order[n_val:]], (X[order[:n_val]], y[order[:n_val]])


def train_distributed(args):
    comm = _world()
    try:
        return _train(args, comm)
    except (CLIError, ValueError) as exc:
        if comm.rank:  # every rank fails alike; rank 0 says it
            raise CLIError(str(exc), quiet=True) from None
        raise


def _train(args, comm):
    ranks = _Ranks(comm)
    rank, size = ranks.rank, ranks.size
    synthetic, hidden = ranks.agreed(lambda: train_options(args), "checking the options")
    if args.batch_size is not None and args.batch_size < size:
        raise CLIError(f"--batch-size {args.batch_size} is smaller than the {size} ranks: "
                       "every rank needs at least one row per step")

    def load():
        X, y, features = _shard(args, synthetic, rank, size)
        numbers, integral = target_facts(y)
        check_finite(args.data, X, numbers)
        return X, y, features, numbers, integral

    X, y, features, numbers, integral = ranks.agreed(load, "reading the data")
    # the task and the class list from every rank's targets
    # (more distinct values than a classification may have are not needed to decide)
    facts = ranks.allgather((numbers is not None, integral, X.shape[1],
                             np.unique(y if numbers is None else numbers)
                             [:MAX_CLASSES_INFERRED + 1]), "comparing the targets")
    if len({f[2] for f in facts}) > 1:
        raise CLIError(f"{args.data}: the ranks read different numbers of features")
    numeric, integral = all(f[0] for f in facts), all(f[1] for f in facts)
    distinct = np.unique(np.concatenate([f[3] for f in facts]))
    task = decide_task(args.task, numeric, integral, len(distinct))
    classes = None
    if task == "classification":
        classes = np.unique(np.concatenate(ranks.allgather(np.unique(y), "listing the classes")))

    def split():
        targets = encode_targets(args.data, y, numbers, task, classes)
        X_train, X_test, y_train, y_test = _split(args, X, targets, classes is not None, rank)
        fit = _hold_out_validation(args, X_train, y_train) if rank == 0 else \
            (X_train, y_train, None)
        return X_train, X_test, y_train, y_test, fit

    X_train, X_test, y_train, y_test, (X_fit, y_fit, validation) = ranks.agreed(
        split, "splitting the data")
    model, optimizer = new_model(
        args, X.shape[1], hidden, classes, moments(X_train, ranks.total),
        None if classes is not None else moments(y_train, ranks.total))
    model.feature_names_ = features
    n_train, n_test, n_fit = ranks.total([len(X_train), len(X_test), len(X_fit)]).astype(int)
    shard_sizes = ranks.allgather(len(X), "counting the rows")
    n_jobs = args.n_jobs if args.n_jobs is not None else ranks.threads_per_rank()
    if rank == 0:
        print(f"{model}\n{task}: {n_train} training / {n_test} test samples"
              + (f", {len(classes)} classes" if classes is not None else "")
              + f"; {size} ranks with {min(shard_sizes)}–{max(shard_sizes)} rows each, "
              f"{n_jobs} thread(s) per rank", flush=True)
    if validation is not None:
        validation = (standardised(model, validation[0]),
                      fit_target(model, validation[1]))
    callbacks = epoch_callbacks(args) if rank == 0 else []
    start = time.perf_counter()
    try:
        history = model.fit(standardised(model, X_fit), fit_target(model, y_fit),
                            optimizer=optimizer, epochs=args.epochs,
                            batch_size=default_batch_size(args, n_fit, at_least=size),
                            validation_data=validation, patience=args.patience,
                            verbose=2 if rank == 0 else 0, n_jobs=n_jobs, comm=comm,
                            callbacks=callbacks)
    except KeyboardInterrupt:  # every rank stops at the same epoch
        return interrupted(model, args, save=rank == 0)
    elapsed = time.perf_counter() - start
    sums = ranks.total(ranks.agreed(
        lambda: test_sums(model, standardised(model, X_test), y_test), "testing"))
    status = 0
    if rank == 0:
        status = finish(args, model, history, elapsed, test_summary(sums, classes is not None),
                        detail=f" on {size} ranks", callbacks=callbacks)
    sys.stdout.flush()
    return status
