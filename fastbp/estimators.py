"""Drop-in scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor``.

They subclass scikit-learn's own estimators, so the constructor, parameter
validation, label handling, ``partial_fit``, ``warm_start``, scoring and the
fitted attributes are scikit-learn's. What runs on fastbp's kernels is the
arithmetic: every epoch of ``sgd``/``adam`` is one call of the epoch kernel
(scikit-learn's batches, in its shuffled order, with its update formulas), the
``lbfgs`` objective is the fused loss + gradient kernel, and prediction is the
fused forward kernel. ``coefs_`` and ``intercepts_`` are views into fastbp's
flat parameter buffer, whose order (weights, then biases) is scikit-learn's
own packing order.

Keyword-only extras, all defaulting to scikit-learn's behaviour: ``n_jobs``
(threads of the kernels), every fastbp hidden activation, ``class_weight``
(classifier), ``progress`` (a progress bar over the epochs), ``on_divergence``
(``'raise'`` where scikit-learn records NaN and keeps the best weights),
``callbacks`` (called after every epoch). With
``early_stopping`` the validation loss of each epoch is kept in
``validation_loss_curve_``.
"""
from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.optimize
import scipy.sparse
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _SkMLPClassifier
from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
from sklearn.utils import shuffle as _shuffle
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from . import architecture as arch
from . import io
from ._guard import GuardedEpochs, scratch_like
from ._optional import require
from ._threads import check_n_jobs, kernel_threads, parts_for, threads_for
from .kernels.losses import batch_weight
from .kernels.records import read_only
from .memory import check_fits
from .network import Network
from .optim import SGD, Adam
from .strategy import thread_counts
from .tuning import resolve
from .training import KernelEpochs, Progress, fit_bytes, fit_loop

if TYPE_CHECKING:
    from torch import nn
    from typing_extensions import Self

__all__ = ["MLPClassifier", "MLPRegressor", "LOSS_OF_OUTPUT"]

# what fit and partial_fit take, as scikit-learn: array-likes and scipy's sparse matrices
_Data: TypeAlias = "npt.ArrayLike | scipy.sparse.sparray | scipy.sparse.spmatrix"
_Callback: TypeAlias = Callable[[int, Mapping[str, float], Any], Any]

# scikit-learn's output activation → the loss fastbp trains it with (scikit-learn's
# squared error averages the loss value over the outputs, not its gradient)
LOSS_OF_OUTPUT = {"softmax": "cross_entropy", "logistic": "binary_cross_entropy",
                  "identity": "sklearn_squared_error", "exp": "poisson"}

_EXTRA_CONSTRAINTS = {
    "activation": [StrOptions(set(arch.HIDDEN_ACTIVATIONS))],
    "n_jobs": [None, Interval(Integral, -1, None, closed="left")],
    "progress": ["boolean"],
    "on_divergence": [StrOptions({"record", "raise"})],
    "callbacks": [list, None],
}


def _store_params(est, values):
    """Keep every constructor argument as an attribute of the same name, and nothing
    else (scikit-learn's convention; its own ``__init__`` does the same)."""
    for name, value in values.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


class _Schedule:
    """scikit-learn's learning-rate bookkeeping around a fastbp optimizer.

    ``invscaling`` sets ``lr = lr_init / (t + 1)^power_t`` after each epoch
    (``t`` = samples seen); ``adaptive`` divides it by 5 when the loss stalls
    and stops below 1e-6; every other case stops when the loss stalls.
    """

    def __init__(self, est, dtype_params, n_coefs):
        if est.solver == "sgd":
            self.optimizer = SGD(lr=est.learning_rate_init, momentum=est.momentum,
                                 nesterov=bool(est.nesterovs_momentum and est.momentum > 0))
            self.schedule = est.learning_rate
        else:
            self.optimizer = Adam(lr=est.learning_rate_init, b1=est.beta_1, b2=est.beta_2,
                                  eps=est.epsilon)
            self.schedule = "constant"
        self.lr_init = est.learning_rate_init
        self.power_t = est.power_t
        self.state = self.optimizer.init(dtype_params, n_decay=n_coefs)

    @property
    def learning_rate(self):
        return self.optimizer.lr

    def iteration_ends(self, time_step):
        if self.schedule == "invscaling":
            self.optimizer.lr = float(self.lr_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.optimizer.lr <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.optimizer.lr /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.optimizer.lr)
        return False


# fitted attributes kept as JSON (scalars and lists); arrays go to their own entries
_FITTED = ("n_iter_", "t_", "loss_", "best_loss_", "loss_curve_", "validation_scores_",
           "best_validation_score_", "validation_loss_curve_", "n_layers_", "n_outputs_",
           "out_activation_", "n_features_in_", "_no_improvement_count")


def _json_value(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return v


def _params_state(est):
    """The constructor parameters as JSON-ready values."""
    params = est.get_params()
    if params["random_state"] is not None and not isinstance(params["random_state"], int):
        raise ValueError("only an estimator whose random_state is None or an int can be "
                         f"saved, got {params['random_state']!r}")
    params["callbacks"] = None  # objects of the caller's: a loaded estimator has none
    cw = params.get("class_weight")
    if isinstance(cw, dict):  # JSON object keys are strings: keep the labels' types
        params["class_weight"] = {"pairs": [[_json_value(k), float(v)] for k, v in cw.items()]}
    return {k: _json_value(v) for k, v in params.items()}


def _params_from_state(params):
    params = dict(params)
    params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    cw = params.get("class_weight")
    if isinstance(cw, dict):
        params["class_weight"] = {k: v for k, v in cw["pairs"]}
    return params


def _copy_into(dst, src):
    dst[...] = src
    return dst


if TYPE_CHECKING:  # mixed into scikit-learn's estimators, which have no type information
    _Estimator = Any
else:
    _Estimator = object


class _FastbpMLP(_Estimator):
    """The parts of scikit-learn's ``BaseMultilayerPerceptron`` that fastbp replaces."""

    # ---------------------------------------------------------------- the network
    def _network(self, dtype):
        """The ``Network`` holding ``coefs_``/``intercepts_`` (rebuilt if they were replaced)."""
        net = getattr(self, "_net", None)
        if (net is not None and net.dtype == dtype and len(self.coefs_) == len(net.coefs)
                and all(c is n for c, n in zip(self.coefs_, net.coefs))
                and all(b is n for b, n in zip(self.intercepts_, net.intercepts))):
            return net
        sizes = [self.coefs_[0].shape[0]] + [b.shape[0] for b in self.intercepts_]
        net = Network(sizes, activation=self.activation, output=self.out_activation_,
                      loss=LOSS_OF_OUTPUT[self.out_activation_], dtype=dtype)
        slopes = getattr(self, "slopes_", None) or {}
        for l, W in enumerate(self.coefs_):
            net.coefs[l][...] = W
            net.intercepts[l][...] = self.intercepts_[l]
        for l, s in slopes.items():
            if l in net.slopes and net.slopes[l].shape == np.shape(s):
                net.slopes[l][...] = s
        self._attach(net)
        return net

    # ---------------------------------------------------------------- all-or-nothing fits
    def _fit(self, X, y, sample_weight=None, incremental=False):
        """scikit-learn's ``_fit``, undone entirely if it raises.

        scikit-learn replaces fitted attributes (the label binarizer, counters,
        the weights of a refit) before some of its checks, and a fit can stop
        on divergence part-way; an estimator that raised is left as it was.
        """
        reuses_weights = hasattr(self, "coefs_") and (incremental or self.warm_start)
        if reuses_weights and not self._is_classifier():
            y_arr = np.asarray(y)
            n_out = 1 if y_arr.ndim == 1 else y_arr.shape[1] if y_arr.ndim == 2 else None
            if n_out != self.n_outputs_:
                raise ValueError(f"y has shape {y_arr.shape}, but the fitted model has "
                                 f"{self.n_outputs_} output(s)")
        snapshot = self._snapshot()
        try:
            return super()._fit(X, y, sample_weight=sample_weight, incremental=incremental)
        except Exception:
            self._restore(snapshot)
            raise

    def _snapshot(self):
        """The attributes, plus copies of what a fit changes in place."""
        attributes = {k: list(v) if isinstance(v, list) else v for k, v in vars(self).items()}
        if isinstance(attributes.get("_random_state"), np.random.RandomState):
            generator = np.random.RandomState()
            generator.set_state(attributes["_random_state"].get_state())
            attributes["_random_state"] = generator
        net, schedule = attributes.get("_net"), attributes.get("_optimizer")
        # into buffers kept for the next call (partial_fit in a loop)
        in_place = [] if net is None else [
            (net.params, _copy_into(scratch_like(self, "_snapshot_params", net.params),
                                    net.params))]
        if schedule is not None:
            buffers = schedule.state.buffers
            in_place.append((buffers, _copy_into(
                scratch_like(self, "_snapshot_state", buffers), buffers)))
            counters = (schedule, schedule.state.step, schedule.optimizer.lr)
        else:
            counters = None
        return attributes, in_place, counters

    def _restore(self, snapshot):
        attributes, in_place, counters = snapshot
        vars(self).clear()
        vars(self).update(attributes)
        for array, saved in in_place:
            array[...] = saved
        if counters is not None:
            schedule, step, lr = counters
            schedule.state.step, schedule.optimizer.lr = step, lr

    def _initialize(self, y, layer_units, dtype):
        """scikit-learn's first allocation of a fit: refuse it first if it would not fit."""
        n_params = sum((a + 1) * b for a, b in zip(layer_units[:-1], layer_units[1:]))
        if self.solver == "lbfgs":  # the loss and gradient of all rows at once
            batch, parts = y.shape[0], 0
        else:
            batch = min(200 if self.batch_size == "auto" else self.batch_size, y.shape[0])
            parts = parts_for(self.n_jobs)
        # beyond a native fit's: scikit-learn's coefs and gradients, the best and packed copies
        check_fits(fit_bytes(n_params, sum(layer_units[1:]), layer_units[-1],
                             np.dtype(dtype).itemsize, y.shape[0], 0, batch, parts, n_state=2,
                             n_vectors=4),
                   f"fitting {'-'.join(map(str, layer_units))} on {y.shape[0]:,} rows")
        super()._initialize(y, layer_units, dtype)

    def _attach(self, net):
        self._net = net
        self.coefs_ = list(net.coefs)
        self.intercepts_ = list(net.intercepts)
        if net.slopes:
            self.slopes_ = dict(net.slopes)

    def _threads(self):
        """``(parts, threads)`` for ``n_jobs``; ``None`` outside the main thread runs on 1 thread.

        Fits started from worker threads (joblib's threading backend under
        ``GridSearchCV(n_jobs=k)``, for instance) run side by side, so each takes
        one core by default instead of all of them; joblib's process workers
        already get ``NUMBA_NUM_THREADS`` set to their share. The work is split
        into the same parts either way, so the results are the same.
        """
        parts = parts_for(check_n_jobs(self.n_jobs))
        allowed = (1 if self.n_jobs is None
                   and threading.current_thread() is not threading.main_thread() else None)
        return parts, threads_for(self.n_jobs, parts, allowed)

    @staticmethod
    def _dense(X, dtype):
        if scipy.sparse.issparse(X):
            X = X.toarray()
        return np.ascontiguousarray(X, dtype=dtype)

    def _targets(self, y, sample_weight, dtype):
        """``y`` as a float array, with the sample weights as a last column if any."""
        Y = np.asarray(y, dtype=dtype)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        if sample_weight is not None:
            Y = np.column_stack([Y, np.asarray(sample_weight, dtype=dtype)])
        return np.ascontiguousarray(Y)

    # ---------------------------------------------------------------- scikit-learn interop
    _SHARED_FITTED = ("n_iter_", "t_", "loss_", "best_loss_", "loss_curve_",
                      "validation_scores_", "best_validation_score_", "n_layers_",
                      "n_outputs_", "out_activation_", "n_features_in_", "feature_names_in_",
                      "classes_", "_label_binarizer", "_no_improvement_count")

    def to_torch(self, logits: bool = False) -> nn.Sequential:
        """The fitted network as a ``torch.nn.Sequential`` (needs PyTorch).

        Its output is the network's output activations: ``predict_proba`` of a
        multiclass or multilabel classifier, the probability of ``classes_[1]``
        as one column for a binary one, the ``(n_samples, n_outputs)``
        predictions of a regressor; ``logits=True`` leaves out the output
        activation (see ``fastbp.MLP.to_torch``).
        """
        check_is_fitted(self)
        require("torch", "to_torch", "torch")
        from .interop import torch as torch_interop
        return torch_interop.to_torch(self._network(self.coefs_[0].dtype), logits=logits)

    def to_onnx(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted estimator as an ONNX graph to ``path`` (needs ``onnx``).

        Input ``X`` (``(n_samples, n_features)``, the fitted dtype); outputs
        ``output``, ``predict_proba`` of a classifier (both columns for a binary
        one) or the ``(n_samples, n_outputs)`` predictions of a regressor, and for
        classifiers ``label``, what ``predict`` returns (in ``classes_``). Opset
        17; the write is atomic. Returns the path.
        """
        check_is_fitted(self)
        require("onnx", "to_onnx", "onnx")
        from .interop import onnx as onnx_interop
        classes = self.classes_ if self._is_classifier() else None
        return onnx_interop.write(self._network(self.coefs_[0].dtype), path, classes)

    def to_sklearn(self) -> Any:
        """An equivalent scikit-learn estimator (same parameters, copies of the weights).

        Its predictions equal this estimator's up to rounding. Raises
        ``ValueError`` for an activation scikit-learn does not have.
        """
        theirs = self._sklearn_class()
        params = {k: v for k, v in self.get_params().items()
                  if k in theirs._get_param_names()}
        if params["activation"] not in ("identity", "logistic", "tanh", "relu"):
            raise ValueError(f"scikit-learn has no {params['activation']!r} activation; "
                             "to_sklearn needs identity, logistic, tanh or relu")
        est = theirs(**params)
        if hasattr(self, "coefs_"):
            est.coefs_ = [c.copy() for c in self.coefs_]
            est.intercepts_ = [b.copy() for b in self.intercepts_]
            for name in self._SHARED_FITTED:
                if hasattr(self, name):
                    setattr(est, name, getattr(self, name))
        return est

    @classmethod
    def from_sklearn(cls, est: Any) -> Self:
        """A fastbp estimator equivalent to a scikit-learn one (fitted or not)."""
        theirs = cls._sklearn_class()
        if type(est) is not theirs:
            raise ValueError(f"from_sklearn needs a {theirs.__name__}, got {type(est).__name__}")
        ours = cls(**est.get_params())
        if hasattr(est, "coefs_"):
            for name in cls._SHARED_FITTED:
                if hasattr(est, name):
                    setattr(ours, name, getattr(est, name))
            ours.coefs_ = [c.copy() for c in est.coefs_]
            ours.intercepts_ = [b.copy() for b in est.intercepts_]
            ours._network(ours.coefs_[0].dtype)
        return ours

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the estimator (parameters, fitted state, optimizer state) to ``path``.

        The same format as ``MLP.save`` (``fastbp.io``): plain arrays plus JSON,
        read back by ``fastbp.load`` without unpickling; the write is atomic.
        """
        return io.save(self, path)

    def _to_state(self):
        """``(meta, arrays)`` for ``fastbp.io``: parameters, fitted state, optimizer state."""
        meta = {"params": _params_state(self), "fitted": None}
        if not hasattr(self, "coefs_"):
            return meta, {"params": np.zeros(0), "optimizer_state": np.zeros((0, 0))}
        net = self._network(self.coefs_[0].dtype)
        schedule = getattr(self, "_optimizer", None)
        arrays = {"params": net.params,
                  "optimizer_state": (schedule.state.buffers if schedule is not None
                                      else np.zeros((0, net.n_params), dtype=net.dtype))}
        fitted = {name: _json_value(getattr(self, name)) for name in _FITTED
                  if hasattr(self, name)}
        fitted["layer_sizes"] = list(net.layer_sizes)
        fitted["dtype"] = net.dtype.name
        if schedule is not None:
            fitted["optimizer"] = {"lr": schedule.optimizer.lr, "step": schedule.state.step}
        if hasattr(self, "_best_coefs"):
            arrays["best_params"] = np.concatenate(
                [a.ravel() for a in self._best_coefs + self._best_intercepts])
        if hasattr(self, "_label_binarizer"):
            lb = self._label_binarizer
            arrays["classes"] = np.asarray(lb.classes_)
            fitted["label_binarizer"] = {"y_type_": lb.y_type_, "neg_label": lb.neg_label,
                                         "pos_label": lb.pos_label,
                                         "sparse_input_": bool(lb.sparse_input_)}
        if hasattr(self, "feature_names_in_"):
            arrays["feature_names"] = np.asarray(self.feature_names_in_, dtype=str)
        meta["fitted"] = fitted
        return meta, arrays

    @classmethod
    def _from_state(cls, meta, arrays):
        """The estimator ``_to_state`` described; ``io.ModelFileError`` for what does not fit."""
        from sklearn.preprocessing import LabelBinarizer
        try:
            est = cls(**_params_from_state(meta["params"]))
            est._validate_params()
        except (KeyError, TypeError, ValueError) as exc:
            raise io.ModelFileError(f"the estimator's parameters are rejected ({exc})") from None
        fitted = meta.get("fitted")
        if fitted is None:
            return est
        try:
            output = fitted["out_activation_"]
            net = Network(fitted["layer_sizes"], activation=est.activation, output=output,
                          loss=LOSS_OF_OUTPUT[output], dtype=fitted["dtype"])
        except (KeyError, TypeError, ValueError) as exc:
            raise io.ModelFileError(f"the network cannot be rebuilt ({exc})") from None
        io.check_parameters(arrays["params"], net.n_params, net.dtype)
        net.params[...] = arrays["params"]
        for name in _FITTED:
            if name in fitted:
                setattr(est, name, fitted[name])
        est._attach(net)
        if "best_params" in arrays:
            best, offset = arrays["best_params"], 0
            est._best_coefs, est._best_intercepts = [], []
            for target, shapes in ((est._best_coefs, [c.shape for c in est.coefs_]),
                                   (est._best_intercepts, [b.shape for b in est.intercepts_])):
                for shape in shapes:
                    size = int(np.prod(shape))
                    target.append(best[offset:offset + size].reshape(shape).copy())
                    offset += size
        if "label_binarizer" in fitted:
            info = fitted["label_binarizer"]
            lb = LabelBinarizer(neg_label=info["neg_label"], pos_label=info["pos_label"])
            lb.classes_ = arrays["classes"]
            lb.y_type_, lb.sparse_input_ = info["y_type_"], info["sparse_input_"]
            est._label_binarizer = lb
            est.classes_ = lb.classes_
        if "feature_names" in arrays:
            est.feature_names_in_ = arrays["feature_names"].astype(object)
        if "optimizer" in fitted:
            schedule = _Schedule(est, net.params, net.n_coefs)
            state = arrays["optimizer_state"]
            if state.shape != schedule.state.buffers.shape or state.dtype != net.dtype:
                raise io.ModelFileError(f"optimizer state {state.shape} does not fit "
                                        f"the {est.solver} solver")
            schedule.state.buffers[...] = state
            schedule.state.step = int(fitted["optimizer"]["step"])
            schedule.optimizer.lr = float(fitted["optimizer"]["lr"])
            est._optimizer = schedule
        return est

    # ---------------------------------------------------------------- prediction
    def _forward_pass_fast(self, X, check_input=True):
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        dtype = self.coefs_[0].dtype
        net = self._network(dtype)
        X = self._dense(X, dtype)
        if X.shape[0] == 0:
            return np.empty((0, net.layer_sizes[-1]), dtype=dtype)
        _, threads = self._threads()
        return net.forward(X, n_jobs=self.n_jobs, allowed_threads=threads)

    # ---------------------------------------------------------------- stochastic solvers
    def _fit_stochastic(self, X, y, sample_weight, activations, deltas, coef_grads,
                        intercept_grads, layer_units, incremental):
        dtype = self.coefs_[0].dtype
        net = self._network(dtype)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = _Schedule(self, net.params, net.n_coefs)
        schedule = self._optimizer

        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        callbacks = self._callbacks()
        early_stopping = self.early_stopping
        if early_stopping:
            # the split scikit-learn makes, from the same random state
            should_stratify = self._is_classifier() and self.n_outputs_ == 1
            stratify = y if should_stratify else None
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            parts = train_test_split(*arrays, random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, y_train, y_val = parts[:4]
            sw_train, sw_val = (None, None) if sample_weight is None else parts[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            Y_val_weighted = self._targets(y_val, sw_val, dtype)
            if self._is_classifier():
                y_val = self._label_binarizer.inverse_transform(y_val)
            if not hasattr(self, "validation_loss_curve_") or not incremental:
                self.validation_loss_curve_ = []
        else:
            X_train, y_train, sw_train = X, y, sample_weight
            X_val = y_val = sw_val = None

        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than "
                              "sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        X_train = self._dense(X_train, dtype)
        Y_train = self._targets(y_train, sw_train, dtype)
        parts, threads = self._threads()
        epochs = 1 if incremental else self.max_iter
        strategy = resolve("auto", net.layout, batch_size, parts, net.dtype,
                           steps=epochs * -(-n_samples // batch_size))
        steps = KernelEpochs(net, X_train, Y_train, schedule.optimizer, schedule.state,
                             batch_size, strategy, parts, l2_per_weight=float(self.alpha))
        sample_idx = np.arange(n_samples, dtype=int)

        def order(epoch):
            nonlocal sample_idx
            if self.shuffle:
                sample_idx = _shuffle(sample_idx, random_state=self._random_state)
            return sample_idx

        def end_epoch(epoch, loss, start):
            self.n_iter_ += 1
            self.loss_ = loss
            self.t_ += n_samples
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            if early_stopping:
                self.validation_loss_curve_.append(
                    self._validation_loss(net, X_val, Y_val_weighted))
            self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
            logs = {"loss": self.loss_}
            if early_stopping:
                logs.update(val_score=self.validation_scores_[-1],
                            val_loss=self.validation_loss_curve_[-1])
            # every finished epoch reaches every callback, as in a native fit
            asked = [cb(epoch, logs, self) is True for cb in callbacks]
            if any(asked):
                return {"loss": f"{self.loss_:.4g}"}, True
            schedule.iteration_ends(self.t_)
            postfix = {"loss": f"{self.loss_:.4g}",
                       "samples_per_s": f"{n_samples / (time.perf_counter() - start):.3g}"}
            if self._no_improvement_count > self.n_iter_no_change:
                if early_stopping:
                    msg = ("Validation score did not improve more than "
                           "tol=%f for %d consecutive epochs."
                           % (self.tol, self.n_iter_no_change))
                else:
                    msg = ("Training loss did not improve more than tol=%f"
                           " for %d consecutive epochs." % (self.tol, self.n_iter_no_change))
                if schedule.trigger_stopping(msg, self.verbose):
                    return postfix, True
                self._no_improvement_count = 0
            if incremental:
                return postfix, True
            if self.n_iter_ == self.max_iter:
                warnings.warn(
                    "Stochastic Optimizer: Maximum iterations (%d) "
                    "reached and the optimization hasn't converged yet."
                    % self.max_iter, ConvergenceWarning)
            return postfix, False

        def diverged(epoch, step):
            if early_stopping and self.on_divergence == "record":
                record_divergence(epoch)
                return
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed. (fastbp stopped before step "
                f"{step + 1} of epoch {epoch + 1}, whose loss, weights or optimizer state were "
                "not finite: the weights are those from before it.)")

        def record_divergence(epoch):
            # scikit-learn trains on with non-finite weights: this epoch and every later one
            # scores NaN, which its patience never counts, until max_iter; then it restores
            # the best weights. The same record, without computing those epochs.
            for _ in range(epoch, epochs):
                self.n_iter_ += 1
                self.t_ += n_samples
                self.loss_ = np.nan
                self.loss_curve_.append(np.nan)
                self.validation_scores_.append(np.nan)
                self.validation_loss_curve_.append(np.nan)
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                          "optimization hasn't converged yet." % self.max_iter,
                          ConvergenceWarning)

        self.n_iter_ = 0
        try:
            fit_loop(GuardedEpochs(steps, net.params, schedule.state, owner=self), epochs,
                     order, end_epoch, diverged, thread_counts(strategy, parts, threads),
                     Progress(epochs, self.progress))
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if early_stopping:
            # restore the best weights, into the flat buffer the views share
            for view, best in zip(self.coefs_ + self.intercepts_,
                                  self._best_coefs + self._best_intercepts):
                view[...] = best

    def _validation_loss(self, net, X_val, Y_val):
        """Mean (weighted) loss of the validation rows, without the L2 penalty."""
        X = self._dense(X_val, net.dtype)
        loss = net.evaluate(X, Y_val)["loss"]
        return float(loss * X.shape[0] / batch_weight(read_only(Y_val), net.layer_sizes[-1]))

    # ---------------------------------------------------------------- L-BFGS
    def _fit_lbfgs(self, X, y, sample_weight, activations, deltas, coef_grads,
                   intercept_grads, layer_units):
        dtype = self.coefs_[0].dtype
        net = self._network(dtype)
        self._packing(layer_units)
        X = self._dense(X, dtype)
        Y = self._targets(y, sample_weight, dtype)
        norm = batch_weight(read_only(Y), net.layer_sizes[-1])
        grads = np.empty_like(net.params)
        workspace = net.layout.workspace(X.shape[0], dtype)
        alpha = float(self.alpha)
        functions = net.functions()
        callbacks = self._callbacks()

        def after_iteration(intermediate_result):
            net.params[...] = intermediate_result.x  # the estimator holds the iterate
            logs = {"loss": float(intermediate_result.fun)}
            if any([cb(after_iteration.count, logs, self) is True for cb in callbacks]):
                raise StopIteration  # scipy ends the minimisation there
            after_iteration.count += 1
        after_iteration.count = 0

        def loss_and_grad(x):
            net.params[...] = x
            loss = net.gradient(X, Y, grads, workspace, l2_per_weight=alpha, norm=norm,
                                functions=functions)
            return float(loss), grads.astype(np.float64)

        # all rows in one product on BLAS's threads, one per part (a call that runs alone)
        parts, _ = self._threads()
        with kernel_threads(None, parts):
            result = scipy.optimize.minimize(
                loss_and_grad, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
                callback=after_iteration if callbacks else None)
        self.n_iter_ = min(result.nit, self.max_iter)
        if result.status != 0:
            warnings.warn(f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                          f"(status={result.status}):\n{result.message}\n"
                          "Increase the number of iterations to improve the convergence "
                          f"(max_iter={self.max_iter}).", ConvergenceWarning, stacklevel=3)
        self.loss_ = float(result.fun)
        net.params[...] = result.x

    def _callbacks(self):
        """``callbacks`` as a list, each checked to be callable."""
        callbacks = list(self.callbacks or [])
        for cb in callbacks:
            if not callable(cb):
                raise ValueError("callbacks must be callables called as callback(epoch, "
                                 f"logs, estimator), got {cb!r}")
        return callbacks

    def _packing(self, layer_units):
        """scikit-learn's offsets of each layer's weights and biases in the flat vector its
        L-BFGS and ``_loss_grad_lbfgs`` take (all weights, then all biases)."""
        sizes = list(zip(layer_units[:-1], layer_units[1:]))
        ends = np.cumsum([a * b for a, b in sizes] + [b for _, b in sizes]).tolist()
        starts = [0] + ends[:-1]
        n = len(sizes)
        self._coef_indptr = [(starts[i], ends[i], sizes[i]) for i in range(n)]
        self._intercept_indptr = [(starts[n + i], ends[n + i]) for i in range(n)]

    def _is_classifier(self):
        return is_classifier(self)


class MLPClassifier(_FastbpMLP, _SkMLPClassifier):
    """scikit-learn's ``MLPClassifier``, trained and evaluated by fastbp's kernels.

    Parameters are scikit-learn's (see its documentation), plus, keyword-only:

    n_jobs : int, optional
        Threads for the kernels (-1: all cores; default: Numba's setting).
    class_weight : dict, 'balanced' or None
        Weights of the classes, multiplied into the sample weights
        (``sklearn.utils.class_weight.compute_sample_weight``). ``'balanced'``
        is refused by ``partial_fit``, whose batches do not show the class balance.
    progress : bool, default False
        Show a progress bar over the epochs (tqdm).
    on_divergence : {'record', 'raise'}, default 'record'
        What an ``early_stopping`` fit does when the loss stops being finite.
        ``'record'`` is scikit-learn's behaviour: the fit ends with the best
        weights, the remaining epochs up to ``max_iter`` recorded as NaN in
        ``loss_curve_`` and ``validation_scores_``. ``'raise'`` raises
        scikit-learn's "non-finite parameter weights" ``ValueError`` and leaves
        the estimator as it was, as every fit without early stopping does.
    callbacks : list of callables, optional
        Called as ``callback(epoch, logs, estimator)`` after every epoch of
        ``sgd``/``adam`` (``logs``: ``loss``, and with ``early_stopping``
        ``val_score`` and ``val_loss``) and every iteration of ``lbfgs``
        (``loss``); one that returns True ends the fit there. The native
        callbacks work (``fastbp.callbacks.Checkpoint`` saves the estimator).
        Not saved with the estimator.

    ``activation`` may be any fastbp hidden activation (``prelu``'s learnable
    slopes are kept in ``slopes_``). With ``early_stopping``,
    ``validation_loss_curve_`` holds the validation loss of every epoch.
    """

    _parameter_constraints = {**_SkMLPClassifier._parameter_constraints, **_EXTRA_CONSTRAINTS,
                              "class_weight": [dict, StrOptions({"balanced"}), None]}

    @staticmethod
    def _sklearn_class():
        return _SkMLPClassifier

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: str = "relu", *,
                 solver: Literal["lbfgs", "sgd", "adam"] = "adam", alpha: float = 0.0001,
                 batch_size: int | Literal["auto"] = "auto",
                 learning_rate: Literal["constant", "invscaling", "adaptive"] = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: int | np.random.RandomState | None = None,
                 tol: float = 0.0001, verbose: bool = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-08,
                 n_iter_no_change: int = 10, max_fun: int = 15000, n_jobs: int | None = None,
                 class_weight: dict[Any, float] | Literal["balanced"] | None = None,
                 progress: bool = False, on_divergence: Literal["record", "raise"] = "record",
                 callbacks: list[_Callback] | None = None) -> None:
        _store_params(self, locals())
        self.loss = "log_loss"  # not a parameter; scikit-learn's _backprop reads it

    def _class_weighted(self, y, sample_weight):
        if self.class_weight is None:
            return sample_weight
        weights = compute_sample_weight(self.class_weight, y)
        return weights if sample_weight is None else weights * np.asarray(sample_weight)

    def fit(self, X: _Data, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None
            ) -> Self:
        """Fit to ``X`` and ``y`` (see scikit-learn's ``MLPClassifier.fit``)."""
        return super().fit(X, y, sample_weight=self._class_weighted(y, sample_weight))

    @available_if(lambda est: est._check_solver())  # scikit-learn's: not for lbfgs
    def partial_fit(self, X: _Data, y: npt.ArrayLike,
                    sample_weight: npt.ArrayLike | None = None,
                    classes: npt.ArrayLike | None = None) -> Self:
        """One epoch over ``X``, ``y`` (see scikit-learn's ``MLPClassifier.partial_fit``)."""
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise ValueError("class_weight='balanced' is not supported by partial_fit: "
                             "pass a dict of class weights")
        return super().partial_fit(X, y, sample_weight=self._class_weighted(y, sample_weight),
                                   classes=classes)


class MLPRegressor(_FastbpMLP, _SkMLPRegressor):
    """scikit-learn's ``MLPRegressor``, trained and evaluated by fastbp's kernels.

    Parameters are scikit-learn's (``loss`` is ``'squared_error'`` or
    ``'poisson'``), plus the keyword-only ``n_jobs``, ``progress``, ``on_divergence`` and
    ``callbacks`` of
    ``MLPClassifier``; ``activation`` may be any fastbp hidden activation.
    """

    _parameter_constraints = {**_SkMLPRegressor._parameter_constraints, **_EXTRA_CONSTRAINTS}

    @staticmethod
    def _sklearn_class():
        return _SkMLPRegressor

    def __init__(self, loss: Literal["squared_error", "poisson"] = "squared_error",
                 hidden_layer_sizes: int | Sequence[int] = (100,), activation: str = "relu",
                 *, solver: Literal["lbfgs", "sgd", "adam"] = "adam", alpha: float = 0.0001,
                 batch_size: int | Literal["auto"] = "auto",
                 learning_rate: Literal["constant", "invscaling", "adaptive"] = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: int | np.random.RandomState | None = None,
                 tol: float = 0.0001, verbose: bool = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-08,
                 n_iter_no_change: int = 10, max_fun: int = 15000, n_jobs: int | None = None,
                 progress: bool = False, on_divergence: Literal["record", "raise"] = "record",
                 callbacks: list[_Callback] | None = None) -> None:
        _store_params(self, locals())
