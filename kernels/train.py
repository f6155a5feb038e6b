"""Whole-network kernels: forward pass, loss + gradient, one training epoch.

The network is described by data, not objects:

``layers`` : int64 array ``(n_layers, N_COLUMNS)``, one row per dense layer,
    columns ``FAN_IN, FAN_OUT, CODE, W_OFF, B_OFF, G_OFF, UNIT_OFF``: the
    layer's shape and activation code, the offsets of its weights, bias and
    prelu slopes in the flat parameter buffer (``G_OFF`` = -1 without prelu),
    and the number of units of all layers before it.
``gammas`` : ``(n_layers,)`` array of the constant activation parameters.
``acts``, ``deltas`` (and ``zs`` when a layer is prelu, else empty) :
    flat workspaces of ``capacity × total_units`` entries; layer ``l`` uses
    the block that starts at ``capacity × UNIT_OFF``, read as
    ``(n_rows, fan_out)`` for any ``n_rows ≤ capacity``.
"""
import numpy as np

from ._config import kernel
from .activations import IDENTITY, PRELU
from .dense import dense_backward, dense_forward
from .losses import batch_weight, output_delta
from .optim import apply_update

FAN_IN = 0
FAN_OUT = 1
CODE = 2
W_OFF = 3
B_OFF = 4
G_OFF = 5
UNIT_OFF = 6
N_COLUMNS = 7


@kernel
def _block(buf, layers, l, n_rows):
    """Layer ``l``'s ``(n_rows, fan_out)`` view of a flat workspace."""
    fan_out = layers[l, FAN_OUT]
    total_units = layers[-1, UNIT_OFF] + layers[-1, FAN_OUT]
    start = (buf.shape[0] // total_units) * layers[l, UNIT_OFF]
    return buf[start:start + n_rows * fan_out].reshape((n_rows, fan_out))


@kernel
def _coefs(buf, layers, l):
    fan_in, fan_out, w_off = layers[l, FAN_IN], layers[l, FAN_OUT], layers[l, W_OFF]
    return buf[w_off:w_off + fan_in * fan_out].reshape((fan_in, fan_out))


@kernel
def _intercepts(buf, layers, l):
    b_off = layers[l, B_OFF]
    return buf[b_off:b_off + layers[l, FAN_OUT]]


@kernel
def _slopes(buf, gammas, layers, l):
    """Activation parameter vector of layer ``l``.

    Prelu reads its learnable slopes from ``buf`` (parameters, or their
    gradient); the others read their constant from ``gammas``, which then also
    stands in as the (never written) slope gradient.
    """
    if layers[l, CODE] == PRELU:
        g_off = layers[l, G_OFF]
        return buf[g_off:g_off + layers[l, FAN_OUT]]
    return gammas[l:l + 1]


@kernel
def _preactivations(zs, acts_block, layers, l, n_rows):
    """Where layer ``l`` keeps its pre-activations: its own block for prelu."""
    if layers[l, CODE] == PRELU:
        return _block(zs, layers, l, n_rows)
    return acts_block


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
        xb[i, :] = X[r, :]
        yb[i, :] = Y[r, :]
    return xb, yb


@kernel
def forward_pass(x, params, layers, gammas, acts, zs):
    """Forward every layer for the rows of ``x`` ``(n_rows, n_features)``.

    Returns the output block ``(n_rows, n_outputs)`` (a view of ``acts``).
    """
    n_rows = x.shape[0]
    a_in = x
    for l in range(layers.shape[0]):
        a_out = _block(acts, layers, l, n_rows)
        dense_forward(a_in, _coefs(params, layers, l), _intercepts(params, layers, l),
                      layers[l, CODE], _slopes(params, gammas, layers, l),
                      _preactivations(zs, a_out, layers, l, n_rows), a_out)
        a_in = a_out
    return a_in


@kernel
def forward_backward(x, y, params, grads, layers, gammas, loss_code, canonical, l2,
                     l2_per_weight, norm, acts, zs, deltas):
    """Loss and gradient of a batch; writes the whole gradient into ``grads``.

    Parameters
    ----------
    x : (n_rows, n_features) array
    y : (n_rows, n_outputs) array of targets (one-hot for cross-entropy),
        optionally with a last column of sample weights (``losses.output_delta``)
    params, grads : flat buffers of the same layout
    loss_code, canonical : the output's loss, see ``losses.output_delta``
    l2, l2_per_weight : float
        The L2 penalty is ``λ/2 ‖W‖²`` (weights only) with
        ``λ = l2 + l2_per_weight / norm``: a fixed coefficient, or scikit-learn's
        ``alpha`` divided by the batch's total weight.
    norm : float
        The loss is a (weighted) mean: the rows' summed loss divided by this,
        the batch's total weight (``losses.batch_weight``; its number of rows
        when unweighted). When ``x`` is one shard of a batch it is the whole
        batch's weight, so the shards' gradients add up to the batch's.

    Returns
    -------
    float
        Summed (weighted) loss over the rows divided by ``norm``, plus the L2 penalty.
    """
    n_rows = x.shape[0]
    n_layers = layers.shape[0]
    out = forward_pass(x, params, layers, gammas, acts, zs)
    last = n_layers - 1
    delta = _block(deltas, layers, last, n_rows)
    loss = output_delta(out, y, _preactivations(zs, out, layers, last, n_rows),
                        layers[last, CODE], _slopes(params, gammas, layers, last),
                        _slopes(grads, gammas, layers, last),
                        loss_code, canonical, 1.0 / norm, delta)
    loss /= norm
    l2 = l2 + l2_per_weight / norm
    for l in range(last, -1, -1):
        delta = _block(deltas, layers, l, n_rows)
        if l > 0:
            a_in = _block(acts, layers, l - 1, n_rows)
            code_in = layers[l - 1, CODE]
            gamma_in = _slopes(params, gammas, layers, l - 1)
            gamma_grad_in = _slopes(grads, gammas, layers, l - 1)
            z_in = _preactivations(zs, a_in, layers, l - 1, n_rows)
            delta_in = _block(deltas, layers, l - 1, n_rows)
        else:
            # the input layer: nothing below it to propagate into
            a_in = x
            code_in = IDENTITY
            gamma_in = gammas[0:1]
            gamma_grad_in = gamma_in
            z_in = x
            delta_in = delta
        loss += dense_backward(a_in, delta, _coefs(params, layers, l), l2,
                               _coefs(grads, layers, l), _intercepts(grads, layers, l),
                               l > 0, z_in, code_in, gamma_in, gamma_grad_in, delta_in)
    return loss


@kernel
def train_epoch(X, Y, perm, batch_size, params, grads, state, layers, gammas,
                loss_code, canonical, l2, l2_per_weight, opt_code, hyper, step, n_decay,
                x_batch, y_batch, acts, zs, deltas):
    """One epoch of minibatch training, in place, in a single call.

    For each minibatch of ``perm`` (in order): gather its rows of ``X`` and
    ``Y`` into ``x_batch``/``y_batch``, forward, backward, and one optimizer
    step (``optim.apply_update``; ``step`` is the number of updates done
    before this epoch). Nothing is allocated inside the step loop. ``Y`` may
    carry a last column of sample weights, and ``l2``/``l2_per_weight`` are
    those of ``forward_backward``.

    Returns
    -------
    float
        The mean training loss over the epoch (each batch's loss, including
        the L2 penalty, weighted by its size), or NaN if a batch's loss was not
        finite: the epoch stops there, before that batch's update, so the
        parameters are those of the last finite step.
    """
    n = perm.shape[0]
    total = 0.0
    n_steps = (n + batch_size - 1) // batch_size
    for s in range(n_steps):
        start = s * batch_size
        n_rows = min(batch_size, n - start)
        xb, yb = gather_rows(X, Y, perm, start, n_rows, x_batch, y_batch)
        loss = forward_backward(xb, yb, params, grads, layers, gammas, loss_code, canonical,
                                l2, l2_per_weight, batch_weight(yb, layers[-1, FAN_OUT]),
                                acts, zs, deltas)
        if not np.isfinite(loss):
            return np.nan
        total += loss * n_rows
        apply_update(opt_code, params, grads, state, hyper, step + s + 1, n_decay)
    return total / n


@kernel
def predict_rows(X, params, layers, gammas, acts, zs, out):
    """Forward all rows of ``X`` in chunks of the workspace's capacity into ``out``."""
    n = X.shape[0]
    total_units = layers[-1, UNIT_OFF] + layers[-1, FAN_OUT]
    chunk = acts.shape[0] // total_units
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out[start:stop, :] = forward_pass(X[start:stop], params, layers, gammas, acts, zs)


@kernel
def evaluate_rows(X, Y, params, layers, gammas, loss_code, acts, zs, deltas, out):
    """Forward all rows of ``X`` into ``out`` and return the mean loss against ``Y``.

    Processes chunks of the workspace's capacity; the loss is the same as in
    training (without any L2 penalty). ``deltas`` is scratch space.
    """
    n = X.shape[0]
    total_units = layers[-1, UNIT_OFF] + layers[-1, FAN_OUT]
    chunk = acts.shape[0] // total_units
    last = layers.shape[0] - 1
    total = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        a = forward_pass(X[start:stop], params, layers, gammas, acts, zs)
        # canonical=True: only the loss is wanted, δ is scratch
        gamma = _slopes(params, gammas, layers, last)
        total += output_delta(a, Y[start:stop], a, layers[last, CODE], gamma, gamma,
                              loss_code, True, 1.0, _block(deltas, layers, last, stop - start))
        out[start:stop, :] = a
    return total / n


@kernel
def finish_summed_step(summed, params, n_coefs, l2, l2_per_weight):
    """Turn a batch's summed gradient and loss into ``forward_backward``'s mean ones.

    ``summed`` holds the gradient of the summed (weighted) loss, without L2,
    then the summed loss, then the batch's total weight: what data-parallel
    ranks add up in one reduction, each over its slice of the batch
    (``forward_backward`` with ``norm = 1`` and no L2). Divides by the weight,
    adds the L2 term of ``forward_backward`` to the leading ``n_coefs`` weights
    (``params``), and returns the mean loss with its penalty.
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
        lam_ = type(params[0])(lam)
        penalty = 0.0
        for i in range(n_coefs):
            grads[i] += lam_ * params[i]
            penalty += params[i] * params[i]
        loss += 0.5 * lam * penalty
    return loss
