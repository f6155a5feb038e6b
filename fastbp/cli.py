"""The ``fastbp`` command line: ``train``, ``predict``, ``info``, ``bench``.

``fastbp`` (or ``python -m fastbp``) with no arguments runs the main job:
train on scikit-learn's digits and print accuracy and time.
User mistakes (missing file, unknown column, non-numeric features, NaN, shapes
that do not match the model or each other, a bad option) print one line,
``fastbp: error: ...``, and exit with status 2; they never show a traceback.
"""
import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

EMBEDDED = ("digits", "iris", "breast_cancer", "diabetes")
MAX_CLASSES_INFERRED = 20
# the default batch shrinks on small data so that an epoch still takes this many steps
MIN_STEPS_PER_EPOCH = 16


class CLIError(Exception):
    """A user mistake, reported as one line (not at all when ``quiet``: another MPI rank
    reports it)."""

    def __init__(self, message, quiet=False):
        super().__init__(message)
        self.quiet = quiet


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line like every other user mistake."""

    def error(self, message):
        self.exit(2, f"fastbp: error: {message} (see {self.prog} --help)\n")


# ---------------------------------------------------------------- data
def _csv_rows(path):
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


def _columns_as_floats(path, header, rows, columns):
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
    header, rows = _csv_rows(path)
    target = header[-1] if target is None else target
    if target not in header:
        raise CLIError(f"{path}: no column {target!r}; the columns are {', '.join(header)}")
    t = header.index(target)
    features = [h for i, h in enumerate(header) if i != t]
    if not features:
        raise CLIError(f"{path}: no feature columns besides the target {target!r}")
    return (_columns_as_floats(path, header, rows, features), np.array([r[t] for r in rows]),
            features)


def _as_numbers(y):
    try:
        return y.astype(float)
    except ValueError:
        return None


def load_data(source, target=None, synthetic=None, seed=0, need_target=True):
    """``(X, y, feature_names)`` from a CSV, an ``.npz`` (``X``, ``y``) or an embedded name."""
    import sklearn.datasets as ds
    if target is not None and not str(source).endswith(".csv"):
        raise CLIError(f"--target names a CSV column; {source} is not a .csv file")
    if source == "synthetic" or synthetic is not None:
        if synthetic is None:
            raise CLIError("the synthetic data set needs --make-classification N,F,C")
        n, f, c = synthetic
        X, y = ds.make_classification(n_samples=n, n_features=f, n_informative=max(2, f // 2),
                                      n_classes=c, random_state=seed)
        return X, y, None
    if source in EMBEDDED:
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


# ---------------------------------------------------------------- commands
def _int_list(text, name):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"{name} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise CLIError(f"{name} must be positive integers, got {text!r}")
    return values


def train_options(args):
    """The train options' checks that need no data: ``(synthetic, hidden)``."""
    synthetic = (_int_list(args.make_classification, "--make-classification")
                 if args.make_classification else None)
    if synthetic is not None and len(synthetic) != 3:
        raise CLIError("--make-classification takes N,F,C (samples, features, classes)")
    hidden = _int_list(args.hidden, "--hidden")
    if args.batch_size is not None and args.batch_size < 1:
        raise CLIError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if not 0 < args.test_fraction < 1:
        raise CLIError(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    if args.val_fraction is not None and not 0 <= args.val_fraction < 1:
        raise CLIError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.patience is not None and not args.val_fraction:
        raise CLIError("--patience stops on the validation loss: it needs --val-fraction > 0")
    return synthetic, hidden


def default_batch_size(args, n_fit, at_least=1):
    """``--batch-size``, or 64 rows (fewer on small data, at least ``at_least``: the ranks)."""
    if args.batch_size is not None:
        return args.batch_size
    return max(at_least, min(64, max(1, n_fit // MIN_STEPS_PER_EPOCH)))


def new_model(args, n_features, hidden, classes, inputs, target=None):
    """The model (with the CLI's standardisation kept beside it) and its optimizer."""
    import fastbp
    model = fastbp.MLP([n_features, *hidden, 1 if classes is None else len(classes)],
                       activation=args.activation,
                       output="identity" if classes is None else "softmax",
                       seed=args.seed, dtype=args.dtype)
    model.classes_ = classes
    model.input_mean_, model.input_scale_ = inputs
    if target is not None:
        model.target_mean_, model.target_scale_ = target
    optimizers = fastbp.optim.OPTIMIZERS
    kwargs = {"lr": args.lr}
    if args.optimizer == "sgd":
        kwargs["momentum"] = args.momentum
    return model, optimizers[args.optimizer](**kwargs)


def standardised(model, X):
    return (X - model.input_mean_) / model.input_scale_


def fit_target(model, y):
    """The target the model trains on: a regression target is standardised."""
    if getattr(model, "target_mean_", None) is None:
        return y
    return (y - model.target_mean_[0]) / model.target_scale_[0]


def interrupted(model, args, save=True):
    """Ctrl-C stopped ``fit`` after a completed epoch: keep that work."""
    done = model.history_.n_epochs if model.history_ is not None else 0
    if save and args.out and done:
        model.save(args.out)
        print(f"interrupted after {done} epochs; saved: {args.out} "
              "(resume it in Python with fastbp.load)", file=sys.stderr)
    elif save:
        print(f"interrupted after {done} epochs", file=sys.stderr)
    return 130


def test_sums(model, X, y):
    """Sums over the test rows ``(X, y)`` (standardised X, y in its units) that
    ``test_summary`` turns into scores; they add up over ranks."""
    n = float(len(X))
    if model.classes_ is not None:
        scores = model.evaluate(X, y)
        return np.array([n, scores["accuracy"] * n, scores["loss"] * n])
    pred = _predict_values(model, X)
    shifted = y - model.target_mean_[0]  # sums of squares without cancellation
    return np.array([n, np.sum((pred - y) ** 2), shifted.sum(), np.sum(shifted ** 2)])


def test_summary(sums, classification):
    n = sums[0]
    if classification:
        return f"test accuracy: {sums[1] / n:.4f}  test loss: {sums[2] / n:.4f}"
    sse, total_squares = sums[1], sums[3] - sums[2] ** 2 / n
    r2 = 1 - sse / max(total_squares, np.finfo(float).tiny)
    return f"test r2: {r2:.4f}  test rmse: {np.sqrt(sse / n):.4g}"


def finish(args, model, history, elapsed, summary, detail=""):
    """Print the test summary, save the model, draw the curves."""
    print(f"{summary}  ({history.n_epochs} epochs in {elapsed:.2f} s{detail}"
          + (f", stopped: {history.stop_reason}" if history.stopped_early else "") + ")")
    if args.out:
        model.save(args.out)
        print(f"saved: {args.out}")
    if args.plot:
        try:
            history.plot(args.plot)
        except ImportError as exc:
            raise CLIError(str(exc)) from None
        print(f"plot: {args.plot}")


def _mpi_launch_size():
    """How many processes an MPI launcher started (1 when not launched by one)."""
    import os
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


def cmd_train(args):
    from sklearn.model_selection import train_test_split
    if args.distributed:
        from .cli_distributed import train_distributed
        return train_distributed(args)
    if _mpi_launch_size() > 1:
        print(f"fastbp: note: started by an MPI launcher with {_mpi_launch_size()} processes "
              "but without --distributed, so each trains alone", file=sys.stderr)
    synthetic, hidden = train_options(args)
    X, y, features = load_data(args.data, args.target, synthetic, args.seed)
    numbers, integral = target_facts(y)
    check_finite(args.data, X, numbers)
    task = decide_task(args.task, numbers is not None, integral,
                       len(np.unique(y if numbers is None else numbers)))
    classes = np.unique(y) if task == "classification" else None
    targets = encode_targets(args.data, y, numbers, task, classes)
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, targets, test_size=args.test_fraction, random_state=args.seed,
            stratify=targets if classes is not None else None)
    except ValueError as exc:
        raise CLIError(f"cannot split {len(X)} samples for testing: {exc}") from None
    model, optimizer = new_model(args, X.shape[1], hidden, classes, moments(X_train),
                                 None if classes is not None else moments(y_train))
    model.feature_names_ = features
    n_fit = len(X_train) - int(len(X_train) * (args.val_fraction or 0))
    print(f"{model}\n{task}: {len(X_train)} training / {len(X_test)} test samples"
          + (f", {len(classes)} classes" if classes is not None else ""), flush=True)
    start = time.perf_counter()
    try:
        history = model.fit(standardised(model, X_train), fit_target(model, y_train),
                            optimizer=optimizer, epochs=args.epochs,
                            batch_size=default_batch_size(args, n_fit),
                            validation_fraction=args.val_fraction or None,
                            patience=args.patience, verbose=1 if sys.stderr.isatty() else 2,
                            n_jobs=args.n_jobs)
    except KeyboardInterrupt:
        return interrupted(model, args)
    elapsed = time.perf_counter() - start
    finish(args, model, history, elapsed,
           test_summary(test_sums(model, standardised(model, X_test), y_test),
                        classes is not None))
    return 0


def _predict_values(model, X):
    """``model.predict`` on standardised rows, with a regression target scaled back."""
    pred = model.predict(X)
    if getattr(model, "target_mean_", None) is not None:
        pred = pred * model.target_scale_[0] + model.target_mean_[0]
    return pred


def _load_model(path):
    import fastbp
    try:
        return fastbp.load(path)
    except fastbp.ModelFileError as exc:
        raise CLIError(str(exc)) from None


def cmd_predict(args):
    model = _load_model(args.model)
    if Path(args.data).suffix == ".csv" and Path(args.data).exists():
        header, rows = _csv_rows(args.data)
        X = _columns_as_floats(args.data, header, rows,
                               getattr(model, "feature_names_", None) or header)
    else:
        X, _, _ = load_data(args.data, need_target=False)
    if X.shape[1] != model.layer_sizes[0]:
        raise CLIError(f"{args.data}: {X.shape[1]} features, the model takes "
                       f"{model.layer_sizes[0]}")
    mean = getattr(model, "input_mean_", None)
    if mean is not None:
        X = (X - mean) / model.input_scale_
    classes = getattr(model, "classes_", None)
    if args.proba:
        if classes is None:
            raise CLIError("--proba needs a classification model")
        out = model.predict_proba(X)
        header = [f"p_{c}" for c in classes]
        lines = [",".join(header)] + [",".join(f"{p:.6g}" for p in row) for row in out]
    else:
        pred = _predict_values(model, X)
        values = classes[pred] if classes is not None else pred
        if classes is None:  # numbers: 6 significant digits, like the probabilities
            lines = ["prediction"] + [",".join(f"{v:.6g}" for v in np.atleast_1d(row))
                                      for row in values]
        else:
            lines = ["prediction"] + [str(v) for v in values]
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"{len(lines) - 1} predictions written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_info(args):
    model = _load_model(args.model)
    print(model)
    print(f"parameters: {model.n_params}  dtype: {model.dtype}  file: {args.model} "
          f"({Path(args.model).stat().st_size} bytes)")
    classes = getattr(model, "classes_", None)
    if classes is not None:
        print(f"classes: {', '.join(map(str, classes))}")
    h = model.history_
    if h is None or not h.n_epochs:
        print("history: not trained")
    else:
        line = f"history: {h.n_epochs} epochs, final loss {h.loss[-1]:.4f}"
        if h.val_loss:
            line += (f", best epoch {h.best_epoch + 1} (val loss {min(h.val_loss):.4f}, "
                     f"val {h.metric_name} {h.val_metric[h.best_epoch]:.4f})")
        if h.stopped_early:
            line += f", stopped: {h.stop_reason}"
        print(line)
    if model.optimizer is not None:
        print(f"optimizer: {model.optimizer} after {model.optimizer_state.step} steps")
    return 0


def cmd_bench(args):
    try:
        from bench import compare
    except ImportError:
        raise CLIError("fastbp bench runs from a source checkout with the bench extra "
                       '(pip install ".[bench]"), from the repository root') from None
    rows = args.rows or "T,S"
    return compare.main(["--rows", rows, "--repeats", str(args.repeats), "--skip-extras"]
                        if not args.full else ["--repeats", str(args.repeats)]) or 0


def build_parser():
    from .architecture import HIDDEN_ACTIVATIONS
    from .optim import OPTIMIZERS
    p = _Parser(prog="fastbp", description="Train and use MLPs on the CPU. "
                "With no arguments: train on digits and report.")
    sub = p.add_subparsers(dest="command")
    t = sub.add_parser("train", help="train a model on a CSV, an .npz or an embedded data set")
    t.add_argument("data", help="a .csv (with a header), an .npz with X and y, or one of "
                   f"{', '.join(EMBEDDED)}, synthetic")
    t.add_argument("--target", help="the CSV's target column (default: the last)")
    t.add_argument("--task", choices=["auto", "classification", "regression"], default="auto")
    t.add_argument("--make-classification", metavar="N,F,C",
                   help="with 'synthetic': samples, features, classes")
    t.add_argument("--hidden", default="128", help="hidden layer sizes, e.g. 256,256")
    t.add_argument("--activation", default="relu", choices=HIDDEN_ACTIVATIONS,
                   help="hidden activation (default: relu)")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=None,
                   help="rows per step (default 64, fewer on small data: at least "
                        f"{MIN_STEPS_PER_EPOCH} steps per epoch)")
    t.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--patience", type=int, default=None)
    t.add_argument("--test-fraction", type=float, default=0.2)
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--n-jobs", type=int, default=None)
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI: run under mpiexec, each rank with its own "
                        "rows (needs the mpi extra)")
    t.add_argument("--out", help="save the trained model here")
    t.add_argument("--plot", help="write the training curves here (PNG; needs matplotlib)")
    t.set_defaults(run=cmd_train)
    pr = sub.add_parser("predict", help="predict with a saved model")
    pr.add_argument("model")
    pr.add_argument("data")
    pr.add_argument("--proba", action="store_true", help="class probabilities")
    pr.add_argument("--out", help="write the predictions to this CSV")
    pr.set_defaults(run=cmd_predict)
    i = sub.add_parser("info", help="describe a saved model")
    i.add_argument("model")
    i.set_defaults(run=cmd_info)
    b = sub.add_parser("bench", help="the comparison table of bench/ (quick subset)")
    b.add_argument("--rows", help="grid rows, e.g. T,S,M (default T,S)")
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--full", action="store_true", help="every row and the extra measurements")
    b.set_defaults(run=cmd_bench)
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        from .__main__ import main_job
        main_job()
        return 0
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    try:
        return args.run(args)
    except CLIError as exc:
        if not exc.quiet:
            print(f"fastbp: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # fastbp's own input checks name the problem
        print(f"fastbp: error: {exc}", file=sys.stderr)
        return 2


def console():
    """Entry point of the ``fastbp`` console script."""
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("fastbp: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # the reader went away (``fastbp predict ... | head``)
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
