"""Names, checks and the flat-buffer layout of an MLP, read from the registries.

The flat parameter buffer holds, in this order: every layer's weights
``W`` (``(fan_in, fan_out)``, row-major), every layer's bias, then the
learnable γ of the layers that have one (prelu's slopes). Weights first means
weight decay applies to one leading slice of the buffer (``n_coefs`` entries).
"""
from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
import numpy as np
import numpy.typing as npt

from . import specialize
from .kernels import network as N
from .kernels.activations import ACTIVATIONS
from .kernels.losses import LOSSES

__all__ = [
    "HIDDEN_ACTIVATIONS", "OUTPUT_ACTIVATIONS", "PUBLIC_LOSSES", "DTYPES", "natural_loss",
    "check_output", "check_loss", "check_dtype", "check_layer_sizes",
    "check_hidden_activations", "check_gamma", "Layout"
]

HIDDEN_ACTIVATIONS = tuple(name for name, a in ACTIVATIONS.items() if a.hidden)
OUTPUT_ACTIVATIONS = tuple(ACTIVATIONS)
PUBLIC_LOSSES = tuple(name for name, loss in LOSSES.items() if loss.public)
DTYPES: dict[str, type[np.floating]] = {"float32": np.float32, "float64": np.float64}


def natural_loss(output: str) -> str:
    """The loss paired with ``output`` when none is given: its canonical one, else squared error."""
    for name in PUBLIC_LOSSES:
        if LOSSES[name].canonical_output == output:
            return name
    return "squared_error"


def check_output(output: str) -> str:
    if not isinstance(output, str) or output not in ACTIVATIONS:
        raise ValueError(f"unknown output {output!r}; choose one of {sorted(OUTPUT_ACTIVATIONS)}")
    return output


def check_loss(output: str, loss: str) -> None:
    """Raise ``ValueError`` unless ``loss`` is a known loss that fits ``output``."""
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(PUBLIC_LOSSES)}")
    entry = LOSSES[loss]
    if entry.gradient is None and output != entry.canonical_output:
        raise ValueError(f"loss {loss!r} needs output={entry.canonical_output!r}, "
                         f"got output={output!r}")


def check_dtype(dtype: npt.DTypeLike) -> type[np.floating]:
    """The numpy float type named by ``dtype`` (float32 or float64)."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return DTYPES[name]


def check_layer_sizes(layer_sizes: Sequence[int]) -> tuple[int, ...]:
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


def check_hidden_activations(activation: str | Sequence[str], n_hidden: int) -> list[str]:
    """One activation name per hidden layer, from a name or a list of names."""
    if not isinstance(activation, str) and not isinstance(activation, (list, tuple)):
        raise ValueError(f"activation must be a name or a list of names, got {activation!r}")
    names = [activation] * n_hidden if isinstance(activation, str) else list(activation)
    if len(names) != n_hidden:
        raise ValueError(
            f"activation lists {len(names)} names for {n_hidden} hidden layer(s)")
    for name in names:
        if not isinstance(name, str) or name not in HIDDEN_ACTIVATIONS:
            hint = f" ({name} is an output only)" if name in ACTIVATIONS else ""
            raise ValueError(
                f"unknown hidden activation {name!r}{hint}; "
                f"choose one of {sorted(HIDDEN_ACTIVATIONS)}")
    return names


def check_gamma(gamma: float | None, names: Sequence[str]) -> list[float]:
    """γ for each layer: the user's value for the layers whose activation has one, or the default."""
    if gamma is not None:
        if isinstance(gamma, bool) or not isinstance(gamma, Real) or not np.isfinite(gamma):
            raise ValueError(f"gamma must be a finite number, got {gamma!r}")
        needs_sign = sorted({n for n in names if ACTIVATIONS[n].gamma == "constant"
                             and not ACTIVATIONS[n].reads_z})
        if gamma < 0 and needs_sign:
            raise ValueError(f"gamma must be >= 0 for {' and '.join(needs_sign)}, got {gamma}")
    return [float(gamma) if (gamma is not None and ACTIVATIONS[n].gamma)
            else ACTIVATIONS[n].default_gamma for n in names]


class Layout:
    """Where every layer's parameters and workspace blocks live.

    Attributes
    ----------
    sizes : tuple of int, input size first
    activations : list of str, one per dense layer (the last is the output's)
    layers : (n_layers, N_COLUMNS) int64 array, the kernels' view (see kernels.network)
    hidden : tuple of str, the distinct hidden activations (``specialize.Config.hidden``)
    n_coefs, n_params : int
    total_units : int, units of all dense layers (the workspace row width)
    keeps_z : bool, whether any layer keeps its pre-activations
    """

    def __init__(self, sizes: tuple[int, ...], activations: list[str],
                 gamma_per_layer: list[float]) -> None:
        self.sizes = sizes
        self.activations = activations
        self.gamma_per_layer = gamma_per_layer
        self.hidden, kinds = specialize.kinds(activations)
        entries = [ACTIVATIONS[name] for name in activations]
        n_layers = len(sizes) - 1
        layers = np.zeros((n_layers, N.N_COLUMNS), dtype=np.int64)
        w_off = 0
        for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers[l, [N.FAN_IN, N.FAN_OUT, N.W_OFF]] = fan_in, fan_out, w_off
            layers[l, N.KIND] = kinds[l]
            layers[l, N.KEEPS_Z] = entries[l].reads_z
            w_off += fan_in * fan_out
        self.n_coefs = w_off
        offset = w_off
        for l in range(n_layers):
            layers[l, N.B_OFF] = offset
            offset += sizes[l + 1]
        layers[:, N.G_OFF] = -1
        for l in range(n_layers):
            if entries[l].gamma == "learnable":
                layers[l, N.G_OFF] = offset
                offset += sizes[l + 1]
        layers[:, N.UNIT_OFF] = np.concatenate([[0], np.cumsum(sizes[1:-1])])
        self.n_params = offset
        self.layers = layers
        self.total_units = int(sum(sizes[1:]))
        self.keeps_z = any(e.reads_z for e in entries)

    def constant_gammas(self, dtype: npt.DTypeLike) -> np.ndarray:
        """The kernels' ``gammas``: each layer's constant γ (0 where γ is learnable or unused)."""
        return np.array([g if ACTIVATIONS[n].gamma == "constant" else 0.0
                         for n, g in zip(self.activations, self.gamma_per_layer)], dtype=dtype)

    def views(self, flat: np.ndarray
              ) -> tuple[list[np.ndarray], list[np.ndarray], dict[int, np.ndarray]]:
        """``(coefs, intercepts, slopes)``: per-layer views of a flat buffer.

        ``slopes`` is a dict {layer index: learnable γ view}.
        """
        coefs, intercepts, slopes = [], [], {}
        for l, row in enumerate(self.layers):
            fan_in, fan_out = int(row[N.FAN_IN]), int(row[N.FAN_OUT])
            w, b = int(row[N.W_OFF]), int(row[N.B_OFF])
            coefs.append(flat[w:w + fan_in * fan_out].reshape(fan_in, fan_out))
            intercepts.append(flat[b:b + fan_out])
            if row[N.G_OFF] >= 0:
                g = int(row[N.G_OFF])
                slopes[l] = flat[g:g + fan_out]
        return coefs, intercepts, slopes

    def workspace(self, capacity: int, dtype: npt.DTypeLike, n_workers: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(acts, zs, deltas)`` for batches of up to ``capacity`` rows.

        Flat arrays, or ``(n_workers, size)`` arrays with one row per worker.
        """
        size = capacity * self.total_units
        shape = (lambda k: k) if n_workers is None else (lambda k: (n_workers, k))
        zs = np.empty(shape(size if self.keeps_z else 0), dtype=dtype)
        return np.empty(shape(size), dtype=dtype), zs, np.empty(shape(size), dtype=dtype)

    def describe(self) -> str:
        """``'784-256[relu]-10[softmax]'``."""
        parts = [str(self.sizes[0])]
        parts += [f"{s}[{a}]" for s, a in zip(self.sizes[1:], self.activations)]
        return "-".join(parts)
