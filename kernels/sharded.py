"""Parallel kernels: the sharded epoch, each minibatch split across threads, and
prediction spread over threads.

Every step splits the minibatch into ``n_shards`` contiguous shards of the
permuted rows. Each shard runs forward and backward into its own gradient
buffer (no shared writes inside the ``prange``); the buffers are then summed in
shard order, so the result does not depend on which thread ran which shard,
and the optimizer update runs over the flat buffer in parallel slices, fused
with that sum. The BLAS calls inside a shard must run single-threaded (the
Python layer limits BLAS while this kernel runs).
"""
import numpy as np
from numba import prange

from ._config import parallel_kernel
from .optim import update_slice
from .train import FAN_OUT, UNIT_OFF, forward_backward, forward_pass, gather_rows

# Parameters per slice of the parallel reduce + update: large enough to amortise
# scheduling, small enough to keep a slice of every buffer in L1/L2.
UPDATE_SLICE = 8192


@parallel_kernel
def train_epoch_sharded(X, Y, perm, batch_size, params, shard_grads, state, layers, gammas,
                        loss_code, canonical, l2, l2_per_weight, opt_code, hyper, step,
                        n_decay,
                        x_batch, y_batch, acts, zs, deltas, shard_loss):
    """One epoch like ``train.train_epoch``, each minibatch split into shards.

    Parameters
    ----------
    shard_grads : (n_shards, n_params) array
        One private gradient buffer per shard.
    x_batch, y_batch, acts, zs, deltas : (n_shards, size) arrays
        One workspace row per shard, for up to ``ceil(batch_size / n_shards)`` rows.
    shard_loss : (n_shards,) float64 array, scratch

    Other parameters and the return value are those of ``train.train_epoch``.
    The L2 term is added by the last shard only (it is never empty).
    """
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
        for k in prange(n_shards):
            lo = (n_rows * k) // n_shards
            hi = (n_rows * (k + 1)) // n_shards
            rows = hi - lo
            if rows == 0:
                shard_grads[k][:] = 0
                shard_loss[k] = 0.0
                continue
            xb, yb = gather_rows(X, Y, perm, start + lo, rows, x_batch[k], y_batch[k])
            shard_loss[k] = forward_backward(xb, yb, params, shard_grads[k], layers, gammas,
                                             loss_code, canonical,
                                             l2 if k == n_shards - 1 else 0.0,
                                             l2_per_weight if k == n_shards - 1 else 0.0, norm,
                                             acts[k], zs[k], deltas[k])
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
            update_slice(opt_code, params, summed, state, hyper, step + s + 1, n_decay,
                         p_lo, p_hi)
    return total / n


@parallel_kernel
def predict_rows_parallel(X, params, layers, gammas, acts, zs, out):
    """Forward all rows of ``X`` into ``out``, chunks spread over threads.

    ``acts`` and ``zs`` hold one workspace row per worker; worker ``w`` takes
    chunks ``w, w + n_workers, ...`` of the workspace's capacity. Each row's
    output is computed exactly as by ``train.predict_rows``.
    """
    n = X.shape[0]
    n_workers = acts.shape[0]
    total_units = layers[-1, UNIT_OFF] + layers[-1, FAN_OUT]
    chunk = acts.shape[1] // total_units
    n_chunks = (n + chunk - 1) // chunk
    for w in prange(n_workers):
        for c in range(w, n_chunks, n_workers):
            start = c * chunk
            stop = min(start + chunk, n)
            out[start:stop, :] = forward_pass(X[start:stop], params, layers, gammas,
                                              acts[w], zs[w])
