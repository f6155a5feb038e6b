"""Activation functions and their derivatives, as scalar helpers.

Every activation has a small integer code so that kernels can receive the
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
from .elementary import fast_exp, fast_expm1, fast_tanh

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
EXP = 11  # output layers only: the log link of Poisson regression


# One forward and one derivative function per activation, each a scalar
# ``(z, g)`` / ``(a, z, g)`` helper. The dense kernels pass the right pair to
# their loops as a function argument, so every loop is compiled with only its
# own activation inside: one generic ``activate(z, code)`` switch, inlined into
# each of the specialised loops, made the forward epilogue alone take 15.8 s to
# compile (1.4 s this way). Comparisons are written so that NaN propagates.
# Derivatives at a kink take the flat side (relu'(0) = 0, as scikit-learn);
# leaky_relu and elu need γ ≥ 0, which the Python layer checks.

@inline
def identity(z, g):
    return z


@inline
def identity_grad(a, z, g):
    return type(a)(1)


@inline
def logistic(z, g):
    t = type(z)
    return t(1) / (t(1) + fast_exp(-z))


@inline
def logistic_grad(a, z, g):
    return a * (type(a)(1) - a)


@inline
def tanh(z, g):
    return fast_tanh(z)


@inline
def tanh_grad(a, z, g):
    return type(a)(1) - a * a


@inline
def relu(z, g):
    return type(z)(0) if z < type(z)(0) else z


@inline
def relu_grad(a, z, g):
    t = type(a)
    return t(1) if a > t(0) else t(0)


@inline
def leaky_relu(z, g):
    """Also prelu's forward, with ``g`` the unit's learnable slope."""
    return g * z if z <= type(z)(0) else z


@inline
def leaky_relu_grad(a, z, g):
    return type(a)(1) if a > type(a)(0) else g


@inline
def prelu_grad(a, z, g):
    """The slope may be negative, so the sign of ``a`` does not tell the side: read ``z``."""
    return type(a)(1) if z > type(z)(0) else g


@inline
def elu(z, g):
    return g * fast_expm1(z) if z <= type(z)(0) else z


@inline
def elu_grad(a, z, g):
    return type(a)(1) if a > type(a)(0) else a + g


@inline
def softplus(z, g):
    # log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|)
    t = type(z)
    return max(z, t(0)) + np.log1p(fast_exp(-abs(z)))


@inline
def softplus_grad(a, z, g):
    # softplus' = logistic(z) = 1 - e^-a
    return -fast_expm1(-a)


@inline
def hard_logistic(z, g):
    t = type(z)
    v = t(0.25) * z + t(0.5)
    return t(0) if v < t(0) else (t(1) if v > t(1) else v)


@inline
def hard_logistic_grad(a, z, g):
    t = type(a)
    return t(0.25) if (a > t(0) and a < t(1)) else t(0)


@inline
def hard_tanh(z, g):
    t = type(z)
    return t(-1) if z < t(-1) else (t(1) if z > t(1) else z)


@inline
def hard_tanh_grad(a, z, g):
    t = type(a)
    return t(1) if (a > t(-1) and a < t(1)) else t(0)


@inline
def exp(z, g):
    return fast_exp(z)


@inline
def exp_grad(a, z, g):
    return a
