"""What ``fit`` records: one entry per epoch."""

__all__ = ["History"]


class History:
    """Per-epoch training record returned by :meth:`fastbp.MLP.fit`.

    Attributes
    ----------
    loss : list of float
        Mean training loss of each epoch (with the L2 penalty, if any).
    val_loss : list of float
        Validation loss of each epoch (empty without validation data).
    val_metric : list of float
        Validation accuracy (classification) or R² (regression).
    metric_name : str
        ``'accuracy'`` or ``'r2'``.
    epoch_time : list of float
        Wall time of each epoch in seconds, validation included.
    best_epoch : int or None
        Epoch (0-based) with the lowest validation loss.
    stopped_early : bool
        True when patience ran out, a callback asked to stop, or the loss diverged.
    stop_reason : str or None
    """

    def __init__(self, metric_name):
        self.metric_name = metric_name
        self.loss = []
        self.val_loss = []
        self.val_metric = []
        self.epoch_time = []
        self.best_epoch = None
        self.stopped_early = False
        self.stop_reason = None

    @property
    def n_epochs(self):
        return len(self.loss)

    def as_dict(self):
        """A plain dict of lists, e.g. for a DataFrame."""
        return {"loss": list(self.loss), "val_loss": list(self.val_loss),
                f"val_{self.metric_name}": list(self.val_metric),
                "epoch_time": list(self.epoch_time)}

    def to_csv(self, path=None):
        """The record as CSV (one row per epoch); written to ``path`` if given, else returned.

        Columns: ``epoch, loss, val_loss, val_<metric>, epoch_time``; validation
        cells are empty when there was no validation data.
        """
        metric = f"val_{self.metric_name}"
        lines = [f"epoch,loss,val_loss,{metric},epoch_time"]
        for e in range(self.n_epochs):
            val = (f"{self.val_loss[e]!r},{self.val_metric[e]!r}" if e < len(self.val_loss)
                   else ",")
            time = repr(self.epoch_time[e]) if e < len(self.epoch_time) else ""
            lines.append(f"{e},{self.loss[e]!r},{val},{time}")
        text = "\n".join(lines) + "\n"
        if path is None:
            return text
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def plot(self, path=None):
        """Training and validation curves (``fastbp.plot_history``); needs matplotlib."""
        from .plotting import plot_history
        return plot_history(self, path)

    def _to_state(self):
        """JSON-ready values for ``fastbp.io``."""
        return {"metric_name": self.metric_name, "loss": list(map(float, self.loss)),
                "val_loss": list(map(float, self.val_loss)),
                "val_metric": list(map(float, self.val_metric)),
                "epoch_time": list(map(float, self.epoch_time)),
                "best_epoch": self.best_epoch, "stopped_early": bool(self.stopped_early),
                "stop_reason": self.stop_reason}

    @classmethod
    def _from_state(cls, d):
        """The record ``_to_state`` described (None for None)."""
        if d is None:
            return None
        h = cls(d["metric_name"])
        h.loss, h.val_loss = list(d["loss"]), list(d["val_loss"])
        h.val_metric, h.epoch_time = list(d["val_metric"]), list(d["epoch_time"])
        h.best_epoch = d["best_epoch"]
        h.stopped_early, h.stop_reason = bool(d["stopped_early"]), d["stop_reason"]
        return h

    def __repr__(self):
        last = f", loss={self.loss[-1]:.4g}" if self.loss else ""
        val = f", val_loss={self.val_loss[-1]:.4g}" if self.val_loss else ""
        return f"History(epochs={self.n_epochs}{last}{val}, best_epoch={self.best_epoch})"
