"""Backpropagation checked against numerical differentiation."""
import typing

import numpy as np
import numpy.typing as npt

if typing.TYPE_CHECKING:
    from .model import MLP

__all__ = ["check_gradients"]


def check_gradients(model: "MLP", X: npt.ArrayLike, y: npt.ArrayLike, l2: float = 0.0,
                    h: float = 1e-4, floor: float = 1e-5, max_params: int | None = None,
                    seed: int = 0) -> float:
    """Largest relative error between backpropagation and central differences.

    The check runs on a float64 copy of ``model``. Each checked parameter
    ``θ_i`` is moved by ``±h`` and ``±2h`` and its derivative estimated with the
    fourth-order central difference
    ``(−L(θ+2h) + 8L(θ+h) − 8L(θ−h) + L(θ−2h)) / 12h``, whose error is
    ``O(h⁴)`` plus rounding of about ``1e-16·|L|/h`` (about 1e-12 with the
    default ``h``).

    Parameters
    ----------
    model : MLP
    X, y : data, as for ``model.fit``
    l2 : float, L2 coefficient included in the loss
    h : float, step of the differences
    floor : float
        Gradients smaller than this are compared in absolute terms:
        ``error_i = |g_i − n_i| / max(|g_i|, |n_i|, floor)``.
    max_params : int, optional
        Check a random subset of this many parameters instead of all.
    seed : int, seed of that subset

    Returns
    -------
    float
        ``max_i error_i``.
    """
    model64 = model.astype("float64")
    _, grad = model64.loss_and_grad(X, y, l2=l2)
    params = model64.params
    index = np.arange(params.size)
    if max_params is not None and max_params < params.size:
        index = np.random.default_rng(seed).choice(params.size, max_params, replace=False)
    worst = 0.0
    for i in index:
        original = params[i]
        losses = []
        for step in (2 * h, h, -h, -2 * h):
            params[i] = original + step
            losses.append(model64.loss_and_grad(X, y, l2=l2)[0])
        params[i] = original
        numeric = (-losses[0] + 8 * losses[1] - 8 * losses[2] + losses[3]) / (12 * h)
        error = abs(grad[i] - numeric) / max(abs(grad[i]), abs(numeric), floor)
        worst = max(worst, error)
    return worst
