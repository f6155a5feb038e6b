"""Activation functions and their derivatives, as scalar helpers.

Every function has a small integer code so that kernels can receive the
activation of a layer as data. Derivatives are written from the layer's output
``a`` wherever the function allows it (logistic: ``a(1-a)``, tanh: ``1-a²``,
relu: ``a>0``), so the forward pass keeps only the post-activations; PReLU, whose
slope is learnable and may change sign, is the one activation that reads the
pre-activation ``z``.

``g`` is the activation's parameter γ: the negative slope of leaky_relu and
prelu, the scale of elu; it is ignored by the others.
"""
import numpy as np

from ._config import inline

IDENTITY = 0
LOGISTIC = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
PRELU = 5
ELU = 6
SOFTPLUS = 7
HARD_LOGISTIC = 8
HARD_TANH = 9
SOFTMAX = 10  # output layers only; applied row-wise, see dense.py


@inline
def activate(z, code, g):
    """f(z) for one element. Comparisons are written so that NaN propagates."""
    t = type(z)
    if code == IDENTITY:
        return z
    if code == LOGISTIC:
        return t(1) / (t(1) + np.exp(-z))
    if code == TANH:
        return np.tanh(z)
    if code == RELU:
        return t(0) if z < t(0) else z
    if code == LEAKY_RELU or code == PRELU:
        return g * z if z <= t(0) else z
    if code == ELU:
        return g * np.expm1(z) if z <= t(0) else z
    if code == SOFTPLUS:
        # log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|)
        return max(z, t(0)) + np.log1p(np.exp(-abs(z)))
    if code == HARD_LOGISTIC:
        v = t(0.25) * z + t(0.5)
        return t(0) if v < t(0) else (t(1) if v > t(1) else v)
    if code == HARD_TANH:
        return t(-1) if z < t(-1) else (t(1) if z > t(1) else z)
    return z


@inline
def derivative_from_output(a, z, code, g):
    """f'(z) for one element, from the output ``a`` (``z`` is read by prelu only).

    At a kink the derivative of the flat side is taken (relu'(0) = 0, as
    scikit-learn). leaky_relu and elu need γ ≥ 0, which the Python layer checks.
    """
    t = type(a)
    if code == IDENTITY:
        return t(1)
    if code == LOGISTIC:
        return a * (t(1) - a)
    if code == TANH:
        return t(1) - a * a
    if code == RELU:
        return t(1) if a > t(0) else t(0)
    if code == LEAKY_RELU:
        return t(1) if a > t(0) else g
    if code == PRELU:
        return t(1) if z > t(0) else g
    if code == ELU:
        return t(1) if a > t(0) else a + g
    if code == SOFTPLUS:
        # softplus' = logistic(z) = 1 - e^-a
        return -np.expm1(-a)
    if code == HARD_LOGISTIC:
        return t(0.25) if (a > t(0) and a < t(1)) else t(0)
    if code == HARD_TANH:
        return t(1) if (a > t(-1) and a < t(1)) else t(0)
    return t(1)
