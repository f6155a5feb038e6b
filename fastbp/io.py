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

Each saved class writes and reads its own content: ``obj._to_state()`` gives
``(meta, arrays)``, ``Class._from_state(meta, arrays)`` rebuilds it and raises
``ModelFileError`` for content that does not fit. This module adds the format
name, version, kind and checksum, and checks them on reading.

Writes are atomic: the archive goes to a temporary file in the target's
directory, is flushed to disk, then renamed over the target, so a crash while
saving leaves the previous file intact.
"""
import hashlib
import importlib
import json
import os
import zipfile
import pathlib
import typing

import numpy as np
import numpy.typing as npt

from . import _validation
from . import atomic as _atomic

__all__ = ["FORMAT", "VERSION", "KINDS", "ModelFileError", "check_parameters", "load", "read", "save"]

FORMAT = "fastbp-model"
VERSION = 1
# the classes a file's ``kind`` names, imported when a file of that kind is loaded
KINDS = {"MLP": "fastbp.model", "MLPClassifier": "fastbp.estimators",
         "MLPRegressor": "fastbp.estimators"}


class ModelFileError(ValueError):
    """A file that is not a readable fastbp model (missing, truncated, altered, other format)."""


# parameter entries: finite and within what their dtype can square, as the params setter asks
_PARAMETER_ENTRIES = ("params", "best_params")


def _digest(arrays):
    h = hashlib.sha256()
    for name in sorted(n for n in arrays if n != "meta"):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_parameters(params: np.ndarray, n_params: int, dtype: npt.DTypeLike) -> None:
    """Raise ``ModelFileError`` unless the saved ``params`` fit ``n_params`` of ``dtype``."""
    if params.shape != (n_params,) or params.dtype != dtype:
        raise ModelFileError(f"{params.shape} {params.dtype} parameters do not fit "
                             f"the architecture ({n_params} {dtype})")


def save(obj: typing.Any, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write ``obj`` (a model or estimator with ``_to_state``) at ``path``; returns the path."""
    from . import __version__
    meta, arrays = obj._to_state()
    for name, a in arrays.items():
        if a.dtype.kind == "O":
            raise ValueError(f"cannot save {name}: object arrays are not part of the format "
                             "(class labels must be numbers or strings)")
    meta = {"format": FORMAT, "version": VERSION, "fastbp": __version__,
            "kind": type(obj).__name__, **meta, "sha256": _digest(arrays)}
    arrays = {**arrays,
              "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
    _atomic.write_atomic(path, arrays)
    return pathlib.Path(path)


def read(path: str | os.PathLike[str]) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a model file, checked; raises ``ModelFileError``."""
    path = pathlib.Path(path)
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
            problem = _validation.value_problem(a, name)
            if problem is not None and (name in _PARAMETER_ENTRIES or "NaN" in problem):
                raise ModelFileError(f"{path}: {problem}")
    return meta, arrays


def load(path: str | os.PathLike[str]) -> typing.Any:
    """Load a model saved by ``save`` (``MLP.save``); never executes code from the file.

    Returns
    -------
    MLP, MLPClassifier or MLPRegressor
        The class the file names (its ``kind``).

    Raises
    ------
    ModelFileError (a ``ValueError``)
        The file is missing, truncated, corrupted, altered, or not a fastbp model.
    """
    meta, arrays = read(path)
    kind = meta.get("kind")
    if kind not in KINDS:
        raise ModelFileError(f"{path}: unknown model kind {kind!r}")
    cls = getattr(importlib.import_module(KINDS[kind]), kind)
    try:
        return cls._from_state(meta, arrays)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except KeyError as exc:  # the checksum covers the arrays, not the JSON metadata
        raise ModelFileError(f"{path}: the metadata lacks the entry {exc}") from None
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ModelFileError(f"{path}: the metadata is malformed ({type(exc).__name__}: "
                             f"{exc})") from None
