"""The standardisation the command line keeps beside a model.

A model trained by ``fastbp train`` carries ``input_mean_`` and
``input_scale_`` (and, for a regression, ``target_mean_`` and
``target_scale_``): :func:`moments` computes them, :func:`standardised` and
:func:`fit_target` apply them to the rows and the target it trains on, and
:func:`predict_values` turns its predictions back into the target's units.
"""
import numpy as np

__all__ = ["moments", "standardised", "fit_target", "predict_values"]


def moments(A, total=None):
    """Column means and standard deviations (0 → 1) of ``A``'s rows.

    ``total`` sums an array over every rank (distributed training); the
    default is this process's rows alone. Two passes, for accuracy.
    """
    total = total or (lambda v: v)
    n = total(np.array([float(A.shape[0])]))[0]
    mean = total(np.atleast_1d(A.sum(axis=0))) / n
    std = np.sqrt(total(np.atleast_1d(((A - mean) ** 2).sum(axis=0))) / n)
    std[std == 0] = 1.0
    return mean, std


def standardised(model, X):
    """``X`` in the units the model takes: the training rows' means and scales applied."""
    return (X - model.input_mean_) / model.input_scale_


def fit_target(model, y):
    """The target the model trains on: a regression target is standardised."""
    if getattr(model, "target_mean_", None) is None:
        return y
    return (y - model.target_mean_[0]) / model.target_scale_[0]


def predict_values(model, X):
    """``model.predict`` on standardised rows, with a regression target scaled back."""
    pred = model.predict(X)
    if getattr(model, "target_mean_", None) is not None:
        pred = pred * model.target_scale_[0] + model.target_mean_[0]
    return pred
