"""Names, codes and the flat-buffer layout of an MLP.

The flat parameter buffer holds, in this order: every layer's weights
``W`` (``(fan_in, fan_out)``, row-major), every layer's bias, then the learnable
slopes of the prelu layers. Weights first means weight decay applies to one
leading slice of the buffer (``n_coefs`` entries).
"""
from numbers import Integral, Real

import numpy as np

from .kernels import activations as A
from .kernels import losses as L
from .kernels import train as T

HIDDEN_ACTIVATIONS = {
    "identity": A.IDENTITY,
    "logistic": A.LOGISTIC,
    "tanh": A.TANH,
    "relu": A.RELU,
    "leaky_relu": A.LEAKY_RELU,
    "prelu": A.PRELU,
    "elu": A.ELU,
    "softplus": A.SOFTPLUS,
    "hard_logistic": A.HARD_LOGISTIC,
    "hard_tanh": A.HARD_TANH,
}
OUTPUT_ACTIVATIONS = {**HIDDEN_ACTIVATIONS, "softmax": A.SOFTMAX, "exp": A.EXP}
LOSSES = {
    "cross_entropy": L.CROSS_ENTROPY,
    "binary_cross_entropy": L.BINARY_CROSS_ENTROPY,
    "squared_error": L.SQUARED_ERROR,
    "poisson": L.POISSON,
}
# The matched pairs use δ = a − y; every other output goes through the chain rule.
CANONICAL_LOSS = {
    "softmax": "cross_entropy",
    "logistic": "binary_cross_entropy",
    "identity": "squared_error",
    "exp": "poisson",
}
# γ of the parametrised activations: leaky_relu's slope, elu's scale, prelu's initial slope.
DEFAULT_GAMMA = {"leaky_relu": 0.01, "prelu": 0.25, "elu": 1.0}
DTYPES = {"float32": np.float32, "float64": np.float64}


def natural_loss(output):
    """The loss paired with ``output`` when none is given."""
    return CANONICAL_LOSS.get(output, "squared_error")


def check_loss(output, loss):
    """Raise ``ValueError`` unless ``loss`` is a known loss that fits ``output``."""
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)}")
    if loss == "cross_entropy" and output != "softmax":
        raise ValueError(f"loss 'cross_entropy' needs output='softmax', got output={output!r}")
    if loss == "binary_cross_entropy" and output != "logistic":
        raise ValueError(
            f"loss 'binary_cross_entropy' needs output='logistic', got output={output!r}")
    if loss == "poisson" and output != "exp":
        raise ValueError(f"loss 'poisson' needs output='exp', got output={output!r}")


def check_dtype(dtype):
    """The numpy float type named by ``dtype`` (float32 or float64)."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return DTYPES[name]


def check_layer_sizes(layer_sizes):
    """A tuple of positive ints, input first, at least an input and an output."""
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise ValueError(f"layer_sizes must be a sequence of ints, got {layer_sizes!r}")
    sizes = tuple(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least an input and an output size, got {list(sizes)}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, Integral) or s < 1:
            raise ValueError(f"layer sizes must be positive integers, got {list(sizes)}")
    return tuple(int(s) for s in sizes)


def check_hidden_activations(activation, n_hidden):
    """One activation name per hidden layer, from a name or a list of names."""
    if not isinstance(activation, str) and not isinstance(activation, (list, tuple)):
        raise ValueError(f"activation must be a name or a list of names, got {activation!r}")
    names = [activation] * n_hidden if isinstance(activation, str) else list(activation)
    if len(names) != n_hidden:
        raise ValueError(
            f"activation lists {len(names)} names for {n_hidden} hidden layer(s)")
    for name in names:
        if not isinstance(name, str) or name not in HIDDEN_ACTIVATIONS:
            hint = " (softmax is an output only)" if name == "softmax" else ""
            raise ValueError(
                f"unknown hidden activation {name!r}{hint}; "
                f"choose one of {sorted(HIDDEN_ACTIVATIONS)}")
    return names


def check_gamma(gamma, names):
    """γ for each layer: the user's value for the parametrised ones, or the default."""
    if gamma is not None:
        if isinstance(gamma, bool) or not isinstance(gamma, Real) or not np.isfinite(gamma):
            raise ValueError(f"gamma must be a finite number, got {gamma!r}")
        if gamma < 0 and any(n in ("leaky_relu", "elu") for n in names):
            raise ValueError(f"gamma must be >= 0 for leaky_relu and elu, got {gamma}")
    return [float(gamma) if (gamma is not None and n in DEFAULT_GAMMA)
            else DEFAULT_GAMMA.get(n, 0.0) for n in names]


class Layout:
    """Where every layer's parameters and workspace blocks live.

    Attributes
    ----------
    sizes : tuple of int, input size first
    activations : list of str, one per dense layer (the last is the output's)
    layers : (n_layers, N_COLUMNS) int64 array, the kernels' view (see kernels.train)
    n_coefs, n_params : int
    total_units : int, units of all dense layers (the workspace row width)
    has_prelu : bool
    """

    def __init__(self, sizes, activations, gamma_per_layer):
        self.sizes = sizes
        self.activations = activations
        self.gamma_per_layer = gamma_per_layer
        n_layers = len(sizes) - 1
        layers = np.zeros((n_layers, T.N_COLUMNS), dtype=np.int64)
        w_off = 0
        for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers[l, [T.FAN_IN, T.FAN_OUT, T.W_OFF]] = fan_in, fan_out, w_off
            layers[l, T.CODE] = OUTPUT_ACTIVATIONS[activations[l]]
            w_off += fan_in * fan_out
        self.n_coefs = w_off
        offset = w_off
        for l in range(n_layers):
            layers[l, T.B_OFF] = offset
            offset += sizes[l + 1]
        layers[:, T.G_OFF] = -1
        for l in range(n_layers):
            if activations[l] == "prelu":
                layers[l, T.G_OFF] = offset
                offset += sizes[l + 1]
        layers[:, T.UNIT_OFF] = np.concatenate([[0], np.cumsum(sizes[1:-1])])
        self.n_params = offset
        self.layers = layers
        self.total_units = int(sum(sizes[1:]))
        self.has_prelu = "prelu" in activations

    def views(self, flat):
        """``(coefs, intercepts, slopes)``: per-layer views of a flat buffer.

        ``slopes`` is a dict {layer index: prelu slope view}.
        """
        coefs, intercepts, slopes = [], [], {}
        for l, row in enumerate(self.layers):
            fan_in, fan_out = int(row[T.FAN_IN]), int(row[T.FAN_OUT])
            w, b = int(row[T.W_OFF]), int(row[T.B_OFF])
            coefs.append(flat[w:w + fan_in * fan_out].reshape(fan_in, fan_out))
            intercepts.append(flat[b:b + fan_out])
            if row[T.G_OFF] >= 0:
                g = int(row[T.G_OFF])
                slopes[l] = flat[g:g + fan_out]
        return coefs, intercepts, slopes

    def workspace(self, capacity, dtype, n_workers=None):
        """``(acts, zs, deltas)`` for batches of up to ``capacity`` rows.

        Flat arrays, or ``(n_workers, size)`` arrays with one row per thread.
        """
        size = capacity * self.total_units
        shape = (lambda k: k) if n_workers is None else (lambda k: (n_workers, k))
        zs = np.empty(shape(size if self.has_prelu else 0), dtype=dtype)
        return np.empty(shape(size), dtype=dtype), zs, np.empty(shape(size), dtype=dtype)

    def describe(self):
        """``'784-256[relu]-10[softmax]'``."""
        parts = [str(self.sizes[0])]
        parts += [f"{s}[{a}]" for s, a in zip(self.sizes[1:], self.activations)]
        return "-".join(parts)
