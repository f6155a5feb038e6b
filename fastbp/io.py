"""Saving and loading models: one ``.npz`` of plain arrays plus JSON, never pickle.

Format (``FORMAT``, version ``VERSION``), a NumPy ``.npz`` archive read with
``allow_pickle=False``:

``params``
    the flat parameter buffer (weights, biases, prelu slopes), in the model's dtype
``optimizer_state``
    ``(n_buffers, n_params)``: momentum, or Adam's two moments (0 rows if none)
``rng_keys``
    the 624 ``uint32`` words of the model's shuffling generator (Mersenne Twister)
``meta``
    UTF-8 JSON as ``uint8``: format name and version, fastbp version, the
    architecture, the optimizer's class and hyper-parameters with its step count,
    the rest of the generator's state, the training history, and a SHA-256 of
    the three arrays above (a changed byte is reported, not loaded)

Writes are atomic: the archive goes to a temporary file in the target's
directory, is flushed to disk, then renamed over the target, so a crash while
saving leaves the previous file intact.
"""
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import optim
from .history import History

FORMAT = "fastbp-model"
VERSION = 1
ARRAYS = ("params", "optimizer_state", "rng_keys")
OPTIMIZERS = {"SGD": optim.SGD, "Adam": optim.Adam, "AdamW": optim.AdamW}


class ModelFileError(ValueError):
    """A file that is not a readable fastbp model (missing, truncated, altered, other format)."""


def _digest(arrays):
    h = hashlib.sha256()
    for name in ARRAYS:
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


def write_atomic(path, arrays):
    """Write ``arrays`` as an ``.npz`` at ``path`` through a temporary file and a rename."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                   dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
            missing = {"meta", *ARRAYS} - names
            if missing:
                raise ModelFileError(f"{path}: not a fastbp model file "
                                     f"(missing {', '.join(sorted(missing))})")
            arrays = {name: archive[name] for name in ARRAYS}
            meta_bytes = archive["meta"]
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
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
    return meta, arrays


def load_mlp(meta, arrays, path):
    from .model import MLP
    arch = meta["architecture"]
    try:
        model = MLP(arch["layer_sizes"], activation=arch["activation"], output=arch["output"],
                    loss=arch["loss"], dtype=arch["dtype"], seed=arch["seed"],
                    gamma=arch["gamma"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the architecture cannot be rebuilt ({exc})") from None
    params, state = arrays["params"], arrays["optimizer_state"]
    if params.shape != (model.n_params,) or params.dtype != model.dtype:
        raise ModelFileError(f"{path}: {params.shape[0]} {params.dtype} parameters do not fit "
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
    return model


def load(path):
    """Load a model saved by ``save`` (``MLP.save``); never executes code from the file.

    Raises
    ------
    ModelFileError (a ``ValueError``)
        The file is missing, truncated, corrupted, altered, or not a fastbp model.
    """
    meta, arrays = read(path)
    if meta.get("kind") == "MLP":
        return load_mlp(meta, arrays, path)
    raise ModelFileError(f"{path}: unknown model kind {meta.get('kind')!r}")
