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
import contextlib
import typing

import numpy.typing as npt

from . import _optional, _threads
from . import training as _training

if typing.TYPE_CHECKING:
    from .history import History

__all__ = ["DEFAULT_TIMEOUT", "DistributedTrainer", "Watchdog", "ranks_problems"]

DEFAULT_TIMEOUT = 600.0


class Watchdog:
    """Aborts the MPI job when a collective call waits longer than ``timeout`` seconds."""

    def __init__(self, comm: typing.Any, timeout: float) -> None:
        self.comm, self.timeout = comm, float(timeout)
        self._since: float | None = None
        self._what = ""
        thread = threading.Thread(target=self._watch, name="fastbp-mpi-watchdog", daemon=True)
        thread.start()

    def _watch(self) -> None:
        while True:
            time.sleep(min(1.0, self.timeout / 10))
            since = self._since
            if since is not None and time.monotonic() - since > self.timeout:
                print(f"fastbp.distributed: rank {self.comm.rank}: {self._what} waited more "
                      f"than {self.timeout:g} s for the other ranks (one died or hangs); "
                      "aborting the job", file=sys.stderr, flush=True)
                time.sleep(1.0)  # let the launcher forward the message before the kill
                self.comm.Abort(1)

    @contextlib.contextmanager
    def waiting(self, what: str) -> typing.Iterator[None]:
        self._since, self._what = time.monotonic(), what
        try:
            yield
        finally:
            self._since = None


def ranks_problems(problems: typing.Sequence[str | None]) -> str | None:
    """The ranks' problems (None where a rank had none) as one message, or None.

    Each is named with its rank; the same problem on every rank is named once.
    """
    failed = [(r, p) for r, p in enumerate(problems) if p is not None]
    if not failed:
        return None
    if len(failed) == len(problems) and len(set(problems)) == 1:
        return failed[0][1]
    return "; ".join(f"rank {r}: {p}" for r, p in failed)


class DistributedTrainer(_training.Coordinator):
    """Train ``model`` on every rank of ``comm``, each rank with its own rows.

    The epochs run in ``fastbp.training.fit_loop`` like any fit; this class
    adds what ranks need: the per-step allreduce of ``SummedSteps``, the
    agreement on bad input, and rank 0's decisions sent to every rank.

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

    def __init__(self, model: typing.Any, comm: typing.Any = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.MPI = _optional.require("mpi4py.MPI", "distributed training", "mpi")
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.model = model
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.watchdog = Watchdog(self.comm, timeout)
        self.allreduce_seconds, self.allreduce_calls = 0.0, 0
        self.is_root = self.comm.rank == 0
        self.sizes: list[int] | None = None
        mine = repr(model), model.activation, model.output, model.network.gammas.tolist()
        with self.watchdog.waiting("comparing the architectures"):
            everyone = self.comm.allgather(mine)
        differ = [r for r, theirs in enumerate(everyone) if theirs != everyone[0]]
        if differ:
            raise ValueError(f"the ranks disagree on the model: rank 0 has {everyone[0][0]}, "
                             f"rank {differ[0]} has {everyone[differ[0]][0]}")
        with self.watchdog.waiting("broadcasting the initial weights"):
            self.comm.Bcast(model.params, root=0)

    @property
    def rank(self) -> int:
        return self.comm.rank

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike, **settings: typing.Any) -> "History":
        """Train on this rank's rows ``(X, y)`` together with the other ranks.

        Call it on every rank with the same arguments except the data; the
        settings are those of ``MLP.fit`` (``optimizer``, ``epochs``,
        ``batch_size``, ``shuffle``, ``validation_data``, ``patience``,
        ``restore_best``, ``callbacks``, ``verbose``, ``n_jobs``).
        ``batch_size`` is the *global* batch (at least one row per rank);
        ``validation_data``, ``callbacks`` and ``verbose`` matter on rank 0
        only. Each rank's shard may have its own size; an epoch has as many
        steps as the largest shard needs, and a rank whose rows are used up
        contributes none to the remaining steps. Returns the ``History``
        (identical on every rank).
        """
        return self.model.fit(X, y, comm=self, **settings)

    # ------------------------------------------------------------ the plan of a fit
    def plan(self, network, X, y, optimizer, epochs, batch_size, shuffle, validation_data,
             patience, restore_best, callbacks, verbose, n_jobs):
        """The checks of ``MLP.fit`` on every rank, agreed on; a ``FitPlan`` of ``SummedSteps``."""
        # every rank checks its input, then all learn of any failure: a rank that raised
        # alone would leave the others waiting in the first collective
        try:
            X, Y, optimizer, epochs, batch_size, patience, verbose, callbacks = _training.check_fit(
                network, X, y, optimizer, epochs, batch_size, patience, verbose, shuffle,
                restore_best, callbacks)
            val = None
            if self.is_root and validation_data is not None:
                X_val = network.check_X(validation_data[0], "X_val")
                val = X_val, network.check_targets(validation_data[1], X_val.shape[0], "y_val")
            problem = None
        except (ValueError, TypeError) as exc:
            problem = (type(exc).__name__, str(exc))
        with self.watchdog.waiting("checking the inputs"):
            problems = self.comm.allgather(problem)
        if problem is not None and len(set(problems)) == 1:
            kind, message = problem  # the same mistake on every rank: as in one process
            raise (TypeError if kind == "TypeError" else ValueError)(message)
        message = ranks_problems([p and f"{p[0]}: {p[1]}" for p in problems])
        if message:
            raise ValueError(message)
        with self.watchdog.waiting("exchanging the shard sizes"):
            self.sizes = self.comm.allgather(X.shape[0])
        n_ranks = self.comm.size
        if batch_size < n_ranks:
            raise ValueError(f"batch_size={batch_size} is smaller than the {n_ranks} ranks: "
                             "every rank needs at least one row per step")
        has_validation = self.on_root(lambda: val is not None)
        if patience is not None and not has_validation:
            raise ValueError("patience needs validation_data on rank 0")
        local = [batch_size // n_ranks + (r < batch_size % n_ranks) for r in range(n_ranks)]
        n_steps = max(-(-n // b) for n, b in zip(self.sizes, local))

        def make_steps(X, Y, optimizer, state):
            return _training.SummedSteps(network, X, Y, optimizer, state, local[self.rank], n_steps,
                               self.allreduce)
        # BLAS threads fixed by the settings, as the reduction order
        return _training.FitPlan(X, Y, optimizer, epochs, patience, verbose if self.is_root else 0,
                       callbacks, val, 0, has_validation, make_steps,
                       (None, _threads.parts_for(n_jobs)), None)

    # ------------------------------------------------------------ the collectives
    def allreduce(self, buffer):
        """Sum ``buffer`` over the ranks in place (the per-step hook of ``SummedSteps``)."""
        start = time.perf_counter()
        with self.watchdog.waiting("the gradient reduction"):
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        self.allreduce_seconds += time.perf_counter() - start
        self.allreduce_calls += 1

    def on_root(self, compute):
        with self.watchdog.waiting("the epoch's decisions"):
            return self.comm.bcast(compute() if self.is_root else None, root=0)

    def any(self, flag):
        with self.watchdog.waiting("agreeing on an interrupt"):
            return bool(self.comm.allreduce(int(flag), op=self.MPI.MAX))

    def total_rows(self, n):
        return sum(self.sizes)

    def describe(self):
        return f", {self.comm.size} ranks"
