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
def _sgd_loop(p, g, velocity, lr, momentum, nesterov, l2):
    # one plain loop per rule: with the rule's test inside, LLVM did not always
    # hoist it, and the loop then ran 6x slower
    if momentum == 0:
        for i in range(p.shape[0]):
            p[i] -= lr * (g[i] + l2 * p[i])
    elif nesterov:
        for i in range(p.shape[0]):
            gi = g[i] + l2 * p[i]
            v = momentum * velocity[i] - lr * gi
            velocity[i] = v
            p[i] += momentum * v - lr * gi
    else:
        for i in range(p.shape[0]):
            v = momentum * velocity[i] - lr * (g[i] + l2 * p[i])
            velocity[i] = v
            p[i] += v


# The range helpers slice first and loop from 0: with indices that cannot be
# negative, Numba drops its wraparound test and the loop vectorises (looping
# over lo..hi directly measured 9x slower).
@inline
def _sgd_range(params, grads, velocity, lo, hi, n_decay, lr, momentum, nesterov, l2):
    """SGD on ``params[lo:hi]``; entries below ``n_decay`` get the coupled L2 term."""
    mid = min(max(n_decay, lo), hi)
    v = velocity if velocity.shape[0] == 0 else velocity[lo:hi]
    _sgd_loop(params[lo:mid], grads[lo:mid], v[:mid - lo], lr, momentum, nesterov, l2)
    zero = type(params[0])(0)
    _sgd_loop(params[mid:hi], grads[mid:hi], v[mid - lo:], lr, momentum, nesterov, zero)


@kernel
def sgd_update(params, grads, velocity, lr, momentum, nesterov, l2, n_decay):
    """SGD, with heavy-ball or Nesterov momentum, in place.

    ``v ← momentum·v − lr·g``; then ``p ← p + v`` (heavy ball) or
    ``p ← p + momentum·v − lr·g`` (Nesterov). ``velocity`` is not read when
    ``momentum`` is 0 (plain SGD) and may then be empty.
    """
    t = type(params[0])
    _sgd_range(params, grads, velocity, 0, params.shape[0], n_decay, t(lr), t(momentum),
               nesterov, t(l2))


@inline
def _adam_step(params, m, v, i, g, b1, b2, eps, lr_t):
    mi = b1 * m[i] + (1 - b1) * g
    vi = b2 * v[i] + (1 - b2) * g * g
    m[i] = mi
    v[i] = vi
    params[i] -= lr_t * mi / (np.sqrt(vi) + eps)


@inline
def _adam_loop(p, g, m, v, b1, b2, eps, lr_t, l2, shrink):
    for i in range(p.shape[0]):
        p[i] *= shrink
        _adam_step(p, m, v, i, g[i] + l2 * p[i], b1, b2, eps, lr_t)


@inline
def _adam_range(params, grads, m, v, lo, hi, n_decay, b1, b2, eps, lr_t, l2, shrink):
    """Adam on ``params[lo:hi]``; entries below ``n_decay`` are decayed (L2 and/or AdamW)."""
    mid = min(max(n_decay, lo), hi)
    t = type(params[0])
    _adam_loop(params[lo:mid], grads[lo:mid], m[lo:mid], v[lo:mid], b1, b2, eps, lr_t, l2,
               shrink)
    _adam_loop(params[mid:hi], grads[mid:hi], m[mid:hi], v[mid:hi], b1, b2, eps, lr_t, t(0), t(1))


@inline
def _adam_step_size(step, lr, b1, b2):
    return lr * np.sqrt(1.0 - b2 ** step) / (1.0 - b1 ** step)


@kernel
def adam_update(params, grads, m, v, step, lr, b1, b2, eps, l2, weight_decay, n_decay):
    """Adam (``weight_decay`` = 0) or AdamW (decoupled decay), in place.

    ``step`` is the 1-based number of this update. The bias correction is
    folded into the step size, as in scikit-learn:
    ``p ← p − lr·√(1−b2ᵗ)/(1−b1ᵗ) · m / (√v + eps)``. AdamW first shrinks the
    weights: ``p ← p·(1 − lr·weight_decay)``.
    """
    t = type(params[0])
    _adam_range(params, grads, m, v, 0, params.shape[0], n_decay, t(b1), t(b2), t(eps),
                t(_adam_step_size(step, lr, b1, b2)), t(l2), t(1.0 - lr * weight_decay))


@kernel
def update_rows(opt_code, params, grads, state, hyper, step, n_decay, lo, width, stride,
                n_rows):
    """One optimizer step on ``n_rows`` segments of the flat buffer, L2 already in ``grads``.

    Segment ``r`` is ``params[lo + r·stride : lo + r·stride + width]``: a block of
    columns of a weight matrix, or (``n_rows`` = 1) one contiguous slice.
    ``opt_code`` chooses the rule; ``state`` is ``(n_buffers, n_params)``:
    SGD's velocity (none without momentum), or Adam's first and second
    moments; ``hyper`` follows the ``H_*`` layout. Disjoint segments can be
    updated by different threads: each entry's update depends on that entry only.
    """
    t = type(params[0])
    if opt_code == SGD:
        velocity = state[0] if state.shape[0] > 0 else grads
        lr, momentum = t(hyper[H_LR]), t(hyper[H_MOMENTUM])
        nesterov = hyper[H_NESTEROV] != 0
        for r in range(n_rows):
            a = lo + r * stride
            _sgd_range(params, grads, velocity, a, a + width, n_decay, lr, momentum, nesterov,
                       t(0))
    else:
        b1, b2 = hyper[H_B1], hyper[H_B2]
        lr_t = t(_adam_step_size(step, hyper[H_LR], b1, b2))
        shrink = t(1.0 - hyper[H_LR] * hyper[H_WEIGHT_DECAY])
        for r in range(n_rows):
            a = lo + r * stride
            _adam_range(params, grads, state[0], state[1], a, a + width, n_decay, t(b1), t(b2),
                        t(hyper[H_EPS]), lr_t, t(0), shrink)


@kernel
def update_slice(opt_code, params, grads, state, hyper, step, n_decay, lo, hi):
    """One optimizer step on ``params[lo:hi]`` (see ``update_rows``)."""
    update_rows(opt_code, params, grads, state, hyper, step, n_decay, lo, hi - lo, 0, 1)


@kernel
def apply_update(opt_code, params, grads, state, hyper, step, n_decay):
    """One optimizer step on the whole buffer (see ``update_slice``)."""
    update_slice(opt_code, params, grads, state, hyper, step, n_decay, 0, params.shape[0])
