"""Slow, obviously-correct NumPy versions of everything the kernels compute.

Written for clarity, in float64, straight from the formulas: forward
``z = a W + b``, ``a = f(z)``; derivatives from ``z`` (not from the output, as
the kernels do); the output δ through the general chain rule for every pair,
so the kernels' shortcut ``δ = a − y`` is checked rather than repeated.
"""
import numpy as np

def activate(z, name, g):
    if name == "identity":
        return z
    if name == "logistic":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name in ("leaky_relu", "prelu"):
        return np.where(z > 0, z, g * z)
    if name == "elu":
        return np.where(z > 0, z, g * (np.exp(z) - 1))
    if name == "softplus":
        return np.log1p(np.exp(z))
    if name == "silu":
        return z / (1 + np.exp(-z))
    if name == "hard_logistic":
        return np.clip(0.25 * z + 0.5, 0, 1)
    if name == "hard_tanh":
        return np.clip(z, -1, 1)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if name == "exp":
        return np.exp(z)
    raise ValueError(name)


def derivative(z, name, g):
    """f'(z), elementwise (not defined for softmax)."""
    if name == "identity":
        return np.ones_like(z)
    if name == "logistic":
        s = 1 / (1 + np.exp(-z))
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name in ("leaky_relu", "prelu"):
        return np.where(z > 0, 1.0, g * np.ones_like(z))
    if name == "elu":
        return np.where(z > 0, 1.0, g * np.exp(z))
    if name == "softplus":
        return 1 / (1 + np.exp(-z))
    if name == "silu":
        s = 1 / (1 + np.exp(-z))
        return s + z * s * (1 - s)
    if name == "hard_logistic":
        return np.where((z > -2) & (z < 2), 0.25, 0.0)
    if name == "hard_tanh":
        return np.where((z > -1) & (z < 1), 1.0, 0.0)
    if name == "exp":
        return np.exp(z)
    raise ValueError(name)


def chain(grad_a, z, a, name, g):
    """∂loss/∂z from ∂loss/∂a, and the gradient of prelu's slopes (or None)."""
    if name == "softmax":
        # full Jacobian per row: J = diag(a) − a aᵀ
        out = np.empty_like(grad_a)
        for i in range(a.shape[0]):
            J = np.diag(a[i]) - np.outer(a[i], a[i])
            out[i] = J @ grad_a[i]
        return out, None
    slope_grad = (grad_a * np.minimum(z, 0)).sum(axis=0) if name == "prelu" else None
    return grad_a * derivative(z, name, g), slope_grad


def _row_weights(n, weights):
    return np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)


def loss_value(a, Y, loss, weights=None):
    """Weighted mean over rows of the summed per-output loss (plain mean without weights).

    ``sklearn_squared_error`` is scikit-learn's squared error: the row's sum divided
    by the number of outputs.
    """
    w = _row_weights(a.shape[0], weights)
    if loss == "squared_error":
        rows = 0.5 * np.sum((a - Y) ** 2, axis=1)
    elif loss == "sklearn_squared_error":
        rows = 0.5 * np.mean((a - Y) ** 2, axis=1)
    elif loss == "cross_entropy":
        rows = -np.sum(Y * np.log(a), axis=1)
    elif loss == "binary_cross_entropy":
        rows = -np.sum(Y * np.log(a) + (1 - Y) * np.log(1 - a), axis=1)
    elif loss == "poisson":
        safe = np.where(Y > 0, Y, 1.0)
        rows = np.sum(np.where(Y > 0, Y * np.log(safe / a), 0.0) - Y + a, axis=1)
    else:
        raise ValueError(loss)
    return np.sum(w * rows) / np.sum(w)


def loss_grad_a(a, Y, loss, weights=None):
    """∂(weighted mean loss)/∂a; for ``sklearn_squared_error`` the gradient of the
    plain squared error, as scikit-learn trains it."""
    w = _row_weights(a.shape[0], weights)[:, None]
    if loss in ("squared_error", "sklearn_squared_error"):
        g = a - Y
    elif loss == "cross_entropy":
        g = -Y / a
    elif loss == "binary_cross_entropy":
        g = (a - Y) / (a * (1 - a))
    elif loss == "poisson":
        g = 1 - Y / a
    else:
        raise ValueError(loss)
    return w * g / np.sum(w)


def forward(x, coefs, intercepts, names, gammas):
    """Lists of pre-activations and activations (``acts[0]`` is ``x``)."""
    zs, acts = [], [x]
    for W, b, name, g in zip(coefs, intercepts, names, gammas):
        z = acts[-1] @ W + b
        zs.append(z)
        acts.append(activate(z, name, g))
    return zs, acts


def loss_and_grads(x, Y, coefs, intercepts, names, gammas, loss, l2=0.0):
    """Mean loss + ``l2/2 Σ‖W‖²`` and its gradient with respect to every parameter.

    ``gammas[l]`` is a scalar, or a per-unit vector for prelu layers.
    Returns ``(loss, coef_grads, intercept_grads, slope_grads)``; ``slope_grads``
    maps prelu layer index → gradient.
    """
    zs, acts = forward(x, coefs, intercepts, names, gammas)
    value = loss_value(acts[-1], Y, loss) + 0.5 * l2 * sum(np.sum(W * W) for W in coefs)
    grad_a = loss_grad_a(acts[-1], Y, loss)
    coef_grads, intercept_grads, slope_grads = [None] * len(coefs), [None] * len(coefs), {}
    for l in range(len(coefs) - 1, -1, -1):
        delta, slope_grad = chain(grad_a, zs[l], acts[l + 1], names[l], gammas[l])
        if slope_grad is not None:
            slope_grads[l] = slope_grad
        coef_grads[l] = acts[l].T @ delta + l2 * coefs[l]
        intercept_grads[l] = delta.sum(axis=0)
        grad_a = delta @ coefs[l].T
    return value, coef_grads, intercept_grads, slope_grads


def sgd_step(p, g, velocity, lr, momentum, nesterov):
    """scikit-learn's SGD: returns new (p, velocity)."""
    if momentum == 0:
        return p - lr * g, velocity
    v = momentum * velocity - lr * g
    update = momentum * v - lr * g if nesterov else v
    return p + update, v


def adam_step(p, g, m, v, t, lr, b1, b2, eps, weight_decay=0.0):
    """scikit-learn's Adam; ``weight_decay`` is AdamW's decoupled shrink."""
    p = p * (1 - lr * weight_decay)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    return p - lr_t * m / (np.sqrt(v) + eps), m, v


# ---------------------------------------------------------------- optimizers
# One example of every fastbp optimizer (by its name in fastbp.optim.OPTIMIZERS), built
# with a weight decay: the tests run each against ``optimizer_step``.
OPTIMIZER_EXAMPLES = {
    "sgd": lambda wd: _optim().SGD(0.05, weight_decay=wd),
    "momentum": lambda wd: _optim().SGD(0.02, momentum=0.9, weight_decay=wd),
    "nesterov": lambda wd: _optim().SGD(0.02, momentum=0.9, nesterov=True, weight_decay=wd),
    "adam": lambda wd: _optim().Adam(0.01, weight_decay=wd),
    "adamw": lambda wd: _optim().AdamW(0.01, weight_decay=wd),
}


def _optim():
    import fastbp.optim
    return fastbp.optim


def optimizer_step(opt, p, g, buffers, t, n_decay):
    """One step ``t`` (from 1) of the fastbp optimizer ``opt``: returns new ``p``, ``buffers``.

    ``g`` already holds any coupled decay (``opt.l2 · W``, as the loss gradient
    with L2 does); decoupled decay shrinks the first ``n_decay`` entries.
    """
    decoupled = np.zeros(p.size)
    decoupled[:n_decay] = opt.weight_decay - opt.l2  # AdamW's: its coupled l2 is 0
    if opt.rule == "sgd":
        p, velocity = sgd_step(p, g, buffers[0], opt.lr, opt.momentum, opt.nesterov)
        return p, np.stack([velocity, buffers[1]])
    if opt.rule == "adam":
        p, m, v = adam_step(p, g, buffers[0], buffers[1], t, opt.lr, opt.b1, opt.b2, opt.eps,
                            decoupled)
        return p, np.stack([m, v])
    raise NotImplementedError(f"no reference step for the {opt.rule!r} rule")

