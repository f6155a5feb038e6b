"""The native model: :class:`MLP`."""
import sys
import time
import warnings
import weakref
from numbers import Integral, Real

import numpy as np
from tqdm.auto import tqdm

from . import architecture as arch
from . import specialize
from ._optional import require
from ._threads import kernel_threads, parts_for, threads_for
from .strategy import check_strategy, resolve, thread_counts, unit_bounds
from ._validation import (check_array, check_fraction, check_int, magnitude_limit,
                          too_large)
from ._guard import BestWeights, GuardedEpochs, deferred_interrupt
from .history import History
from .memory import check_fits
from .kernels import network_functions as NF
from .kernels.checks import all_finite
from .kernels.losses import LOSSES
from .optim import Adam, Optimizer

# Rows forwarded at once by predict and evaluate, alone or on several threads:
# fixed, so that a row's output does not depend on how many rows or threads
# there are (BLAS may round a product of another height differently); it also
# bounds their workspace memory.
PREDICT_CHUNK = 512
# Prediction runs its chunks on several threads only from this many multiply-adds
# on: below, the parallel kernel's launch costs more than it saves (and a first
# call compiles it); the chunks, and so the results, are the same either way.
PARALLEL_PREDICT_MIN_MACS = 2 ** 25

# Each model's `net` arrays (the addresses of its compiled functions, by update rule and
# slots), outside its attributes: a cache is not state, and the addresses hold in this
# process only (a pickled model looks them up again)
_NETS = weakref.WeakKeyDictionary()


def r2_score(Y, out):
    """Coefficient of determination averaged over outputs, as scikit-learn's ``r2_score``.

    A constant target column scores 1 when predicted exactly, else 0. Written
    here so that ``import fastbp`` does not import ``sklearn.metrics`` (about 1 s).
    """
    Y, out = Y.astype(np.float64), out.astype(np.float64)
    residual = ((Y - out) ** 2).sum(axis=0)
    total = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    scores = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1),
                      np.where(residual == 0, 1.0, 0.0))
    return float(scores.mean())


class DivergenceError(FloatingPointError):
    """Training stopped because a step's loss, weights or optimizer state were not finite.

    Raised by ``MLP.fit(..., on_divergence='raise')``; the model keeps the
    parameters from before the failing step.
    """


class MLP:
    """A multilayer perceptron trained by backpropagation in Numba kernels.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, input first: ``[n_features, hidden..., n_outputs]``.
    activation : str or list of str, default 'relu'
        Hidden activation, one name for all hidden layers or one per layer:
        identity, logistic, tanh, relu, leaky_relu, prelu, elu, softplus,
        hard_logistic, hard_tanh.
    output : str, default 'softmax'
        Output activation: softmax or any hidden activation.
    loss : str or None, default None
        ``cross_entropy`` (softmax output, integer class labels),
        ``binary_cross_entropy`` (logistic output, 0/1 or multilabel indicator
        targets) or ``squared_error`` (real targets, ``½·mean Σ (a−y)²``).
        None takes the output's natural pair: softmax → cross_entropy,
        logistic → binary_cross_entropy, anything else → squared_error.
        Squared error fits every output; it goes through the full chain rule
        for outputs other than identity.
    dtype : 'float32' or 'float64', default 'float32'
    seed : int or None
        Seeds the initial weights, the shuffling and the validation split.
    gamma : float or None
        γ of the parametrised activations: the slope of leaky_relu for z ≤ 0
        (default 0.01), the scale of elu (default 1.0), the initial learnable
        slopes of prelu (default 0.25).

    Attributes
    ----------
    params : 1-D array
        Every parameter in one flat buffer: all weights, then all biases,
        then the prelu slopes.
    coefs_ : list of (fan_in, fan_out) arrays
        Weight matrices, writable views into ``params``.
    intercepts_ : list of (fan_out,) arrays
        Biases, writable views into ``params``.
    slopes_ : dict {layer index: (fan_out,) array}
        Learnable prelu slopes, views into ``params`` (layer 0 is the first hidden layer).
    n_params, n_coefs : int
        Size of ``params`` and of its leading block of weights.
    history_ : History or None
        Record of the last ``fit``.
    """

    def __init__(self, layer_sizes, activation="relu", output="softmax", loss=None,
                 dtype="float32", seed=None, gamma=None):
        sizes = arch.check_layer_sizes(layer_sizes)
        hidden = arch.check_hidden_activations(activation, len(sizes) - 2)
        arch.check_output(output)
        loss = arch.natural_loss(output) if loss is None else loss
        arch.check_loss(output, loss)
        if output == "softmax" and sizes[-1] < 2:
            raise ValueError("a softmax output needs at least 2 units "
                             f"(got {sizes[-1]}); use output='logistic' for one")
        dtype = arch.check_dtype(dtype)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)
                                 or not 0 <= seed < 2 ** 32):
            raise ValueError(f"seed must be None or an int in [0, 2**32), got {seed!r}")
        names = hidden + [output]
        gammas = arch.check_gamma(gamma, names)

        self.layer_sizes = sizes
        self.activation = hidden
        self.output = output
        self.loss = loss
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.gamma = gamma
        self._layout = arch.Layout(sizes, names, gammas)
        # constant γ per layer for the kernels (a learnable γ is read from params instead)
        self._gammas = self._layout.constant_gammas(self.dtype)
        self._rng = np.random.RandomState(seed)
        check_fits(self._layout.n_params * self.dtype.itemsize,
                   f"the {self._layout.n_params:,} parameters of {self._layout.describe()}")
        self._params = np.empty(self._layout.n_params, dtype=self.dtype)
        self.coefs_, self.intercepts_, self.slopes_ = self._layout.views(self._params)
        self._optimizer = None
        self._opt_state = None
        self.history_ = None
        self._initialize()

    # ------------------------------------------------------------------ parameters
    def _initialize(self):
        """Glorot-uniform weights and biases, as scikit-learn's MLPs.

        Bound ``√(6/(fan_in+fan_out))`` (``√(2/…)`` for logistic layers), the
        same range for the biases; prelu slopes start at γ.
        """
        for l, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            fan_in, fan_out = W.shape
            factor = arch.ACTIVATIONS[self._layout.activations[l]].init_factor
            bound = np.sqrt(factor / (fan_in + fan_out))
            W[...] = self._rng.uniform(-bound, bound, (fan_in, fan_out))
            b[...] = self._rng.uniform(-bound, bound, fan_out)
        for l, slopes in self.slopes_.items():
            slopes[...] = self._layout.gamma_per_layer[l]

    @property
    def params(self):
        return self._params

    @params.setter
    def params(self, value):
        value = check_array(value, "params", self.dtype, ndim=1)
        if value.shape != self._params.shape:
            raise ValueError(f"params must have shape {self._params.shape}, got {value.shape}")
        self._params[...] = value

    @property
    def optimizer(self):
        """The optimizer of the last ``fit`` (``None`` before): pass it to ``fit`` to continue
        with its state, e.g. after ``fastbp.load``."""
        return self._optimizer

    @property
    def optimizer_state(self):
        """The state of ``optimizer`` (``fastbp.optim.OptimizerState``: buffers and step
        count), or ``None`` before the first ``fit``."""
        return self._opt_state

    def save(self, path):
        """Write the model, its optimizer state, shuffling generator and history to ``path``.

        The file is a ``.npz`` of plain arrays plus JSON metadata (``fastbp.io``);
        ``fastbp.load(path)`` reads it back without executing anything from it.
        The write is atomic: a crash while saving leaves any previous file intact.
        """
        from .io import save_mlp
        return save_mlp(self, path)

    # ------------------------------------------------------------------ interop
    def to_torch(self, logits=False):
        """An equivalent ``torch.nn.Sequential`` (needs PyTorch).

        ``Linear`` layers holding copies of the weights, each followed by the
        layer's activation module (none for identity), so the Sequential's output
        equals ``predict_proba`` (classifiers) or ``predict`` (regressors) up to
        rounding. ``logits=True`` leaves out the output activation, for
        PyTorch's losses that take pre-activations (``CrossEntropyLoss``,
        ``BCEWithLogitsLoss``, ``PoissonNLLLoss(log_input=True)``). The tensors
        have the model's dtype.
        """
        require("torch", "to_torch", "torch")
        from .interop import torch as torch_interop
        return torch_interop.to_torch(self, logits=logits)

    @classmethod
    def from_torch(cls, sequential, output=None, loss=None, dtype=None):
        """A model with the architecture and weights of a ``torch.nn.Sequential``.

        The Sequential must be ``Linear`` layers, each followed by at most one of
        ``Identity``, ``Sigmoid``, ``Tanh``, ``ReLU``, ``LeakyReLU``, ``PReLU``,
        ``ELU``, ``Softplus``, ``Hardtanh(-1, 1)`` (and ``fastbp.interop.torch``'s
        ``HardLogistic``), with ``Softmax(dim=1)`` or ``fastbp.interop.torch.Exp``
        allowed after the last; anything else raises ``ValueError`` naming the
        module. ``output`` sets the output activation of a Sequential that ends in
        a ``Linear`` (e.g. ``'softmax'`` for a network trained on logits); ``loss``
        defaults to the output's natural loss and ``dtype`` to the weights' dtype.
        """
        require("torch", "from_torch", "torch")
        from .interop import torch as torch_interop
        return torch_interop.from_torch(cls, sequential, output=output, loss=loss, dtype=dtype)

    def to_onnx(self, path):
        """Write the model as an ONNX graph to ``path`` (needs the ``onnx`` package).

        Input ``X`` (``(n_samples, n_features)``, the model's dtype); outputs
        ``output`` (``predict_proba`` of a classifier, the ``(n_samples, n_outputs)``
        predictions of a regressor) and, for classifiers, ``label`` (``predict``,
        int64). Opset 17; the write is atomic. Returns the path.
        """
        require("onnx", "to_onnx", "onnx")
        from .interop import onnx as onnx_interop
        return onnx_interop.write(self, path)

    @property
    def n_params(self):
        return self._layout.n_params

    @property
    def n_coefs(self):
        return self._layout.n_coefs

    @property
    def is_classifier(self):
        return LOSSES[self.loss].classifier

    def _net(self, optimizer=None, slots=NF.TRAIN):
        """The ``net`` array of the entry kernels: this network's functions' addresses.

        Compiled on first use (``fastbp.specialize``), only the functions of
        ``slots`` (``kernels.network_functions``); ``optimizer`` fills the
        update slot, for training.
        """
        rule = None if optimizer is None else optimizer.rule
        nets = _NETS.get(self)
        if nets is None:
            nets = _NETS.setdefault(self, {})
        found = nets.get((rule, slots))
        if found is None:  # looked up once per model: predict calls this every time
            kernels = specialize.network_kernels(
                specialize.Config(self._layout.hidden, self.output, self.loss))
            found = nets[(rule, slots)] = kernels.addresses(self.dtype, rule, slots)
        return found

    def __repr__(self):
        return (f"MLP({self._layout.describe()}, loss={self.loss!r}, "
                f"dtype={self.dtype.name}, n_params={self.n_params})")

    def astype(self, dtype):
        """A copy of the model (architecture and parameters) in another dtype."""
        clone = MLP(self.layer_sizes, self.activation, self.output, self.loss, dtype,
                    self.seed, self.gamma)
        clone._params[...] = self._params
        return clone

    # ------------------------------------------------------------------ inputs
    def _check_X(self, X, name="X"):
        X = check_array(X, name, self.dtype)
        if X.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"{name} has {X.shape[1]} features, the model expects "
                             f"{self.layer_sizes[0]}")
        return X

    def _check_targets(self, y, n_samples, name="y"):
        """Targets as a C-contiguous ``(n_samples, n_outputs)`` array of the model's dtype."""
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
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or infinity")
        targets = LOSSES[self.loss].targets
        if targets == "labels" and y.ndim == 1:
            if np.any(y != np.round(y)) or y.min() < 0 or y.max() >= n_out:
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

    # ------------------------------------------------------------------ inference
    def _forward(self, X, n_jobs=None, allowed_threads=None):
        """Output activations of checked rows, in chunks of ``PREDICT_CHUNK`` rows.

        The chunks run on several threads when there are several of them; the
        result does not depend on how many.
        """
        n = X.shape[0]
        workers = 1
        if n * self._layout.n_coefs >= PARALLEL_PREDICT_MIN_MACS:
            workers = min(-(-n // PREDICT_CHUNK),
                          threads_for(n_jobs, parts_for(n_jobs), allowed_threads))
        rows = min(n, PREDICT_CHUNK)
        check_fits(self.dtype.itemsize * (n * self.layer_sizes[-1]
                                          + workers * 3 * rows * self._layout.total_units),
                   f"predicting {n:,} rows")
        out = np.empty((n, self.layer_sizes[-1]), dtype=self.dtype)
        net = self._net(slots=NF.PREDICT)
        if workers > 1:
            acts, zs, _ = self._layout.workspace(rows, self.dtype, n_workers=workers)
            with kernel_threads(workers, 1):  # BLAS single-threaded inside the prange
                specialize.entry("predict_rows_parallel", self.dtype)(
                    net, X, self._params, self._layout.layers, self._gammas, acts, zs, out)
        else:
            acts, zs, _ = self._layout.workspace(rows, self.dtype)
            with kernel_threads(None, 1):
                specialize.entry("predict_rows", self.dtype)(
                    net, X, self._params, self._layout.layers, self._gammas, acts, zs, out)
        if not all_finite(out.reshape(-1)):
            bad = int((~np.isfinite(out)).any(axis=1).sum())
            raise ValueError(f"the forward pass overflowed for {bad} of {n} rows (outputs NaN "
                             "or infinite): the inputs or the weights are too large")
        return out

    def predict_proba(self, X):
        """Output probabilities ``(n_samples, n_outputs)`` of a softmax or logistic model."""
        if not self.is_classifier:
            raise ValueError(f"predict_proba needs a classification loss, this model "
                             f"uses {self.loss!r}; use predict")
        return self._forward(self._check_X(X))

    def predict(self, X):
        """Class labels (cross-entropy), 0/1 indicators (binary cross-entropy) or outputs.

        Returns ``(n_samples,)`` when the model has one output (or is a
        softmax classifier), else ``(n_samples, n_outputs)``.
        """
        out = self._forward(self._check_X(X))
        targets = LOSSES[self.loss].targets
        if targets == "labels":
            return out.argmax(axis=1)
        if targets == "unit":
            out = (out > 0.5).astype(np.int64)
        return out[:, 0] if out.shape[1] == 1 else out

    def _evaluate(self, X, Y):
        """``{'loss', metric}`` for checked arrays."""
        out = np.empty((X.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        acts, zs, _ = self._layout.workspace(min(X.shape[0], PREDICT_CHUNK), self.dtype)
        net = self._net(slots=NF.EVALUATE)
        with kernel_threads(None, 1):
            loss = specialize.entry("evaluate_rows", self.dtype)(
                net, X, Y, self._params, self._layout.layers, self._gammas, acts, zs, out)
        targets = LOSSES[self.loss].targets
        if targets == "labels":
            return {"loss": loss, "accuracy": float(np.mean(out.argmax(1) == Y.argmax(1)))}
        if targets == "unit":
            return {"loss": loss, "accuracy": float(np.mean(np.all((out > 0.5) == (Y > 0.5),
                                                                   axis=1)))}
        return {"loss": loss, "r2": r2_score(Y, out)}

    def evaluate(self, X, y):
        """Mean loss on ``(X, y)`` plus accuracy (classification) or R² (regression).

        Accuracy of a logistic model counts a sample as right when all its
        labels are (subset accuracy, as scikit-learn).
        """
        X = self._check_X(X)
        scores = self._evaluate(X, self._check_targets(y, X.shape[0]))
        if not np.isfinite(scores["loss"]):
            raise ValueError("the loss is not finite: the forward pass overflowed (the inputs "
                             "or the weights are too large)")
        return scores

    def loss_and_grad(self, X, y, l2=0.0):
        """Mean loss (+ ``l2/2 ‖W‖²``) of ``(X, y)`` and its gradient as a new flat array.

        For custom training loops: the gradient has the layout of ``params``
        and can be given to an optimizer's ``update``.
        """
        X = self._check_X(X)
        Y = self._check_targets(y, X.shape[0])
        if (isinstance(l2, bool) or not isinstance(l2, Real) or not np.isfinite(l2)
                or l2 < 0):
            raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
        grads = np.empty_like(self._params)
        acts, zs, deltas = self._layout.workspace(X.shape[0], self.dtype)
        net = self._net(slots=NF.GRADIENT)
        with kernel_threads(None, 1):
            loss = specialize.entry("forward_backward", self.dtype)(
                net, X, Y, self._params, grads, self._layout.layers, self._gammas, float(l2),
                0.0, float(X.shape[0]), acts, zs, deltas)
        return float(loss), grads

    # ------------------------------------------------------------------ training
    def fit(self, X, y, optimizer=None, epochs=10, batch_size=32, shuffle=True,
            validation_data=None, validation_fraction=None, patience=None,
            restore_best=True, callbacks=(), verbose=1, n_jobs=None, strategy="auto",
            on_divergence="warn", comm=None):
        """Train with minibatches, one kernel call per epoch.

        Parameters
        ----------
        X : (n_samples, n_features) array
        y : targets, see the class docstring for each loss
        optimizer : fastbp.optim optimizer, default ``Adam()``
            Its state carries over to the next ``fit`` with the same object;
            its hyper-parameters are read at every ``fit``.
        epochs : int, default 10
        batch_size : int, default 32 (capped at the number of training samples)
        shuffle : bool, default True
            Draw a new order of the samples every epoch.
        validation_data : (X_val, y_val), optional
        validation_fraction : float in (0, 1), optional
            Hold out this share of (X, y), drawn at random, for validation.
        patience : int, optional
            Stop when the validation loss has not improved for this many
            epochs (needs validation data).
        restore_best : bool, default True
            With validation data, end with the weights of the epoch that had
            the lowest validation loss.
        callbacks : sequence of callables ``f(epoch, logs, model)``
            Called after every epoch with the epoch's ``logs`` dict; return
            True to stop training.
        verbose : int, default 1
            0: silent; 1: a progress bar when stderr is a terminal; 2: one
            line per epoch.
        n_jobs : int, optional
            Threads for the kernels and the BLAS they call (-1: all cores;
            default: Numba's current thread count).
        strategy : {'auto', 'serial', 'blas', 'sharded', 'columns'}, default 'auto'
            How each epoch runs (see ``fastbp.strategy``); ``auto`` picks by
            the network's shape. Every strategy gives the same results within
            float tolerance.
        on_divergence : {'warn', 'raise'}, default 'warn'
            What happens when a step's loss, weights or optimizer state stop
            being finite (too large a learning rate, usually): training stops
            and the model keeps the parameters and optimizer state from just
            before that step (or, with validation data and ``restore_best``, the
            best epoch's parameters, as at any other stop), then a
            ``RuntimeWarning`` is issued ('warn') or
            ``fastbp.DivergenceError`` raised ('raise'). Either way
            ``history.stop_reason`` is ``'diverged'``.
        comm : mpi4py communicator, optional
            Train data-parallel over MPI: call ``fit`` on every rank with that
            rank's rows; ``batch_size`` is the global batch (see
            ``fastbp.distributed.DistributedTrainer``, which this uses; it
            takes ``validation_data`` on rank 0, not ``validation_fraction``,
            and warns on divergence).

        Returns
        -------
        History
            Also kept as ``model.history_``.

        Raises
        ------
        KeyboardInterrupt
            On Ctrl-C, at the end of the epoch that is running (the kernels
            cannot stop mid-epoch): the model keeps the weights, optimizer state
            and history of the last completed epoch (no best-weight restore), so
            ``fit(..., optimizer=model.optimizer)`` resumes where it stopped.
        MemoryError
            Before anything changes, when the buffers the fit allocates
            (estimated from the sizes, the batch, the strategy and the threads)
            would not fit in the memory available (``fastbp.memory``).
        """
        if comm is not None:
            if validation_fraction is not None or strategy != "auto" or on_divergence != "warn":
                raise ValueError("with comm, give validation_data on rank 0 (not "
                                 "validation_fraction), and leave strategy and on_divergence "
                                 "at their defaults")
            from .distributed import DistributedTrainer
            return DistributedTrainer(self, comm).fit(
                X, y, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                shuffle=shuffle, validation_data=validation_data, patience=patience,
                restore_best=restore_best, callbacks=callbacks, verbose=verbose, n_jobs=n_jobs)
        # -- every check first: nothing changes before the input is known to be good
        X, Y, optimizer, epochs, batch_size, patience, verbose, callbacks = self._check_fit(
            X, y, optimizer, epochs, batch_size, patience, verbose, shuffle, restore_best,
            callbacks)
        if validation_data is not None and validation_fraction is not None:
            raise ValueError("give validation_data or validation_fraction, not both")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, y_val)")
            X_val = self._check_X(validation_data[0], "X_val")
            Y_val = self._check_targets(validation_data[1], X_val.shape[0], "y_val")
        elif validation_fraction is not None:
            fraction = check_fraction(validation_fraction, "validation_fraction")
            n_val = int(round(fraction * X.shape[0]))
            if n_val < 1 or n_val >= X.shape[0]:
                raise ValueError(f"validation_fraction={fraction} leaves {n_val} of "
                                 f"{X.shape[0]} samples for validation; need at least one "
                                 "sample on each side")
        if patience is not None and validation_data is None and validation_fraction is None:
            raise ValueError("patience needs validation_data or validation_fraction")
        parts = parts_for(n_jobs)
        strategy = check_strategy(strategy)
        if on_divergence not in ("warn", "raise"):
            raise ValueError(f"on_divergence must be 'warn' or 'raise', got {on_divergence!r}")
        n_val_rows = (X_val.shape[0] if validation_data is not None
                      else n_val if validation_fraction is not None else 0)
        check_fits(self._fit_bytes(X, Y, optimizer, min(batch_size, X.shape[0]), parts,
                                   strategy, n_val_rows, restore_best,
                                   split_from_X=validation_fraction is not None),
                   f"fitting {self._layout.describe()} on {X.shape[0]:,} rows")

        # -- from here on the model changes
        if validation_fraction is not None:
            order = self._rng.permutation(X.shape[0])
            X_val, Y_val = X[order[:n_val]], Y[order[:n_val]]
            X, Y = X[order[n_val:]], Y[order[n_val:]]
        has_val = validation_data is not None or validation_fraction is not None
        if (optimizer is not self._optimizer or self._opt_state is None
                or self._opt_state.buffers.shape[0] != optimizer.n_buffers):
            # a new optimizer, or one whose settings now need other buffers (momentum 0 → 0.9)
            self._optimizer = optimizer
            self._opt_state = optimizer.init(self._params, n_decay=self.n_coefs)
        state = self._opt_state
        history = History("accuracy" if self.is_classifier else "r2")
        self.history_ = history
        batch_size = min(batch_size, X.shape[0])
        strategy = resolve(strategy, self._layout, batch_size, parts)
        self.strategy_ = strategy
        run_epoch = self._epoch_runner(X, Y, optimizer, state, batch_size, strategy, parts)
        guard = GuardedEpochs(run_epoch, self._params, state, batch_size, owner=self)
        threads = thread_counts(strategy, parts, threads_for(n_jobs, parts))
        self._train(guard, X.shape[0], history, epochs, shuffle,
                    (X_val, Y_val) if has_val else None, patience, restore_best, callbacks,
                    verbose, threads, on_divergence)
        return history

    def _check_fit(self, X, y, optimizer, epochs, batch_size, patience, verbose, shuffle,
                   restore_best, callbacks):
        """The checks ``fit`` and the distributed fit share; returns the checked values."""
        X = self._check_X(X)
        Y = self._check_targets(y, X.shape[0])
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

    def _fit_bytes(self, X, Y, optimizer, batch_size, parts, strategy, n_val, restore_best,
                   split_from_X=False):
        """An upper estimate of the bytes ``fit`` allocates (the inputs already exist)."""
        n_params, units = self.n_params, self._layout.total_units
        n_state = optimizer.n_buffers
        # parameter-sized: gradient, optimizer state, the guard's copies of both, the packed
        # copies of the columns strategy or the shards' gradients, the best weights
        vectors = 1 + 2 * n_state + 1 + max(1 + n_state, parts) + (1 if n_val else 0)
        # batch-sized: gathered rows and three workspace blocks, one set per part
        rows = batch_size * (X.shape[1] + Y.shape[1] + 3 * units) * (1 + parts)
        # the validation split's copies and its evaluation workspace, and the training
        # rows copied out of X when the split is drawn from it
        val = n_val * (X.shape[1] + Y.shape[1] + self.layer_sizes[-1]) * 2 \
            + min(n_val, PREDICT_CHUNK) * 3 * units
        if split_from_X:
            val += (X.shape[0] - n_val) * (X.shape[1] + Y.shape[1])
        return self.dtype.itemsize * (n_params * vectors + rows + val) + 8 * X.shape[0]

    def _epoch_runner(self, X, Y, optimizer, state, batch_size, strategy, parts,
                      l2_per_weight=0.0):
        """``run(perm) -> mean loss``: one epoch by ``strategy``, workspaces allocated once.

        ``Y`` may carry a last column of sample weights; ``l2_per_weight`` adds
        ``l2_per_weight / (batch weight)`` to the optimizer's L2 coefficient.
        ``parts`` is the number of shards or column blocks (``strategy``).
        """
        layout, dtype = self._layout, self.dtype
        name = {"sharded": "train_epoch_sharded", "columns": "train_epoch_columns"}.get(
            strategy, "train_epoch")
        epoch = specialize.entry(name, dtype)
        net = self._net(optimizer)

        def variables():  # read at every epoch: a schedule may change the learning rate
            return (layout.layers, self._gammas, optimizer.l2, l2_per_weight, optimizer.hyper(),
                    state.step, state.n_decay)
        if strategy == "sharded":
            rows = -(-batch_size // parts)
            shard_grads = np.empty((parts, self.n_params), dtype=dtype)
            x_batch = np.empty((parts, rows * X.shape[1]), dtype=dtype)
            y_batch = np.empty((parts, rows * Y.shape[1]), dtype=dtype)
            acts, zs, deltas = layout.workspace(rows, dtype, n_workers=parts)
            shard_loss = np.empty(parts)

            def run(perm):
                return epoch(net, X, Y, perm, batch_size, self._params, shard_grads,
                             state.buffers, *variables(), x_batch, y_batch, acts, zs, deltas,
                             shard_loss)
            return run
        grads = np.empty_like(self._params)
        x_batch = np.empty(batch_size * X.shape[1], dtype=dtype)
        y_batch = np.empty(batch_size * Y.shape[1], dtype=dtype)
        acts, zs, deltas = layout.workspace(batch_size, dtype)
        if strategy == "columns":
            bounds = unit_bounds(layout, parts)
            private = layout.workspace(batch_size, dtype, n_workers=parts)
            squares = np.empty(parts)
            alpha_beta = np.array([1, 0, 1, 1], dtype=dtype)
            packed_params = np.empty_like(self._params)
            packed_state = np.empty_like(state.buffers)

            def run(perm):
                return epoch(net, X, Y, perm, batch_size, self._params, grads, state.buffers,
                             *variables(), x_batch, y_batch, acts, zs, deltas, bounds, *private,
                             squares, alpha_beta, packed_params, packed_state)
            return run

        def run(perm):
            return epoch(net, X, Y, perm, batch_size, self._params, grads, state.buffers,
                         *variables(), x_batch, y_batch, acts, zs, deltas)
        return run

    def _train(self, epochs_runner, n, history, epochs, shuffle, val, patience, restore_best,
               callbacks, verbose, threads, on_divergence):
        best_loss, waited = np.inf, 0
        best = BestWeights(self._params, restore_best)
        bar = tqdm(total=epochs, unit="epoch", leave=False,
                   disable=not (verbose == 1 and sys.stderr.isatty()))
        try:
            with best.ending(history), kernel_threads(*threads), \
                    deferred_interrupt() as interrupt:
                for epoch in range(epochs):
                    start = time.perf_counter()
                    perm = self._rng.permutation(n) if shuffle else np.arange(n)
                    loss, failed_step = epochs_runner.run(perm)
                    if failed_step is not None:
                        history.stopped_early, history.stop_reason = True, "diverged"
                        message = (f"training diverged at step {failed_step + 1} of epoch "
                                   f"{epoch + 1}: the loss, weights or optimizer state became "
                                   "NaN or infinite (try a smaller learning rate); the model "
                                   "keeps the parameters from before that step")
                        if on_divergence == "raise":
                            raise DivergenceError(message)
                        warnings.warn(message, RuntimeWarning, stacklevel=3)
                        break
                    logs = {"loss": float(loss)}
                    history.loss.append(float(loss))
                    if val is not None:
                        scores = self._evaluate(*val)
                        logs["val_loss"] = scores["loss"]
                        logs[f"val_{history.metric_name}"] = scores[history.metric_name]
                        history.val_loss.append(scores["loss"])
                        history.val_metric.append(scores[history.metric_name])
                        if scores["loss"] < best_loss:
                            best_loss, waited = scores["loss"], 0
                            history.best_epoch = epoch
                            best.keep()
                        else:
                            waited += 1
                    history.epoch_time.append(time.perf_counter() - start)
                    self._report(bar, verbose, epoch, epochs, logs, n / history.epoch_time[-1])
                    if patience is not None and waited >= patience:
                        history.stopped_early, history.stop_reason = True, "patience"
                        break
                    if any(cb(epoch, logs, self) is True for cb in callbacks):
                        history.stopped_early, history.stop_reason = True, "callback"
                        break
                    if interrupt.pending:  # a safe point: everything above is consistent
                        raise KeyboardInterrupt
                if interrupt.pending:  # Ctrl-C in an epoch that ended the fit by a break
                    raise KeyboardInterrupt
        finally:
            bar.close()

    @staticmethod
    def _report(bar, verbose, epoch, epochs, logs, samples_per_s):
        text = {k: f"{v:.4g}" for k, v in logs.items()}
        if verbose >= 2:
            fields = " ".join(f"{k}={v}" for k, v in text.items())
            print(f"epoch {epoch + 1}/{epochs} {fields} ({samples_per_s:,.0f} samples/s)")
        bar.set_postfix(text, refresh=False)
        bar.update(1)
