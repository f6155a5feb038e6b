"""Optimizers over one flat parameter buffer: ``init(params) -> state``, ``update(grads, state, params)``.

Each update is one kernel call over the whole buffer, in place. ``fit`` uses the
same formulas inside its whole-epoch kernel: each optimizer names its update
rule in the registry ``fastbp.kernels.optimizers`` (``rule``) and fills the
rule's hyper-parameter vector (``hyper``). Weight decay applies to the first
``n_decay`` entries of the buffer: for an :class:`fastbp.MLP`, pass
``model.n_coefs`` (weights come first; biases and prelu slopes are not decayed).
"""
import numbers

import numpy as np
import numpy.typing as npt

from .kernels import optimizers as _rules

__all__ = ["OPTIMIZERS", "SGD", "Adam", "AdamW", "Optimizer", "OptimizerState"]


def _check_hyper(name, value, low=0.0, high=None, low_open=False, high_open=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or (low_open and value == low) or (
            high is not None and (value > high or (high_open and value == high))):
        lo = "(" if low_open else "["
        hi = "" if high is None else (f"{high})" if high_open else f"{high}]")
        raise ValueError(f"{name} must be in {lo}{low}, {hi or 'inf)'}, got {value!r}")
    return float(value)


class OptimizerState:
    """Mutable optimizer state: ``buffers`` ``(n_buffers, n_params)``, ``step`` and ``n_decay``."""

    def __init__(self, buffers: npt.NDArray[np.floating], n_decay: int) -> None:
        self.buffers = buffers
        self.step = 0
        self.n_decay = n_decay

    def __repr__(self) -> str:
        return (f"OptimizerState(buffers={self.buffers.shape[0]}x{self.buffers.shape[1]}, "
                f"step={self.step}, n_decay={self.n_decay})")


class Optimizer:
    """Base class: ``init`` allocates ``n_buffers`` zeroed buffers like ``params``."""

    n_buffers = 0
    rule: str | None = None  # the name of its update rule in fastbp.kernels.optimizers.RULES

    def init(self, params: npt.NDArray[np.floating], n_decay: int | np.integer | None = None
             ) -> OptimizerState:
        """Zeroed state for the flat buffer ``params``.

        Parameters
        ----------
        params : 1-D float array
        n_decay : int, optional
            Number of leading entries that weight decay applies to (all by default).
        """
        params = _check_flat("params", params)
        n = params.shape[0]
        if n_decay is None:
            n_decay = n
        if (isinstance(n_decay, bool) or not isinstance(n_decay, numbers.Integral)
                or not 0 <= int(n_decay) <= n):
            raise ValueError(f"n_decay must be an int in [0, {n}], got {n_decay!r}")
        return OptimizerState(np.zeros((self.n_buffers, n), dtype=params.dtype), int(n_decay))

    def update(self, grads: npt.NDArray[np.floating], state: OptimizerState,
               params: npt.NDArray[np.floating]) -> None:
        """Apply one step to ``params`` in place, from ``grads`` (which are not modified)."""
        params = _check_flat("params", params, writable=True)
        grads = _check_flat("grads", grads)
        if grads.shape != params.shape or grads.dtype != params.dtype:
            raise ValueError(
                f"grads {grads.shape} {grads.dtype} do not match params "
                f"{params.shape} {params.dtype}")
        if not isinstance(state, OptimizerState) or state.buffers.shape != (
                self.n_buffers, params.shape[0]) or state.buffers.dtype != params.dtype:
            raise ValueError("state does not belong to these params: call init(params) first")
        if not np.all(np.isfinite(grads)):
            raise ValueError("grads contain NaN or inf")
        state.step += 1
        self._step(grads, state, params)

    # What the fused epoch kernel needs.
    def hyper(self) -> npt.NDArray[np.float64]:
        """The float64 ``hyper`` vector of the epoch kernel."""
        h = np.zeros(_rules.N_HYPER)
        for index, value in self._hyper_items():
            h[index] = value
        return h

    @property
    def l2(self) -> float:
        """Coupled weight decay, folded into the weight gradient by the backward kernel."""
        return 0.0

    def _hyper_items(self) -> list[tuple[int, float]]:
        """``(slot in hyper, value)`` of each hyper-parameter of the rule."""
        raise NotImplementedError

    def _step(self, grads: npt.NDArray[np.floating], state: OptimizerState,
              params: npt.NDArray[np.floating]) -> None:
        """One step in place, on arguments ``update`` has checked."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def _to_state(self):
        """The class and settings, as JSON-ready values for ``fastbp.io``."""
        return {"class": type(self).__name__, "params": dict(vars(self))}

    @staticmethod
    def _from_state(spec):
        """The optimizer ``_to_state`` described; ``ValueError`` if it is not one."""
        cls = {c.__name__: c for c in OPTIMIZERS.values()}.get(spec.get("class"))
        if cls is None:
            raise ValueError(f"unknown optimizer {spec.get('class')!r}")
        try:
            return cls(**spec["params"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"optimizer settings rejected ({exc})") from None


def _check_flat(name, a, writable=False):
    if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be a 1-D float32 or float64 array")
    if not a.flags.c_contiguous or (writable and not a.flags.writeable):
        raise ValueError(f"{name} must be a contiguous{' writable' if writable else ''} array")
    return a


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    ``v ← momentum·v − lr·g``, ``p ← p + v`` (or ``p + momentum·v − lr·g`` with
    Nesterov). ``weight_decay`` adds ``weight_decay·W`` to the weight gradient
    (L2 regularisation, penalty ``weight_decay/2 ‖W‖²`` in the reported loss).
    """

    rule = "sgd"

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        self.lr = _check_hyper("lr", lr, low_open=True)
        self.momentum = _check_hyper("momentum", momentum, high=1.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise ValueError(f"nesterov must be a bool, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self.weight_decay = _check_hyper("weight_decay", weight_decay)

    @property
    def n_buffers(self) -> int:  # type: ignore[override]  # a class attribute elsewhere
        return 1 if self.momentum > 0 else 0

    @property
    def l2(self) -> float:
        return self.weight_decay

    def _hyper_items(self):
        return [(_rules.H_LR, self.lr), (_rules.H_MOMENTUM, self.momentum),
                (_rules.H_NESTEROV, float(self.nesterov))]

    def _step(self, grads, state, params):
        _rules.sgd_step(params, grads, state.buffers, self.hyper(), state.step, state.n_decay,
                   self.weight_decay)


class Adam(Optimizer):
    """Adam with scikit-learn's update: ``p ← p − lr·√(1−b2ᵗ)/(1−b1ᵗ) · m/(√v + eps)``.

    ``weight_decay`` is coupled (added to the weight gradient, as L2); use
    :class:`AdamW` for decoupled decay.
    """

    rule = "adam"
    n_buffers = 2
    _decoupled = False

    def __init__(self, lr: float = 0.001, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.lr = _check_hyper("lr", lr, low_open=True)
        self.b1 = _check_hyper("b1", b1, high=1.0)
        self.b2 = _check_hyper("b2", b2, high=1.0)
        self.eps = _check_hyper("eps", eps, low_open=True)
        self.weight_decay = _check_hyper("weight_decay", weight_decay)

    @property
    def l2(self) -> float:
        return 0.0 if self._decoupled else self.weight_decay

    def _hyper_items(self):
        decoupled = self.weight_decay if self._decoupled else 0.0
        return [(_rules.H_LR, self.lr), (_rules.H_B1, self.b1), (_rules.H_B2, self.b2),
                (_rules.H_EPS, self.eps), (_rules.H_WEIGHT_DECAY, decoupled)]

    def _step(self, grads, state, params):
        _rules.adam_step(params, grads, state.buffers, self.hyper(), state.step, state.n_decay,
                    self.l2)


class AdamW(Adam):
    """Adam with decoupled weight decay: the weights shrink by ``lr·weight_decay`` each step."""

    _decoupled = True

    def __init__(self, lr: float = 0.001, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)


# The optimizers by the names the command line and saved files use.
OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
