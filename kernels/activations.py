"""The activation registry: every activation's math and its description, in one place.

Each activation is a pair of scalar functions and an :class:`Activation` entry in
``ACTIVATIONS`` at the bottom of this file. Everything else reads the entry:
the kernels generated for a network (``fastbp.specialize``) call the scalar
functions of the activations that network uses and no others; the model checks
names and γ against it; initialisation, the PyTorch and ONNX converters, the
estimators and the command line take their names and properties from it.

Adding an activation is one pair of functions and one entry here, plus its
formula in ``tests/reference.py`` (the tests run every entry).

Conventions of the scalar functions:

- ``forward(z, g)`` → ``a``; ``derivative(a, z, g)`` → ``f'(z)``, written from
  the output ``a`` where the function allows it (logistic ``a(1−a)``, tanh
  ``1−a²``, relu ``a>0``) so the forward pass keeps only the post-activations;
  an entry whose derivative needs ``z`` says ``reads_z=True`` and the forward
  pass then keeps ``z`` too.
- ``g`` is the activation's parameter γ: a constant per layer (the negative
  slope of leaky_relu, the scale of elu) or, for ``gamma="learnable"``, one
  trained parameter per unit (prelu's slopes), whose gradient is
  ``Σ δ · gamma_derivative(z, g)``.
- Comparisons are written so that NaN propagates; at a kink the derivative
  takes the flat side (relu'(0) = 0, as scikit-learn).
- Each is inlined into the loops of the network functions that use it, so
  the loops vectorise with it inside (a tanh loop calling it as a function of
  its own ran scalar: 10 ns per element against 1.2 ns).
"""
from dataclasses import dataclass, field

import numpy as np

from ._config import inline, kernel
from .elementary import fast_exp, fast_expm1, fast_tanh


@dataclass(frozen=True)
class Activation:
    """One activation, as the rest of fastbp sees it.

    Attributes
    ----------
    name : str
    forward : scalar ``(z, g) -> a``, or None for a row-wise activation
    derivative : scalar ``(a, z, g) -> f'(z)``, or None when ``f' = 1``
    reads_z : bool
        The derivative needs the pre-activation ``z`` (not only ``a``).
    gamma : None, ``"constant"`` or ``"learnable"``
        Whether γ is used, as one constant per layer or as a trained parameter
        per unit. A constant γ must be ≥ 0 unless ``reads_z``: a derivative
        written from ``a`` tells the side of the kink by the sign of ``a``.
    default_gamma : float
        γ when the user gives none (the initial slopes, for a learnable γ).
    gamma_derivative : scalar ``(z, g) -> ∂a/∂g``, for a learnable γ
    rows_forward, rows_backward : row-wise activations (softmax)
        ``rows_forward(product, b, a_out)`` writes ``a_out = f(product + b)``;
        ``rows_backward(grad, a)`` turns ``∂loss/∂a`` into ``∂loss/∂z`` in place.
    hidden : bool
        False for output-only activations (softmax, exp).
    init_factor : float
        Glorot-uniform bound ``√(init_factor / (fan_in + fan_out))`` (6, or 2
        for logistic, as scikit-learn).
    kinks : tuple of float
        Pre-activations where ``f'`` jumps (the gradient checks keep away from them).
    torch : str
        The PyTorch module: a class of ``torch.nn`` or of ``fastbp.interop.torch``
        (``"Identity"``: no module is written).
    torch_args : dict
        Its constructor arguments; the value ``"gamma"`` stands for the layer's γ.
        Reading a module back, every other argument must match.
    torch_accepts : dict
        Arguments ``from_torch`` accepts other values of than ``torch_args``':
        a number is a lower bound (softplus's threshold), a tuple the values
        allowed (softmax's dim).
    onnx : str or callable
        An ONNX operator of the same function, or ``(graph, z, gamma, slopes,
        output) -> name`` appending a composition (``fastbp.interop.onnx``).
    """

    name: str
    forward: object = None
    derivative: object = None
    reads_z: bool = False
    gamma: str = None
    default_gamma: float = 0.0
    gamma_derivative: object = None
    rows_forward: object = None
    rows_backward: object = None
    hidden: bool = True
    init_factor: float = 6.0
    kinks: tuple = ()
    torch: str = "Identity"
    torch_args: dict = field(default_factory=dict)
    torch_accepts: dict = field(default_factory=dict)
    onnx: object = "Identity"


# ----------------------------------------------------------------------------- scalar math
@inline
def identity(z, g):
    return z


@inline
def logistic(z, g):
    t = type(z)
    return t(1) / (t(1) + fast_exp(-z))


@inline
def logistic_derivative(a, z, g):
    return a * (type(a)(1) - a)


@inline
def tanh(z, g):
    return fast_tanh(z)


@inline
def tanh_derivative(a, z, g):
    return type(a)(1) - a * a


@inline
def relu(z, g):
    return type(z)(0) if z < type(z)(0) else z


@inline
def relu_derivative(a, z, g):
    t = type(a)
    return t(1) if a > t(0) else t(0)


@inline
def leaky_relu(z, g):
    """Also prelu's forward, with ``g`` the unit's learnable slope."""
    return g * z if z <= type(z)(0) else z


@inline
def leaky_relu_derivative(a, z, g):
    return type(a)(1) if a > type(a)(0) else g


@inline
def prelu_derivative(a, z, g):
    """The slope may be negative, so the sign of ``a`` does not tell the side: read ``z``."""
    return type(a)(1) if z > type(z)(0) else g


@inline
def prelu_slope_derivative(z, g):
    return z if z < type(z)(0) else type(z)(0)


@inline
def elu(z, g):
    return g * fast_expm1(z) if z <= type(z)(0) else z


@inline
def elu_derivative(a, z, g):
    return type(a)(1) if a > type(a)(0) else a + g


@inline
def softplus(z, g):
    # log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|)
    t = type(z)
    return max(z, t(0)) + np.log1p(fast_exp(-abs(z)))


@inline
def softplus_derivative(a, z, g):
    # softplus' = logistic(z) = 1 - e^-a
    return -fast_expm1(-a)


@inline
def silu(z, g):
    # z·σ(z) (also called swish); for very negative z, e^-z overflows to inf and a → -0
    t = type(z)
    return z / (t(1) + fast_exp(-z))


@inline
def silu_derivative(a, z, g):
    # σ(z)·(1 + z·(1 − σ(z))): not a function of a alone (a has a minimum near z = -1.28)
    t = type(z)
    s = t(1) / (t(1) + fast_exp(-z))
    return s * (t(1) + z * (t(1) - s))


@inline
def hard_logistic(z, g):
    t = type(z)
    v = t(0.25) * z + t(0.5)
    return t(0) if v < t(0) else (t(1) if v > t(1) else v)


@inline
def hard_logistic_derivative(a, z, g):
    t = type(a)
    return t(0.25) if (a > t(0) and a < t(1)) else t(0)


@inline
def hard_tanh(z, g):
    t = type(z)
    return t(-1) if z < t(-1) else (t(1) if z > t(1) else z)


@inline
def hard_tanh_derivative(a, z, g):
    t = type(a)
    return t(1) if (a > t(-1) and a < t(1)) else t(0)


@inline
def exp(z, g):
    return fast_exp(z)


@inline
def exp_derivative(a, z, g):
    return a


@kernel
def softmax_rows(product, b, a_out):
    """``a_out = softmax(product + b)`` row by row, in passes the compiler vectorises.

    The exponentials run in one pass over the whole block, not row by row: a
    row of 10 outputs is shorter than one vector of 16 float32, and per row
    that loop ran scalar (the whole softmax of 32 × 10: 8.7 → 2.9 ns per value).
    """
    n, width = a_out.shape
    for i in range(n):
        row_max = product[i, 0] + b[0]
        for j in range(width):
            v = product[i, j] + b[j]
            a_out[i, j] = v
            row_max = v if v > row_max else row_max
        for j in range(width):
            a_out[i, j] -= row_max
    flat = a_out.reshape(n * width)
    for k in range(n * width):
        flat[k] = fast_exp(flat[k])
    for i in range(n):
        total = a_out[i, 0] * 0
        for j in range(width):
            total += a_out[i, j]
        inv = 1 / total
        for j in range(width):
            a_out[i, j] *= inv


@kernel
def softmax_rows_backward(grad, a):
    """The softmax Jacobian per row: ``grad ← a ⊙ (grad − Σ_k grad_k a_k)``."""
    n, width = grad.shape
    for i in range(n):
        dot = grad[i, 0] * 0
        for j in range(width):
            dot += grad[i, j] * a[i, j]
        for j in range(width):
            grad[i, j] = a[i, j] * (grad[i, j] - dot)


# ----------------------------------------------------------------------------- ONNX forms
# ONNX Runtime's CPU kernels for Elu, Softplus and HardSigmoid exist for float32
# only, so those are compositions of operators it runs in both dtypes.
def _onnx_leaky_relu(g, z, gamma, slopes, output):
    # PRelu with a constant in the model's dtype: LeakyRelu's alpha is a float32 attribute
    return g.op("PRelu", [z, g.const("gamma", gamma)], output=output)


def _onnx_prelu(g, z, gamma, slopes, output):
    return g.op("PRelu", [z, g.const("slopes", slopes)], output=output)


def _onnx_elu(g, z, gamma, slopes, output):
    # relu(z) + γ·(e^min(z,0) − 1): the exponential never overflows
    neg = g.op("Min", [z, g.const("zero", 0)])
    tail = g.op("Mul", [g.op("Sub", [g.op("Exp", [neg]), g.const("one", 1)]),
                        g.const("gamma", gamma)])
    return g.op("Add", [g.op("Relu", [z]), tail], output=output)


def _onnx_softplus(g, z, gamma, slopes, output):
    # relu(z) + log(1 + e^−|z|)
    e = g.op("Exp", [g.op("Neg", [g.op("Abs", [z])])])
    log = g.op("Log", [g.op("Add", [e, g.const("one", 1)])])
    return g.op("Add", [g.op("Relu", [z]), log], output=output)


def _onnx_silu(g, z, gamma, slopes, output):
    return g.op("Mul", [z, g.op("Sigmoid", [z])], output=output)


def _onnx_hard_logistic(g, z, gamma, slopes, output):
    # clip(z/4 + 1/2, 0, 1)
    v = g.op("Add", [g.op("Mul", [z, g.const("quarter", 0.25)]), g.const("half", 0.5)])
    return g.op("Clip", [v, g.const("zero", 0), g.const("one", 1)], output=output)


def _onnx_hard_tanh(g, z, gamma, slopes, output):
    return g.op("Clip", [z, g.const("minus_one", -1), g.const("one", 1)], output=output)


def _onnx_softmax(g, z, gamma, slopes, output):
    return g.op("Softmax", [z], output=output, axis=1)


# ----------------------------------------------------------------------------- the registry
ACTIVATIONS = {a.name: a for a in [
    Activation("identity", identity),
    Activation("logistic", logistic, logistic_derivative, init_factor=2.0,
               torch="Sigmoid", onnx="Sigmoid"),
    Activation("tanh", tanh, tanh_derivative, torch="Tanh", onnx="Tanh"),
    Activation("relu", relu, relu_derivative, kinks=(0.0,), torch="ReLU", onnx="Relu"),
    Activation("leaky_relu", leaky_relu, leaky_relu_derivative, gamma="constant",
               default_gamma=0.01, kinks=(0.0,), torch="LeakyReLU",
               torch_args={"negative_slope": "gamma"}, onnx=_onnx_leaky_relu),
    Activation("prelu", leaky_relu, prelu_derivative, reads_z=True, gamma="learnable",
               default_gamma=0.25, gamma_derivative=prelu_slope_derivative, kinks=(0.0,),
               torch="PReLU", onnx=_onnx_prelu),
    Activation("elu", elu, elu_derivative, gamma="constant", default_gamma=1.0, kinks=(0.0,),
               torch="ELU", torch_args={"alpha": "gamma"}, onnx=_onnx_elu),
    # PyTorch returns z itself above its threshold: at 40 that differs by < e^-40, and
    # from 15 on by < 3e-7, which from_torch accepts
    Activation("softplus", softplus, softplus_derivative, torch="Softplus",
               torch_args={"beta": 1.0, "threshold": 40.0}, torch_accepts={"threshold": 15.0},
               onnx=_onnx_softplus),
    Activation("silu", silu, silu_derivative, reads_z=True, torch="SiLU", onnx=_onnx_silu),
    Activation("hard_logistic", hard_logistic, hard_logistic_derivative, kinks=(-2.0, 2.0),
               torch="HardLogistic", onnx=_onnx_hard_logistic),
    Activation("hard_tanh", hard_tanh, hard_tanh_derivative, kinks=(-1.0, 1.0),
               torch="Hardtanh", torch_args={"min_val": -1.0, "max_val": 1.0},
               onnx=_onnx_hard_tanh),
    Activation("softmax", rows_forward=softmax_rows, rows_backward=softmax_rows_backward,
               hidden=False, torch="Softmax", torch_args={"dim": 1}, torch_accepts={"dim": (1, -1)},
               onnx=_onnx_softmax),
    # the inverse of Poisson regression's log link
    Activation("exp", exp, exp_derivative, hidden=False, torch="Exp", onnx="Exp"),
]}
