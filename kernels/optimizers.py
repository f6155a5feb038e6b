"""The optimizer registry: in-place update rules over one flat parameter buffer.

Each rule is a kernel ``update(params, grads, state, hyper, step, n_decay,
lo, hi, l2)`` that applies one step to ``params[lo:hi]`` and a :class:`Rule`
entry in ``RULES``. The epoch kernels call the rule of the optimizer in use
through its address (``network_functions.UPDATE``) on slices of the buffer;
``fastbp.optim`` holds the user-facing classes, each naming its rule.

- The first ``n_decay`` entries of the buffer are the weights, which weight
  decay applies to; biases and prelu slopes come after them.
- ``l2`` is coupled weight decay (added to the gradient, as L2 regularisation);
  the epoch kernels fold it into the gradient already and pass 0.
- ``state`` is ``(n_buffers, n_params)``: SGD's velocity (none without
  momentum), Adam's first and second moments.
- ``hyper`` is a float64 vector with the ``H_*`` layout below; ``step`` the
  1-based number of this update.

The formulas are scikit-learn's, so its estimators can be reproduced.
"""
from dataclasses import dataclass

import numpy as np

from ._config import kernel, unfused_kernel

H_LR = 0
H_MOMENTUM = 1
H_NESTEROV = 2
H_B1 = 3
H_B2 = 4
H_EPS = 5
H_WEIGHT_DECAY = 6
N_HYPER = 7


@dataclass(frozen=True)
class Rule:
    """One update rule: its name and ``update`` function (see the module docstring)."""

    name: str
    update: object


@unfused_kernel
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


# The range rules slice first and loop from 0: with indices that cannot be
# negative, Numba drops its wraparound test and the loop vectorises (looping
# over lo..hi directly measured 9x slower).
@kernel
def sgd(params, grads, state, hyper, step, n_decay, lo, hi, l2):
    """SGD with heavy-ball or Nesterov momentum on ``params[lo:hi]``, in place.

    ``v ← momentum·v − lr·g``; then ``p ← p + v`` (heavy ball) or
    ``p ← p + momentum·v − lr·g`` (Nesterov). Without momentum ``state`` has
    no rows and is not read.
    """
    t = type(params[0])
    lr, momentum = t(hyper[H_LR]), t(hyper[H_MOMENTUM])
    nesterov = hyper[H_NESTEROV] != 0
    mid = min(max(n_decay, lo), hi)
    velocity = state[0][lo:hi] if state.shape[0] > 0 else grads[lo:hi]
    _sgd_loop(params[lo:mid], grads[lo:mid], velocity[:mid - lo], lr, momentum, nesterov,
              t(l2))
    _sgd_loop(params[mid:hi], grads[mid:hi], velocity[mid - lo:], lr, momentum, nesterov,
              t(0))


@unfused_kernel
def _adam_loop(p, g, m, v, b1, b2, eps, lr_t, l2, shrink):
    for i in range(p.shape[0]):
        p[i] *= shrink
        gi = g[i] + l2 * p[i]
        mi = b1 * m[i] + (1 - b1) * gi
        vi = b2 * v[i] + (1 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= lr_t * mi / (np.sqrt(vi) + eps)


@kernel
def adam(params, grads, state, hyper, step, n_decay, lo, hi, l2):
    """Adam (``weight_decay`` 0) or AdamW (decoupled decay) on ``params[lo:hi]``, in place.

    The bias correction is folded into the step size, as in scikit-learn:
    ``p ← p − lr·√(1−b2ᵗ)/(1−b1ᵗ) · m / (√v + eps)``. AdamW first shrinks the
    weights: ``p ← p·(1 − lr·weight_decay)``.
    """
    t = type(params[0])
    lr, b1, b2 = hyper[H_LR], hyper[H_B1], hyper[H_B2]
    lr_t = t(lr * np.sqrt(1.0 - b2 ** step) / (1.0 - b1 ** step))
    shrink = t(1.0 - lr * hyper[H_WEIGHT_DECAY])
    mid = min(max(n_decay, lo), hi)
    m, v = state[0], state[1]
    _adam_loop(params[lo:mid], grads[lo:mid], m[lo:mid], v[lo:mid], t(b1), t(b2),
               t(hyper[H_EPS]), lr_t, t(l2), shrink)
    _adam_loop(params[mid:hi], grads[mid:hi], m[mid:hi], v[mid:hi], t(b1), t(b2),
               t(hyper[H_EPS]), lr_t, t(0), t(1))


RULES = {rule.name: rule for rule in [Rule("sgd", sgd), Rule("adam", adam)]}


# One step over the whole buffer, for ``Optimizer.update`` (custom training loops).
@kernel
def sgd_step(params, grads, state, hyper, step, n_decay, l2):
    sgd(params, grads, state, hyper, step, n_decay, 0, params.shape[0], l2)


@kernel
def adam_step(params, grads, state, hyper, step, n_decay, l2):
    adam(params, grads, state, hyper, step, n_decay, 0, params.shape[0], l2)
