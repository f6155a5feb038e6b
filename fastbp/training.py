"""One training loop for every fit: the native ``MLP``, the scikit-learn estimators and
data-parallel training over MPI.

``fit_loop`` runs the epochs: it draws each epoch's order, runs the epoch's
steps under the divergence guard, hands the epoch's loss to the caller's
``end_epoch`` (history, validation, early stopping, callbacks: what differs
between the APIs), shows progress, and stops at a safe point on Ctrl-C. The
steps themselves come from one of two runners:

``KernelEpochs``
    a whole epoch (or a range of its steps) in one call of the epoch kernel of
    the chosen strategy, workspaces allocated once per fit;
``SummedSteps``
    step by step from Python: each step's *summed* loss and gradient pass
    through ``reduce`` (the per-step hook; data-parallel training adds its
    allreduce there) before the mean and the update.

A ``Coordinator`` says how the processes of one fit agree; ``ALONE`` is the
one-process case, ``fastbp.distributed.DistributedTrainer`` the MPI one.
"""
import sys
import time
import warnings
from numbers import Real
from typing import Callable, NamedTuple, Optional

import numpy as np
from tqdm.auto import tqdm

from . import specialize
from ._guard import BestWeights, deferred_interrupt
from ._threads import kernel_threads, parts_for, threads_for
from ._validation import check_fraction, check_int
from .kernels import records as R
from .kernels.losses import batch_weight
from .kernels.network import finish_summed_step, gather_rows
from .memory import check_fits
from .network import (CLASSIFIER_METRICS, PREDICT_CHUNK, REGRESSION_METRICS,
                      check_sample_weight)
from .optim import Adam, Optimizer
from .strategy import ENTRY, SLOTS, check_strategy, thread_counts, unit_bounds
from .tuning import resolve

__all__ = ["ALONE", "Coordinator", "DivergenceError", "EpochRecord", "FitPlan", "KernelEpochs",
           "Progress", "SummedSteps", "check_fit", "check_l2", "check_metrics", "plan_fit",
           "fit_bytes", "fit_loop", "interactive"]


class DivergenceError(FloatingPointError):
    """Training stopped because a step's loss, weights or optimizer state were not finite.

    Raised by ``MLP.fit(..., on_divergence='raise')``; the model keeps the
    parameters from before the failing step.
    """


# ---------------------------------------------------------------- checks and memory
def check_fit(network, X, y, optimizer, epochs, batch_size, patience, verbose, shuffle,
              restore_best, callbacks):
    """The checks every native fit makes before anything changes; returns the checked
    ``(X, Y, optimizer, epochs, batch_size, patience, verbose, callbacks)``."""
    X = network.check_X(X)
    Y = network.check_targets(y, X.shape[0])
    optimizer = Adam() if optimizer is None else optimizer
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer must be a fastbp.optim optimizer, got {optimizer!r}")
    epochs = check_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")
    patience = check_int(patience, "patience", allow_none=True)
    verbose = check_int(verbose, "verbose", low=0)
    for flag, name in ((shuffle, "shuffle"), (restore_best, "restore_best")):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"{name} must be a bool, got {flag!r}")
    if callbacks is None or isinstance(callbacks, str) or not hasattr(callbacks, "__iter__"):
        raise ValueError(f"callbacks must be a sequence of callables, got {callbacks!r}")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise ValueError(f"callbacks must be callables, got {cb!r}")
    return X, Y, optimizer, epochs, batch_size, patience, verbose, callbacks


def fit_bytes(n_params, units, n_outputs, itemsize, n_rows, row_width, batch_size, parts,
              n_state, n_vectors=0, n_val=0, n_copied=0):
    """An upper estimate of the bytes a fit allocates (its inputs already exist).

    Parameter-sized (``n_params``): the gradient, the optimizer state
    (``n_state`` buffers), the guard's copies of both, the packed copies of the
    columns strategy or the shards' gradients, plus ``n_vectors`` more the
    caller keeps. Batch-sized: the gathered rows (``row_width`` values each)
    and three workspace blocks of ``units`` values a row, one set per part.
    ``n_val`` validation rows: their copies, outputs and evaluation workspace;
    ``n_copied`` training rows copied out of the inputs (a validation split).
    """
    vectors = 1 + 2 * n_state + 1 + max(1 + n_state, parts) + n_vectors
    rows = batch_size * (row_width + 3 * units) * (1 + parts)
    val = n_copied * row_width
    if n_val:
        val += n_val * (row_width + n_outputs) * 2 + min(n_val, PREDICT_CHUNK) * 3 * units
    return itemsize * (n_params * vectors + rows + val) + 8 * n_rows


def check_metrics(network, metrics):
    """The names in ``metrics`` (None: none) as a tuple without repeats; each must be a
    score ``network.evaluate`` gives for this kind of model."""
    if metrics is None:
        return ()
    offered = network.metric_names
    if isinstance(metrics, str) or not hasattr(metrics, "__iter__"):
        raise ValueError(f"metrics must be a sequence of names among {list(offered)}, "
                         f"got {metrics!r}")
    names = []
    for name in metrics:
        if name not in offered:
            kind = ("classification" if name in CLASSIFIER_METRICS else
                    "regression" if name in REGRESSION_METRICS else None)
            if kind is None:
                raise ValueError(f"unknown metric {name!r}; this model offers {list(offered)}")
            raise ValueError(f"{name!r} is a {kind} metric, and this model's loss is "
                             f"{network.loss!r}: it offers {list(offered)}")
        if name not in names:
            names.append(name)
    return tuple(names)


class FitPlan(NamedTuple):
    """What the checks of a native fit hand to it (``MLP.fit``): the checked arguments,
    the validation pair or triple (or ``n_split`` rows to draw from X for it), how to
    make the epoch's steps and with how many threads, and the training rows' weights
    (``Y`` has no column of them yet: the caller adds it after any split)."""
    X: np.ndarray
    Y: np.ndarray
    optimizer: Optimizer
    epochs: int
    patience: Optional[int]
    verbose: int
    callbacks: list
    validation: Optional[tuple]
    n_split: int
    has_validation: bool
    make_steps: Callable  # (X, Y, optimizer, state) -> steps
    threads: tuple
    strategy: Optional[str]
    sample_weight: Optional[np.ndarray] = None


def plan_fit(network, X, y, optimizer, epochs, batch_size, shuffle, validation_data,
             validation_fraction, patience, restore_best, callbacks, verbose, n_jobs, strategy,
             on_divergence, sample_weight=None, weight_name="sample_weight"):
    """Every check of a one-process ``MLP.fit``, before anything changes: a ``FitPlan``
    whose steps are the epoch kernels of the strategy chosen for the network.

    ``validation_data`` may carry the validation rows' weights as a third item;
    ``weight_name`` names ``sample_weight`` in messages.
    """
    X, Y, optimizer, epochs, batch_size, patience, verbose, callbacks = check_fit(
        network, X, y, optimizer, epochs, batch_size, patience, verbose, shuffle,
        restore_best, callbacks)
    if sample_weight is not None:
        sample_weight = check_sample_weight(sample_weight, X.shape[0], network.dtype,
                                            weight_name)
    if validation_data is not None and validation_fraction is not None:
        raise ValueError("give validation_data or validation_fraction, not both")
    validation, n_val, n_split = None, 0, 0
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a pair (X_val, y_val) or a triple "
                             "(X_val, y_val, sample_weight_val)")
        X_val = network.check_X(validation_data[0], "X_val")
        validation = (X_val, network.check_targets(validation_data[1], X_val.shape[0],
                                                   "y_val"))
        if len(validation_data) == 3 and validation_data[2] is not None:
            validation += (check_sample_weight(validation_data[2], X_val.shape[0],
                                               network.dtype, "sample_weight_val"),)
        n_val = X_val.shape[0]
    elif validation_fraction is not None:
        fraction = check_fraction(validation_fraction, "validation_fraction")
        n_val = n_split = int(round(fraction * X.shape[0]))
        if n_val < 1 or n_val >= X.shape[0]:
            raise ValueError(f"validation_fraction={fraction} leaves {n_val} of "
                             f"{X.shape[0]} samples for validation; need at least one "
                             "sample on each side")
    if patience is not None and not n_val:
        raise ValueError("patience needs validation_data or validation_fraction")
    parts = parts_for(n_jobs)
    strategy = check_strategy(strategy)
    if on_divergence not in ("warn", "raise"):
        raise ValueError(f"on_divergence must be 'warn' or 'raise', got {on_divergence!r}")
    weighted = sample_weight is not None
    width = X.shape[1] + Y.shape[1] + int(weighted)
    check_fits(fit_bytes(network.n_params, network.layout.total_units, network.layer_sizes[-1],
                         network.dtype.itemsize, X.shape[0], width,
                         min(batch_size, X.shape[0]), parts, optimizer.n_buffers,
                         n_vectors=1 if n_val else 0, n_val=n_val,
                         # weighted rows are copied too (the weight column, rows of weight 0)
                         n_copied=X.shape[0] - n_split if n_split or weighted else 0),
               f"fitting {network.describe()} on {X.shape[0]:,} rows")
    batch_size = min(batch_size, X.shape[0] - n_split)
    strategy = resolve(strategy, network.layout, batch_size, parts, network.dtype,
                       steps=epochs * -(-(X.shape[0] - n_split) // batch_size))

    def make_steps(X, Y, optimizer, state):
        return KernelEpochs(network, X, Y, optimizer, state, batch_size, strategy, parts)
    return FitPlan(X, Y, optimizer, epochs, patience, verbose, callbacks, validation,
                   n_split, n_val > 0, make_steps,
                   thread_counts(strategy, parts, threads_for(n_jobs, parts)), strategy,
                   sample_weight)


# ---------------------------------------------------------------- the steps of an epoch
class KernelEpochs:
    """Steps run by the epoch kernel of ``strategy``, workspaces allocated once.

    ``Y`` may carry a last column of sample weights; ``l2_per_weight`` adds
    ``l2_per_weight / (batch weight)`` to the optimizer's L2 coefficient.
    ``parts`` is the number of shards or column blocks (``fastbp.strategy``).
    """

    def __init__(self, network, X, Y, optimizer, state, batch_size, strategy, parts,
                 l2_per_weight=0.0):
        self.network, self.X, self.Y = network, R.read_only(X), R.read_only(Y)
        self.optimizer, self.state = optimizer, state
        self.batch_size, self.l2_per_weight = batch_size, float(l2_per_weight)
        self.strategy = strategy
        self.epoch = specialize.entry(ENTRY[strategy], network.dtype)
        self.network_record = network.record(network.functions(optimizer.rule,
                                                               SLOTS[strategy]))
        dtype, layout = network.dtype, network.layout
        self.columns = None
        if strategy == "sharded":
            rows = -(-batch_size // parts)
            self.work = R.workspace(*layout.workspace(rows, dtype, n_workers=parts),
                                    grads=np.empty((parts, network.n_params), dtype=dtype),
                                    x_batch=np.empty((parts, rows * X.shape[1]), dtype=dtype),
                                    y_batch=np.empty((parts, rows * Y.shape[1]), dtype=dtype),
                                    sums=np.empty(parts))
            return
        self.work = R.workspace(*layout.workspace(batch_size, dtype),
                                grads=np.empty_like(network.params),
                                x_batch=np.empty(batch_size * X.shape[1], dtype=dtype),
                                y_batch=np.empty(batch_size * Y.shape[1], dtype=dtype),
                                sums=np.empty(parts))
        if strategy == "columns":
            self.columns = R.columns(unit_bounds(layout, parts),
                                     *layout.workspace(batch_size, dtype, n_workers=parts),
                                     np.array([1, 0, 1, 1], dtype=dtype),
                                     np.empty_like(network.params), np.empty_like(state.buffers))

    def n_steps(self, perm):
        return -(-perm.shape[0] // self.batch_size)

    def run(self, perm, first, stop):
        """Steps ``first..stop-1`` of the epoch over ``perm``; returns their mean loss."""
        b, optimizer, state = self.batch_size, self.optimizer, self.state
        # read at every call: a schedule may change the learning rate between epochs
        settings = R.settings(state.buffers, optimizer.hyper(), state.step, state.n_decay,
                              optimizer.l2, self.l2_per_weight)
        data = R.data(self.X, self.Y, perm[first * b:stop * b], b)
        if self.columns is None:
            return self.epoch(self.network_record, settings, data, self.work)
        return self.epoch(self.network_record, settings, data, self.work, self.columns)


class SummedSteps:
    """Steps of ``rows_per_step`` rows run one by one, with a hook between gradient and update.

    Each step computes the summed loss and gradient of its rows and their
    total weight into one buffer, calls ``reduce(buffer)`` (which may add the
    same buffer of other processes in place), then takes the mean and applies
    the optimizer's update. A step with no rows left contributes zeros.
    """

    def __init__(self, network, X, Y, optimizer, state, rows_per_step, n_steps, reduce):
        self.network, self.X, self.Y = network, R.read_only(X), R.read_only(Y)
        self.optimizer, self.state = optimizer, state
        self.rows, self.steps, self.reduce = rows_per_step, n_steps, reduce
        n_params, dtype = network.n_params, network.dtype
        self.summed = np.empty(n_params + 2, dtype=dtype)  # gradient, loss, weight
        self.grads = self.summed[:n_params]
        self.x_batch = np.empty(rows_per_step * X.shape[1], dtype=dtype)
        self.y_batch = np.empty(rows_per_step * Y.shape[1], dtype=dtype)
        self.workspace = network.layout.workspace(rows_per_step, dtype)
        self.net = network.functions(optimizer.rule)

    def n_steps(self, perm):
        return self.steps

    def run(self, perm, first, stop):
        network, summed, n_params = self.network, self.summed, self.network.n_params
        total = weight = 0.0
        for s in range(first, stop):
            rows = perm[s * self.rows:(s + 1) * self.rows]
            if rows.shape[0]:
                xb, yb = gather_rows(self.X, self.Y, rows, 0, rows.shape[0], self.x_batch,
                                     self.y_batch)
                summed[n_params] = network.gradient(xb, yb, self.grads, self.workspace,
                                                    norm=1.0, functions=self.net)
                summed[n_params + 1] = batch_weight(yb, network.layer_sizes[-1])
            else:
                summed[:] = 0
            self.reduce(summed)
            step_weight = float(summed[n_params + 1])
            loss = finish_summed_step(summed, network.params, network.n_coefs,
                                      self.optimizer.l2, 0.0)
            if not np.isfinite(loss):
                return np.nan  # before this step's update, as the epoch kernels
            network.update(self.optimizer, self.state, self.grads,
                           self.state.step + (s - first) + 1, self.net)
            total += loss * step_weight
            weight += step_weight
        return total / weight


# ---------------------------------------------------------------- agreeing processes
class Coordinator:
    """How the processes of one fit agree; this base class is a process alone."""

    is_root = True

    def on_root(self, compute):
        """``compute()`` on the first process, its result on every process."""
        return compute()

    def any(self, flag):
        """Whether ``flag`` is set on any process."""
        return bool(flag)

    def total_rows(self, n):
        return n

    def describe(self):
        """Said after the rate on a verbose epoch line."""
        return ""


ALONE = Coordinator()


# ---------------------------------------------------------------- progress
def interactive():
    """Whether someone watches: a terminal on stderr, or a Jupyter kernel (whose stderr is
    no terminal, where ``tqdm.auto`` draws a widget)."""
    if sys.stderr.isatty():
        return True
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


class Progress:
    """A progress bar over the epochs (``tqdm.auto``: a widget in notebooks), or nothing."""

    def __init__(self, epochs, enabled):
        self.bar = tqdm(total=epochs, unit="epoch", leave=False, file=sys.stderr,
                        disable=not enabled)

    def update(self, postfix):
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def close(self):
        self.bar.close()


# ---------------------------------------------------------------- the loop
def fit_loop(guard, epochs, order, end_epoch, diverged, threads, progress,
             coordinator=ALONE):
    """Run up to ``epochs`` epochs; stop early when ``end_epoch`` or ``diverged`` says so.

    Parameters
    ----------
    guard : fastbp._guard.GuardedEpochs
        Runs one epoch's steps over an order, never leaving non-finite state.
    order : callable ``epoch -> perm``
        The rows of the epoch, in order.
    end_epoch : callable ``(epoch, loss, start) -> (postfix, stop)``
        Bookkeeping after a finished epoch (``start`` is its ``perf_counter``
        start); ``postfix`` goes to the progress bar, a true ``stop`` ends the fit.
    diverged : callable ``(epoch, step)``
        Called when step ``step`` of ``epoch`` failed (the state is that of just
        before it); it may raise; otherwise the fit ends.
    threads : ``(numba threads, BLAS threads)`` for ``kernel_threads``
    progress : Progress
        Closed when the loop ends.

    Ctrl-C is held while the kernels run and raised as ``KeyboardInterrupt``
    after the epoch that was running, when everything is consistent (on every
    process at the same epoch).
    """
    try:
        with kernel_threads(*threads), \
                deferred_interrupt(quiet=not coordinator.is_root) as interrupt:
            for epoch in range(epochs):
                start = time.perf_counter()
                loss, failed_step = guard.run(order(epoch))
                if failed_step is not None:
                    diverged(epoch, failed_step)
                    break
                postfix, stop = end_epoch(epoch, float(loss), start)
                progress.update(postfix)
                if stop:
                    break
                if coordinator.any(interrupt.pending):  # a safe point: all is consistent
                    raise KeyboardInterrupt
            if interrupt.pending:  # Ctrl-C in an epoch that ended the fit
                raise KeyboardInterrupt
    finally:
        progress.close()


class EpochRecord:
    """The native fits' end of an epoch: history, validation, best weights, patience,
    callbacks and the verbose line (see ``MLP.fit`` for the parameters).

    ``validation`` is ``(X_val, Y_val)``, ``(X_val, Y_val, sample_weight_val)`` or None
    (on processes other than the first, always None: the first one evaluates and tells
    the others). ``metrics`` are the further validation scores recorded in
    ``history.val_metrics`` and logged as ``val_<name>``.
    """

    def __init__(self, model, network, history, validation, has_validation, patience,
                 restore_best, callbacks, verbose, epochs, n_rows, coordinator=ALONE,
                 metrics=()):
        self.model, self.network, self.history = model, network, history
        self.metrics = metrics
        self.validation, self.has_validation = validation, has_validation
        self.patience, self.callbacks = patience, callbacks
        self.verbose, self.epochs, self.coordinator = verbose, epochs, coordinator
        self.n_rows = coordinator.total_rows(n_rows)
        self.best = BestWeights(network.params, restore_best)
        self.best_loss, self.waited = np.inf, 0

    def __call__(self, epoch, loss, start):
        history, coordinator = self.history, self.coordinator
        logs = {"loss": loss}
        history.loss.append(loss)
        if self.has_validation:
            scores = coordinator.on_root(lambda: self.network.evaluate(*self.validation))
            logs["val_loss"] = scores["loss"]
            logs[f"val_{history.metric_name}"] = scores[history.metric_name]
            history.val_loss.append(scores["loss"])
            history.val_metric.append(scores[history.metric_name])
            for name in self.metrics:
                logs[f"val_{name}"] = scores[name]
                history.val_metrics[name].append(scores[name])
            if scores["loss"] < self.best_loss:
                self.best_loss, self.waited = scores["loss"], 0
                history.best_epoch = epoch
                self.best.keep()
            else:
                self.waited += 1
        history.epoch_time.append(time.perf_counter() - start)
        text = {k: f"{v:.4g}" for k, v in logs.items()}
        if self.verbose >= 2 and coordinator.is_root:
            fields = " ".join(f"{k}={v}" for k, v in text.items())
            rate = self.n_rows / history.epoch_time[-1]
            print(f"epoch {epoch + 1}/{self.epochs} {fields} ({rate:,.0f} samples/s"
                  f"{coordinator.describe()})", flush=True)
        # every finished epoch reaches the callbacks (a checkpoint of the last one too);
        # running out of patience is named first when both stop the fit
        asked = coordinator.on_root(lambda: any([cb(epoch, logs, self.model) is True
                                                  for cb in self.callbacks]))
        if self.patience is not None and self.waited >= self.patience:
            history.stopped_early, history.stop_reason = True, "patience"
        elif asked:
            history.stopped_early, history.stop_reason = True, "callback"
        return text, history.stopped_early

    def diverged(self, on_divergence):
        """The ``diverged`` of ``fit_loop``: warn (on the first process) or raise."""
        def stop(epoch, step):
            self.history.stopped_early, self.history.stop_reason = True, "diverged"
            message = (f"training diverged at step {step + 1} of epoch {epoch + 1}: the loss, "
                       "weights or optimizer state became NaN or infinite (try a smaller "
                       "learning rate); the model keeps the parameters from before that step")
            if on_divergence == "raise":
                raise DivergenceError(message)
            if self.coordinator.is_root:
                warnings.warn(message, RuntimeWarning, stacklevel=4)  # at the fit call
        return stop


def check_l2(l2):
    if isinstance(l2, bool) or not isinstance(l2, Real) or not np.isfinite(l2) or l2 < 0:
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
    return float(l2)
