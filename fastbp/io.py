"""Saving and loading models: one ``.npz`` of plain arrays plus JSON, never pickle.

Format (``FORMAT``, version ``VERSION``), a NumPy ``.npz`` archive read with
``allow_pickle=False``:

``params``
    the flat parameter buffer (weights, biases, prelu slopes), in the model's dtype
``optimizer_state``
    ``(n_buffers, n_params)``: momentum, or Adam's two moments (0 rows if none)
``rng_keys``
    the 624 ``uint32`` words of the model's shuffling generator (Mersenne Twister)
``classes``, ``input_mean``, ``input_scale``, ``target_mean``, ``target_scale`` (optional)
    class labels, and the input (and regression target) standardisation the
    command line trains with
``meta``
    UTF-8 JSON as ``uint8``: format name and version, fastbp version, the
    architecture, the optimizer's class and hyper-parameters with its step count,
    the rest of the generator's state, the training history, and a SHA-256 of
    every array above (a changed byte is reported, not loaded)

A saved ``MLPClassifier``/``MLPRegressor`` (``kind`` names the class) has
``params`` and ``optimizer_state`` as above (``params`` empty when unfitted), and
optionally ``best_params`` (the early-stopping copy), ``classes`` (the class
labels, numbers or strings) and ``feature_names``; its ``meta`` holds the
constructor parameters (``get_params``) and the fitted attributes.

Writes are atomic: the archive goes to a temporary file in the target's
directory, is flushed to disk, then renamed over the target, so a crash while
saving leaves the previous file intact.
"""
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from . import optim
from .atomic import write_atomic
from ._validation import value_problem
from .history import History

FORMAT = "fastbp-model"
VERSION = 1
OPTIMIZERS = {cls.__name__: cls for cls in optim.OPTIMIZERS.values()}


class ModelFileError(ValueError):
    """A file that is not a readable fastbp model (missing, truncated, altered, other format)."""


# optional entries of a model trained by the command line: labels, input and target scaling
_CLI_ENTRIES = ("classes", "input_mean", "input_scale", "target_mean", "target_scale")
# parameter entries: finite and within what their dtype can square, as the params setter asks
_PARAMETER_ENTRIES = ("params", "best_params")


def _digest(arrays):
    h = hashlib.sha256()
    for name in sorted(n for n in arrays if n != "meta"):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _history_dict(history):
    if history is None:
        return None
    return {"metric_name": history.metric_name, "loss": list(map(float, history.loss)),
            "val_loss": list(map(float, history.val_loss)),
            "val_metric": list(map(float, history.val_metric)),
            "epoch_time": list(map(float, history.epoch_time)),
            "best_epoch": history.best_epoch, "stopped_early": bool(history.stopped_early),
            "stop_reason": history.stop_reason}


def _history_from(d):
    if d is None:
        return None
    h = History(d["metric_name"])
    h.loss, h.val_loss, h.val_metric = list(d["loss"]), list(d["val_loss"]), list(d["val_metric"])
    h.epoch_time, h.best_epoch = list(d["epoch_time"]), d["best_epoch"]
    h.stopped_early, h.stop_reason = bool(d["stopped_early"]), d["stop_reason"]
    return h


def save_mlp(model, path):
    """Save a ``fastbp.MLP`` (see the module docstring); returns the path."""
    from . import __version__
    opt, state = model._optimizer, model._opt_state
    kind, keys, pos, has_gauss, cached = model._rng.get_state()
    arrays = {
        "params": model.params,
        "optimizer_state": (state.buffers if state is not None
                            else np.zeros((0, model.n_params), dtype=model.dtype)),
        "rng_keys": np.asarray(keys, dtype=np.uint32),
    }
    # optional: what the command line keeps with a model (labels, input standardisation)
    for name in _CLI_ENTRIES:
        value = getattr(model, name + "_", None)
        if value is not None:
            arrays[name] = np.asarray(value)
            if arrays[name].dtype.kind == "O":
                arrays[name] = arrays[name].astype(str)
    meta = {
        "format": FORMAT, "version": VERSION, "fastbp": __version__, "kind": "MLP",
        "architecture": {"layer_sizes": list(model.layer_sizes),
                         "activation": list(model.activation), "output": model.output,
                         "loss": model.loss, "dtype": model.dtype.name, "seed": model.seed,
                         "gamma": model.gamma},
        "optimizer": None if opt is None or state is None else {
            "class": type(opt).__name__,
            "params": {k: v for k, v in vars(opt).items()},
            "step": int(state.step), "n_decay": int(state.n_decay)},
        "rng": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached)},
        "history": _history_dict(model.history_),
        "feature_names": getattr(model, "feature_names_", None),
        "sha256": _digest(arrays),
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    write_atomic(path, arrays)
    return Path(path)


def read(path):
    """``(meta, arrays)`` of a model file, checked; raises ``ModelFileError``."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            missing = {"meta", "params", "optimizer_state"} - names
            if missing:
                raise ModelFileError(f"{path}: not a fastbp model file "
                                     f"(missing {', '.join(sorted(missing))})")
            arrays = {name: archive[name] for name in names if name != "meta"}
            meta_bytes = archive["meta"]
    except ModelFileError:
        raise
    except ValueError as exc:
        if str(exc).startswith("Object arrays cannot be loaded"):  # a member of the archive
            raise ModelFileError(f"{path}: holds pickled Python objects, which fastbp never "
                                 "loads (a model file has numeric and text arrays only)") from None
        raise ModelFileError(f"{path}: not a readable fastbp model file "
                             f"(truncated or corrupted: {exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ModelFileError(f"{path}: not a readable fastbp model file "
                             f"(truncated or corrupted: {exc})") from None
    try:
        meta = json.loads(meta_bytes.astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: the metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a fastbp model file")
    if meta.get("version") != VERSION:
        raise ModelFileError(f"{path}: format version {meta.get('version')!r}; this fastbp "
                             f"reads version {VERSION}")
    if meta.get("sha256") != _digest(arrays):
        raise ModelFileError(f"{path}: the checksum does not match: the file was altered "
                             "or damaged")
    for name, a in sorted(arrays.items()):
        # a model saved with NaN weights would load and then predict NaN without a word
        if a.dtype.kind == "f":
            problem = value_problem(a, name)
            if problem is not None and (name in _PARAMETER_ENTRIES or "NaN" in problem):
                raise ModelFileError(f"{path}: {problem}")
    return meta, arrays


def load_mlp(meta, arrays, path):
    from .model import MLP
    if "rng_keys" not in arrays:
        raise ModelFileError(f"{path}: not a fastbp model file (missing rng_keys)")
    arch = meta["architecture"]
    try:
        model = MLP(arch["layer_sizes"], activation=arch["activation"], output=arch["output"],
                    loss=arch["loss"], dtype=arch["dtype"], seed=arch["seed"],
                    gamma=arch["gamma"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the architecture cannot be rebuilt ({exc})") from None
    params, state = arrays["params"], arrays["optimizer_state"]
    if params.shape != (model.n_params,) or params.dtype != model.dtype:
        raise ModelFileError(f"{path}: {params.shape} {params.dtype} parameters do not fit "
                             f"the architecture ({model.n_params} {model.dtype})")
    model._params[...] = params
    spec = meta.get("optimizer")
    if spec is not None:
        cls = OPTIMIZERS.get(spec.get("class"))
        if cls is None:
            raise ModelFileError(f"{path}: unknown optimizer {spec.get('class')!r}")
        try:
            opt = cls(**spec["params"])
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: optimizer settings rejected ({exc})") from None
        if state.shape != (opt.n_buffers, model.n_params) or state.dtype != model.dtype:
            raise ModelFileError(f"{path}: optimizer state {state.shape} does not fit "
                                 f"{type(opt).__name__} over {model.n_params} parameters")
        model._optimizer = opt
        model._opt_state = optim.OptimizerState(state.copy(), int(spec["n_decay"]))
        model._opt_state.step = int(spec["step"])
    rng = meta["rng"]
    model._rng.set_state((rng["kind"], arrays["rng_keys"], rng["pos"], rng["has_gauss"],
                          rng["cached_gaussian"]))
    model.history_ = _history_from(meta.get("history"))
    for name in _CLI_ENTRIES:
        if name in arrays:
            setattr(model, name + "_", arrays[name])
    if meta.get("feature_names") is not None:
        model.feature_names_ = list(meta["feature_names"])
    return model


# ---------------------------------------------------------------- scikit-learn estimators
# fitted attributes kept as JSON (scalars and lists); arrays go to their own entries
_FITTED = ("n_iter_", "t_", "loss_", "best_loss_", "loss_curve_", "validation_scores_",
           "best_validation_score_", "validation_loss_curve_", "n_layers_", "n_outputs_",
           "out_activation_", "n_features_in_", "_no_improvement_count")


def _json_scalar(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_json_scalar(x) for x in v]
    return v


def _estimator_params(est):
    params = est.get_params()
    if params["random_state"] is not None and not isinstance(params["random_state"], int):
        raise ValueError("only an estimator whose random_state is None or an int can be "
                         f"saved, got {params['random_state']!r}")
    cw = params.get("class_weight")
    if isinstance(cw, dict):  # JSON object keys are strings: keep the labels' types
        params["class_weight"] = {"pairs": [[_json_scalar(k), float(v)] for k, v in cw.items()]}
    return {k: _json_scalar(v) for k, v in params.items()}


def _estimator_params_from(params):
    params = dict(params)
    params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    cw = params.get("class_weight")
    if isinstance(cw, dict):
        params["class_weight"] = {k: v for k, v in cw["pairs"]}
    return params


def save_estimator(est, path):
    """Save a ``fastbp.MLPClassifier``/``MLPRegressor``, fitted or not."""
    from . import __version__
    meta = {"format": FORMAT, "version": VERSION, "fastbp": __version__,
            "kind": type(est).__name__, "params": _estimator_params(est), "fitted": None}
    arrays = {}
    if hasattr(est, "coefs_"):
        net = est._network(est.coefs_[0].dtype)
        arrays["params"] = net.params
        schedule = getattr(est, "_optimizer", None)
        arrays["optimizer_state"] = (schedule.state.buffers if schedule is not None
                                     else np.zeros((0, net.n_params), dtype=net.dtype))
        fitted = {name: _json_scalar(getattr(est, name)) for name in _FITTED
                  if hasattr(est, name)}
        fitted["layer_sizes"] = list(net.layer_sizes)
        fitted["dtype"] = net.dtype.name
        if schedule is not None:
            fitted["optimizer"] = {"lr": schedule.optimizer.lr, "step": schedule.state.step}
        if hasattr(est, "_best_coefs"):
            arrays["best_params"] = np.concatenate(
                [a.ravel() for a in est._best_coefs + est._best_intercepts])
        if hasattr(est, "_label_binarizer"):
            lb = est._label_binarizer
            arrays["classes"] = np.asarray(lb.classes_)
            fitted["label_binarizer"] = {"y_type_": lb.y_type_, "neg_label": lb.neg_label,
                                         "pos_label": lb.pos_label,
                                         "sparse_input_": bool(lb.sparse_input_)}
        if hasattr(est, "feature_names_in_"):
            arrays["feature_names"] = np.asarray(est.feature_names_in_, dtype=str)
        meta["fitted"] = fitted
    else:
        arrays["params"] = np.zeros(0)
        arrays["optimizer_state"] = np.zeros((0, 0))
    for name, a in arrays.items():
        if a.dtype.kind == "O":
            raise ValueError(f"cannot save {name}: object arrays are not part of the format "
                             "(class labels must be numbers or strings)")
    meta["sha256"] = _digest(arrays)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    write_atomic(path, arrays)
    return Path(path)


def load_estimator(meta, arrays, path):
    from sklearn.preprocessing import LabelBinarizer

    from .estimators import LOSS_OF_OUTPUT, MLPClassifier, MLPRegressor, _Schedule
    from .model import MLP
    cls = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}[meta["kind"]]
    try:
        est = cls(**_estimator_params_from(meta["params"]))
        est._validate_params()
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the estimator's parameters are rejected ({exc})") from None
    fitted = meta.get("fitted")
    if fitted is None:
        return est
    try:
        output = fitted["out_activation_"]
        net = MLP(fitted["layer_sizes"], activation=est.activation, output=output,
                  loss=LOSS_OF_OUTPUT[output], dtype=fitted["dtype"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the network cannot be rebuilt ({exc})") from None
    params = arrays["params"]
    if params.shape != (net.n_params,) or params.dtype != net.dtype:
        raise ModelFileError(f"{path}: {params.shape} {params.dtype} parameters do not fit "
                             f"the architecture ({net.n_params} {net.dtype})")
    net._params[...] = params
    for name in _FITTED:
        if name in fitted:
            setattr(est, name, fitted[name])
    est._attach(net)
    if "best_params" in arrays:
        best, offset = arrays["best_params"], 0
        est._best_coefs, est._best_intercepts = [], []
        for target, shapes in ((est._best_coefs, [c.shape for c in est.coefs_]),
                               (est._best_intercepts, [b.shape for b in est.intercepts_])):
            for shape in shapes:
                size = int(np.prod(shape))
                target.append(best[offset:offset + size].reshape(shape).copy())
                offset += size
    if "label_binarizer" in fitted:
        info = fitted["label_binarizer"]
        lb = LabelBinarizer(neg_label=info["neg_label"], pos_label=info["pos_label"])
        lb.classes_ = arrays["classes"]
        lb.y_type_, lb.sparse_input_ = info["y_type_"], info["sparse_input_"]
        est._label_binarizer = lb
        est.classes_ = lb.classes_
    if "feature_names" in arrays:
        est.feature_names_in_ = arrays["feature_names"].astype(object)
    if "optimizer" in fitted:
        schedule = _Schedule(est, net.params, net.n_coefs)
        state = arrays["optimizer_state"]
        if state.shape != schedule.state.buffers.shape or state.dtype != net.dtype:
            raise ModelFileError(f"{path}: optimizer state {state.shape} does not fit "
                                 f"the {est.solver} solver")
        schedule.state.buffers[...] = state
        schedule.state.step = int(fitted["optimizer"]["step"])
        schedule.optimizer.lr = float(fitted["optimizer"]["lr"])
        est._optimizer = schedule
    return est


def load(path):
    """Load a model saved by ``save`` (``MLP.save``); never executes code from the file.

    Raises
    ------
    ModelFileError (a ``ValueError``)
        The file is missing, truncated, corrupted, altered, or not a fastbp model.
    """
    meta, arrays = read(path)
    loaders = {"MLP": load_mlp, "MLPClassifier": load_estimator, "MLPRegressor": load_estimator}
    if meta.get("kind") not in loaders:
        raise ModelFileError(f"{path}: unknown model kind {meta.get('kind')!r}")
    try:
        return loaders[meta["kind"]](meta, arrays, path)
    except ModelFileError:
        raise
    except KeyError as exc:  # the checksum covers the arrays, not the JSON metadata
        raise ModelFileError(f"{path}: the metadata lacks the entry {exc}") from None
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ModelFileError(f"{path}: the metadata is malformed ({type(exc).__name__}: "
                             f"{exc})") from None
