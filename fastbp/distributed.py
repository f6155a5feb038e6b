"""Synchronous data-parallel training over MPI (the optional ``mpi`` extra: mpi4py).

Every rank holds a model with the same architecture and its own shard of the
training rows. A global minibatch of ``batch_size`` rows is the union of one
local batch per rank (``batch_size // n_ranks`` rows each, the remainder to the
first ranks). For every step each rank computes the *summed* loss and gradient
of its local batch (``forward_backward`` with ``norm = 1`` and no L2), one
``Allreduce`` adds the flat gradient buffer, the loss and the batch weight
over the ranks, and every rank turns the sum into the batch mean
(``finish_summed_step``) and applies the identical optimizer update. The
weights therefore stay identical on every rank without being sent again.

Rank 0's initial weights are broadcast at the start; validation, early
stopping, callbacks (checkpoints) and progress output happen on rank 0, and
its decisions are broadcast once per epoch. A collective that waits longer
than ``timeout`` seconds (a rank died or hangs) aborts the job with a message
instead of hanging forever.
"""
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np

from . import specialize
from ._guard import BestWeights, GuardedEpochs, deferred_interrupt
from ._optional import require
from ._threads import kernel_threads, parts_for
from .history import History
from .kernels.losses import batch_weight
from .kernels.network import finish_summed_step, gather_rows

DEFAULT_TIMEOUT = 600.0


def _mpi():
    return require("mpi4py.MPI", "distributed training", "mpi")


class _Watchdog:
    """Aborts the MPI job when a collective call waits longer than ``timeout`` seconds."""

    def __init__(self, comm, timeout):
        self.comm, self.timeout = comm, float(timeout)
        self._since, self._what = None, ""
        thread = threading.Thread(target=self._watch, name="fastbp-mpi-watchdog", daemon=True)
        thread.start()

    def _watch(self):
        while True:
            time.sleep(min(1.0, self.timeout / 10))
            since = self._since
            if since is not None and time.monotonic() - since > self.timeout:
                print(f"fastbp.distributed: rank {self.comm.rank}: {self._what} waited more "
                      f"than {self.timeout:g} s for the other ranks (one died or hangs); "
                      "aborting the job", file=sys.stderr, flush=True)
                time.sleep(1.0)  # let the launcher forward the message before the kill
                self.comm.Abort(1)

    @contextmanager
    def waiting(self, what):
        self._since, self._what = time.monotonic(), what
        try:
            yield
        finally:
            self._since = None


def ranks_problems(problems):
    """The ranks' problems (None where a rank had none) as one message, or None.

    Each is named with its rank; the same problem on every rank is named once.
    """
    failed = [(r, p) for r, p in enumerate(problems) if p is not None]
    if not failed:
        return None
    if len(failed) == len(problems) and len(set(problems)) == 1:
        return failed[0][1]
    return "; ".join(f"rank {r}: {p}" for r, p in failed)


class DistributedTrainer:
    """Train ``model`` on every rank of ``comm``, each rank with its own rows.

    Parameters
    ----------
    model : fastbp.MLP
        The same architecture on every rank (checked); rank 0's weights are
        copied to the others.
    comm : mpi4py communicator, default ``MPI.COMM_WORLD``
    timeout : float, default 600
        Seconds a collective may wait before the job is aborted with a message.

    Attributes
    ----------
    allreduce_seconds, allreduce_calls : float, int
        Time spent in (and number of) the per-step gradient reductions, waiting
        for slower ranks included.
    """

    def __init__(self, model, comm=None, timeout=DEFAULT_TIMEOUT):
        MPI = _mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.model = model
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.watchdog = _Watchdog(self.comm, timeout)
        # time spent in the per-step gradient reductions (waiting for slower ranks included)
        self.allreduce_seconds, self.allreduce_calls = 0.0, 0
        self._check_same_architecture()
        with self.watchdog.waiting("broadcasting the initial weights"):
            self.comm.Bcast(model.params, root=0)

    @property
    def rank(self):
        return self.comm.rank

    def _check_same_architecture(self):
        mine = (repr(self.model), self.model.activation, self.model.output,
                self.model._gammas.tolist())
        with self.watchdog.waiting("comparing the architectures"):
            everyone = self.comm.allgather(mine)
        differ = [r for r, theirs in enumerate(everyone) if theirs != everyone[0]]
        if differ:
            raise ValueError(f"the ranks disagree on the model: rank 0 has {everyone[0][0]}, "
                             f"rank {differ[0]} has {everyone[differ[0]][0]}")

    def _allreduce(self, buffer, what):
        start = time.perf_counter()
        with self.watchdog.waiting(what):
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        self.allreduce_seconds += time.perf_counter() - start
        self.allreduce_calls += 1

    def _bcast(self, value, what):
        with self.watchdog.waiting(what):
            return self.comm.bcast(value, root=0)

    def fit(self, X, y, optimizer=None, epochs=10, batch_size=32, shuffle=True,
            validation_data=None, patience=None, restore_best=True, callbacks=(), verbose=1,
            n_jobs=None):
        """Train on this rank's rows ``(X, y)`` together with the other ranks.

        Call it on every rank with the same arguments except the data.
        ``batch_size`` is the *global* batch (at least one row per rank);
        ``validation_data``, ``callbacks`` and ``verbose`` matter on rank 0
        only. Each rank's shard may have its own size; an epoch has as many
        steps as the largest shard needs, and a rank whose rows are used up
        contributes none to the remaining steps. Returns the ``History``
        (identical on every rank). See ``MLP.fit`` for the other parameters.
        """
        model, comm = self.model, self.comm
        # every rank checks its input, then all learn of any failure: a rank that raised
        # alone would leave the others waiting in the first collective
        try:
            X, Y, optimizer, epochs, batch_size, patience, verbose, callbacks = \
                model._check_fit(X, y, optimizer, epochs, batch_size, patience, verbose,
                                 shuffle, restore_best, callbacks)
            val = None
            if self.rank == 0 and validation_data is not None:
                val = (model._check_X(validation_data[0], "X_val"),)
                val += (model._check_targets(validation_data[1], val[0].shape[0], "y_val"),)
            blas_threads = parts_for(n_jobs)  # fixed by the settings, as the reduction order
            problem = None
        except (ValueError, TypeError) as exc:
            problem = (type(exc).__name__, str(exc))
        with self.watchdog.waiting("checking the inputs"):
            problems = comm.allgather(problem)
        if problem is not None and len(set(problems)) == 1:
            kind, message = problem  # the same mistake on every rank: as in one process
            raise (TypeError if kind == "TypeError" else ValueError)(message)
        message = ranks_problems([p and f"{p[0]}: {p[1]}" for p in problems])
        if message:
            raise ValueError(message)
        with self.watchdog.waiting("exchanging the shard sizes"):
            sizes = comm.allgather(X.shape[0])
        n_ranks = comm.size
        if batch_size < n_ranks:
            raise ValueError(f"batch_size={batch_size} is smaller than the {n_ranks} ranks: "
                             "every rank needs at least one row per step")
        if patience is not None and self._bcast(val is None, "checking validation data"):
            raise ValueError("patience needs validation_data on rank 0")
        local = [batch_size // n_ranks + (r < batch_size % n_ranks) for r in range(n_ranks)]
        mine = local[self.rank]
        n_steps = max(-(-n // b) for n, b in zip(sizes, local))

        if (optimizer is not model._optimizer or model._opt_state is None
                or model._opt_state.buffers.shape[0] != optimizer.n_buffers):
            model._optimizer = optimizer
            model._opt_state = optimizer.init(model.params, n_decay=model.n_coefs)
        state = model._opt_state
        layout, dtype = model._layout, model.dtype
        n_params = model.n_params
        summed = np.empty(n_params + 2, dtype=dtype)  # gradient, loss, weight: one reduction
        grads = summed[:n_params]
        x_batch = np.empty(mine * X.shape[1], dtype=dtype)
        y_batch = np.empty(mine * Y.shape[1], dtype=dtype)
        acts, zs, deltas = layout.workspace(mine, dtype)
        n_out = model.layer_sizes[-1]
        perm = np.arange(X.shape[0])
        net = model._net(optimizer)
        forward_backward = specialize.entry("forward_backward", dtype)
        apply_update = specialize.entry("apply_update", dtype)

        def run_range(first, stop):
            hyper = optimizer.hyper()
            total = weight = 0.0
            for s in range(first, stop):
                rows = perm[s * mine:(s + 1) * mine]
                if rows.shape[0]:
                    xb, yb = gather_rows(X, Y, rows, 0, rows.shape[0], x_batch, y_batch)
                    summed[n_params] = forward_backward(
                        net, xb, yb, model.params, grads, layout.layers, model._gammas, 0.0, 0.0,
                        1.0, acts, zs, deltas)
                    summed[n_params + 1] = batch_weight(yb, n_out)
                else:
                    summed[:] = 0
                self._allreduce(summed, "the gradient reduction")
                step_weight = float(summed[n_params + 1])
                loss = finish_summed_step(summed, model.params, model.n_coefs, optimizer.l2, 0.0)
                if not np.isfinite(loss):
                    return np.nan  # before this step's update, as the epoch kernels
                apply_update(net, model.params, grads, state.buffers, hyper,
                             state.step + (s - first) + 1, state.n_decay)
                total += loss * step_weight
                weight += step_weight
            return total / weight

        guard = GuardedEpochs(None, model.params, state)
        history = History("accuracy" if model.is_classifier else "r2")
        model.history_ = history
        best_loss, waited = np.inf, 0
        best = BestWeights(model.params, restore_best)
        talk = self.rank == 0 and verbose >= 2
        with best.ending(history), kernel_threads(None, blas_threads), \
                deferred_interrupt(quiet=self.rank != 0) as interrupt:
            for epoch in range(epochs):
                start = time.perf_counter()
                if shuffle:
                    perm = model._rng.permutation(X.shape[0])
                loss, failed = guard.run_steps(n_steps, run_range)
                if failed is not None:
                    history.stopped_early, history.stop_reason = True, "diverged"
                    if self.rank == 0:
                        import warnings
                        warnings.warn(f"training diverged at step {failed + 1} of epoch "
                                      f"{epoch + 1}; the model keeps the parameters from "
                                      "before that step", RuntimeWarning, stacklevel=2)
                    break
                logs = {"loss": float(loss)}
                decision = None
                if self.rank == 0:
                    improved = stop = False
                    if val is not None:
                        scores = model._evaluate(*val)
                        logs["val_loss"] = scores["loss"]
                        logs[f"val_{history.metric_name}"] = scores[history.metric_name]
                        improved = scores["loss"] < best_loss
                    history_logs = dict(logs)
                    if any(cb(epoch, history_logs, model) is True for cb in callbacks):
                        stop = "callback"
                    decision = (logs, improved, stop)
                logs, improved, stop = self._bcast(decision, "the epoch's decisions")
                history.loss.append(logs["loss"])
                if "val_loss" in logs:
                    history.val_loss.append(logs["val_loss"])
                    history.val_metric.append(logs[f"val_{history.metric_name}"])
                    if improved:
                        best_loss, waited, history.best_epoch = logs["val_loss"], 0, epoch
                        best.keep()
                    else:
                        waited += 1
                history.epoch_time.append(time.perf_counter() - start)
                if talk:
                    fields = " ".join(f"{k}={v:.4g}" for k, v in logs.items())
                    rate = sum(sizes) / history.epoch_time[-1]
                    print(f"epoch {epoch + 1}/{epochs} {fields} ({rate:,.0f} samples/s, "
                          f"{n_ranks} ranks)", flush=True)
                if patience is not None and waited >= patience:
                    history.stopped_early, history.stop_reason = True, "patience"
                    break
                if stop:
                    history.stopped_early, history.stop_reason = True, stop
                    break
                with self.watchdog.waiting("agreeing on an interrupt"):
                    anyone = comm.allreduce(int(interrupt.pending), op=self.MPI.MAX)
                if anyone:  # every rank stops at the same epoch
                    raise KeyboardInterrupt
            if interrupt.pending:  # after the last collective: this rank alone may stop
                raise KeyboardInterrupt
        return history
