"""The pieces of the column-split epoch: every hidden layer's units divided into parts.

Part ``p`` owns a block of units of each hidden layer (``bounds[l, p]`` to
``bounds[l, p + 1]``): the columns of that layer's weights and bias, and, in
the output layer, the rows of the weights that read those units. It computes
its block of activations, its block of δ, the gradient of the weights it owns
and their update, so a weight is only ever written, and mostly only read, by
the core that keeps it in cache. Unlike sharding there is no per-part
gradient buffer to sum: each gradient entry is computed once, whole. The
number of parts is fixed by the problem (``fastbp.strategy``), never by the
threads running them, so the results do not depend on the thread count.

One step is a sequence of parallel phases (``train_epoch_columns`` in
``entries.py``, with the phases that call the network's functions; a
``prange`` over the parts is the barrier between them):

1. gather the batch's rows (rows split among the parts);
2. per hidden layer: ``A[:, own] = f(A_in @ W[:, own] + b[own])``;
3. (one thread) the output layer forward and its δ, the loss;
4. output layer: ``dW[own, :] = A[:, own]ᵀ δ``, and ``δ_below[:, own]``;
5. per hidden layer, top down: update the owned part of the layer above
   (its gradient is complete and nothing reads it any more), then
   ``dW[:, own] = A_inᵀ δ[:, own]``, ``db[own]``, and ``δ_below[:, own]``;
6. update the owned part of the first layer.

During the epoch the weights of every hidden layer, their gradient and the
optimizer state are kept in *panel order*: the columns that part ``p`` owns
stored as one contiguous ``(fan_in, width)`` panel. A weight matrix split by
columns in row-major order would interleave the two threads' writes in every
row; on a 2-core machine that ran the parallel update 2.8x slower than the
serial one (the cores' prefetchers pull each other's lines). The kernel packs
the buffers on entry and unpacks them on exit (``reorder``).

Each part's activations and δ of its block stay in its own contiguous scratch
rows (``priv_*``), and are copied into the shared ``(n_rows, width)`` blocks
that the next layer's products read. BLAS runs single-threaded inside (the
Python layer sets it while the kernel runs).

This module holds the pieces that do not call the network's functions; the
phases that do are in ``entries.py`` (``*_part``), next to the epoch kernel.
"""
from ._config import kernel
from .network import FAN_IN, FAN_OUT, G_OFF, UNIT_OFF, W_OFF, copy_flat, layer_params


@kernel
def block_start(buf, layers, l):
    """Offset of layer ``l``'s block in a flat workspace (see ``network``)."""
    total_units = layers[-1, UNIT_OFF] + layers[-1, FAN_OUT]
    return (buf.shape[0] // total_units) * layers[l, UNIT_OFF]


@kernel
def scratch(buf, layers, l, n_rows, width):
    """A part's contiguous ``(n_rows, width)`` scratch block for layer ``l``."""
    start = block_start(buf, layers, l)
    return buf[start:start + n_rows * width].reshape((n_rows, width))


@kernel
def copy_columns(src, dst, c0):
    """``dst[:, c0:c0 + width] = src``."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[i, c0 + j] = src[i, j]


@kernel
def panel_start(layers, bounds, l, p):
    """Flat offset of part ``p``'s ``(fan_in, width)`` weight panel of hidden layer ``l``."""
    return layers[l, W_OFF] + layers[l, FAN_IN] * bounds[l, p]


@kernel
def _pack_panels(src, dst, layers, bounds, p, to_panels):
    """Copy part ``p``'s weight columns of every hidden layer between the orders.

    ``to_panels``: ``src`` is row-major, ``dst`` panel order; else the reverse.
    """
    for l in range(layers.shape[0] - 1):
        fan_in, fan_out, w_off = layers[l, FAN_IN], layers[l, FAN_OUT], layers[l, W_OFF]
        c0, c1 = bounds[l, p], bounds[l, p + 1]
        width = c1 - c0
        panel = panel_start(layers, bounds, l, p)
        for k in range(fan_in):
            for j in range(width):
                if to_panels:
                    dst[panel + k * width + j] = src[w_off + k * fan_out + c0 + j]
                else:
                    dst[w_off + k * fan_out + c0 + j] = src[panel + k * width + j]


@kernel
def reorder(src_params, src_state, dst_params, dst_state, layers, bounds, to_panels):
    """Copy the parameters and optimizer state into panel order (``to_panels``: on entry
    to an epoch) or back into row-major order (on exit)."""
    copy_flat(src_params, dst_params)
    copy_flat(src_state, dst_state)
    for p in range(bounds.shape[1] - 1):
        _pack_panels(src_params, dst_params, layers, bounds, p, to_panels)
        for k in range(src_state.shape[0]):
            _pack_panels(src_state[k], dst_state[k], layers, bounds, p, to_panels)


@kernel
def own_slopes(buf, gammas, layers, l, c0, c1):
    """The activation parameters of units ``c0:c1`` (all of ``gammas[l]`` for a constant γ)."""
    _, _, g = layer_params(buf, gammas, layers, l)
    return g[c0:c1] if layers[l, G_OFF] >= 0 else g


@kernel
def layer_input(x_batch, acts, layers, l):
    """Flat start of the rows that layer ``l`` reads (row stride ``FAN_IN``)."""
    if l == 0:
        return x_batch
    return acts[block_start(acts, layers, l - 1):]

