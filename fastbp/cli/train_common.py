"""What ``fastbp train`` does alike in one process (:mod:`fastbp.cli.train`) and on
every MPI rank (:mod:`fastbp.cli.distributed`): the checks of the options, the
default batch, the new model and its optimizer, the test scores, and the end of
a run (printing, saving, plotting, or keeping the work of an interrupted one).
"""
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .errors import CLIError
from .table import parse_delimiter
from .scaling import predict_values

__all__ = ["MIN_STEPS_PER_EPOCH", "train_options", "check_writable", "save_model",
           "EpochLog", "epoch_callbacks", "default_batch_size", "new_model", "interrupted",
           "test_sums", "test_summary", "finish"]

# the default batch shrinks on small data so that an epoch still takes this many steps
MIN_STEPS_PER_EPOCH = 16


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
    if args.epochs < 1:
        raise CLIError(f"--epochs must be a positive integer, got {args.epochs}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise CLIError(f"--lr must be a positive number, got {args.lr}")
    if not 0 <= args.momentum < 1:
        raise CLIError(f"--momentum must be in [0, 1), got {args.momentum}")
    if args.patience is not None and args.patience < 1:
        raise CLIError(f"--patience must be a positive integer, got {args.patience}")
    if args.n_jobs is not None and args.n_jobs != -1 and args.n_jobs < 1:
        raise CLIError(f"--n-jobs must be -1 or a positive integer, got {args.n_jobs}")
    parse_delimiter(args.delimiter)
    # before any data is read or any training done: a run never ends unable to keep its work
    for option, path in (("--out", args.out), ("--plot", args.plot), ("--log", args.log)):
        if path:
            check_writable(path, option)
    named = [(o, Path(p).resolve()) for o, p in
             (("--out", args.out), ("--plot", args.plot), ("--log", args.log)) if p]
    for i, (option, path) in enumerate(named):
        for other, same in named[i + 1:]:
            if path == same:
                raise CLIError(f"{option} and {other} name the same file {path}")
    if Path(str(args.data)).resolve() in [p for _, p in named]:
        raise CLIError(f"an output option names the data file {args.data}: it would be "
                       "overwritten")
    return synthetic, hidden


def check_writable(path, option):
    """``CLIError`` unless a file can be written at ``path`` (tried, not inferred from the
    permission bits, which an administrator's account ignores); nothing is left behind."""
    target = Path(path)
    if target.is_dir():
        raise CLIError(f"{option} {path} is a directory; give a file name")
    folder = target.parent
    if not folder.is_dir():
        raise CLIError(f"{option} {path}: the directory {folder} does not exist")
    try:
        if target.exists():
            with open(target, "ab"):
                pass
        else:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".fastbp-write-test-"):
                pass
    except OSError as exc:
        raise CLIError(f"{option} {path} cannot be written: {exc.strerror or exc}") from None


def save_model(model, path):
    """Save to ``path``; if that fails after all, to a fallback file, and say where.

    Returns the exit status: 0 when saved at ``path``, 2 when only the fallback
    (or nothing, if every place refused) holds the model.
    """
    try:
        model.save(path)
        return 0
    except OSError as exc:
        reason = exc.strerror or str(exc)
    name = f"fastbp-model-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.fastbp"
    for folder in (Path.cwd(), Path(tempfile.gettempdir())):
        try:
            fallback = model.save(folder / name)
        except OSError:
            continue
        print(f"fastbp: error: could not write {path} ({reason}); the model is saved "
              f"at {fallback}", file=sys.stderr)
        return 2
    print(f"fastbp: error: could not write {path} ({reason}) nor a fallback file in "
          f"{Path.cwd()} or {tempfile.gettempdir()}: the model was not saved", file=sys.stderr)
    return 2


class EpochLog:
    """``--log``: each epoch's row written as the epoch ends (``fastbp.callbacks.CSVLogger``).
    A write that fails mid-run says so once and training goes on (the status is then 2):
    the log is never worth the model."""

    def __init__(self, path):
        from ..callbacks import CSVLogger
        self.path, self.failed = path, False
        self._logger = CSVLogger(path)

    def __call__(self, epoch, logs, model):
        if not self.failed:
            try:
                self._logger(epoch, logs, model)
            except OSError as exc:
                self.failed = True
                print(f"fastbp: error: could not write the log {self.path}: "
                      f"{exc.strerror or exc}; training goes on", file=sys.stderr)
        return False


def epoch_callbacks(args):
    """The callbacks of the options: ``[EpochLog]`` with ``--log``, else none."""
    return [EpochLog(args.log)] if args.log else []


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


def interrupted(model, args, save=True):
    """Ctrl-C stopped ``fit`` after a completed epoch: keep that work."""
    done = model.history_.n_epochs if model.history_ is not None else 0
    if save and args.out and done:
        if save_model(model, args.out) == 0:
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
    pred = predict_values(model, X)
    shifted = y - model.target_mean_[0]  # sums of squares without cancellation
    return np.array([n, np.sum((pred - y) ** 2), shifted.sum(), np.sum(shifted ** 2)])


def test_summary(sums, classification):
    """The test line: accuracy and loss, or r2 and rmse, from ``test_sums`` (over the ranks)."""
    n = sums[0]
    if classification:
        return f"test accuracy: {sums[1] / n:.4f}  test loss: {sums[2] / n:.4f}"
    sse, total_squares = sums[1], sums[3] - sums[2] ** 2 / n
    r2 = 1 - sse / max(total_squares, np.finfo(float).tiny)
    return f"test r2: {r2:.4f}  test rmse: {np.sqrt(sse / n):.4g}"


def finish(args, model, history, elapsed, summary, detail="", callbacks=()):
    """Print the test summary, save the model, draw the curves; return the exit status.

    The model is saved first, and a failure of the plot (or of the save, which
    then falls back to another file: ``save_model``) is one line on stderr and
    status 2, never a traceback after the work is done.
    """
    print(f"{summary}  ({history.n_epochs} epochs in {elapsed:.2f} s{detail}"
          + (f", stopped: {history.stop_reason}" if history.stopped_early else "") + ")")
    status = 2 if any(getattr(c, "failed", False) for c in callbacks) else 0
    if args.out:
        status = max(status, save_model(model, args.out))
        if status == 0:
            print(f"saved: {args.out}")
    if args.plot:
        try:
            history.plot(args.plot)
            print(f"plot: {args.plot}")
        except ImportError as exc:
            print(f"fastbp: error: no plot: {exc}", file=sys.stderr)
            status = 2
        except OSError as exc:
            print(f"fastbp: error: could not write the plot {args.plot}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            status = 2
    return status
