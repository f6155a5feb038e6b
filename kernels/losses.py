"""The loss registry: each loss's scalar terms and its description, in one place.

A loss is a scalar ``term(a, y, eps)`` (the loss of one output given its
activation ``a`` and target ``y``; ``eps`` is the dtype's machine epsilon, for
clipping probabilities as scikit-learn does) and a :class:`Loss` entry in
``LOSSES``. The output δ of the matched pairs (softmax + cross-entropy,
logistic + binary cross-entropy, identity + squared error, exp + Poisson) is
the canonical shortcut ``δ = a − y``; a loss that also fits other outputs gives
``gradient(a, y)`` = ``∂term/∂a``, and δ then goes through the output
activation's derivative (the general chain rule, as in the seeds' worked
example of a logistic output trained on squared error).

Targets may carry an extra last column of sample weights: each row's δ and
loss are then multiplied by its weight.
"""
from dataclasses import dataclass

import numpy as np

from ._config import generic, inline, kernel


@dataclass(frozen=True)
class Loss:
    """One loss, as the rest of fastbp sees it.

    Attributes
    ----------
    name : str
    term : scalar ``(a, y, eps) -> loss of one output``
    canonical_output : str
        The output activation whose δ is ``a − y`` with this loss.
    gradient : scalar ``(a, y) -> ∂term/∂a``, or None
        Given, the loss fits any output (through the chain rule); None, only
        ``canonical_output``.
    mean_over_outputs : bool
        The value of a row is divided by the number of outputs (scikit-learn's
        squared error; its gradient is not, as in scikit-learn).
    classifier : bool
        Targets are class labels or probabilities; the metric is accuracy (else R²).
    targets : str
        What ``y`` may hold: ``"labels"`` (class labels, or rows of class
        probabilities), ``"unit"`` (values in [0, 1]), ``"nonnegative"`` or ``"real"``.
    public : bool
        Offered by name to users (the estimators' scikit-learn loss is not).
    """

    name: str
    term: object
    canonical_output: str
    gradient: object = None
    mean_over_outputs: bool = False
    classifier: bool = False
    targets: str = "real"
    public: bool = True


@inline
def _clip(a, eps):
    return min(max(a, eps), 1 - eps)


@kernel
def cross_entropy(a, y, eps):
    return -y * np.log(_clip(a, eps)) if y != 0 else a * 0


@kernel
def binary_cross_entropy(a, y, eps):
    p = _clip(a, eps)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


@kernel
def squared_error(a, y, eps):
    d = a - y
    return 0.5 * d * d


@kernel
def squared_error_gradient(a, y):
    return a - y


@kernel
def poisson(a, y, eps):
    """Poisson deviance / 2 with the log link: ``y·log(y/a) − y + a``."""
    return a - y + (y * np.log(y / a) if y > 0 else a * 0)


LOSSES = {loss.name: loss for loss in [
    Loss("cross_entropy", cross_entropy, "softmax", classifier=True, targets="labels"),
    Loss("binary_cross_entropy", binary_cross_entropy, "logistic", classifier=True,
         targets="unit"),
    Loss("squared_error", squared_error, "identity", gradient=squared_error_gradient),
    Loss("poisson", poisson, "exp", targets="nonnegative"),
    # scikit-learn's MLPRegressor: ½·mean over outputs, gradient of squared_error
    Loss("sklearn_squared_error", squared_error, "identity", gradient=squared_error_gradient,
         mean_over_outputs=True, public=False),
]}


# ----------------------------------------------------------------------------- kernels
@kernel
def batch_weight(y, n_outputs):
    """Total weight of the rows of ``y``: its extra last column summed, else its row count."""
    if y.shape[1] == n_outputs:
        return float(y.shape[0])
    total = 0.0
    for i in range(y.shape[0]):
        total += y[i, n_outputs]
    return total


@generic
def delta_and_loss(a, y, term, gradient, mean_over_outputs, scale, delta, write_delta):
    """Write ``δ = gradient(a, y) · w · scale`` and return the summed loss ``Σ w · row loss``.

    Parameters
    ----------
    a : (n_samples, n_outputs) array of output activations
    y : (n_samples, n_outputs) or (n_samples, n_outputs + 1) array
        Targets, optionally followed by a column of sample weights ``w``.
    term, gradient : the loss's scalar functions (``gradient`` is
        ``canonical_gradient``, ``a − y``, for a matched pair)
    mean_over_outputs : bool, see ``Loss``
    scale : float, factor applied to δ (``1 / batch weight`` for a mean loss)
    delta : (n_samples, n_outputs) array, written in place if ``write_delta``
    write_delta : bool
        False for the loss alone (evaluation); ``delta`` is then not touched.

    Returns
    -------
    float
        The loss summed over rows (not divided by their number or weight).
    """
    n, n_out = a.shape
    weighted = y.shape[1] > n_out
    eps = np.finfo(a.dtype).eps
    total = 0.0
    for i in range(n):
        w = y[i, n_out] if weighted else a[i, 0] * 0 + 1
        if write_delta:
            for j in range(n_out):
                delta[i, j] = gradient(a[i, j], y[i, j]) * (w * scale)
        # a loop of its own: merged with δ's it was vectorised, and cross-entropy's
        # log then ran for every output instead of the target's alone (32 × 10: 3.1 µs
        # for δ and loss, now 1.2 µs in float32, 0.7 µs in float64)
        row = 0.0
        for j in range(n_out):
            row += term(a[i, j], y[i, j], eps)
        if mean_over_outputs:
            row /= n_out
        total += w * row
    return total


@kernel
def canonical_gradient(a, y):
    """``δ = a − y`` of a matched (output, loss) pair."""
    return a - y
