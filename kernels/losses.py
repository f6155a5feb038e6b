"""Output δ and loss value for each (output activation, loss) pair.

The matched pairs (softmax + cross-entropy, logistic + binary cross-entropy,
identity + squared error) use the canonical shortcut ``δ = a − y``. Every other
pair (only squared error is allowed with other outputs) goes through the
general chain rule ``δ = (a − y) ⊙ f'(z)``, as in the seeds' worked example of a
logistic output trained on squared error.
"""
import numpy as np

from ._config import kernel
from .dense import activation_backward

CROSS_ENTROPY = 0
BINARY_CROSS_ENTROPY = 1
SQUARED_ERROR = 2
# scikit-learn's squared error: the same δ, the loss value divided by the number of outputs
MEAN_SQUARED_ERROR = 3
# Poisson deviance / 2 with the exp output (log link): y·log(y/a) − y + a, δ = a − y
POISSON = 4


@kernel
def batch_weight(y, n_outputs):
    """Total weight of the rows of ``y``: its extra last column summed, else its row count."""
    if y.shape[1] == n_outputs:
        return float(y.shape[0])
    total = 0.0
    for i in range(y.shape[0]):
        total += y[i, n_outputs]
    return total


@kernel
def output_delta(a, y, z, out_code, gamma, gamma_grad,
                 loss_code, canonical, scale, delta):
    """Write the output layer's δ, scaled by ``scale``, and return the summed loss.

    Parameters
    ----------
    a : (n_samples, n_outputs) array of output activations
    y : (n_samples, n_outputs) or (n_samples, n_outputs + 1) array
        Targets (one-hot rows for cross-entropy), optionally followed by a
        column of sample weights: each row's δ and loss are then multiplied
        by its weight.
    z, out_code, gamma, gamma_grad :
        The output layer's activation, as for ``activation_backward``; used
        only when ``canonical`` is false.
    loss_code : int
    canonical : bool
        True for the matched pairs, where ``δ = a − y`` needs no chain rule.
    scale : float
        Factor applied to δ (``1 / n_samples`` for a mean loss).
    delta : (n_samples, n_outputs) array, written in place

    Returns
    -------
    float
        The loss summed over samples (not divided by ``n_samples``):
        cross-entropy ``-Σ y log a``, binary cross-entropy
        ``-Σ y log a + (1-y) log(1-a)``, squared error ``½ Σ (a-y)²`` (divided
        by the number of outputs for ``MEAN_SQUARED_ERROR``), Poisson
        ``Σ y log(y/a) − y + a``; each row's term times its weight.
        Probabilities are clipped to ``[eps, 1-eps]`` as in scikit-learn.
    """
    n, n_out = a.shape
    weighted = y.shape[1] > n_out
    eps = np.finfo(a.dtype).eps
    total = 0.0
    for i in range(n):
        w = y[i, n_out] if weighted else a[i, 0] * 0 + 1
        row = 0.0
        for j in range(n_out):
            ai = a[i, j]
            yi = y[i, j]
            delta[i, j] = (ai - yi) * (w * scale)
            if loss_code == SQUARED_ERROR or loss_code == MEAN_SQUARED_ERROR:
                d = ai - yi
                row += 0.5 * d * d
            elif loss_code == POISSON:
                row += ai - yi
                if yi > 0:
                    row += yi * np.log(yi / ai)
            else:
                p = min(max(ai, eps), 1 - eps)
                if loss_code == CROSS_ENTROPY:
                    if yi != 0:
                        row -= yi * np.log(p)
                else:
                    row -= yi * np.log(p) + (1 - yi) * np.log1p(-p)
        if loss_code == MEAN_SQUARED_ERROR:
            row /= n_out
        total += w * row
    if not canonical:
        activation_backward(delta, a, z, out_code, gamma, gamma_grad)
    return total
