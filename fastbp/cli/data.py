"""The data of the command line: reading a CSV, an ``.npz`` or an embedded data set
(:func:`load_data`), the checks of an ``.npz``'s arrays and of finite values, and
the facts of a target that decide the task and encode it.

Every problem with the data is a :class:`~fastbp.cli.errors.CLIError` naming the
file (and the line and column of a CSV).
"""
import sys
from pathlib import Path

import numpy as np

from .errors import CLIError
from .table import CSV_SUFFIXES, PARQUET_SUFFIXES, parse_delimiter, read_table

__all__ = ["EMBEDDED", "MAX_CLASSES_INFERRED", "DATA_SUFFIXES", "load_data",
           "check_npz_arrays", "target_facts", "decide_task", "check_finite",
           "encode_targets", "check_class_rows", "print_notes", "table_options"]

EMBEDDED = ("digits", "iris", "breast_cancer", "diabetes")
MAX_CLASSES_INFERRED = 20
DATA_SUFFIXES = (*CSV_SUFFIXES, *PARQUET_SUFFIXES, ".npz")


def _as_numbers(y):
    try:
        return y.astype(float)
    except ValueError:
        return None


def print_notes(notes):
    """What reading the data did that the user should know (an index column left out)."""
    for note in notes:
        print(f"fastbp: note: {note}", file=sys.stderr)


def table_options(args, notes=True):
    """The keywords of ``load_data`` that the options ``--delimiter``, ``--decimal`` and
    ``--dropna`` give (checked: ``CLIError``); ``notes=False`` leaves the notes unsaid."""
    return dict(delimiter=parse_delimiter(args.delimiter), decimal=args.decimal,
                dropna=getattr(args, "dropna", False), notes=notes)


def load_data(source, target=None, synthetic=None, seed=0, need_target=True, columns=None,
              delimiter=None, decimal=None, dropna=False, notes=True):
    """``(X, y, feature_names)`` from a CSV or Parquet file (``fastbp.cli.table``), an
    ``.npz`` (``X``, ``y``) or an embedded name; ``columns``: a model's feature columns.
    The notes of reading a table are printed unless ``notes`` is False."""
    tabular = Path(str(source)).suffix.lower() in (*CSV_SUFFIXES, *PARQUET_SUFFIXES)
    if target is not None and not tabular:
        raise CLIError(f"--target names a column of a CSV or Parquet file; {source} is "
                       "neither")
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
    if tabular:
        table = read_table(path, target, columns, need_target, delimiter, decimal, dropna)
        if notes:
            print_notes(table.notes)
        return table.X, table.y, table.feature_names
    raise CLIError(f"{source}: unknown data format (use .csv, .tsv, .parquet, .npz or an "
                   "embedded name)")


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


def check_class_rows(source, classes, counts):
    """Every class needs two rows: one to train on and one to test on (a stratified split)."""
    rare = [(c, int(n)) for c, n in zip(classes, counts) if n < 2]
    if rare:
        listed = ", ".join(repr(str(c)) for c, _ in rare[:5]) + (", ..." if len(rare) > 5 else "")
        raise CLIError(f"{source}: {len(rare)} class{'es' * (len(rare) > 1)} with a single row "
                       f"({listed}): each class needs at least 2 rows (one to train on, one to "
                       "test); add rows, fix the label or drop the row")


def encode_targets(source, y, numbers, task, classes):
    """Class indices into ``classes``, or the numeric target of a regression."""
    if task == "classification":
        if len(classes) < 2:
            raise CLIError(f"{source}: the target has a single class ({classes[0]!r})")
        return np.searchsorted(classes, y)
    if numbers is None:
        raise CLIError(f"{source}: the target is not numeric; use --task classification")
    return numbers
