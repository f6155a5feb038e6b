"""The native model: :class:`MLP`, a façade over a ``fastbp.network.Network`` (the
architecture, the flat parameter buffer and the kernels) and ``fastbp.training``
(the epoch loop)."""
import os
import typing

import numpy as np
import numpy.typing as npt

from . import io
from ._guard import GuardedEpochs
from ._optional import require
from ._threads import kernel_threads
from ._validation import check_array
from .history import History
from .kernels.losses import batch_weight
from .kernels.records import read_only
from .labels import fit_targets, label_classes, read_targets
from .network import Network, check_sample_weight, with_weights
from .optim import Optimizer, OptimizerState
from .training import (ALONE, DivergenceError, EpochRecord, Progress, check_l2, check_metrics,
                       fit_loop, interactive, plan_fit)

__all__ = ["MLP", "DivergenceError"]

# path-like arguments, array-like data, and the callbacks' signature (epoch, logs, model)
_Path = typing.Union[str, "os.PathLike[str]"]
_Callback = typing.Callable[[int, typing.Dict[str, float], "MLP"], typing.Any]

# optional arrays a model trained by the command line keeps: its labels and standardisation
CLI_ENTRIES = ("classes", "input_mean", "input_scale", "target_mean", "target_scale")


class MLP:
    """A multilayer perceptron trained by backpropagation in Numba kernels.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, input first: ``[n_features, hidden..., n_outputs]``.
    activation : str or list of str, default 'relu'
        Hidden activation, one name for all hidden layers or one per layer:
        any of ``fastbp.architecture.HIDDEN_ACTIVATIONS`` (identity, logistic,
        tanh, relu, leaky_relu, prelu, elu, ...; the registry
        ``fastbp.kernels.activations`` lists them with their formulas).
    output : str, default 'softmax'
        Output activation: softmax or any hidden activation.
    loss : str or None, default None
        ``cross_entropy`` (softmax output, integer class indices, or labels of any
        other kind, see ``classes_``),
        ``binary_cross_entropy`` (logistic output, 0/1 or multilabel indicator
        targets) or ``squared_error`` (real targets, ``½·mean Σ (a−y)²``), or
        any other of ``fastbp.architecture.PUBLIC_LOSSES``.
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
    network : fastbp.network.Network
        The architecture, the buffer and the kernels under the model.
    history_ : History or None
        Record of the last ``fit``.
    classes_ : array
        Set by the first ``fit`` of a cross-entropy model on 1-D labels that are not
        numbers (strings, or any objects): the sorted distinct labels, one per output
        unit, in the order of ``predict_proba``'s columns. From then on ``predict``
        answers labels from ``classes_``, and every ``y`` (of ``fit``, ``evaluate``,
        ``loss_and_grad``, validation data) is read as such labels. Integer class
        indices neither set nor need it. (The command line sets ``classes_`` on the
        models it trains and maps their outputs to labels itself: ``predict`` of such a
        model answers indices.)
    """

    def __init__(self, layer_sizes: typing.Sequence[int],
                 activation: typing.Union[str, typing.Sequence[str]] = "relu",
                 output: str = "softmax", loss: typing.Optional[str] = None,
                 dtype: npt.DTypeLike = "float32", seed: typing.Optional[int] = None,
                 gamma: typing.Optional[float] = None) -> None:
        self.network = Network(layer_sizes, activation, output, loss, dtype, gamma, seed)
        self.seed = seed
        self._rng = np.random.RandomState(seed)
        self.coefs_ = self.network.coefs
        self.intercepts_ = self.network.intercepts
        self.slopes_ = self.network.slopes
        self._optimizer: typing.Optional[Optimizer] = None
        self._opt_state: typing.Optional[OptimizerState] = None
        self.history_: typing.Optional[History] = None
        # whether a fit set classes_ from labels, so that predict answers them
        self._predicts_labels = False
        self.network.initialize(self._rng)

    # the architecture, as given (checked) to the constructor
    layer_sizes = property(lambda self: self.network.layer_sizes)
    activation = property(lambda self: self.network.activation)
    output = property(lambda self: self.network.output)
    loss = property(lambda self: self.network.loss)
    dtype = property(lambda self: self.network.dtype)
    gamma = property(lambda self: self.network.gamma)
    n_params = property(lambda self: self.network.n_params)
    n_coefs = property(lambda self: self.network.n_coefs)
    is_classifier = property(lambda self: self.network.is_classifier)

    @property
    def params(self) -> np.ndarray:
        return self.network.params

    @params.setter
    def params(self, value: npt.ArrayLike) -> None:
        value = check_array(value, "params", self.dtype, ndim=1)
        if value.shape != self.network.params.shape:
            raise ValueError(f"params must have shape {self.network.params.shape}, "
                             f"got {value.shape}")
        self.network.params[...] = value

    @property
    def optimizer(self) -> typing.Optional[Optimizer]:
        """The optimizer of the last ``fit`` (``None`` before): pass it to ``fit`` to continue
        with its state, e.g. after ``fastbp.load``."""
        return self._optimizer

    @property
    def optimizer_state(self) -> typing.Optional[OptimizerState]:
        """The state of ``optimizer`` (``fastbp.optim.OptimizerState``: buffers and step
        count), or ``None`` before the first ``fit``."""
        return self._opt_state

    def __repr__(self) -> str:
        return (f"MLP({self.network.describe()}, loss={self.loss!r}, "
                f"dtype={self.dtype.name}, n_params={self.n_params})")

    def astype(self, dtype: npt.DTypeLike) -> "MLP":
        """A copy of the model (architecture and parameters) in another dtype."""
        clone = MLP(self.layer_sizes, self.activation, self.output, self.loss, dtype,
                    self.seed, self.gamma)
        clone.network.params[...] = self.network.params
        if self._predicts_labels:  # it answers the same labels
            clone.classes_, clone._predicts_labels = self.classes_, True
        return clone

    # ------------------------------------------------------------------ saving
    def save(self, path: _Path) -> typing.Any:
        """Write the model, its optimizer state, shuffling generator and history to ``path``.

        The file is a ``.npz`` of plain arrays plus JSON metadata (``fastbp.io``);
        ``fastbp.load(path)`` reads it back without executing anything from it.
        The write is atomic: a crash while saving leaves any previous file intact.
        """
        return io.save(self, path)

    def _to_state(self):
        """``(meta, arrays)`` for ``fastbp.io``: everything a resumed fit needs."""
        opt, state = self._optimizer, self._opt_state
        kind, keys, pos, has_gauss, cached = self._rng.get_state()
        arrays = {"params": self.params,
                  "optimizer_state": (state.buffers if state is not None
                                      else np.zeros((0, self.n_params), dtype=self.dtype)),
                  "rng_keys": np.asarray(keys, dtype=np.uint32)}
        for name in CLI_ENTRIES:
            value = getattr(self, name + "_", None)
            if value is not None:
                arrays[name] = np.asarray(value)
                if arrays[name].dtype.kind == "O":
                    arrays[name] = arrays[name].astype(str)
        meta = {
            "architecture": {"layer_sizes": list(self.layer_sizes),
                             "activation": list(self.activation), "output": self.output,
                             "loss": self.loss, "dtype": self.dtype.name, "seed": self.seed,
                             "gamma": self.gamma},
            "optimizer": None if opt is None or state is None else {
                **opt._to_state(), "step": int(state.step), "n_decay": int(state.n_decay)},
            "rng": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss),
                    "cached_gaussian": float(cached)},
            "history": None if self.history_ is None else self.history_._to_state(),
            "feature_names": getattr(self, "feature_names_", None),
        }
        if self._predicts_labels:  # files of other models stay as they were
            meta["predicts_labels"] = True
        return meta, arrays

    @classmethod
    def _from_state(cls, meta, arrays):
        """The model ``_to_state`` described; ``io.ModelFileError`` for what does not fit."""
        if "rng_keys" not in arrays:
            raise io.ModelFileError("not a fastbp model file (missing rng_keys)")
        arch = meta["architecture"]
        try:
            model = cls(arch["layer_sizes"], activation=arch["activation"],
                        output=arch["output"], loss=arch["loss"], dtype=arch["dtype"],
                        seed=arch["seed"], gamma=arch["gamma"])
        except (KeyError, TypeError, ValueError) as exc:
            raise io.ModelFileError(f"the architecture cannot be rebuilt ({exc})") from None
        io.check_parameters(arrays["params"], model.n_params, model.dtype)
        model.network.params[...] = arrays["params"]
        spec = meta.get("optimizer")
        if spec is not None:
            try:
                opt = Optimizer._from_state(spec)
            except ValueError as exc:
                raise io.ModelFileError(str(exc)) from None
            state = arrays["optimizer_state"]
            if state.shape != (opt.n_buffers, model.n_params) or state.dtype != model.dtype:
                raise io.ModelFileError(f"optimizer state {state.shape} does not fit "
                                        f"{type(opt).__name__} over {model.n_params} parameters")
            model._optimizer = opt
            model._opt_state = OptimizerState(state.copy(), int(spec["n_decay"]))
            model._opt_state.step = int(spec["step"])
        rng = meta["rng"]
        model._rng.set_state((rng["kind"], arrays["rng_keys"], rng["pos"], rng["has_gauss"],
                              rng["cached_gaussian"]))
        model.history_ = History._from_state(meta.get("history"))
        for name in CLI_ENTRIES:
            if name in arrays:
                setattr(model, name + "_", arrays[name])
        if meta.get("feature_names") is not None:
            model.feature_names_ = list(meta["feature_names"])
        if meta.get("predicts_labels"):
            if "classes" not in arrays or len(arrays["classes"]) != model.layer_sizes[-1]:
                raise io.ModelFileError("the file says the model predicts labels, but its "
                                        "classes do not match its output layer")
            model._predicts_labels = True
        return model

    # ------------------------------------------------------------------ interop
    def to_torch(self, logits: bool = False) -> typing.Any:
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
        return torch_interop.to_torch(self.network, logits=logits)

    @classmethod
    def from_torch(cls, sequential: typing.Any, output: typing.Optional[str] = None,
                   loss: typing.Optional[str] = None,
                   dtype: typing.Optional[npt.DTypeLike] = None) -> "MLP":
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

    def to_onnx(self, path: _Path) -> typing.Any:
        """Write the model as an ONNX graph to ``path`` (needs the ``onnx`` package).

        Input ``X`` (``(n_samples, n_features)``, the model's dtype); outputs
        ``output`` (``predict_proba`` of a classifier, the ``(n_samples, n_outputs)``
        predictions of a regressor) and, for classifiers, ``label`` (``predict``:
        int64, or the labels of ``classes_`` when a fit set it). Opset 17; the
        write is atomic. Returns the path.
        """
        require("onnx", "to_onnx", "onnx")
        from .interop import onnx as onnx_interop
        return onnx_interop.write(self.network, path,
                                  self.classes_ if self._predicts_labels else None)

    # ------------------------------------------------------------------ labels
    def _read_labels(self, y):
        """``y`` as indices when it holds labels read through ``classes_``, else as given."""
        classes, _ = label_classes(self.network, getattr(self, "classes_", None),
                                   self._predicts_labels, y)
        return read_targets(y, classes, "y")

    # ------------------------------------------------------------------ inference
    def predict_proba(self, X: npt.ArrayLike) -> np.ndarray:
        """Output probabilities ``(n_samples, n_outputs)`` of a softmax or logistic model
        (columns in the order of ``classes_`` when a fit set it)."""
        if not self.is_classifier:
            raise ValueError(f"predict_proba needs a classification loss, this model "
                             f"uses {self.loss!r}; use predict")
        return self.network.forward(self.network.check_X(X))

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """Class indices (cross-entropy), or labels from ``classes_`` when a fit set it;
        0/1 indicators (binary cross-entropy) or outputs.

        Returns ``(n_samples,)`` when the model has one output (or is a
        softmax classifier), else ``(n_samples, n_outputs)``.
        """
        predicted = self.network.predictions(self.network.forward(self.network.check_X(X)))
        return self.classes_[predicted] if self._predicts_labels else predicted

    def evaluate(self, X: npt.ArrayLike, y: npt.ArrayLike,
                 sample_weight: typing.Optional[npt.ArrayLike] = None
                 ) -> typing.Dict[str, float]:
        """Mean loss on ``(X, y)`` plus scores: ``accuracy``, macro ``f1`` and ``log_loss``
        (classification) or ``r2`` and ``mae`` (regression).

        Accuracy of a logistic model counts a sample as right when all its
        labels are (subset accuracy, as scikit-learn). ``sample_weight``
        ``(n_samples,)`` (finite, >= 0) makes the loss and every score weighted
        means, as scikit-learn's scores with ``sample_weight``.
        """
        X = self.network.check_X(X)
        Y = self.network.check_targets(self._read_labels(y), X.shape[0])
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        scores = self.network.evaluate(X, Y, sample_weight)
        if not np.isfinite(scores["loss"]):
            raise ValueError("the loss is not finite: the forward pass overflowed (the inputs "
                             "or the weights are too large)")
        return scores

    def loss_and_grad(self, X: npt.ArrayLike, y: npt.ArrayLike, l2: float = 0.0,
                      sample_weight: typing.Optional[npt.ArrayLike] = None
                      ) -> typing.Tuple[float, np.ndarray]:
        """Mean loss (+ ``l2/2 ‖W‖²``) of ``(X, y)`` and its gradient as a new flat array.

        For custom training loops: the gradient has the layout of ``params``
        and can be given to an optimizer's ``update``. With ``sample_weight``
        ``(n_samples,)`` the loss is the weighted mean ``Σ wᵢ lossᵢ / Σ wᵢ``, as in
        ``fit``.
        """
        X = self.network.check_X(X)
        Y = self.network.check_targets(self._read_labels(y), X.shape[0])
        l2 = check_l2(l2)
        norm = None
        if sample_weight is not None:
            Y = with_weights(Y, check_sample_weight(sample_weight, X.shape[0], self.dtype))
            norm = batch_weight(read_only(Y), self.layer_sizes[-1])  # as the epoch kernels
        grads = np.empty_like(self.params)
        workspace = self.network.layout.workspace(X.shape[0], self.dtype)
        with kernel_threads(None, 1):
            loss = self.network.gradient(X, Y, grads, workspace, l2=l2, norm=norm)
        return float(loss), grads

    # ------------------------------------------------------------------ training
    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike,
            optimizer: typing.Optional[Optimizer] = None, epochs: int = 10,
            batch_size: int = 32, shuffle: bool = True,
            validation_data: typing.Optional[typing.Sequence[typing.Any]] = None,
            validation_fraction: typing.Optional[float] = None,
            patience: typing.Optional[int] = None, restore_best: bool = True,
            callbacks: typing.Sequence[_Callback] = (), verbose: int = 1,
            n_jobs: typing.Optional[int] = None, strategy: str = "auto",
            on_divergence: str = "warn", comm: typing.Any = None,
            sample_weight: typing.Optional[npt.ArrayLike] = None,
            class_weight: typing.Union[typing.Mapping[typing.Any, float], str, None] = None,
            metrics: typing.Optional[typing.Sequence[str]] = None) -> History:
        """Train with minibatches, one kernel call per epoch.

        Parameters
        ----------
        X : (n_samples, n_features) array
        y : targets, see the class docstring for each loss
            For a cross-entropy model also labels of any kind, see ``classes_``.
        optimizer : fastbp.optim optimizer, default ``Adam()``
            Its state carries over to the next ``fit`` with the same object;
            its hyper-parameters are read at every ``fit``.
        epochs : int, default 10
        batch_size : int, default 32 (capped at the number of training samples)
        shuffle : bool, default True
            Draw a new order of the samples every epoch.
        validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
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
            0: silent; 1: a progress bar when stderr is a terminal or the fit
            runs in a Jupyter notebook (a widget there); 2: one line per epoch.
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
            and warns on divergence). ``sample_weight`` and ``class_weight`` are
            not supported there, nor a first fit on labels (``classes_``).
        sample_weight : (n_samples,) array, optional
            Per-sample weights (finite, >= 0, not all zero): every batch's loss
            and gradient become the weighted mean ``Σ wᵢ lossᵢ / Σ wᵢ`` (an
            integer weight k counts a sample k times). Rows of weight 0 are left
            out of the training batches (their share of a batch's mean is 0; left
            in, a batch of only such rows would have no mean). Rows held out by
            ``validation_fraction`` keep their weights, so the validation loss
            and the ``metrics`` are weighted the same way; ``validation_data``
            may carry its own weights as a third item.
        class_weight : dict {label: weight} or 'balanced', optional
            Classifiers only (1-D labels, or 0/1 targets of one logistic output):
            each sample's weight is multiplied by its class's. Labels not named
            weigh 1; a label that ``y`` does not hold is an error. 'balanced'
            gives ``n_samples / (n_classes · count)`` from ``y`` (before any
            validation split), as scikit-learn's ``compute_class_weight``. It
            applies to the validation rows too (labels of ``validation_data``
            the table does not name weigh 1).
        metrics : sequence of str, optional
            Further validation scores to compute after every epoch (needs
            validation data): ``'accuracy'``, ``'f1'`` (macro) and ``'log_loss'``
            for classifiers, ``'r2'`` and ``'mae'`` for regressions, as
            ``evaluate`` gives them. Each is recorded in
            ``history.val_metrics[name]`` and logged to the callbacks as
            ``val_<name>`` (e.g. ``EarlyStopping(monitor='val_f1', mode='max')``).
            The best epoch (``restore_best``, ``patience``) is still the one
            with the lowest validation loss.


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
        metrics = check_metrics(self.network, metrics)
        targets = fit_targets(self.network, getattr(self, "classes_", None),
                              self._predicts_labels, y, sample_weight, class_weight,
                              validation_data, distributed=comm is not None)
        if comm is None:
            coordinator = ALONE
            plan = plan_fit(self.network, X, targets.y, optimizer, epochs, batch_size, shuffle,
                            targets.validation_data, validation_fraction, patience,
                            restore_best, callbacks, verbose, n_jobs, strategy, on_divergence,
                            targets.sample_weight, targets.weight_name)
        else:
            if validation_fraction is not None or strategy != "auto" or on_divergence != "warn":
                raise ValueError("with comm, give validation_data on rank 0 (not "
                                 "validation_fraction), and leave strategy and on_divergence "
                                 "at their defaults")
            from .distributed import DistributedTrainer
            coordinator = comm if isinstance(comm, DistributedTrainer) else \
                DistributedTrainer(self, comm)
            plan = coordinator.plan(self.network, X, targets.y, optimizer, epochs, batch_size,
                                    shuffle, targets.validation_data, patience, restore_best,
                                    callbacks, verbose, n_jobs)
        if metrics and not plan.has_validation:
            raise ValueError("metrics are computed on validation data: give validation_data "
                             "or validation_fraction")
        X = typing.cast(np.ndarray, plan.X)  # checked: an array, the optimizer given or Adam
        optimizer = typing.cast(Optimizer, plan.optimizer)
        Y, validation = plan.Y, plan.validation
        weights = plan.sample_weight
        order = None
        if plan.n_split:
            # drawn from a twin of the generator: nothing changes before the checks pass
            twin = np.random.RandomState()
            twin.set_state(self._rng.get_state())
            order = twin.permutation(X.shape[0])
            if weights is not None:
                if not weights[order[:plan.n_split]].any():
                    raise ValueError(f"the {plan.n_split} rows held out by validation_fraction "
                                     f"all have weight 0 ({targets.weight_name})")
                if not weights[order[plan.n_split:]].any():
                    raise ValueError(f"the training rows left by validation_fraction all "
                                     f"have weight 0 ({targets.weight_name})")
        # -- from here on the model changes
        if targets.new_classes is not None:
            self.classes_, self._predicts_labels = targets.new_classes, True
        if order is not None:
            self._rng.set_state(twin.get_state())
            held, kept = order[:plan.n_split], order[plan.n_split:]
            validation = (X[held], Y[held]) + (() if weights is None else (weights[held],))
            X, Y = X[kept], Y[kept]
            weights = None if weights is None else weights[kept]
        if weights is not None:
            if not weights.all():
                kept = np.flatnonzero(weights)
                X, Y, weights = X[kept], Y[kept], weights[kept]
            Y = with_weights(Y, weights)
        if (optimizer is not self._optimizer or self._opt_state is None
                or self._opt_state.buffers.shape[0] != optimizer.n_buffers):
            # a new optimizer, or one whose settings now need other buffers (momentum 0 → 0.9)
            self._optimizer = optimizer
            self._opt_state = optimizer.init(self.params, n_decay=self.n_coefs)
        history = self.history_ = History(self.network.metric_name, metrics)
        if plan.strategy is not None:
            self.strategy_ = plan.strategy
        steps = plan.make_steps(X, Y, optimizer, self._opt_state)
        n = X.shape[0]
        record = EpochRecord(self, self.network, history, validation, plan.has_validation,
                             plan.patience, restore_best, plan.callbacks, plan.verbose,
                             plan.epochs, n, coordinator, metrics)
        with record.best.ending(history):
            fit_loop(GuardedEpochs(steps, self.params, self._opt_state, owner=self), plan.epochs,
                     lambda epoch: self._rng.permutation(n) if shuffle else np.arange(n),
                     record, record.diverged(on_divergence), plan.threads,
                     Progress(plan.epochs, plan.verbose == 1 and coordinator.is_root
                              and interactive()), coordinator)
        return history

