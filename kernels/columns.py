"""The column-split epoch: every hidden layer's units divided among the threads.

Thread ``t`` owns a block of units of each hidden layer (``bounds[l, t]`` to
``bounds[l, t + 1]``): the columns of that layer's weights and bias, and, in
the output layer, the rows of the weights that read those units. It computes
its block of activations, its block of δ, the gradient of the weights it owns
and their update, so a weight is only ever written, and mostly only read, by
the core that keeps it in cache. Unlike sharding there is no per-thread
gradient buffer to sum: each gradient entry is computed once, whole.

One step is a sequence of parallel phases (a ``prange`` over the threads is
the barrier between them):

1. gather the batch's rows (rows split among the threads);
2. per hidden layer: ``A[:, own] = f(A_in @ W[:, own] + b[own])``;
3. (one thread) the output layer forward and its δ, the loss;
4. output layer: ``dW[own, :] = A[:, own]ᵀ δ``, and ``δ_below[:, own]``;
5. per hidden layer, top down: update the owned part of the layer above
   (its gradient is complete and nothing reads it any more), then
   ``dW[:, own] = A_inᵀ δ[:, own]``, ``db[own]``, and ``δ_below[:, own]``;
6. update the owned part of the first layer.

During the epoch the weights of every hidden layer, their gradient and the
optimizer state are kept in *panel order*: the columns that thread ``t`` owns
stored as one contiguous ``(fan_in, width)`` panel. A weight matrix split by
columns in row-major order would interleave the two threads' writes in every
row; on this 2-core machine that ran the parallel update 2.8x slower than the
serial one (the cores' prefetchers pull each other's lines). The kernel packs
the buffers on entry and unpacks them on exit.

Each thread's activations and δ of its block stay in its own contiguous
scratch rows (``priv_*``), and are copied into the shared ``(n_rows, width)``
blocks that the next layer's products read. BLAS must run single-threaded
inside (the Python layer limits it while this kernel runs).
"""
import numpy as np
from numba import prange

from ._config import kernel, parallel_kernel
from .activations import PRELU
from .blas import NO_TRANS, TRANS, gemm
from .dense import activation_backward, bias_activation, dense_forward
from .losses import batch_weight, output_delta
from .optim import update_rows
from .train import (B_OFF, CODE, FAN_IN, FAN_OUT, G_OFF, UNIT_OFF, W_OFF, _block, _coefs,
                    _intercepts, _preactivations, _slopes, gather_rows)


@kernel
def _start(buf, layers, l):
    """Offset of layer ``l``'s block in a flat workspace (see ``train``)."""
    total_units = layers[-1, UNIT_OFF] + layers[-1, FAN_OUT]
    return (buf.shape[0] // total_units) * layers[l, UNIT_OFF]


@kernel
def _scratch(buf, layers, l, n_rows, width):
    """A thread's contiguous ``(n_rows, width)`` scratch block for layer ``l``."""
    start = _start(buf, layers, l)
    return buf[start:start + n_rows * width].reshape((n_rows, width))


@kernel
def _copy_columns(src, dst, c0):
    """``dst[:, c0:c0 + width] = src``."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[i, c0 + j] = src[i, j]


@kernel
def _panel_start(layers, bounds, l, t):
    """Flat offset of thread ``t``'s ``(fan_in, width)`` weight panel of hidden layer ``l``."""
    return layers[l, W_OFF] + layers[l, FAN_IN] * bounds[l, t]


@kernel
def _pack_panels(src, dst, layers, bounds, t, to_panels):
    """Copy thread ``t``'s weight columns of every hidden layer between the orders.

    ``to_panels``: ``src`` is row-major, ``dst`` panel order; else the reverse.
    """
    for l in range(layers.shape[0] - 1):
        fan_in, fan_out, w_off = layers[l, FAN_IN], layers[l, FAN_OUT], layers[l, W_OFF]
        c0, c1 = bounds[l, t], bounds[l, t + 1]
        width = c1 - c0
        panel = _panel_start(layers, bounds, l, t)
        for k in range(fan_in):
            for j in range(width):
                if to_panels:
                    dst[panel + k * width + j] = src[w_off + k * fan_out + c0 + j]
                else:
                    dst[w_off + k * fan_out + c0 + j] = src[panel + k * width + j]


@kernel
def _reorder(src_params, src_state, dst_params, dst_state, layers, bounds, t, to_panels):
    """``_pack_panels`` on the parameters and every optimizer state buffer."""
    _pack_panels(src_params, dst_params, layers, bounds, t, to_panels)
    for k in range(src_state.shape[0]):
        _pack_panels(src_state[k], dst_state[k], layers, bounds, t, to_panels)


@kernel
def _own_slopes(buf, gammas, layers, l, c0, c1):
    """The activation parameters of units ``c0:c1`` (all of ``gammas[l]`` but for prelu)."""
    g = _slopes(buf, gammas, layers, l)
    return g[c0:c1] if layers[l, CODE] == PRELU else g


@kernel
def _layer_input(x_batch, acts, layers, l):
    """Flat start of the rows that layer ``l`` reads (row stride ``FAN_IN``)."""
    if l == 0:
        return x_batch
    return acts[_start(acts, layers, l - 1):]


@kernel
def _hidden_forward(t, l, n_rows, params, gammas, layers, bounds, x_batch, acts,
                    priv_acts, priv_zs, l2, alpha_beta):
    """Thread ``t``'s units of hidden layer ``l``; returns their ``Σ w²`` if ``l2`` ≠ 0."""
    c0, c1 = bounds[l, t], bounds[l, t + 1]
    width = c1 - c0
    if width == 0:
        return 0.0
    fan_in, fan_out, code = layers[l, FAN_IN], layers[l, FAN_OUT], layers[l, CODE]
    a_own = _scratch(priv_acts[t], layers, l, n_rows, width)
    z_own = _scratch(priv_zs[t], layers, l, n_rows, width) if code == PRELU else a_own
    panel = _panel_start(layers, bounds, l, t)
    gemm(NO_TRANS, NO_TRANS, n_rows, width, fan_in, _layer_input(x_batch, acts, layers, l),
         fan_in, params[panel:], width, z_own.reshape(n_rows * width), width, alpha_beta)
    bias_activation(z_own, _intercepts(params, layers, l)[c0:c1], code,
                    _own_slopes(params, gammas, layers, l, c0, c1), z_own, a_own)
    _copy_columns(a_own, _block(acts, layers, l, n_rows), c0)
    squares = 0.0
    if l2 != 0:
        for i in range(panel, panel + fan_in * width):
            squares += params[i] * params[i]
    return squares


@kernel
def _propagate(t, l, n_rows, params, grads, gammas, layers, bounds, deltas,
               priv_acts, priv_zs, priv_deltas, alpha_beta):
    """Thread ``t``'s units of the layer below ``l``: ``δ_below[:, own] = (δ Wᵀ)[:, own] ⊙ f'``."""
    below = l - 1
    r0, r1 = bounds[below, t], bounds[below, t + 1]
    width = r1 - r0
    if width == 0:
        return
    fan_out, code = layers[l, FAN_OUT], layers[below, CODE]
    d_own = _scratch(priv_deltas[t], layers, below, n_rows, width)
    d_flat = d_own.reshape(n_rows * width)
    delta = deltas[_start(deltas, layers, l):]
    if l == layers.shape[0] - 1:
        # the output layer's weights are row-major: rows r0:r1 are one block
        gemm(NO_TRANS, TRANS, n_rows, width, fan_out, delta, fan_out,
             params[layers[l, W_OFF] + r0 * fan_out:], fan_out, d_flat, width, alpha_beta)
    else:
        # rows r0:r1 of a panel-ordered matrix: one block per panel, summed; the first
        # non-empty panel overwrites (β = 0), which need not be panel 0: a layer with
        # fewer units than threads leaves some panels empty
        first = True
        for p in range(bounds.shape[1] - 1):
            c0, c1 = bounds[l, p], bounds[l, p + 1]
            if c1 > c0:
                gemm(NO_TRANS, TRANS, n_rows, width, c1 - c0, delta[c0:], fan_out,
                     params[_panel_start(layers, bounds, l, p) + r0 * (c1 - c0):], c1 - c0,
                     d_flat, width, alpha_beta if first else alpha_beta[2:])
                first = False
    a_own = _scratch(priv_acts[t], layers, below, n_rows, width)
    z_own = _scratch(priv_zs[t], layers, below, n_rows, width) if code == PRELU else a_own
    gamma = _own_slopes(params, gammas, layers, below, r0, r1)
    gamma_grad = _own_slopes(grads, gammas, layers, below, r0, r1)
    activation_backward(d_own, a_own, z_own, code, gamma, gamma_grad)
    _copy_columns(d_own, _block(deltas, layers, below, n_rows), r0)


@kernel
def _add_l2(params, grads, l2, lo, hi):
    """``grads[lo:hi] += l2 · params[lo:hi]``."""
    p, g = params[lo:hi], grads[lo:hi]
    l2_ = type(params[0])(l2)
    for i in range(p.shape[0]):
        g[i] += l2_ * p[i]


@kernel
def _output_backward(t, n_rows, params, grads, gammas, layers, bounds, acts, deltas,
                     priv_acts, priv_zs, priv_deltas, l2, alpha_beta):
    """Output layer: the rows of ``dW`` that read thread ``t``'s units, then δ below."""
    last = layers.shape[0] - 1
    fan_in, fan_out = layers[last, FAN_IN], layers[last, FAN_OUT]
    r0, r1 = bounds[last - 1, t], bounds[last - 1, t + 1]
    if t == 0:
        delta = _block(deltas, layers, last, n_rows)
        db = _intercepts(grads, layers, last)
        db[:] = 0
        for i in range(n_rows):
            for j in range(fan_out):
                db[j] += delta[i, j]
    if r1 == r0:
        return
    w_lo = layers[last, W_OFF] + r0 * fan_out
    gemm(TRANS, NO_TRANS, r1 - r0, fan_out, n_rows, acts[_start(acts, layers, last - 1) + r0:],
         fan_in, deltas[_start(deltas, layers, last):], fan_out, grads[w_lo:], fan_out,
         alpha_beta)
    if l2 != 0:
        _add_l2(params, grads, l2, w_lo, w_lo + (r1 - r0) * fan_out)
    _propagate(t, last, n_rows, params, grads, gammas, layers, bounds, deltas,
               priv_acts, priv_zs, priv_deltas, alpha_beta)


@kernel
def _hidden_backward(t, l, n_rows, params, grads, gammas, layers, bounds, x_batch, acts,
                     deltas, priv_acts, priv_zs, priv_deltas, l2, alpha_beta):
    """Thread ``t``'s columns of ``dW``, ``db`` of hidden layer ``l``, then δ below.

    The thread's units below may exist when it owns none of layer ``l`` (a layer
    narrower than the thread count), so δ below is propagated either way.
    """
    c0, c1 = bounds[l, t], bounds[l, t + 1]
    width = c1 - c0
    if width > 0:
        fan_in = layers[l, FAN_IN]
        d_own = _scratch(priv_deltas[t], layers, l, n_rows, width)
        panel = _panel_start(layers, bounds, l, t)
        gemm(TRANS, NO_TRANS, fan_in, width, n_rows, _layer_input(x_batch, acts, layers, l),
             fan_in, d_own.reshape(n_rows * width), width, grads[panel:], width, alpha_beta)
        if l2 != 0:
            _add_l2(params, grads, l2, panel, panel + fan_in * width)
        db = _intercepts(grads, layers, l)
        for j in range(c0, c1):
            db[j] = 0
        for i in range(n_rows):
            for j in range(width):
                db[c0 + j] += d_own[i, j]
    if l > 0:
        _propagate(t, l, n_rows, params, grads, gammas, layers, bounds, deltas,
                   priv_acts, priv_zs, priv_deltas, alpha_beta)


@kernel
def _update_owned(t, l, params, grads, state, layers, bounds, opt_code, hyper, step, n_decay):
    """One optimizer step on the parameters of layer ``l`` that thread ``t`` owns."""
    last = layers.shape[0] - 1
    fan_in, fan_out = layers[l, FAN_IN], layers[l, FAN_OUT]
    if l == last:
        r0, r1 = bounds[last - 1, t], bounds[last - 1, t + 1]
        update_rows(opt_code, params, grads, state, hyper, step, n_decay,
                    layers[l, W_OFF] + r0 * fan_out, (r1 - r0) * fan_out, 0, 1)
        c0, c1 = (0, fan_out) if t == 0 else (0, 0)
    else:
        c0, c1 = bounds[l, t], bounds[l, t + 1]
        update_rows(opt_code, params, grads, state, hyper, step, n_decay,
                    _panel_start(layers, bounds, l, t), fan_in * (c1 - c0), 0, 1)
    update_rows(opt_code, params, grads, state, hyper, step, n_decay,
                layers[l, B_OFF] + c0, c1 - c0, 0, 1)
    if layers[l, CODE] == PRELU:
        update_rows(opt_code, params, grads, state, hyper, step, n_decay,
                    layers[l, G_OFF] + c0, c1 - c0, 0, 1)


@parallel_kernel
def train_epoch_columns(X, Y, perm, batch_size, params, grads, state, layers, gammas,
                        loss_code, canonical, l2, l2_per_weight, opt_code, hyper, step,
                        n_decay, x_batch, y_batch, acts, zs, deltas, bounds,
                        priv_acts, priv_zs, priv_deltas, squares, alpha_beta,
                        packed_params, packed_state):
    """One epoch like ``train.train_epoch``, each layer's units split among threads.

    Parameters
    ----------
    bounds : (n_layers, n_threads + 1) int64 array
        Row ``l`` (for every hidden layer) splits its units into one
        contiguous block per thread; the output layer's row is not read.
    x_batch, y_batch, acts, zs, deltas : flat workspaces for ``batch_size`` rows,
        shared by the threads (as for ``train.train_epoch``)
    priv_acts, priv_zs, priv_deltas : (n_threads, size) arrays
        Each thread's scratch, laid out like ``acts``.
    squares : (n_threads,) float64 array, scratch
    alpha_beta : ``[1, 0, 1, 1]`` in the parameters' dtype (GEMM's alpha and
        beta: overwrite, then accumulate)
    packed_params, packed_state : scratch shaped like ``params`` and ``state``
        (the panel-ordered copies; ``grads`` is used in panel order directly)

    The network needs at least one hidden layer. Other parameters and the
    return value are those of ``train.train_epoch``.
    """
    n = perm.shape[0]
    n_threads = bounds.shape[1] - 1
    last = layers.shape[0] - 1
    n_features, y_width = X.shape[1], Y.shape[1]
    total = 0.0
    n_steps = (n + batch_size - 1) // batch_size
    user_params, user_state = params, state
    params, state = packed_params, packed_state
    params[:] = user_params
    state[:] = user_state
    for t in prange(n_threads):
        _reorder(user_params, user_state, params, state, layers, bounds, t, True)
    for s in range(n_steps):
        start = s * batch_size
        n_rows = min(batch_size, n - start)
        for t in prange(n_threads):
            lo = (n_rows * t) // n_threads
            hi = (n_rows * (t + 1)) // n_threads
            if hi > lo:
                gather_rows(X, Y, perm, start + lo, hi - lo, x_batch[lo * n_features:],
                            y_batch[lo * y_width:])
        yb = y_batch[:n_rows * y_width].reshape((n_rows, y_width))
        norm = batch_weight(yb, layers[last, FAN_OUT])
        lam = l2 + l2_per_weight / norm
        squares[:] = 0.0
        for l in range(last):
            for t in prange(n_threads):
                squares[t] += _hidden_forward(t, l, n_rows, params, gammas, layers, bounds,
                                              x_batch, acts, priv_acts, priv_zs, lam, alpha_beta)
        # the output layer, whole rows at once (softmax needs them)
        out = _block(acts, layers, last, n_rows)
        z_out = _preactivations(zs, out, layers, last, n_rows)
        W_out = _coefs(params, layers, last)
        dense_forward(_block(acts, layers, last - 1, n_rows), W_out,
                      _intercepts(params, layers, last), layers[last, CODE],
                      _slopes(params, gammas, layers, last), z_out, out)
        loss = output_delta(out, yb, z_out, layers[last, CODE],
                            _slopes(params, gammas, layers, last),
                            _slopes(grads, gammas, layers, last), loss_code, canonical,
                            1.0 / norm, _block(deltas, layers, last, n_rows)) / norm
        if lam != 0:
            penalty = 0.0
            for t in range(n_threads):
                penalty += squares[t]
            for k in range(W_out.shape[0]):
                for j in range(W_out.shape[1]):
                    penalty += W_out[k, j] * W_out[k, j]
            loss += 0.5 * lam * penalty
        if not np.isfinite(loss):
            total = np.nan  # stop before this step's update
            break
        total += loss * n_rows
        u = step + s + 1
        for t in prange(n_threads):
            _output_backward(t, n_rows, params, grads, gammas, layers, bounds, acts, deltas,
                             priv_acts, priv_zs, priv_deltas, lam, alpha_beta)
        for l in range(last - 1, -1, -1):
            for t in prange(n_threads):
                _update_owned(t, l + 1, params, grads, state, layers, bounds, opt_code, hyper,
                              u, n_decay)
                _hidden_backward(t, l, n_rows, params, grads, gammas, layers, bounds, x_batch,
                                 acts, deltas, priv_acts, priv_zs, priv_deltas, lam,
                                 alpha_beta)
        for t in prange(n_threads):
            _update_owned(t, 0, params, grads, state, layers, bounds, opt_code, hyper, u,
                          n_decay)
    user_params[:] = params
    user_state[:] = state
    for t in prange(n_threads):
        _reorder(params, state, user_params, user_state, layers, bounds, t, False)
    return total / n
