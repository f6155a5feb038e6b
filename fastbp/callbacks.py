"""Callbacks for ``MLP.fit``: objects called as ``callback(epoch, logs, model)``."""
import pathlib

__all__ = ["Checkpoint"]


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

    def __init__(self, path=None, every=1, best_path=None):
        if path is None and best_path is None:
            raise ValueError("Checkpoint needs a path, a best_path, or both")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        self.path = None if path is None else str(path)
        self.every = every
        self.best_path = None if best_path is None else pathlib.Path(best_path)
        self.best_loss = float("inf")
        self.saved = []

    def __call__(self, epoch, logs, model):
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
