"""The commands on a saved model file: ``fastbp predict MODEL DATA``
(:func:`cmd_predict`) and ``fastbp info MODEL`` (:func:`cmd_info`)."""
import sys
from pathlib import Path

import numpy as np

from .data import DATA_SUFFIXES, load_data, table_options
from .errors import CLIError
from .scaling import predict_values

__all__ = ["cmd_predict", "cmd_info"]


def _load_model(path):
    if Path(path).suffix.lower() in DATA_SUFFIXES:
        raise CLIError(f"{path} is a data file, not a model: give a model saved by "
                       f"fastbp train --out (fastbp train {path} --out model.fastbp makes one)")
    import fastbp
    try:
        return fastbp.load(path)
    except fastbp.ModelFileError as exc:
        raise CLIError(str(exc)) from None


def cmd_predict(args):
    """Write the model's predictions (or class probabilities) for the rows of ``args.data``."""
    model = _load_model(args.model)
    X, _, _ = load_data(args.data, need_target=False,
                        columns=getattr(model, "feature_names_", None), **table_options(args))
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
        pred = predict_values(model, X)
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
    """Describe the saved model: architecture, size, classes, history, optimizer."""
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
