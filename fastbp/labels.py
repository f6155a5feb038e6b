"""Labels and class weights of the native model's targets.

Labels that are not numbers reach a cross-entropy network as indices into the sorted
distinct labels (``MLP.classes_``); ``class_weight`` becomes one weight per row. Each
function takes what it reads as arguments: the ``Network``, and the model's
``classes_`` and whether a fit set them from labels.
"""
import typing
from numbers import Real

import numpy as np
import numpy.typing as npt

from .network import Network, check_sample_weight

__all__ = ["FitTargets", "label_classes", "label_indices", "read_targets", "class_weights",
           "class_weights_of", "validation_targets", "fit_targets"]

_ClassWeight = typing.Union[typing.Mapping[typing.Any, float], str]


class FitTargets(typing.NamedTuple):
    """What ``MLP.fit`` trains on, read from its labels and weights before anything changes."""

    new_classes: typing.Optional[np.ndarray]
    """The ``classes_`` the fit sets (labels the model sees first), or None."""
    y: typing.Any
    """``y`` as class indices when it holds labels read through classes, else as given."""
    sample_weight: typing.Any
    """The rows' weights (``sample_weight`` times any class weights), or None."""
    weight_name: str
    """The name the weight checks give the weights in their messages."""
    validation_data: typing.Any
    """``validation_data`` relabelled and reweighted alike, or as given."""


def label_classes(network: Network, known_classes: typing.Any, predicts_labels: bool,
                  y: typing.Any, fitting: bool = False
                  ) -> typing.Tuple[typing.Optional[np.ndarray], bool]:
    """The classes 1-D labels ``y`` are read with, or None (``y`` is read as it is).

    Parameters
    ----------
    network : Network
    known_classes : array or None
        The model's ``classes_``, if it has any.
    predicts_labels : bool
        Whether a fit set ``known_classes`` from labels.
    y : targets as the caller gave them
    fitting : bool, default False
        Whether a fit reads ``y`` (only a fit may find new classes).

    Returns
    -------
    (classes, new)
        ``new`` when this fit would set ``classes_`` (labels that are not numbers, and no
        ``classes_`` yet). Labels that are numbers go through ``classes_`` only when a fit
        set it from labels (see ``MLP``'s docstring).
    """
    if network.targets != "labels":
        return None, False
    try:
        arr = np.asarray(y)
    except Exception:
        return None, False  # the target checks name what is wrong with it
    if arr.ndim != 1 or arr.shape[0] == 0:
        return None, False
    if predicts_labels or (arr.dtype.kind in "USO" and known_classes is not None):
        return np.asarray(known_classes), False
    if arr.dtype.kind not in "USO":
        return None, False
    if not fitting:
        raise ValueError(f"y holds labels such as {arr[0]!r}, but the model has no "
                         "classes_: fit it on such labels first (or give class indices)")
    classes = _distinct(arr, "y")
    if classes.dtype.kind == "O":  # all numbers or all strings: a dtype that saves as is
        plain = np.asarray(classes.tolist())
        if plain.dtype.kind != "O" and plain.shape == classes.shape:
            classes = plain
    n_out = network.layer_sizes[-1]
    if classes.shape[0] != n_out:
        raise ValueError(f"y holds {classes.shape[0]} distinct labels "
                         f"{_few(classes.tolist())}, the {network.output} output has "
                         f"{n_out} units: one unit per class")
    return classes, True


def label_indices(y: npt.ArrayLike, classes: np.ndarray, name: str) -> np.ndarray:
    """1-D labels ``y`` as ``(n_samples,)`` int64 indices into ``classes``; ValueError
    naming the labels ``classes`` does not hold."""
    values, inverse = _distinct(np.asarray(y), name, inverse=True)
    position = {label: i for i, label in enumerate(classes.tolist())}
    unknown = [v for v in values.tolist() if v not in position]
    if unknown:
        raise ValueError(f"{name} holds labels the model does not know: {_few(unknown)} "
                         f"(its classes_ are {_few(classes.tolist())})")
    return np.array([position[v] for v in values.tolist()],
                    dtype=np.int64)[inverse.reshape(-1)]


def read_targets(y: typing.Any, classes: typing.Optional[np.ndarray], name: str) -> typing.Any:
    """``y`` as indices when ``classes`` applies to it (1-D labels), else as given."""
    if classes is None or np.ndim(y) != 1:
        return y
    return label_indices(y, classes, name)


def class_weights(network: Network, y: typing.Any, class_weight: _ClassWeight
                  ) -> typing.Tuple[np.ndarray, typing.Dict[typing.Any, float]]:
    """``(per-row weights of y, {label: weight})`` for ``class_weight`` of ``fit``.

    ``y`` as the caller gave it (labels or indices); the weights are ``(n_samples,)``
    float64. ``'balanced'`` weighs each label ``n_samples / (n_classes · count)``.
    """
    if not network.is_classifier:
        raise ValueError(f"class_weight is for classifiers; this model's loss is "
                         f"{network.loss!r}")
    arr = _one_label_per_row(y, "y")
    values, inverse = _distinct(arr, "y", inverse=True)
    labels = values.tolist()
    if isinstance(class_weight, str) and class_weight == "balanced":
        # scikit-learn's compute_class_weight: n_samples / (n_classes * count)
        counts = np.bincount(inverse.reshape(-1), minlength=len(labels))
        table = dict(zip(labels, (arr.shape[0] / (len(labels) * counts)).tolist()))
    elif isinstance(class_weight, dict):
        table = _weight_table(class_weight, labels)
    else:
        raise ValueError("class_weight must be None, 'balanced' or a dict {label: weight}, "
                         f"got {class_weight!r}")
    per_label = np.array([table.get(v, 1.0) for v in labels])
    return per_label[inverse.reshape(-1)], table


def class_weights_of(y: typing.Any, table: typing.Mapping[typing.Any, float]) -> np.ndarray:
    """Per-row weights ``(n_samples,)`` of the validation labels ``y`` from a class-weight
    ``table`` (1 for labels it does not name)."""
    values, inverse = _distinct(_one_label_per_row(y, "y_val"), "y_val", inverse=True)
    return np.array([table.get(v, 1.0) for v in values.tolist()])[inverse.reshape(-1)]


def validation_targets(validation_data: typing.Sequence[typing.Any],
                       classes: typing.Optional[np.ndarray],
                       table: typing.Optional[typing.Mapping[typing.Any, float]],
                       dtype: npt.DTypeLike) -> typing.Tuple[typing.Any, ...]:
    """``validation_data`` ``(X_val, y_val[, sample_weight_val])`` with its labels read
    through ``classes`` and, given a class-weight ``table``, its rows' class weights
    (times any weights it carries, checked as ``dtype``)."""
    X_val, y_val, *w_val = validation_data
    read = (X_val, read_targets(y_val, classes, "y_val"), *w_val)
    if table is None:
        return read
    weights = class_weights_of(y_val, table)
    if w_val and w_val[0] is not None:
        weights = weights * check_sample_weight(w_val[0], weights.shape[0], dtype,
                                                "sample_weight_val", against="y_val")
    return read[:2] + (weights,)


def fit_targets(network: Network, known_classes: typing.Any, predicts_labels: bool,
                y: typing.Any, sample_weight: typing.Any,
                class_weight: typing.Optional[_ClassWeight], validation_data: typing.Any,
                distributed: bool) -> FitTargets:
    """The labels and weights ``MLP.fit`` trains on, with its checks in its order.

    Parameters
    ----------
    network : Network
    known_classes, predicts_labels
        The model's ``classes_`` (or None) and whether a fit set them from labels.
    y, sample_weight, class_weight, validation_data
        As given to ``fit``.
    distributed : bool
        Whether ``fit`` was given ``comm``: neither weights nor new classes then.

    Returns
    -------
    FitTargets
        Nothing of the model changes here: ``fit`` sets ``classes_`` once its checks pass.
    """
    classes, new_classes = label_classes(network, known_classes, predicts_labels, y,
                                         fitting=True)
    if distributed and (sample_weight is not None or class_weight is not None or new_classes):
        raise ValueError("with comm, sample_weight and class_weight are not supported, "
                         "and the first fit on labels that are not class indices must run "
                         "in one process (each rank could hold other labels)")
    y_read = read_targets(y, classes, "y")
    weight_name = "sample_weight"
    table = None
    if class_weight is not None:
        row_weights, table = class_weights(network, y, class_weight)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, row_weights.shape[0],
                                                network.dtype, against="y") * row_weights
            weight_name = "sample_weight × class_weight"
        else:
            sample_weight, weight_name = row_weights, "class_weight"
    if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
        if distributed and len(validation_data) == 3:
            raise ValueError("with comm, validation_data is a pair (X_val, y_val)")
        validation_data = validation_targets(validation_data, classes, table, network.dtype)
    return FitTargets(classes if new_classes else None, y_read, sample_weight, weight_name,
                      validation_data)


def _distinct(arr, name, inverse=False):
    """``np.unique(arr)`` (with the inverse indices if asked); ValueError for labels that
    cannot be sorted (mixed kinds, None)."""
    try:
        return np.unique(arr, return_inverse=inverse)
    except TypeError as exc:
        raise ValueError(f"{name} holds labels that cannot be sorted ({exc}): give labels "
                         "of one kind") from None


def _weight_table(class_weight, labels):
    """A ``class_weight`` dict as ``{label: float}``; ValueError for a label not among
    ``labels`` (those of ``y``) or a weight that is not a finite number >= 0."""
    held = set(labels)
    absent = [k for k in class_weight if k not in held]
    if absent:
        raise ValueError(f"class_weight names labels that y does not hold: "
                         f"{_few(absent)} (y holds {_few(labels)})")
    for label, weight in class_weight.items():
        if (isinstance(weight, bool) or not isinstance(weight, Real)
                or not np.isfinite(weight) or weight < 0):
            raise ValueError(f"class_weight[{label!r}] must be a finite number >= 0, "
                             f"got {weight!r}")
    return {k: float(v) for k, v in class_weight.items()}


def _one_label_per_row(y, name):
    """``y`` as a 1-D array of labels (a single column is one label per row), for
    ``class_weight``."""
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"class_weight needs one class label per sample: {name} has shape "
                         f"{arr.shape}")
    return arr


def _few(values, n=5):
    """A short text of a list: its first ``n`` items."""
    return repr(values[:n])[:-1] + ", ...]" if len(values) > n else repr(list(values))
