"""What ``fastbp train`` does alike in one process (:mod:`fastbp.cli.train`) and on
every MPI rank (:mod:`fastbp.cli.distributed`): the checks of the options, the
default batch, the new model and its optimizer, the test scores, and the end of
a run (printing, saving, plotting, or keeping the work of an interrupted one).
"""
import sys

import numpy as np

from .errors import CLIError
from .scaling import predict_values

__all__ = ["MIN_STEPS_PER_EPOCH", "train_options", "default_batch_size", "new_model",
           "interrupted", "test_sums", "test_summary", "finish"]

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
