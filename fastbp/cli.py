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
    """A user mistake, reported as one line."""


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
        if X.ndim != 2:
            raise CLIError(f"{source}: X must be 2-d, got shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise CLIError(f"{source}: X must be numeric, got dtype {X.dtype}")
        if 0 in X.shape:
            raise CLIError(f"{source}: X has no {'rows' if X.shape[0] == 0 else 'columns'} "
                           f"(shape {X.shape})")
        if y is not None and y.ndim != 1:
            raise CLIError(f"{source}: y must be 1-d (one target per row), got shape {y.shape}")
        if y is not None and len(y) != len(X):
            raise CLIError(f"{source}: X has {len(X)} rows but y has {len(y)}")
        return X.astype(float), y, None
    if path.suffix == ".csv":
        return _read_csv(path, target)
    raise CLIError(f"{source}: unknown data format (use .csv, .npz or an embedded name)")


def _task(y, forced):
    if forced != "auto":
        return forced
    numbers = _as_numbers(y)
    if numbers is None:
        return "classification"
    integral = np.all(numbers == np.round(numbers))
    return ("classification" if integral and len(np.unique(numbers)) <= MAX_CLASSES_INFERRED
            else "regression")


# ---------------------------------------------------------------- commands
def _int_list(text, name):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"{name} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise CLIError(f"{name} must be positive integers, got {text!r}")
    return values


def cmd_train(args):
    import fastbp
    from sklearn.model_selection import train_test_split
    synthetic = (_int_list(args.make_classification, "--make-classification")
                 if args.make_classification else None)
    if synthetic is not None and len(synthetic) != 3:
        raise CLIError("--make-classification takes N,F,C (samples, features, classes)")
    X, y, features = load_data(args.data, args.target, synthetic, args.seed)
    hidden = _int_list(args.hidden, "--hidden")
    task = _task(y, args.task)
    if not np.all(np.isfinite(X)):
        raise CLIError(f"{args.data}: the features contain NaN or infinity")
    numbers = _as_numbers(y)
    if numbers is not None and not np.all(np.isfinite(numbers)):
        raise CLIError(f"{args.data}: the target contains NaN or infinity")
    if args.batch_size is not None and args.batch_size < 1:
        raise CLIError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if task == "classification":
        classes, labels = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise CLIError(f"{args.data}: the target has a single class ({classes[0]!r})")
        out, targets, stratify = len(classes), labels, labels
    else:
        if numbers is None:
            raise CLIError(f"{args.data}: the target is not numeric; use --task classification")
        classes, out, targets, stratify = None, 1, numbers, None
    if not 0 < args.test_fraction < 1:
        raise CLIError(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, targets, test_size=args.test_fraction, random_state=args.seed, stratify=stratify)
    except ValueError as exc:
        raise CLIError(f"cannot split {len(X)} samples for testing: {exc}") from None
    mean, scale = X_train.mean(axis=0), X_train.std(axis=0)
    scale[scale == 0] = 1.0
    if task == "regression":  # trained on a standardised target, predictions scaled back
        target_mean, target_scale = y_train.mean(), y_train.std() or 1.0
        y_fit = (y_train - target_mean) / target_scale
    else:
        y_fit = y_train
    n_fit = len(X_train) - int(len(X_train) * (args.val_fraction or 0))
    batch_size = (args.batch_size if args.batch_size is not None
                  else min(64, max(1, n_fit // MIN_STEPS_PER_EPOCH)))
    model = fastbp.MLP([X.shape[1], *hidden, out], activation=args.activation,
                       output="softmax" if task == "classification" else "identity",
                       seed=args.seed, dtype=args.dtype)
    model.classes_ = classes
    model.input_mean_, model.input_scale_ = mean, scale
    if task == "regression":
        model.target_mean_, model.target_scale_ = np.array([target_mean]), np.array([target_scale])
    model.feature_names_ = features
    optimizers = {"adam": fastbp.optim.Adam, "adamw": fastbp.optim.AdamW, "sgd": fastbp.optim.SGD}
    kwargs = {"lr": args.lr}
    if args.optimizer == "sgd":
        kwargs["momentum"] = args.momentum
    optimizer = optimizers[args.optimizer](**kwargs)
    print(f"{model}\n{task}: {len(X_train)} training / {len(X_test)} test samples"
          + (f", {out} classes" if classes is not None else ""), flush=True)
    start = time.perf_counter()
    try:
        history = model.fit((X_train - mean) / scale, y_fit, optimizer=optimizer,
                            epochs=args.epochs, batch_size=batch_size,
                            validation_fraction=args.val_fraction or None,
                            patience=args.patience, verbose=1 if sys.stderr.isatty() else 2,
                            n_jobs=args.n_jobs)
    except KeyboardInterrupt:  # fit stopped after a completed epoch: keep that work
        done = model.history_.n_epochs if model.history_ is not None else 0
        if args.out and done:
            model.save(args.out)
            print(f"interrupted after {done} epochs; saved: {args.out} "
                  "(resume it in Python with fastbp.load)", file=sys.stderr)
        else:
            print(f"interrupted after {done} epochs", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - start
    if task == "classification":
        scores = model.evaluate((X_test - mean) / scale, y_test)
        summary = f"test accuracy: {scores['accuracy']:.4f}  test loss: {scores['loss']:.4f}"
    else:
        pred = _predict_values(model, (X_test - mean) / scale)
        rmse = float(np.sqrt(np.mean((pred - y_test) ** 2)))
        r2 = 1 - np.sum((pred - y_test) ** 2) / max(np.sum((y_test - y_test.mean()) ** 2),
                                                    np.finfo(float).tiny)
        summary = f"test r2: {r2:.4f}  test rmse: {rmse:.4g}"
    print(f"{summary}  "
          f"({history.n_epochs} epochs in {elapsed:.2f} s"
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
        print(f"optimizer: {model.optimizer} after {model._opt_state.step} steps")
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
    t.add_argument("--activation", default="relu")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=None,
                   help="rows per step (default 64, fewer on small data: at least "
                        f"{MIN_STEPS_PER_EPOCH} steps per epoch)")
    t.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--patience", type=int, default=None)
    t.add_argument("--test-fraction", type=float, default=0.2)
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--n-jobs", type=int, default=None)
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
