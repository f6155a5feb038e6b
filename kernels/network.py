"""How a network is laid out for the kernels, and the pieces every entry kernel shares.

The network is described by data, not objects:

``layers`` : int64 array ``(n_layers, N_COLUMNS)``, one row per dense layer,
    columns ``FAN_IN, FAN_OUT, KIND, W_OFF, B_OFF, G_OFF, UNIT_OFF, KEEPS_Z``:
    the layer's shape; its activation as an index into the network's distinct
    hidden activations (see ``fastbp.specialize``; the output layer's is not
    read); the offsets of its weights, bias and learnable γ in the flat
    parameter buffer (``G_OFF`` = -1 without one); the number of units of all
    layers before it; and 1 if its activation's derivative reads ``z``.
``gammas`` : ``(n_layers,)`` array of the constant activation parameters.
``acts``, ``deltas`` (and ``zs`` when a layer keeps ``z``, else empty) :
    flat workspaces of ``capacity × total_units`` entries; layer ``l`` uses
    the block that starts at ``capacity × UNIT_OFF``, read as
    ``(n_rows, fan_out)`` for any ``n_rows ≤ capacity``.
"""
from ._config import kernel
from .layers import add_l2, sum_squares

FAN_IN = 0
FAN_OUT = 1
KIND = 2
W_OFF = 3
B_OFF = 4
G_OFF = 5
UNIT_OFF = 6
KEEPS_Z = 7
N_COLUMNS = 8


@kernel
def block(buf, layers, l, n_rows):
    """Layer ``l``'s ``(n_rows, fan_out)`` view of a flat workspace."""
    fan_out = layers[l, FAN_OUT]
    total_units = layers[-1, UNIT_OFF] + layers[-1, FAN_OUT]
    start = (buf.shape[0] // total_units) * layers[l, UNIT_OFF]
    return buf[start:start + n_rows * fan_out].reshape((n_rows, fan_out))


@kernel
def layer_blocks(acts, zs, layers, l, n_rows):
    """``(a, z)``: layer ``l``'s activations, and where it keeps ``z`` (its own block, or ``a``)."""
    a = block(acts, layers, l, n_rows)
    if layers[l, KEEPS_Z]:
        return a, block(zs, layers, l, n_rows)
    return a, a


@kernel
def layer_params(buf, gammas, layers, l):
    """``(W, b, γ)`` of layer ``l`` in a flat buffer of parameters, or of their gradient.

    A learnable γ is read from ``buf`` (the slopes, or their gradient); a
    constant one from ``gammas``, which then also stands in as the (never
    written) γ gradient.
    """
    fan_in, fan_out = layers[l, FAN_IN], layers[l, FAN_OUT]
    w_off, b_off, g_off = layers[l, W_OFF], layers[l, B_OFF], layers[l, G_OFF]
    W = buf[w_off:w_off + fan_in * fan_out].reshape((fan_in, fan_out))
    b = buf[b_off:b_off + fan_out]
    if g_off >= 0:
        return W, b, buf[g_off:g_off + fan_out]
    return W, b, gammas[l:l + 1]


@kernel
def gather_rows(X, Y, perm, start, n_rows, x_batch, y_batch):
    """Copy rows ``perm[start:start + n_rows]`` of ``X`` and ``Y`` into the flat buffers.

    Returns the ``(n_rows, n_features)`` and ``(n_rows, n_outputs)`` views written.
    """
    n_features, n_outputs = X.shape[1], Y.shape[1]
    xb = x_batch[:n_rows * n_features].reshape((n_rows, n_features))
    yb = y_batch[:n_rows * n_outputs].reshape((n_rows, n_outputs))
    for i in range(n_rows):
        r = perm[start + i]
        for j in range(n_features):
            xb[i, j] = X[r, j]
        for j in range(n_outputs):
            yb[i, j] = Y[r, j]
    return xb, yb


# Explicit loops instead of slice assignment: Numba compiles an error-message
# formatter into every array-to-array assignment (the shapes may differ), which
# took 1.2-1.6 s of a kernel's first compile.
@kernel
def copy_rows(src, dst, start):
    """``dst[start:start + len(src)] = src`` for 2-D arrays of the same width."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[start + i, j] = src[i, j]


@kernel
def copy_flat(src, dst):
    """``dst[:] = src`` for arrays of the same shape (any number of dimensions)."""
    s, d = src.reshape(src.size), dst.reshape(dst.size)
    for i in range(s.shape[0]):
        d[i] = s[i]


@kernel
def finish_summed_step(summed, params, n_coefs, l2, l2_per_weight):
    """Turn a batch's summed gradient and loss into the mean ones of ``forward_backward``.

    ``summed`` holds the gradient of the summed (weighted) loss, without L2,
    then the summed loss, then the batch's total weight: what data-parallel
    ranks add up in one reduction, each over its slice of the batch
    (``forward_backward`` with ``norm = 1`` and no L2). Divides by the weight,
    adds the L2 term to the leading ``n_coefs`` weights (``params``), and
    returns the mean loss with its penalty.
    """
    n = params.shape[0]
    weight = summed[n + 1]
    grads = summed[:n]
    scale = type(summed[0])(1.0 / weight)
    for i in range(n):
        grads[i] *= scale
    loss = summed[n] / weight
    lam = l2 + l2_per_weight / weight
    if lam != 0:
        coefs = params[:n_coefs]
        add_l2(coefs, grads[:n_coefs], type(params[0])(lam))
        loss += 0.5 * lam * sum_squares(coefs, 0.0)
    return loss
