"""Scores computed without importing ``sklearn.metrics`` (about 1 s at import)."""
import numpy as np

__all__ = ["r2_score"]


def r2_score(Y, out):
    """Coefficient of determination averaged over outputs, as scikit-learn's ``r2_score``.

    A constant target column scores 1 when predicted exactly, else 0.
    """
    Y, out = Y.astype(np.float64), out.astype(np.float64)
    residual = ((Y - out) ** 2).sum(axis=0)
    total = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    scores = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1),
                      np.where(residual == 0, 1.0, 0.0))
    return float(scores.mean())
