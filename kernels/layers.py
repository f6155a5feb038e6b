"""The elementwise halves of a dense layer, around its matrix products.

Shapes follow scikit-learn: ``W`` is ``(fan_in, fan_out)``, activations are
``(n_samples, width)``. The products go to BLAS; what these functions do to
the product while it is still in cache is fused into one or two passes.

The elementwise functions take the layer's scalar activation functions as
arguments and are inlined into the kernels generated for a network
(``fastbp.specialize``): every loop is compiled with exactly one activation
inside and vectorises around it.

``gamma`` is the activation's parameter γ: ``gamma[0]`` for a constant one,
``gamma[j]`` for unit ``j`` of a learnable one (``bias_activation_keeping_z``
with stride 1, ``times_derivative_per_unit``).

The parameter gradient's tail is here too, for every path: ``add_l2`` (the L2
term), ``sum_squares`` (the penalty's ``Σ w²``) and ``bias_gradient``;
``gradients_with_l2`` is the serial paths' whole weight and bias gradient.
"""
import numpy as np

from ._config import generic, inline, kernel


@generic
def bias_activation(a, b, f, gamma):
    """``a = f(a + b)`` in place, with the constant ``gamma[0]``.

    ``a`` holds the matrix product on entry. In place on one array: with the
    product in another array that may alias the output, the compiler checks
    for overlap at run time and falls back to a scalar loop when they do
    (logistic: 7.2 ns per element against 1.3). The activation runs as one
    loop over the whole contiguous block rather than row by row: rows of a
    narrow layer (8 units) are shorter than one vectorised iteration.
    """
    n, width = a.shape
    for i in range(n):
        for j in range(width):
            a[i, j] += b[j]
    flat = a.reshape(n * width)
    g = gamma[0]
    for k in range(n * width):
        flat[k] = f(flat[k], g)


@generic
def bias_activation_keeping_z(z, b, f, gamma, stride, a):
    """``z = z + b`` in place (kept for the derivative), ``a[:, j] = f(z[:, j], gamma[j·stride])``.

    ``stride`` 1 reads one γ per unit (a learnable γ), 0 the constant ``gamma[0]``.
    """
    n, width = a.shape
    for i in range(n):
        for j in range(width):
            v = z[i, j] + b[j]
            z[i, j] = v
            a[i, j] = f(v, gamma[j * stride])


@generic
def times_derivative(grad, a, z, f_grad, gamma):
    """``grad ⊙= f'`` with the constant ``gamma[0]``; ``z`` may alias ``a``."""
    n, width = grad.shape
    g = gamma[0]
    grad_flat = grad.reshape(n * width)
    a_flat = a.reshape(n * width)
    z_flat = z.reshape(n * width)
    for k in range(n * width):
        grad_flat[k] *= f_grad(a_flat[k], z_flat[k], g)


@generic
def times_derivative_per_unit(grad, a, z, f_grad, g_grad, gamma, gamma_grad):
    """``gamma_grad[j] = Σ_i grad[i, j] · g_grad(z[i, j], γ_j)``, then ``grad ⊙= f'`` with ``γ_j``."""
    n, width = grad.shape
    gamma_grad[:] = 0
    for i in range(n):
        for j in range(width):
            gamma_grad[j] += grad[i, j] * g_grad(z[i, j], gamma[j])
    for i in range(n):
        for j in range(width):
            grad[i, j] *= f_grad(a[i, j], z[i, j], gamma[j])


@kernel
def gradients_with_l2(a_in, delta, W, l2, coef_grad, intercept_grad):
    """``coef_grad = a_inᵀ δ + l2·W``, ``intercept_grad = Σ_rows δ``; returns ``l2/2 · ‖W‖²``.

    ``l2`` is a float64: the L2 term is computed in float64 and rounded once
    (the column-split epoch and the distributed step round ``l2`` to the
    parameters' dtype first; see ``add_l2``).
    """
    np.dot(a_in.T, delta, coef_grad)
    penalty = 0.0
    if l2 != 0:
        for k in range(W.shape[0]):  # by rows: a reshaped flat view compiled 0.15 s slower
            add_l2(W[k], coef_grad[k], l2)
            penalty = sum_squares(W[k], penalty)
        penalty *= 0.5 * l2
    bias_gradient(delta, intercept_grad)
    return penalty


# The L2 and bias-gradient math of every path (serial, sharded, columns, distributed).
# Separate loops, not one fused pass: the column-split epoch adds the L2 term in its
# backward phase but sums the squares in its forward one, and split, every path sums
# in the order it did (the same bits). Inlined: as kernels of their own they cost
# 0.08-0.12 s each to compile, paid by the first epoch kernel that needs them.
@inline
def add_l2(w, w_grad, lam):
    """``w_grad += lam · w`` on flat arrays.

    The type of ``lam`` sets the precision of the term: a float64 ``lam``
    promotes ``w`` (the serial and sharded epochs, ``forward_backward``), one
    of the parameters' dtype keeps it there (the column-split epoch, the
    distributed step). The two give other bits in float32; each path keeps its own.
    """
    for i in range(w.shape[0]):
        w_grad[i] += lam * w[i]


@inline
def sum_squares(w, total):
    """``total + Σ w²`` over a flat array; a 2-D block sums one row after the other.

    The products are in the array's dtype, the sum in float64.
    """
    for i in range(w.shape[0]):
        total += w[i] * w[i]
    return total


@inline
def bias_gradient(delta, db):
    """``db[j] = Σ_i delta[i, j]``, summed in row order."""
    for j in range(db.shape[0]):
        db[j] = 0
    for i in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            db[j] += delta[i, j]
