"""Scores computed without importing ``sklearn.metrics`` (about 1 s at import).

Each takes an optional ``sample_weight`` ``(n_samples,)`` and then gives the
weighted score scikit-learn's function of the same name gives; without weights
the arithmetic is exactly the unweighted one.
"""
import typing

import numpy as np
import numpy.typing as npt

_Weights = typing.Optional[npt.ArrayLike]

__all__ = ["accuracy", "r2_score", "f1_macro", "mean_absolute_error", "log_loss"]


def _weights(sample_weight):
    """``sample_weight`` as a float64 ``(n_samples, 1)`` column, or None."""
    if sample_weight is None:
        return None
    return np.asarray(sample_weight, dtype=np.float64).reshape(-1, 1)


def _column_sums(values, w):
    return values.sum(axis=0) if w is None else (w * values).sum(axis=0)


def accuracy(correct: np.ndarray, sample_weight: _Weights = None) -> float:
    """Share of the samples whose ``correct`` flag is set (weighted by ``sample_weight``)."""
    if sample_weight is None:
        return float(np.mean(correct))
    return float(np.average(correct, weights=np.asarray(sample_weight, dtype=np.float64)))


def r2_score(Y: np.ndarray, out: np.ndarray, sample_weight: _Weights = None) -> float:
    """Coefficient of determination averaged over outputs, as scikit-learn's ``r2_score``.

    A constant target column scores 1 when predicted exactly, else 0.
    """
    Y, out = Y.astype(np.float64), out.astype(np.float64)
    w = _weights(sample_weight)
    residual = _column_sums((Y - out) ** 2, w)
    centre = Y.mean(axis=0) if w is None else _column_sums(Y, w) / w.sum()
    total = _column_sums((Y - centre) ** 2, w)
    scores = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1),
                      np.where(residual == 0, 1.0, 0.0))
    return float(scores.mean())


def f1_macro(true: npt.ArrayLike, predicted: npt.ArrayLike, present_only: bool = True,
             sample_weight: _Weights = None) -> float:
    """F1 averaged over the classes of 0/1 indicator matrices, as scikit-learn's
    ``f1_score(average="macro")``: over the classes that are true or predicted somewhere
    (its labels for class vectors), or over every column (``present_only=False``, its
    multilabel case, where a column never true nor predicted scores 0)."""
    true, predicted = np.asarray(true, dtype=bool), np.asarray(predicted, dtype=bool)
    w = _weights(sample_weight)
    hits = _column_sums(true & predicted, w)
    denominator = _column_sums(true, w) + _column_sums(predicted, w)
    scores = np.where(denominator > 0, 2 * hits / np.where(denominator > 0, denominator, 1), 0)
    if present_only:
        # a class is present when a row names it, whatever that row weighs (scikit-learn's
        # labels come from the values, not from the weights)
        scores = scores[(true | predicted).any(axis=0)]
    return float(scores.mean()) if scores.size else 0.0


def mean_absolute_error(Y: np.ndarray, out: np.ndarray, sample_weight: _Weights = None
                        ) -> float:
    """Mean absolute error over every row and output (weighted over the rows)."""
    errors = np.abs(Y.astype(np.float64) - out.astype(np.float64))
    if sample_weight is None:
        return float(np.mean(errors))
    return float(np.average(errors, axis=0, weights=_weights(sample_weight)[:, 0]).mean())


def log_loss(Y: np.ndarray, P: np.ndarray, independent: bool = False,
             sample_weight: _Weights = None) -> float:
    """Mean negative log-likelihood of the targets ``Y`` under the probabilities ``P``.

    Both ``(n_samples, n_outputs)``. ``P`` is clipped to ``[eps, 1 − eps]`` (``eps`` of
    its dtype) as scikit-learn's ``log_loss`` does. ``independent=False``: the columns are
    the classes of one distribution (softmax), a row scores ``−Σ y log p``, scikit-learn's
    ``log_loss`` of one-hot targets. ``independent=True``: each column is a yes/no
    probability (logistic outputs), a row scores ``−Σ [y log p + (1−y) log(1−p)]``, which
    for one column is scikit-learn's binary ``log_loss``.
    """
    eps = np.finfo(P.dtype).eps if P.dtype.kind == "f" else np.finfo(np.float64).eps
    P = np.clip(P.astype(np.float64), eps, 1 - eps)
    Y = Y.astype(np.float64)
    rows = -(Y * np.log(P)).sum(axis=1)
    if independent:
        rows -= ((1 - Y) * np.log1p(-P)).sum(axis=1)
    return float(np.average(rows, weights=None if sample_weight is None
                            else np.asarray(sample_weight, dtype=np.float64)))
