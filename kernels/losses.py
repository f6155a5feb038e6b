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


@kernel
def output_delta(a, y, z, out_code, gamma, gamma_grad,
                 loss_code, canonical, scale, delta):
    """Write the output layer's δ, scaled by ``scale``, and return the summed loss.

    Parameters
    ----------
    a, y : (n_samples, n_outputs) arrays
        Output activations and targets (one-hot rows for cross-entropy).
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
        ``-Σ y log a + (1-y) log(1-a)``, squared error ``½ Σ (a-y)²``;
        probabilities are clipped to ``[eps, 1-eps]`` as in scikit-learn.
    """
    n, n_out = a.shape
    eps = np.finfo(a.dtype).eps
    total = 0.0
    for i in range(n):
        for j in range(n_out):
            ai = a[i, j]
            yi = y[i, j]
            delta[i, j] = (ai - yi) * scale
            if loss_code == SQUARED_ERROR:
                d = ai - yi
                total += 0.5 * d * d
            else:
                p = min(max(ai, eps), 1 - eps)
                if loss_code == CROSS_ENTROPY:
                    if yi != 0:
                        total -= yi * np.log(p)
                else:
                    total -= yi * np.log(p) + (1 - yi) * np.log1p(-p)
    if not canonical:
        activation_backward(delta, a, z, out_code, gamma, gamma_grad)
    return total
