"""The entry kernels: what the Python layer calls, compiled once and shared by every network.

Each takes the network as a record (``records.network``): ``net``, the int64
array of the addresses of the network's own functions (activations, loss,
optimizer rule; see ``network_functions``), its parameters and its layout
(``network``); and the rest as the other records of ``records`` (the
settings of the optimizer step, the data, the workspace). None of them
contains an activation, a loss or an optimizer: those are reached through
``net``, so these kernels are compiled once per machine and dtype (and cached
on disk), and a network with new activations compiles only its own small
functions.

An entry unpacks its records first thing; the kernels below it take arrays, so
each is compiled once for all the entries that call it.
"""
import numpy as np
from numba import prange

from . import columns as C
from .borrow import borrow
from ._config import inline, kernel, parallel_kernel
from .blas import NO_TRANS, TRANS, gemm
from .blas_threads import single_threaded_blas
from .losses import batch_weight
from .network import (B_OFF, FAN_IN, FAN_OUT, G_OFF, KEEPS_Z, KIND, UNIT_OFF, W_OFF, block,
                      copy_rows, gather_rows, layer_blocks, layer_params)
from .layers import add_l2, bias_gradient, gradients_with_l2, sum_squares
from .unliteral import unliteral
from .network_functions import (GATHER_PART, HIDDEN_BACKWARD, HIDDEN_BACKWARD_PART,
                                HIDDEN_FORWARD, HIDDEN_FORWARD_PART, OUTPUT_BACKWARD_PART,
                                OUTPUT_DELTA, OUTPUT_FORWARD, OUTPUT_LOSS, PREDICT_WORKER, SHARD,
                                UPDATE, UPDATE_PART, network_function)

# Parameters per slice of the sharded epoch's parallel reduce + update: large
# enough to amortise scheduling, small enough to keep a slice of every buffer in L1/L2.
UPDATE_SLICE = 8192


@inline
def forward_pass(net, x, params, layers, gammas, acts, zs):
    """Forward every layer for the rows of ``x`` ``(n_rows, n_features)``.

    Inlined into the kernels that call it, as ``loss_and_gradient`` is: one
    compiled unit per entry kernel compiles faster than a chain of calls, each
    of which Numba optimises again with everything below it (the serial epoch:
    3.3–3.7 → 2.8 s in float64). The small view helpers stay calls: inlined
    at their dozen call sites they cost more (4.5–4.8 s).

    Layer ``l``: ``a = f(a_in @ W + b)`` into its workspace block (the product
    goes to ``z`` first, which is ``a`` itself unless the layer keeps ``z``).
    Returns the output block ``(n_rows, n_outputs)`` (a view of ``acts``).
    """
    hidden_forward = network_function(net[HIDDEN_FORWARD], HIDDEN_FORWARD, params)
    output_forward = network_function(net[OUTPUT_FORWARD], OUTPUT_FORWARD, params)
    n_rows = x.shape[0]
    last = layers.shape[0] - 1
    a_in = x
    for l in range(last + 1):
        W, b, g = layer_params(params, gammas, layers, l)
        a, z = layer_blocks(acts, zs, layers, l, n_rows)
        np.dot(a_in, W, z)
        if l == last:
            output_forward(z, b, g, z, a)
        else:
            hidden_forward(layers[l, KIND], z, b, g, z, a)
        a_in = a
    return a_in


@kernel
def forward_backward(network, settings, x, y, norm, work):
    """``loss_and_gradient`` of the rows ``x``, ``y`` into the workspace's ``grads``, as an
    entry of its own (``MLP.loss_and_grad``, L-BFGS, MPI).

    ``settings`` gives the L2 terms (``records.l2_only``); ``norm`` is the
    batch's total weight.
    """
    net, params, layers, gammas = borrow(network)
    _, _, _, _, l2, l2_per_weight = settings
    acts, zs, deltas, grads, _, _, _ = borrow(work)
    x, y = borrow((x, y))
    return loss_and_gradient(net, x, y, params, grads, layers, gammas, l2, l2_per_weight, norm,
                             acts, zs, deltas)


@inline
def loss_and_gradient(net, x, y, params, grads, layers, gammas, l2, l2_per_weight, norm, acts,
                      zs, deltas):
    """Loss and gradient of a batch; writes the whole gradient into ``grads``.

    Parameters
    ----------
    x : (n_rows, n_features) array
    y : (n_rows, n_outputs) array of targets (one-hot for cross-entropy),
        optionally with a last column of sample weights
    params, grads : flat buffers of the same layout
    l2, l2_per_weight : float
        The L2 penalty is ``λ/2 ‖W‖²`` (weights only) with
        ``λ = l2 + l2_per_weight / norm``: a fixed coefficient, or scikit-learn's
        ``alpha`` divided by the batch's total weight.
    norm : float
        The loss is a (weighted) mean: the rows' summed loss divided by this,
        the batch's total weight (``losses.batch_weight``). When ``x`` is one
        shard of a batch it is the whole batch's weight, so the shards'
        gradients add up to the batch's.

    Returns
    -------
    float
        Summed (weighted) loss over the rows divided by ``norm``, plus the L2 penalty.
    """
    output_delta = network_function(net[OUTPUT_DELTA], OUTPUT_DELTA, params)
    hidden_backward = network_function(net[HIDDEN_BACKWARD], HIDDEN_BACKWARD, params)
    n_rows = x.shape[0]
    last = layers.shape[0] - 1
    out = forward_pass(net, x, params, layers, gammas, acts, zs)
    _, _, g = layer_params(params, gammas, layers, last)
    _, _, g_grad = layer_params(grads, gammas, layers, last)
    _, z = layer_blocks(acts, zs, layers, last, n_rows)
    loss = output_delta(out, y, z, g, g_grad, 1.0 / norm, block(deltas, layers, last, n_rows))
    loss /= norm
    lam = l2 + l2_per_weight / norm
    for l in range(last, -1, -1):
        delta = block(deltas, layers, l, n_rows)
        W, _, _ = layer_params(params, gammas, layers, l)
        W_grad, b_grad, _ = layer_params(grads, gammas, layers, l)
        if l == 0:
            loss += gradients_with_l2(x, delta, W, lam, W_grad, b_grad)
        else:
            a_in, z_in = layer_blocks(acts, zs, layers, l - 1, n_rows)
            loss += gradients_with_l2(a_in, delta, W, lam, W_grad, b_grad)
            # δ of the layer below: (δ Wᵀ) ⊙ f'
            delta_in = block(deltas, layers, l - 1, n_rows)
            np.dot(delta, W.T, delta_in)
            _, _, g_in = layer_params(params, gammas, layers, l - 1)
            _, _, g_grad_in = layer_params(grads, gammas, layers, l - 1)
            hidden_backward(layers[l - 1, KIND], delta_in, a_in, z_in, g_in, g_grad_in)
    return loss


@kernel
def apply_update(network, settings, grads):
    """Optimizer step number ``step + 1`` of ``settings`` on the whole buffer, L2 already in
    ``grads``."""
    net, params, _, _ = borrow(network)
    state, hyper, step, n_decay, _, _ = borrow(settings)
    update = network_function(net[UPDATE], UPDATE, params)
    update(params, grads, state, hyper, step + 1, n_decay, 0, params.shape[0], 0.0)


@kernel
def train_epoch(network, settings, data, work):
    """One epoch of minibatch training, in place, in a single call.

    For each minibatch of ``perm`` (in order): gather its rows of ``X`` and
    ``Y`` into ``x_batch``/``y_batch``, forward, backward, and one optimizer
    step (``step`` is the number of updates done before this epoch). Nothing is
    allocated inside the step loop. ``Y`` may carry a last column of sample
    weights; the L2 terms are those of ``loss_and_gradient``.

    Returns
    -------
    float
        The mean training loss over the epoch (each batch's loss, including
        the L2 penalty, weighted by its size), or NaN if a batch's loss was not
        finite: the epoch stops there, before that batch's update, so the
        parameters are those of the last finite step.
    """
    net, params, layers, gammas = borrow(network)
    X, Y, perm, batch_size = borrow(data)
    state, hyper, step, n_decay, l2, l2_per_weight = borrow(settings)
    acts, zs, deltas, grads, x_batch, y_batch, _ = borrow(work)
    update = network_function(net[UPDATE], UPDATE, params)
    n = perm.shape[0]
    total = 0.0
    n_steps = (n + batch_size - 1) // batch_size
    for s in range(n_steps):
        start = s * batch_size
        n_rows = min(batch_size, n - start)
        xb, yb = gather_rows(X, Y, perm, start, n_rows, x_batch, y_batch)
        loss = loss_and_gradient(net, xb, yb, params, grads, layers, gammas, l2,
                                 l2_per_weight, batch_weight(yb, layers[-1, FAN_OUT]), acts, zs,
                                 deltas)
        if not np.isfinite(loss):
            return np.nan
        total += loss * n_rows
        update(params, grads, state, hyper, step + s + 1, n_decay, 0, params.shape[0], 0.0)
    return total / n


@parallel_kernel
def train_epoch_sharded(network, settings, data, work):
    """One epoch like ``train_epoch``, each minibatch split into shards.

    Every step splits the minibatch into ``n_shards`` contiguous shards of the
    permuted rows (fixed by the problem, not by the threads running them).
    Each shard runs forward and backward into its own gradient buffer (no
    shared writes inside the ``prange``); the buffers are then summed in shard
    order, so the result does not depend on which thread ran which shard, and
    the optimizer update runs over the flat buffer in parallel slices, fused
    with that sum. BLAS runs single-threaded inside.

    ``work`` has one row per shard: ``grads`` ``(n_shards, n_params)``, one
    private gradient buffer per shard, and ``x_batch``, ``y_batch``, ``acts``,
    ``zs``, ``deltas`` ``(n_shards, size)`` for up to ``ceil(batch_size /
    n_shards)`` rows; ``sums`` ``(n_shards,)`` receives the shards' losses.

    Other parameters and the return value are those of ``train_epoch``. The
    L2 term is added by the last shard only (it is never empty).
    """
    net, params, layers, gammas = borrow(network)
    X, Y, perm, batch_size = borrow(data)
    state, hyper, step, n_decay, l2, l2_per_weight = borrow(settings)
    acts, zs, deltas, shard_grads, x_batch, y_batch, shard_loss = borrow(work)
    update = network_function(net[UPDATE], UPDATE, params)
    run_shard = network_function(net[SHARD], SHARD, params)
    n = perm.shape[0]
    n_outputs = layers[-1, FAN_OUT]
    n_shards = shard_grads.shape[0]
    n_params = params.shape[0]
    total = 0.0
    n_steps = (n + batch_size - 1) // batch_size
    for s in range(n_steps):
        start = s * batch_size
        n_rows = min(batch_size, n - start)
        norm = float(n_rows)
        if Y.shape[1] > n_outputs:  # weighted: the whole batch's weight, for every shard
            norm = 0.0
            for i in range(start, start + n_rows):
                norm += Y[perm[i], n_outputs]
        for q in prange(n_shards):
            k = np.int64(q)  # prange counts in uint64: one signature for the callee
            shard_loss[k] = run_shard(net, k, n_shards, X, Y, perm, start, n_rows, params,
                                      shard_grads[k], layers, gammas, l2, l2_per_weight, norm,
                                      x_batch[k], y_batch[k], acts[k], zs[k], deltas[k])
        loss = 0.0
        for k in range(n_shards):
            loss += shard_loss[k]
        if not np.isfinite(loss):
            return np.nan
        total += loss * n_rows
        # sum the shards in shard order into shard_grads[0], then update, slice by slice
        summed = shard_grads[0]
        for c in prange((n_params + UPDATE_SLICE - 1) // UPDATE_SLICE):
            p_lo = c * UPDATE_SLICE
            p_hi = min(n_params, p_lo + UPDATE_SLICE)
            for k in range(1, n_shards):
                part = shard_grads[k]
                for i in range(p_lo, p_hi):
                    summed[i] += part[i]
            update(params, summed, state, hyper, step + s + 1, n_decay, p_lo, p_hi, 0.0)
    return total / n


@kernel
def shard(net, k, n_shards, X, Y, perm, start, n_rows, params, grads, layers, gammas, l2,
           l2_per_weight, norm, x_batch, y_batch, acts, zs, deltas):
    """Shard ``k`` of a step: its rows' loss / ``norm``, their gradient into ``grads``.

    The last shard adds the L2 term; an empty shard writes a zero gradient.
    """
    single_threaded_blas()  # in a worker thread of the prange
    lo = (n_rows * k) // n_shards
    hi = (n_rows * (k + 1)) // n_shards
    if hi == lo:
        grads[:] = 0
        return 0.0
    last = k == n_shards - 1
    xb, yb = gather_rows(X, Y, perm, start + lo, hi - lo, x_batch, y_batch)
    # loss_and_gradient itself, not forward_backward: records stop at the entry kernels
    return loss_and_gradient(net, xb, yb, params, grads, layers, gammas, l2 if last else 0.0,
                             l2_per_weight if last else 0.0, norm, acts, zs, deltas)


# ------------------------------------------------ the column-split epoch (see columns.py)
@kernel
def hidden_forward_part(net, p, l, n_rows, params, gammas, layers, bounds, x_batch, acts,
                         priv_acts, priv_zs, l2, alpha_beta):
    """Part ``p``'s units of hidden layer ``l``; returns their ``Σ w²`` if ``l2`` ≠ 0."""
    single_threaded_blas()  # in a worker thread of the prange
    hidden_forward = network_function(net[HIDDEN_FORWARD], HIDDEN_FORWARD, params)
    c0, c1 = bounds[l, p], bounds[l, p + 1]
    width = c1 - c0
    if width == 0:
        return 0.0
    fan_in = layers[l, FAN_IN]
    a_own = C.scratch(priv_acts[p], layers, l, n_rows, width)
    z_own = C.scratch(priv_zs[p], layers, l, n_rows, width) if layers[l, KEEPS_Z] else a_own
    panel = C.panel_start(layers, bounds, l, p)
    gemm(unliteral(NO_TRANS), unliteral(NO_TRANS), n_rows, width, fan_in,
         C.layer_input(x_batch, acts, layers, l), fan_in, params[panel:], width,
         z_own.reshape(n_rows * width), width, alpha_beta)
    _, b, _ = layer_params(params, gammas, layers, l)
    hidden_forward(layers[l, KIND], z_own, b[c0:c1],
                   C.own_slopes(params, gammas, layers, l, c0, c1), z_own, a_own)
    C.copy_columns(a_own, block(acts, layers, l, n_rows), c0)
    if l2 == 0:
        return 0.0
    return sum_squares(params[panel:panel + fan_in * width], 0.0)


@kernel
def _propagate_part(net, p, l, n_rows, params, grads, gammas, layers, bounds, deltas,
                    priv_acts, priv_zs, priv_deltas, alpha_beta):
    """Part ``p``'s units of the layer below ``l``: ``δ_below[:, own] = (δ Wᵀ)[:, own] ⊙ f'``."""
    hidden_backward = network_function(net[HIDDEN_BACKWARD], HIDDEN_BACKWARD, params)
    below = l - 1
    r0, r1 = bounds[below, p], bounds[below, p + 1]
    width = r1 - r0
    if width == 0:
        return
    fan_out = layers[l, FAN_OUT]
    d_own = C.scratch(priv_deltas[p], layers, below, n_rows, width)
    d_flat = d_own.reshape(n_rows * width)
    delta = deltas[C.block_start(deltas, layers, l):]
    if l == layers.shape[0] - 1:
        # the output layer's weights are row-major: rows r0:r1 are one block
        gemm(unliteral(NO_TRANS), unliteral(TRANS), n_rows, width, fan_out, delta, fan_out,
             params[layers[l, W_OFF] + r0 * fan_out:], fan_out, d_flat, width, alpha_beta)
    else:
        # rows r0:r1 of a panel-ordered matrix: one block per panel, summed in panel
        # order; the first non-empty panel overwrites (β = 0), which need not be panel 0:
        # a layer with fewer units than parts leaves some panels empty
        first = True
        for q in range(bounds.shape[1] - 1):
            c0, c1 = bounds[l, q], bounds[l, q + 1]
            if c1 > c0:
                gemm(unliteral(NO_TRANS), unliteral(TRANS), n_rows, width, c1 - c0,
                     delta[c0:], fan_out,
                     params[C.panel_start(layers, bounds, l, q) + r0 * (c1 - c0):], c1 - c0,
                     d_flat, width, alpha_beta if first else alpha_beta[2:])
                first = False
    a_own = C.scratch(priv_acts[p], layers, below, n_rows, width)
    z_own = (C.scratch(priv_zs[p], layers, below, n_rows, width) if layers[below, KEEPS_Z]
             else a_own)
    hidden_backward(layers[below, KIND], d_own, a_own, z_own,
                    C.own_slopes(params, gammas, layers, below, r0, r1),
                    C.own_slopes(grads, gammas, layers, below, r0, r1))
    C.copy_columns(d_own, block(deltas, layers, below, n_rows), r0)


@kernel
def output_backward_part(net, p, n_rows, params, grads, gammas, layers, bounds, acts, deltas,
                          priv_acts, priv_zs, priv_deltas, l2, alpha_beta):
    """Output layer: the rows of ``dW`` that read part ``p``'s units, then δ below."""
    single_threaded_blas()  # in a worker thread of the prange
    last = layers.shape[0] - 1
    fan_in, fan_out = layers[last, FAN_IN], layers[last, FAN_OUT]
    r0, r1 = bounds[last - 1, p], bounds[last - 1, p + 1]
    if p == 0:
        _, db, _ = layer_params(grads, gammas, layers, last)
        bias_gradient(block(deltas, layers, last, n_rows), db)
    if r1 == r0:
        return
    w_lo = layers[last, W_OFF] + r0 * fan_out
    w_hi = w_lo + (r1 - r0) * fan_out
    gemm(unliteral(TRANS), unliteral(NO_TRANS), r1 - r0, fan_out, n_rows,
         acts[C.block_start(acts, layers, last - 1) + r0:], fan_in,
         deltas[C.block_start(deltas, layers, last):], fan_out, grads[w_lo:], fan_out, alpha_beta)
    if l2 != 0:
        add_l2(params[w_lo:w_hi], grads[w_lo:w_hi], type(params[0])(l2))
    _propagate_part(net, p, last, n_rows, params, grads, gammas, layers, bounds, deltas,
                    priv_acts, priv_zs, priv_deltas, alpha_beta)


@kernel
def hidden_backward_part(net, p, l, n_rows, params, grads, gammas, layers, bounds, x_batch,
                          acts, deltas, priv_acts, priv_zs, priv_deltas, l2, alpha_beta):
    """Part ``p``'s columns of ``dW``, ``db`` of hidden layer ``l``, then δ below.

    The part's units below may exist when it owns none of layer ``l`` (a layer
    narrower than the number of parts), so δ below is propagated either way.
    """
    single_threaded_blas()  # in a worker thread of the prange
    c0, c1 = bounds[l, p], bounds[l, p + 1]
    width = c1 - c0
    if width > 0:
        fan_in = layers[l, FAN_IN]
        d_own = C.scratch(priv_deltas[p], layers, l, n_rows, width)
        panel = C.panel_start(layers, bounds, l, p)
        gemm(unliteral(TRANS), unliteral(NO_TRANS), fan_in, width, n_rows,
             C.layer_input(x_batch, acts, layers, l), fan_in, d_own.reshape(n_rows * width),
             width, grads[panel:], width, alpha_beta)
        if l2 != 0:
            size = fan_in * width
            add_l2(params[panel:panel + size], grads[panel:panel + size], type(params[0])(l2))
        _, db, _ = layer_params(grads, gammas, layers, l)
        bias_gradient(d_own, db[c0:c1])
    if l > 0:
        _propagate_part(net, p, l, n_rows, params, grads, gammas, layers, bounds, deltas,
                        priv_acts, priv_zs, priv_deltas, alpha_beta)


@kernel
def update_part(net, p, l, params, grads, state, layers, bounds, hyper, step, n_decay):
    """One optimizer step on the parameters of layer ``l`` that part ``p`` owns."""
    update = network_function(net[UPDATE], UPDATE, params)
    last = layers.shape[0] - 1
    fan_in, fan_out = layers[l, FAN_IN], layers[l, FAN_OUT]
    if l == last:
        r0, r1 = bounds[last - 1, p], bounds[last - 1, p + 1]
        lo = layers[l, W_OFF] + r0 * fan_out
        update(params, grads, state, hyper, step, n_decay, lo, lo + (r1 - r0) * fan_out, 0.0)
        c0, c1 = (0, fan_out) if p == 0 else (0, 0)
    else:
        c0, c1 = bounds[l, p], bounds[l, p + 1]
        lo = C.panel_start(layers, bounds, l, p)
        update(params, grads, state, hyper, step, n_decay, lo, lo + fan_in * (c1 - c0), 0.0)
    update(params, grads, state, hyper, step, n_decay, layers[l, B_OFF] + c0,
           layers[l, B_OFF] + c1, 0.0)
    if layers[l, G_OFF] >= 0:
        update(params, grads, state, hyper, step, n_decay, layers[l, G_OFF] + c0,
               layers[l, G_OFF] + c1, 0.0)


@kernel
def gather_part(p, n_parts, X, Y, perm, start, n_rows, x_batch, y_batch):
    """Part ``p``'s share of a step's rows, gathered into the shared batch buffers."""
    lo = (n_rows * p) // n_parts
    hi = (n_rows * (p + 1)) // n_parts
    if hi > lo:
        gather_rows(X, Y, perm, start + lo, hi - lo, x_batch[lo * X.shape[1]:],
                    y_batch[lo * Y.shape[1]:])


@kernel
def _output_step(net, n_rows, yb, params, grads, gammas, layers, acts, zs, deltas, squares,
                 lam, norm):
    """The output layer forward on whole rows (softmax needs them), its δ, the step's loss."""
    output_forward = network_function(net[OUTPUT_FORWARD], OUTPUT_FORWARD, params)
    output_delta = network_function(net[OUTPUT_DELTA], OUTPUT_DELTA, params)
    last = layers.shape[0] - 1
    W_out, b_out, g_out = layer_params(params, gammas, layers, last)
    _, _, g_grad_out = layer_params(grads, gammas, layers, last)
    out, z_out = layer_blocks(acts, zs, layers, last, n_rows)
    np.dot(block(acts, layers, last - 1, n_rows), W_out, z_out)
    output_forward(z_out, b_out, g_out, z_out, out)
    loss = output_delta(out, yb, z_out, g_out, g_grad_out, 1.0 / norm,
                        block(deltas, layers, last, n_rows)) / norm
    if lam != 0:
        penalty = 0.0
        for p in range(squares.shape[0]):
            penalty += squares[p]
        for k in range(W_out.shape[0]):
            penalty = sum_squares(W_out[k], penalty)
        loss += 0.5 * lam * penalty
    return loss


@parallel_kernel
def train_epoch_columns(network, settings, data, work, columns):
    """One epoch like ``train_epoch``, each hidden layer's units split into parts.

    See ``columns`` for the phases of a step. Every ``prange`` body is one
    call through a pointer (``network_functions``): Numba compiles each
    ``prange`` into a function of its own, with a copy of everything it links
    in, so the bodies link nothing.

    Parameters
    ----------
    work : records.workspace
        Flat workspaces for ``batch_size`` rows, shared by the parts (as for
        ``train_epoch``); ``sums`` ``(n_parts,)`` is scratch.
    columns : records.columns
        ``bounds`` ``(n_layers, n_parts + 1)`` int64: row ``l`` (for every
        hidden layer) splits its units into one contiguous block per part
        (the output layer's row is not read); ``priv_acts``, ``priv_zs``,
        ``priv_deltas`` ``(n_parts, size)``, each part's scratch laid out like
        ``acts``; ``alpha_beta`` ``[1, 0, 1, 1]`` in the parameters' dtype
        (GEMM's alpha and beta: overwrite, then accumulate); ``packed_params``,
        ``packed_state`` shaped like ``params`` and ``state`` (the
        panel-ordered copies; ``grads`` is used in panel order directly).

    The network needs at least one hidden layer. Other parameters and the
    return value are those of ``train_epoch``.
    """
    net, params, layers, gammas = borrow(network)
    X, Y, perm, batch_size = borrow(data)
    state, hyper, step, n_decay, l2, l2_per_weight = borrow(settings)
    acts, zs, deltas, grads, x_batch, y_batch, squares = borrow(work)
    bounds, priv_acts, priv_zs, priv_deltas, alpha_beta, packed_params, packed_state = \
        borrow(columns)
    gather = network_function(net[GATHER_PART], GATHER_PART, params)
    forward_part = network_function(net[HIDDEN_FORWARD_PART], HIDDEN_FORWARD_PART, params)
    output_part = network_function(net[OUTPUT_BACKWARD_PART], OUTPUT_BACKWARD_PART, params)
    update_own = network_function(net[UPDATE_PART], UPDATE_PART, params)
    backward_part = network_function(net[HIDDEN_BACKWARD_PART], HIDDEN_BACKWARD_PART, params)
    n = perm.shape[0]
    n_parts = bounds.shape[1] - 1
    last = layers.shape[0] - 1
    total = 0.0
    n_steps = (n + batch_size - 1) // batch_size
    C.reorder(params, state, packed_params, packed_state, layers, bounds, unliteral(True))
    for s in range(n_steps):
        start = s * batch_size
        n_rows = min(batch_size, n - start)
        for q in prange(n_parts):
            p = np.int64(q)  # prange counts in uint64: the bodies' signatures take int64
            gather(p, n_parts, X, Y, perm, start, n_rows, x_batch, y_batch)
        yb = y_batch[:n_rows * Y.shape[1]].reshape((n_rows, Y.shape[1]))
        norm = batch_weight(yb, layers[last, FAN_OUT])
        lam = l2 + l2_per_weight / norm
        squares[:] = 0.0
        for l in range(last):
            for q in prange(n_parts):
                p = np.int64(q)
                squares[p] += forward_part(net, p, l, n_rows, packed_params, gammas, layers,
                                           bounds, x_batch, acts, priv_acts, priv_zs, lam,
                                           alpha_beta)
        loss = _output_step(net, n_rows, yb, packed_params, grads, gammas, layers, acts, zs,
                            deltas, squares, lam, norm)
        if not np.isfinite(loss):
            total = np.nan  # stop before this step's update
            break
        total += loss * n_rows
        u = step + s + 1
        for q in prange(n_parts):
            p = np.int64(q)
            output_part(net, p, n_rows, packed_params, grads, gammas, layers, bounds, acts,
                        deltas, priv_acts, priv_zs, priv_deltas, lam, alpha_beta)
        for l in range(last, -1, -1):
            # update the owned part of layer l (its gradient is complete and nothing reads
            # it any more), then the gradient of the layer below and the δ below it
            for q in prange(n_parts):
                p = np.int64(q)
                update_own(net, p, l, packed_params, grads, packed_state, layers, bounds,
                           hyper, u, n_decay)
                if l > 0:
                    backward_part(net, p, l - 1, n_rows, packed_params, grads, gammas, layers,
                                  bounds, x_batch, acts, deltas, priv_acts, priv_zs,
                                  priv_deltas, lam, alpha_beta)
    C.reorder(packed_params, packed_state, params, state, layers, bounds, unliteral(False))
    return total / n


# ------------------------------------------------------------------ prediction
@kernel
def predict_rows(network, X, acts, zs, out):
    """Forward all rows of ``X`` into ``out``, in chunks of the workspace's capacity.

    The prediction entries take ``acts`` and ``zs`` themselves, the only buffers
    they use, rather than a workspace record.
    """
    net, params, layers, gammas = borrow(network)
    X = borrow(X)
    n = X.shape[0]
    total_units = layers[-1, UNIT_OFF] + layers[-1, FAN_OUT]
    chunk = acts.shape[0] // total_units
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        copy_rows(forward_pass(net, X[start:stop], params, layers, gammas, acts, zs), out, start)


@parallel_kernel
def predict_rows_parallel(network, X, acts, zs, out):
    """Forward all rows of ``X`` into ``out``, the chunks spread over workers.

    ``acts`` and ``zs`` hold one workspace row per worker; worker
    ``w`` takes chunks ``w, w + n_workers, ...`` of the workspace's capacity.
    The chunks are those of ``predict_rows`` with the same capacity, and each
    is computed exactly as there: the result does not depend on the number of
    workers.
    """
    net, params, layers, gammas = borrow(network)
    X = borrow(X)
    worker = network_function(net[PREDICT_WORKER], PREDICT_WORKER, params)
    n_workers = acts.shape[0]
    for q in prange(n_workers):
        w = np.int64(q)  # prange counts in uint64: the body's signature takes an int64
        worker(net, w, n_workers, X, params, layers, gammas, acts[w], zs[w], out)


@kernel
def predict_worker(net, w, n_workers, X, params, layers, gammas, acts, zs, out):
    single_threaded_blas()  # in a worker thread of the prange
    n = X.shape[0]
    total_units = layers[-1, UNIT_OFF] + layers[-1, FAN_OUT]
    chunk = acts.shape[0] // total_units
    n_chunks = (n + chunk - 1) // chunk
    for c in range(w, n_chunks, n_workers):
        start = c * chunk
        stop = min(start + chunk, n)
        copy_rows(forward_pass(net, X[start:stop], params, layers, gammas, acts, zs), out, start)


@kernel
def evaluate_rows(network, X, Y, acts, zs, out):
    """Forward all rows of ``X`` into ``out`` and return the mean loss against ``Y``.

    In the chunks of ``predict_rows``; the loss is the same as in training
    (without any L2 penalty), divided by the number of rows.
    """
    net, params, layers, gammas = borrow(network)
    X, Y = borrow((X, Y))
    output_loss = network_function(net[OUTPUT_LOSS], OUTPUT_LOSS, params)
    n = X.shape[0]
    total_units = layers[-1, UNIT_OFF] + layers[-1, FAN_OUT]
    chunk = acts.shape[0] // total_units
    total = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        a = forward_pass(net, X[start:stop], params, layers, gammas, acts, zs)
        total += output_loss(a, Y[start:stop])
        copy_rows(a, out, start)
    return total / n
