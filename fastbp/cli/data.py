"""The data of the command line: reading a CSV, an ``.npz`` or an embedded data set
(:func:`load_data`), the checks of an ``.npz``'s arrays and of finite values, and
the facts of a target that decide the task and encode it.

Every problem with the data is a :class:`~fastbp.cli.errors.CLIError` naming the
file (and the line and column of a CSV).
"""
import csv
from pathlib import Path

import numpy as np

from .errors import CLIError

__all__ = ["EMBEDDED", "MAX_CLASSES_INFERRED", "csv_rows", "columns_as_floats", "load_data",
           "check_npz_arrays", "target_facts", "decide_task", "check_finite",
           "encode_targets"]

EMBEDDED = ("digits", "iris", "breast_cancer", "diabetes")
MAX_CLASSES_INFERRED = 20


def csv_rows(path):
    """``(header, rows)`` of a CSV file; every row has the header's number of fields."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r]
    if len(rows) < 2:
        raise CLIError(f"{path}: no data rows after the header")
    header = rows[0]
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise CLIError(f"{path}: line {n} has {len(row)} fields, the header has "
                           f"{len(header)}")
    return header, rows[1:]


def columns_as_floats(path, header, rows, columns):
    """The named columns as a float array (features must be numeric)."""
    missing = [c for c in columns if c not in header]
    if missing:
        raise CLIError(f"{path}: missing feature column(s) {', '.join(missing)}")
    index = [header.index(c) for c in columns]
    X = np.empty((len(rows), len(index)))
    for n, row in enumerate(rows):
        for j, i in enumerate(index):
            try:
                X[n, j] = float(row[i])
            except ValueError:
                raise CLIError(f"{path}: line {n + 2}, column {columns[j]!r}: {row[i]!r} is "
                               "not a number (features must be numeric)") from None
    return X


def _read_csv(path, target):
    """``(X, y, feature_names)``: the target column (default the last) as text, the rest as X."""
    header, rows = csv_rows(path)
    target = header[-1] if target is None else target
    if target not in header:
        raise CLIError(f"{path}: no column {target!r}; the columns are {', '.join(header)}")
    t = header.index(target)
    features = [h for i, h in enumerate(header) if i != t]
    if not features:
        raise CLIError(f"{path}: no feature columns besides the target {target!r}")
    return (columns_as_floats(path, header, rows, features), np.array([r[t] for r in rows]),
            features)


def _as_numbers(y):
    try:
        return y.astype(float)
    except ValueError:
        return None


def load_data(source, target=None, synthetic=None, seed=0, need_target=True):
    """``(X, y, feature_names)`` from a CSV, an ``.npz`` (``X``, ``y``) or an embedded name."""
    if target is not None and not str(source).endswith(".csv"):
        raise CLIError(f"--target names a CSV column; {source} is not a .csv file")
    if source == "synthetic" or synthetic is not None:
        if synthetic is None:
            raise CLIError("the synthetic data set needs --make-classification N,F,C")
        n, f, c = synthetic
        import sklearn.datasets as ds  # here: a mistake in a file is reported without it
        X, y = ds.make_classification(n_samples=n, n_features=f, n_informative=max(2, f // 2),
                                      n_classes=c, random_state=seed)
        return X, y, None
    if source in EMBEDDED:
        import sklearn.datasets as ds
        X, y = getattr(ds, f"load_{source}")(return_X_y=True)
        return (X / 16.0 if source == "digits" else X), y, None
    path = Path(source)
    if not path.exists():
        raise CLIError(f"{source}: no such file (and not one of the data sets "
                       f"{', '.join(EMBEDDED)}, synthetic)")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                if "X" not in f.files or (need_target and "y" not in f.files):
                    raise CLIError(f"{source}: an .npz needs arrays 'X' and 'y', found "
                                   f"{', '.join(f.files) or 'none'}")
                X = f["X"]
                y = f["y"] if "y" in f.files else None
        except CLIError:
            raise
        except Exception as exc:
            raise CLIError(f"{source}: cannot read the .npz ({exc})") from None
        check_npz_arrays(source, X.shape, X.dtype, None if y is None else y.shape)
        return X.astype(float), y, None
    if path.suffix == ".csv":
        return _read_csv(path, target)
    raise CLIError(f"{source}: unknown data format (use .csv, .npz or an embedded name)")


def check_npz_arrays(source, x_shape, x_dtype, y_shape):
    """The checks of an ``.npz``'s X and y that need only their shapes and X's dtype."""
    if len(x_shape) != 2:
        raise CLIError(f"{source}: X must be 2-d, got shape {x_shape}")
    if x_dtype.kind not in "biuf":
        raise CLIError(f"{source}: X must be numeric, got dtype {x_dtype}")
    if 0 in x_shape:
        raise CLIError(f"{source}: X has no {'rows' if x_shape[0] == 0 else 'columns'} "
                       f"(shape {x_shape})")
    if y_shape is not None and len(y_shape) != 1:
        raise CLIError(f"{source}: y must be 1-d (one target per row), got shape {y_shape}")
    if y_shape is not None and y_shape[0] != x_shape[0]:
        raise CLIError(f"{source}: X has {x_shape[0]} rows but y has {y_shape[0]}")


def target_facts(y):
    """``(numbers, integral)``: y as floats (None if not numeric) and whether all are integers."""
    numbers = _as_numbers(y)
    return numbers, numbers is None or bool(np.all(numbers == np.round(numbers)))


def decide_task(forced, numeric, integral, n_distinct):
    """Classification for text or few distinct integers, else regression (unless forced)."""
    if forced != "auto":
        return forced
    if not numeric:
        return "classification"
    return ("classification" if integral and n_distinct <= MAX_CLASSES_INFERRED
            else "regression")


def check_finite(source, X, numbers):
    """No NaN or infinity in the features ``X`` nor in a numeric target ``numbers``."""
    if not np.all(np.isfinite(X)):
        raise CLIError(f"{source}: the features contain NaN or infinity")
    if numbers is not None and not np.all(np.isfinite(numbers)):
        raise CLIError(f"{source}: the target contains NaN or infinity")


def encode_targets(source, y, numbers, task, classes):
    """Class indices into ``classes``, or the numeric target of a regression."""
    if task == "classification":
        if len(classes) < 2:
            raise CLIError(f"{source}: the target has a single class ({classes[0]!r})")
        return np.searchsorted(classes, y)
    if numbers is None:
        raise CLIError(f"{source}: the target is not numeric; use --task classification")
    return numbers
