"""Callbacks for ``MLP.fit`` (and the estimators' ``callbacks=``): objects called as
``callback(epoch, logs, model)`` after every epoch; one that returns True stops the fit.

``logs`` holds ``loss`` and, with validation data, ``val_loss`` and ``val_accuracy`` or
``val_r2`` (the estimators: ``val_score`` and ``val_loss``). The learning-rate schedules
change ``model.optimizer.lr`` for the epochs that follow; they are for one-process native
fits (a data-parallel fit calls callbacks on its first process only; the estimators have
scikit-learn's ``learning_rate`` schedules).
"""
import csv
import math
import os
import pathlib
import typing

import numpy as np

__all__ = ["Checkpoint", "EarlyStopping", "CSVLogger", "StepDecay", "ExponentialDecay",
           "CosineDecay", "ReduceLROnPlateau"]


def _number(value, name, ok, expected, integer=False):
    """``value`` if it is a finite number (an int if ``integer``) for which ``ok`` holds."""
    kinds = int if integer else (int, float)
    if (isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value)
            or not ok(value)):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def _parameters(model):
    """Copies of a model's parameters: the flat buffer of a native model, the
    ``coefs_``/``intercepts_`` of an estimator."""
    if hasattr(model, "params"):
        return np.array(model.params, copy=True)
    return [a.copy() for a in model.coefs_ + model.intercepts_]


def _put_back(model, saved):
    if hasattr(model, "params"):
        model.params = saved
    else:
        for view, value in zip(model.coefs_ + model.intercepts_, saved):
            view[...] = value


def _monitored(logs, monitor):
    if monitor not in logs:
        raise ValueError(f"the callback monitors {monitor!r}, which this fit does not log "
                         f"(it logs {sorted(logs)}): validation data gives the val_ entries")
    return float(logs[monitor])


def _improves(value, best, mode, min_delta):
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _mode(monitor, mode):
    if mode == "auto":
        return "max" if monitor.endswith(("accuracy", "r2", "f1", "score")) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


class Checkpoint:
    """Save the model during training: every ``every`` epochs, and the best so far.

    Parameters
    ----------
    path : str or path-like, optional
        Where the periodic checkpoint goes (overwritten each time, atomically).
        ``{epoch}`` in the name is replaced by the 1-based epoch number, to keep one
        file per checkpoint instead.
    every : int, default 1
    best_path : str or path-like, optional
        Where the model goes whenever the validation loss (``val_loss``) reaches a
        new minimum; needs validation data.

    Each file is a complete ``fastbp.load``-able model with its optimizer state,
    shuffling generator and history, so training can resume from it.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, every: int = 1,
                 best_path: str | os.PathLike[str] | None = None) -> None:
        if path is None and best_path is None:
            raise ValueError("Checkpoint needs a path, a best_path, or both")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        self.path = None if path is None else str(path)
        self.every = every
        self.best_path = None if best_path is None else pathlib.Path(best_path)
        self.best_loss = float("inf")
        self.saved: list[pathlib.Path] = []

    def __call__(self, epoch: int, logs: typing.Mapping[str, float], model: typing.Any) -> bool:
        if self.path is not None and (epoch + 1) % self.every == 0:
            target = pathlib.Path(self.path.replace("{epoch}", str(epoch + 1)))
            model.save(target)
            self.saved.append(target)
        if self.best_path is not None:
            if "val_loss" not in logs:
                raise ValueError("Checkpoint(best_path=...) needs validation data in fit")
            if logs["val_loss"] < self.best_loss:
                self.best_loss = logs["val_loss"]
                model.save(self.best_path)
                self.saved.append(self.best_path)
        return False


class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs.

    ``mode`` ``'auto'`` maximises accuracies, R², F1 and scores and minimises the rest
    (losses, ``log_loss``, ``mae``).
    ``restore_best`` puts back the parameters of the best epoch when it stops the fit
    (``model.params``; a native fit with validation data and ``restore_best=True`` of its
    own then ends on its lowest validation loss, so pass ``restore_best=False`` to ``fit``
    to keep this callback's choice when it monitors something else). ``stopped_epoch`` is
    the epoch at which it stopped (None while it has not).
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 5,
                 mode: typing.Literal["auto", "min", "max"] = "auto",
                 restore_best: bool = False) -> None:
        self.monitor = str(monitor)
        self.min_delta = _number(min_delta, "min_delta", lambda v: v >= 0, "a number >= 0")
        self.patience = _number(patience, "patience", lambda v: v >= 1, "an integer >= 1",
                                integer=True)
        self.mode = _mode(self.monitor, mode)
        self.restore_best = bool(restore_best)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self._best_params: typing.Any = None

    def __call__(self, epoch: int, logs: typing.Mapping[str, float], model: typing.Any) -> bool:
        value = _monitored(logs, self.monitor)
        if self.best is None or _improves(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self._best_params = _parameters(model)
            return False
        self.wait += 1
        if self.wait < self.patience:
            return False
        self.stopped_epoch = epoch
        if self.restore_best and self._best_params is not None:
            _put_back(model, self._best_params)
        return True


class CSVLogger:
    """Append each epoch's ``logs`` to the CSV file ``path`` as the epoch ends (flushed, so
    the file shows the run while it trains): a header ``epoch,...`` then one row per epoch.

    ``append=False`` (the default) starts a new file at the first epoch of each fit.
    """

    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        self.path = pathlib.Path(path)
        self.append = bool(append)
        self._columns: list[str] | None = None

    def __call__(self, epoch: int, logs: typing.Mapping[str, float], model: typing.Any) -> bool:
        fresh = self._columns is None and not (self.append and self.path.exists())
        if self._columns is None:
            self._columns = ["epoch", *logs]
        with open(self.path, "w" if fresh else "a", newline="") as f:
            writer = csv.writer(f)
            if fresh:
                writer.writerow(self._columns)
            writer.writerow([epoch + 1] + [logs.get(k, "") for k in self._columns[1:]])
            f.flush()
        return False


class _Schedule:
    """A learning-rate schedule: the optimizer's rate when it first runs is ``lr0``."""

    def __init__(self) -> None:
        self.lr0: float | None = None

    def __call__(self, epoch: int, logs: typing.Mapping[str, float], model: typing.Any) -> bool:
        optimizer = model.optimizer
        if self.lr0 is None:
            self.lr0 = optimizer.lr
        optimizer.lr = float(self.rate(epoch + 1, logs, optimizer.lr))
        return False

    def rate(self, done: int, logs: typing.Mapping[str, float], lr: float) -> float:
        """The rate after ``done`` epochs, ``lr`` the current one."""
        raise NotImplementedError


class StepDecay(_Schedule):
    """``lr = lr0 · gamma^⌊epochs done / step_size⌋``."""

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        super().__init__()
        self.step_size = _number(step_size, "step_size", lambda v: v >= 1, "an integer >= 1",
                                 integer=True)
        self.gamma = _number(gamma, "gamma", lambda v: 0 < v <= 1, "a number in (0, 1]")

    def rate(self, done, logs, lr):
        return self.lr0 * self.gamma ** (done // self.step_size)


class ExponentialDecay(_Schedule):
    """``lr = lr0 · gamma^(epochs done)``."""

    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = _number(gamma, "gamma", lambda v: 0 < v <= 1, "a number in (0, 1]")

    def rate(self, done, logs, lr):
        return self.lr0 * self.gamma ** done


class CosineDecay(_Schedule):
    """From ``lr0`` down to ``min_lr`` over ``epochs`` epochs along half a cosine, then
    ``min_lr``."""

    def __init__(self, epochs: int, min_lr: float = 0.0) -> None:
        super().__init__()
        self.epochs = _number(epochs, "epochs", lambda v: v >= 1, "an integer >= 1",
                              integer=True)
        self.min_lr = _number(min_lr, "min_lr", lambda v: v >= 0, "a number >= 0")

    def rate(self, done, logs, lr):
        t = min(done, self.epochs) / self.epochs
        return self.min_lr + (self.lr0 - self.min_lr) * (1 + math.cos(math.pi * t)) / 2


class ReduceLROnPlateau(_Schedule):
    """Multiply the rate by ``factor`` when ``monitor`` has not improved by more than
    ``min_delta`` for ``patience`` epochs (not below ``min_lr``); then wait ``cooldown``
    epochs before counting again."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 0.0, cooldown: int = 0, min_lr: float = 0.0,
                 mode: typing.Literal["auto", "min", "max"] = "auto") -> None:
        super().__init__()
        self.monitor = str(monitor)
        self.factor = _number(factor, "factor", lambda v: 0 < v < 1, "a number in (0, 1)")
        self.patience = _number(patience, "patience", lambda v: v >= 1, "an integer >= 1",
                                integer=True)
        self.min_delta = _number(min_delta, "min_delta", lambda v: v >= 0, "a number >= 0")
        self.cooldown = _number(cooldown, "cooldown", lambda v: v >= 0, "an integer >= 0",
                                integer=True)
        self.min_lr = _number(min_lr, "min_lr", lambda v: v >= 0, "a number >= 0")
        self.mode = _mode(self.monitor, mode)
        self.best: float | None = None
        self.wait, self.cooling = 0, 0
        self.reductions: list[int] = []  # the epochs (1-based, after which) the rate was lowered

    def rate(self, done, logs, lr):
        value = _monitored(logs, self.monitor)
        if self.cooling:
            self.cooling -= 1
        if self.best is None or _improves(value, self.best, self.mode, self.min_delta):
            self.best, self.wait = value, 0
            return lr
        if self.cooling:
            return lr
        self.wait += 1
        if self.wait < self.patience:
            return lr
        self.wait, self.cooling = 0, self.cooldown
        if lr <= self.min_lr:
            return lr
        self.reductions.append(done)
        return max(self.min_lr, lr * self.factor)
