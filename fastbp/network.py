"""The engine under every model: one architecture over one flat parameter buffer.

A :class:`Network` holds the layer sizes and activations, the buffer and its
per-layer views, and runs the kernels that do not train: the forward pass in
fixed chunks, evaluation, and the loss and gradient of a batch. The native
``MLP``, the scikit-learn estimators and the training loop (``fastbp.training``)
all work through it.
"""
import weakref
from numbers import Integral

import numpy as np

from . import architecture as arch
from . import specialize
from ._threads import kernel_threads, parts_for, threads_for
from ._validation import check_array, magnitude_limit, too_large
from .kernels import network_functions as NF
from .kernels import records as R
from .kernels.activations import ACTIVATIONS
from .kernels.checks import all_finite
from .kernels.losses import LOSSES, batch_weight
from .memory import check_fits
from .metrics import accuracy, f1_macro, log_loss, mean_absolute_error, r2_score

__all__ = ["Network", "PREDICT_CHUNK", "PARALLEL_PREDICT_MIN_MACS", "CLASSIFIER_METRICS",
           "REGRESSION_METRICS", "check_seed", "check_sample_weight", "with_weights"]

# Rows forwarded at once by predict and evaluate, alone or on several threads:
# fixed, so that a row's output does not depend on how many rows or threads
# there are (BLAS may round a product of another height differently); it also
# bounds their workspace memory.
PREDICT_CHUNK = 512
# Prediction runs its chunks on several threads only from this many multiply-adds
# on: below, the parallel kernel's launch costs more than it saves (and a first
# call compiles it); the chunks, and so the results, are the same either way.
PARALLEL_PREDICT_MIN_MACS = 2 ** 25

# What ``Network.evaluate`` reports besides the loss, by kind of model
CLASSIFIER_METRICS = ("accuracy", "f1", "log_loss")
REGRESSION_METRICS = ("r2", "mae")

# Each network's `net` arrays (the addresses of its compiled functions, by update rule and
# slots), outside its attributes: a cache is not state, and the addresses hold in this
# process only (a pickled network looks them up again)
_FUNCTIONS: "weakref.WeakKeyDictionary[Network, dict]" = weakref.WeakKeyDictionary()


def check_seed(seed):
    """``seed`` if it is None or an int in [0, 2**32), else ``ValueError``."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)
                             or not 0 <= seed < 2 ** 32):
        raise ValueError(f"seed must be None or an int in [0, 2**32), got {seed!r}")
    return seed


def check_sample_weight(sample_weight, n_samples, dtype, name="sample_weight",
                        against="X") -> np.ndarray:
    """``sample_weight`` as a C-contiguous ``(n_samples,)`` array of ``dtype``: finite,
    >= 0 and not zero everywhere (a weighted mean needs a positive total); ``against``
    names the array ``n_samples`` was counted in, for the message."""
    w = check_array(sample_weight, name, dtype, ndim=1)
    if w.shape[0] != n_samples:
        raise ValueError(f"{name} has {w.shape[0]} values, {against} has {n_samples} "
                         "samples")
    if w.min() < 0:
        raise ValueError(f"{name} holds negative values (the smallest is {w.min():.6g}); "
                         "weights must be >= 0")
    if not w.any():
        raise ValueError(f"{name} is zero everywhere: the weighted mean has no weight")
    return w


def with_weights(Y, sample_weight) -> np.ndarray:
    """``Y`` with ``sample_weight`` as an extra last column: how the kernels are given
    weighted targets (``kernels.losses.batch_weight``, ``delta_and_loss``)."""
    return np.ascontiguousarray(np.column_stack([Y, sample_weight]), dtype=Y.dtype)


class Network:
    """Layer sizes, activations, loss and dtype, with the flat buffer they index.

    Parameters are those of ``fastbp.MLP`` (checked here, in that order);
    ``seed`` is only checked, in its place among them (the model owns the generator).

    Attributes
    ----------
    layer_sizes, activation, output, loss, dtype, gamma
        As given (``activation``: one name per hidden layer).
    layout : fastbp.architecture.Layout
        Where every layer's parameters and workspace blocks live.
    gammas : array
        Each layer's constant γ, as the kernels read it.
    params : 1-D array
        Weights, then biases, then learnable γ.
    coefs, intercepts, slopes
        Per-layer views of ``params``.
    """

    def __init__(self, layer_sizes, activation="relu", output="softmax", loss=None,
                 dtype="float32", gamma=None, seed=None):
        sizes = arch.check_layer_sizes(layer_sizes)
        hidden = arch.check_hidden_activations(activation, len(sizes) - 2)
        arch.check_output(output)
        loss = arch.natural_loss(output) if loss is None else loss
        arch.check_loss(output, loss)
        if output == "softmax" and sizes[-1] < 2:
            raise ValueError("a softmax output needs at least 2 units "
                             f"(got {sizes[-1]}); use output='logistic' for one")
        dtype = arch.check_dtype(dtype)
        check_seed(seed)
        names = hidden + [output]
        gammas = arch.check_gamma(gamma, names)

        self.layer_sizes = sizes
        self.activation = hidden
        self.output = output
        self.loss = loss
        self.dtype = np.dtype(dtype)
        self.gamma = gamma
        self.layout = arch.Layout(sizes, names, gammas)
        # constant γ per layer for the kernels (a learnable γ is read from params instead)
        self.gammas = self.layout.constant_gammas(self.dtype)
        check_fits(self.layout.n_params * self.dtype.itemsize,
                   f"the {self.layout.n_params:,} parameters of {self.layout.describe()}")
        # never garbage: a caller that fills only the weights (scikit-learn's
        # initialisation) leaves learnable slopes at their starting γ
        self.params = np.zeros(self.layout.n_params, dtype=self.dtype)
        self.coefs, self.intercepts, self.slopes = self.layout.views(self.params)
        self._start_slopes()

    @property
    def n_params(self):
        return self.layout.n_params

    @property
    def n_coefs(self):
        return self.layout.n_coefs

    @property
    def targets(self):
        """What the loss trains on: ``labels``, ``unit``, ``nonnegative`` or ``real``."""
        return LOSSES[self.loss].targets

    @property
    def is_classifier(self):
        return LOSSES[self.loss].classifier

    @property
    def metric_name(self):
        return "accuracy" if self.is_classifier else "r2"

    @property
    def metric_names(self):
        """Every score ``evaluate`` gives besides the loss."""
        return CLASSIFIER_METRICS if self.is_classifier else REGRESSION_METRICS

    def describe(self):
        return self.layout.describe()

    def initialize(self, rng):
        """Glorot-uniform weights and biases from ``rng``, as scikit-learn's MLPs.

        Bound ``√(6/(fan_in+fan_out))`` (``√(2/…)`` for logistic layers), the
        same range for the biases; prelu slopes start at γ.
        """
        for l, (W, b) in enumerate(zip(self.coefs, self.intercepts)):
            fan_in, fan_out = W.shape
            factor = ACTIVATIONS[self.layout.activations[l]].init_factor
            bound = np.sqrt(factor / (fan_in + fan_out))
            W[...] = rng.uniform(-bound, bound, (fan_in, fan_out))
            b[...] = rng.uniform(-bound, bound, fan_out)
        self._start_slopes()

    def _start_slopes(self):
        for l, slopes in self.slopes.items():
            slopes[...] = self.layout.gamma_per_layer[l]

    def functions(self, rule=None, slots=NF.TRAIN):
        """The ``net`` array of the entry kernels: this network's functions' addresses.

        Compiled on first use (``fastbp.specialize``), only the functions of
        ``slots`` (``kernels.network_functions``); ``rule`` (an update rule's
        name) fills the update slot, for training.
        """
        found_all = _FUNCTIONS.get(self)
        if found_all is None:
            found_all = _FUNCTIONS.setdefault(self, {})
        found = found_all.get((rule, slots))
        if found is None:  # looked up once per network: predict calls this every time
            kernels = specialize.network_kernels(
                specialize.Config(self.layout.hidden, self.output, self.loss))
            found = found_all[(rule, slots)] = kernels.addresses(self.dtype, rule, slots)
        return found

    # ------------------------------------------------------------------ inputs
    def check_X(self, X, name="X") -> np.ndarray:
        """``X`` as a C-contiguous float array of the network's dtype and input width."""
        X = check_array(X, name, self.dtype)
        if X.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"{name} has {X.shape[1]} features, the model expects "
                             f"{self.layer_sizes[0]}")
        return X

    def check_targets(self, y, n_samples, name="y") -> np.ndarray:
        """Targets as a C-contiguous ``(n_samples, n_outputs)`` array of the network's dtype."""
        n_out = self.layer_sizes[-1]
        try:
            y = np.asarray(y)
        except Exception as exc:
            raise ValueError(f"{name} could not be read as an array: {exc}") from None
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be numeric, got dtype {y.dtype}")
        if y.shape[:1] != (n_samples,):
            raise ValueError(f"{name} has {y.shape[0] if y.ndim else 0} samples, "
                             f"X has {n_samples}")
        floats = y.dtype.kind == "f"  # integers are finite and whole: no pass to check
        if floats and not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or infinity")
        targets = self.targets
        if targets == "labels" and y.ndim == 1:
            if (floats and np.any(y != np.round(y))) or y.min() < 0 or y.max() >= n_out:
                raise ValueError(f"{name} must hold integer class labels in [0, {n_out}) "
                                 f"for a {self.output} output of {n_out} units")
            Y = np.zeros((n_samples, n_out), dtype=self.dtype)
            Y[np.arange(n_samples), y.astype(np.int64)] = 1
            return Y
        if y.ndim == 1 and n_out == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or y.shape[1] != n_out:
            expected = f"({n_samples},) or " if n_out == 1 else ""
            if targets == "labels":
                expected = f"({n_samples},) integer labels or "
            raise ValueError(f"{name} must have shape {expected}({n_samples}, {n_out}) for "
                             f"{n_out} output unit(s), got {y.shape}")
        if targets == "nonnegative" and y.min() < 0:
            raise ValueError(f"{name} must hold values >= 0 for the {self.loss} loss")
        if targets in ("labels", "unit") and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{name} must hold values in [0, 1] for {self.loss}")
        if targets == "labels":
            sums = y.sum(axis=1, keepdims=True)
            if not np.allclose(sums, 1, atol=1e-3):
                raise ValueError(f"{name} rows must sum to 1 (one-hot or class probabilities)")
            y = y / sums  # exactly 1: the softmax gradient a − y assumes it
        peak = float(np.abs(y).max())
        if peak > magnitude_limit(self.dtype):  # the squared error or Adam would overflow
            raise ValueError(too_large(name, peak, self.dtype))
        return np.ascontiguousarray(y, dtype=self.dtype)

    # ------------------------------------------------------------------ kernels
    def forward(self, X, n_jobs=None, allowed_threads=None):
        """Output activations of checked rows, in chunks of ``PREDICT_CHUNK`` rows.

        The chunks run on several threads when there are several of them; the
        result does not depend on how many.
        """
        n = X.shape[0]
        workers = 1
        if n * self.layout.n_coefs >= PARALLEL_PREDICT_MIN_MACS:
            workers = min(-(-n // PREDICT_CHUNK),
                          threads_for(n_jobs, parts_for(n_jobs), allowed_threads))
        rows = min(n, PREDICT_CHUNK)
        check_fits(self.dtype.itemsize * (n * self.layer_sizes[-1]
                                          + workers * 3 * rows * self.layout.total_units),
                   f"predicting {n:,} rows")
        out = np.empty((n, self.layer_sizes[-1]), dtype=self.dtype)
        net = self.functions(slots=NF.PREDICT_PARALLEL if workers > 1 else NF.PREDICT)
        if workers > 1:
            acts, zs, _ = self.layout.workspace(rows, self.dtype, n_workers=workers)
            with kernel_threads(workers, 1):  # BLAS single-threaded inside the prange
                specialize.entry("predict_rows_parallel", self.dtype)(
                    self.record(net), R.read_only(X), acts, zs, out)
        else:
            acts, zs, _ = self.layout.workspace(rows, self.dtype)
            with kernel_threads(None, 1):
                specialize.entry("predict_rows", self.dtype)(self.record(net), R.read_only(X),
                                                             acts, zs, out)
        if not all_finite(out.reshape(-1)):
            bad = int((~np.isfinite(out)).any(axis=1).sum())
            raise ValueError(f"the forward pass overflowed for {bad} of {n} rows (outputs NaN "
                             "or infinite): the inputs or the weights are too large")
        return out

    def predictions(self, out):
        """What ``predict`` answers for output activations ``out``: labels, 0/1 or values."""
        if self.targets == "labels":
            return out.argmax(axis=1)
        if self.targets == "unit":
            out = (out > 0.5).astype(np.int64)
        return out[:, 0] if out.shape[1] == 1 else out

    def evaluate(self, X, Y, sample_weight=None):
        """``{'loss', metric, ...}`` for checked arrays: ``accuracy``, macro ``f1`` and
        ``log_loss`` for classifiers, ``r2`` and ``mae`` for regressions.

        ``sample_weight`` (checked, ``(n_samples,)``) makes the loss and every score a
        weighted mean. A last column of weights already in ``Y`` (the estimators'
        targets) weights the summed loss, which is still divided by the number of rows,
        and leaves the scores unweighted.
        """
        n_out = self.layer_sizes[-1]
        if sample_weight is not None:
            Y = with_weights(Y, sample_weight)
        out = np.empty((X.shape[0], n_out), dtype=self.dtype)
        acts, zs, _ = self.layout.workspace(min(X.shape[0], PREDICT_CHUNK), self.dtype)
        net = self.functions(slots=NF.EVALUATE)
        with kernel_threads(None, 1):
            loss = specialize.entry("evaluate_rows", self.dtype)(
                self.record(net), R.read_only(X), R.read_only(Y), acts, zs, out)
        if sample_weight is not None:  # the kernel divides the weighted sum by the rows
            loss = loss * X.shape[0] / batch_weight(R.read_only(Y), n_out)
        Y = Y[:, :n_out]  # without a column of sample weights
        w = sample_weight
        if self.targets == "labels":
            labels, predicted = Y.argmax(1), out.argmax(1)
            one_hot = np.eye(n_out, dtype=bool)
            return {"loss": loss, "accuracy": accuracy(predicted == labels, w),
                    "f1": f1_macro(one_hot[labels], one_hot[predicted], sample_weight=w),
                    "log_loss": log_loss(Y, out, sample_weight=w)}
        if self.targets == "unit":
            true, predicted = Y > 0.5, out > 0.5
            right = accuracy(np.all(predicted == true, axis=1), w)
            if out.shape[1] == 1:  # binary: both classes, as for two softmax outputs
                true, predicted = np.hstack([~true, true]), np.hstack([~predicted, predicted])
            return {"loss": loss, "accuracy": right,
                    "f1": f1_macro(true, predicted, present_only=n_out == 1, sample_weight=w),
                    "log_loss": log_loss(Y, out, independent=True, sample_weight=w)}
        return {"loss": loss, "r2": r2_score(Y, out, w), "mae": mean_absolute_error(Y, out, w)}

    def gradient(self, X, Y, grads, workspace, l2=0.0, l2_per_weight=0.0, norm=None,
                 functions=None):
        """The loss of ``(X, Y)`` with its gradient written into ``grads``.

        ``workspace`` is ``layout.workspace(len(X), dtype)``; ``norm`` divides
        the summed loss (default: the number of rows); the L2 coefficient is
        ``l2 + l2_per_weight / norm``. ``functions`` reuses a ``functions()``
        array looked up by the caller.
        """
        acts, zs, deltas = workspace
        net = self.functions(slots=NF.GRADIENT) if functions is None else functions
        return specialize.entry("forward_backward", self.dtype)(
            self.record(net), R.l2_only(self.dtype, l2, l2_per_weight), R.read_only(X),
            R.read_only(Y),
            float(X.shape[0] if norm is None else norm),
            R.workspace(acts, zs, deltas, grads=grads))

    def update(self, optimizer, state, grads, step, functions):
        """Apply ``optimizer``'s rule to ``params`` with ``grads`` (the step'th update)."""
        specialize.entry("apply_update", self.dtype)(
            self.record(functions),
            R.settings(state.buffers, optimizer.hyper(), step - 1, state.n_decay), grads)

    def record(self, functions):
        """The entry kernels' ``records.network`` of this network with ``functions()``."""
        return R.network(functions, self.params, self.layout.layers, self.gammas)
