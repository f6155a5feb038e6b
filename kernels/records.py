"""The records the entry kernels take: five tuples instead of 8-30 positional arguments.

The Python layer builds them with the functions below, which name the fields
and fix their order, and the entry kernels unpack them first thing (the
kernels below an entry take arrays, see ``entries``). A record is a plain
tuple: Numba types it by its fields' types, so an entry kernel compiles once
per dtype (and array rank) and its cache entry is found again in a new
process, as with positional arguments. The builders make the scalar fields
Python ``int`` and ``float``: a NumPy scalar would be typed otherwise and
compile the entry kernel again.

``network(net, params, layers, gammas)``
    What the network computes: ``net``, the read-only int64 addresses of its
    own functions (``network_functions``); ``params``, the flat parameter
    buffer; ``layers`` and ``gammas``, its layout (``network``).
``settings(state, hyper, step, n_decay, l2=0.0, l2_per_weight=0.0)``
    The optimizer step's settings: ``state`` ``(n_buffers, n_params)``,
    ``hyper`` (float64, ``optimizers.H_*``), ``step`` the number of updates
    done before the call (an epoch's first update is ``step + 1``, and
    ``apply_update`` applies that one), ``n_decay`` the leading weights that
    decay applies to; and the L2 coefficient ``λ = l2 + l2_per_weight / w``
    for a batch of total weight ``w``. ``l2_only(dtype, l2, l2_per_weight)``
    has the L2 terms alone, for ``forward_backward`` outside training.
``data(X, Y, perm, batch_size)``
    An epoch's rows: ``X`` ``(n, n_features)``, ``Y`` ``(n, n_outputs)``
    (a last column of sample weights optional), the order ``perm`` (int64)
    and the minibatch size. ``X`` and ``Y`` go in read-only (``read_only``).
``workspace(acts, zs, deltas, grads, x_batch, y_batch, sums)``
    The buffers a call writes: the layers' activations, ``z`` and δ (flat,
    see ``network``), the gradient, the gathered batch, and one float64 per
    part (the sharded epoch's shard losses, the columns epoch's sums of
    squared weights). The sharded epoch takes one row per shard (2-D
    arrays, ``grads`` ``(n_shards, n_params)``). The fields a call does not
    use may be left out (empty arrays). Prediction takes ``acts`` and ``zs``
    alone.
``columns(bounds, priv_acts, priv_zs, priv_deltas, alpha_beta, packed_params, packed_state)``
    What the column-split epoch adds (``columns``): the parts' unit bounds,
    their private scratch, GEMM's ``[1, 0, 1, 1]`` and the panel-ordered
    copies of the parameters and the optimizer state.

The entry kernels (``entries``)::

    forward_backward(network, settings, x, y, norm, work) -> loss
    apply_update(network, settings, grads)
    train_epoch(network, settings, data, work) -> mean loss
    train_epoch_sharded(network, settings, data, work) -> mean loss
    train_epoch_columns(network, settings, data, work, columns) -> mean loss
    predict_rows(network, X, acts, zs, out)
    predict_rows_parallel(network, X, acts, zs, out)
    evaluate_rows(network, X, Y, acts, zs, out) -> mean loss

Why plain tuples and not named tuples (measured on a kernel that takes one
record of four arrays and a float): Numba's dispatcher types a plain tuple in C
but a named tuple in Python, 0.61 µs a call against 1.34 µs (0.97 µs for
thirteen positional arguments). Both compile the same and are cached the same.
"""
import numpy as np

# The fields of each record, in order (the kernels unpack them in this order).
NETWORK = ("net", "params", "layers", "gammas")
SETTINGS = ("state", "hyper", "step", "n_decay", "l2", "l2_per_weight")
DATA = ("X", "Y", "perm", "batch_size")
WORKSPACE = ("acts", "zs", "deltas", "grads", "x_batch", "y_batch", "sums")
COLUMNS = ("bounds", "priv_acts", "priv_zs", "priv_deltas", "alpha_beta", "packed_params",
           "packed_state")


def network(net, params, layers, gammas):
    """The network: its functions' addresses, parameters and layout."""
    return (net, params, layers, gammas)


def settings(state, hyper, step, n_decay, l2=0.0, l2_per_weight=0.0):
    """The optimizer step's settings and the L2 terms."""
    return (state, hyper, int(step), int(n_decay), float(l2), float(l2_per_weight))


def l2_only(dtype, l2=0.0, l2_per_weight=0.0):
    """Settings with the L2 terms alone (no optimizer), for ``forward_backward``.

    The empty state and hyper-parameters have the types of a training call's,
    so ``forward_backward`` has one signature per dtype.
    """
    return (_empty(dtype, 2), _NO_HYPER, 0, 0, float(l2), float(l2_per_weight))


def data(X, Y, perm, batch_size):
    """An epoch's rows, their order and the minibatch size."""
    return (read_only(X), read_only(Y), perm, int(batch_size))


def read_only(a):
    """``a`` as a read-only view (``a`` itself if it is one): how every input reaches a kernel.

    Numba types a read-only array apart from a writable one. Passed always
    read-only, a caller's array and a read-only memory map (joblib's, a
    ``np.load(mmap_mode="r")``) are one type, and a kernel taking them compiles
    once, not twice (about 5 s per entry kernel and dtype). The kernels
    borrow them typed writable (``borrow``) and never write them.
    """
    if not a.flags.writeable:
        return a
    view = a.view()
    view.flags.writeable = False
    return view


def workspace(acts, zs, deltas=None, grads=None, x_batch=None, y_batch=None, sums=None):
    """The buffers a call writes; the ones it does not use may be left out."""
    empty = _EMPTY.get((acts.dtype, 1))
    if empty is None:
        empty = np.empty(0, dtype=acts.dtype)
    return (acts, zs, empty if deltas is None else deltas, empty if grads is None else grads,
            empty if x_batch is None else x_batch, empty if y_batch is None else y_batch,
            _NO_HYPER if sums is None else sums)


def columns(bounds, priv_acts, priv_zs, priv_deltas, alpha_beta, packed_params, packed_state):
    """The column-split epoch's bounds, private scratch and panel-ordered copies."""
    return (bounds, priv_acts, priv_zs, priv_deltas, alpha_beta, packed_params, packed_state)


# Shared empty arrays for the fields a call leaves out: nothing is ever written to them.
_NO_HYPER = np.empty(0)
_EMPTY = {(np.dtype(t), ndim): np.empty((0,) * ndim, dtype=t)
          for t in (np.float32, np.float64) for ndim in (1, 2)}


def _empty(dtype, ndim=1):
    found = _EMPTY.get((dtype, ndim))
    return np.empty((0,) * ndim, dtype=dtype) if found is None else found
