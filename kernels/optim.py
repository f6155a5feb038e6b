"""In-place optimizer updates over one flat parameter buffer.

The first ``n_decay`` entries of the buffer are the weights, which weight decay
applies to; biases and prelu slopes come after them and are not decayed.
``l2`` is coupled weight decay (added to the gradient, as L2 regularisation);
``weight_decay`` in ``adam_update`` is AdamW's decoupled decay.
The formulas are scikit-learn's, so its estimators can be reproduced.
"""
import numpy as np

from ._config import inline, kernel

SGD = 0
ADAM = 1

# Layout of the float64 ``hyper`` vector that the epoch kernel receives.
H_LR = 0
H_MOMENTUM = 1
H_NESTEROV = 2
H_B1 = 3
H_B2 = 4
H_EPS = 5
H_WEIGHT_DECAY = 6
N_HYPER = 7


@inline
def _sgd_step(params, velocity, i, g, lr, momentum, nesterov):
    if momentum == 0:
        params[i] -= lr * g
    else:
        v = momentum * velocity[i] - lr * g
        velocity[i] = v
        params[i] += (momentum * v - lr * g) if nesterov else v


@kernel
def sgd_update(params, grads, velocity, lr, momentum, nesterov, l2, n_decay):
    """SGD, with heavy-ball or Nesterov momentum, in place.

    ``v ← momentum·v − lr·g``; then ``p ← p + v`` (heavy ball) or
    ``p ← p + momentum·v − lr·g`` (Nesterov). ``velocity`` is not read when
    ``momentum`` is 0 (plain SGD) and may then be empty.
    """
    t = type(params[0])
    lr_, mom = t(lr), t(momentum)
    l2_ = t(l2)
    for i in range(n_decay):
        _sgd_step(params, velocity, i, grads[i] + l2_ * params[i], lr_, mom, nesterov)
    for i in range(n_decay, params.shape[0]):
        _sgd_step(params, velocity, i, grads[i], lr_, mom, nesterov)


@inline
def _adam_step(params, m, v, i, g, b1, b2, eps, lr_t):
    mi = b1 * m[i] + (1 - b1) * g
    vi = b2 * v[i] + (1 - b2) * g * g
    m[i] = mi
    v[i] = vi
    params[i] -= lr_t * mi / (np.sqrt(vi) + eps)


@kernel
def adam_update(params, grads, m, v, step, lr, b1, b2, eps, l2, weight_decay, n_decay):
    """Adam (``weight_decay`` = 0) or AdamW (decoupled decay), in place.

    ``step`` is the 1-based number of this update. The bias correction is
    folded into the step size, as in scikit-learn:
    ``p ← p − lr·√(1−b2ᵗ)/(1−b1ᵗ) · m / (√v + eps)``. AdamW first shrinks the
    weights: ``p ← p·(1 − lr·weight_decay)``.
    """
    t = type(params[0])
    lr_t = t(lr * np.sqrt(1.0 - b2 ** step) / (1.0 - b1 ** step))
    b1_, b2_, eps_ = t(b1), t(b2), t(eps)
    l2_ = t(l2)
    shrink = t(1.0 - lr * weight_decay)
    for i in range(n_decay):
        params[i] *= shrink
        _adam_step(params, m, v, i, grads[i] + l2_ * params[i], b1_, b2_, eps_, lr_t)
    for i in range(n_decay, params.shape[0]):
        _adam_step(params, m, v, i, grads[i], b1_, b2_, eps_, lr_t)


@kernel
def update_slice(opt_code, params, grads, state, hyper, step, n_decay, lo, hi):
    """One optimizer step on ``params[lo:hi]``, with the L2 term already in ``grads``.

    ``opt_code`` chooses the rule; ``state`` is ``(n_buffers, n_params)``:
    SGD's velocity (none without momentum), or Adam's first and second
    moments; ``hyper`` follows the ``H_*`` layout. Slices of one buffer can be
    updated by different threads: each entry's update depends on that entry only.
    """
    n_decay_here = min(max(n_decay - lo, 0), hi - lo)
    p, g = params[lo:hi], grads[lo:hi]
    if opt_code == SGD:
        velocity = state[0][lo:hi] if state.shape[0] > 0 else g
        sgd_update(p, g, velocity, hyper[H_LR], hyper[H_MOMENTUM], hyper[H_NESTEROV] != 0,
                   0.0, n_decay_here)
    else:
        adam_update(p, g, state[0][lo:hi], state[1][lo:hi], step, hyper[H_LR], hyper[H_B1],
                    hyper[H_B2], hyper[H_EPS], 0.0, hyper[H_WEIGHT_DECAY], n_decay_here)


@kernel
def apply_update(opt_code, params, grads, state, hyper, step, n_decay):
    """One optimizer step on the whole buffer (see ``update_slice``)."""
    update_slice(opt_code, params, grads, state, hyper, step, n_decay, 0, params.shape[0])
