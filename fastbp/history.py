"""What ``fit`` records: one entry per epoch."""
import os
import typing

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
    val_metrics : dict {name: list of float}
        The validation scores ``fit(..., metrics=...)`` asked for, one value per
        epoch each (empty without ``metrics``), weighted as the validation loss.
    epoch_time : list of float
        Wall time of each epoch in seconds, validation included.
    best_epoch : int or None
        Epoch (0-based) with the lowest validation loss.
    stopped_early : bool
        True when patience ran out, a callback asked to stop, or the loss diverged.
    stop_reason : str or None
    """

    def __init__(self, metric_name: str, metrics: typing.Iterable[str] = ()) -> None:
        self.metric_name = metric_name
        self.loss: typing.List[float] = []
        self.val_loss: typing.List[float] = []
        self.val_metric: typing.List[float] = []
        self.val_metrics: typing.Dict[str, typing.List[float]] = {name: [] for name in metrics}
        self.epoch_time: typing.List[float] = []
        self.best_epoch: typing.Optional[int] = None
        self.stopped_early = False
        self.stop_reason: typing.Optional[str] = None

    @property
    def n_epochs(self) -> int:
        return len(self.loss)

    def _extra_metrics(self):
        """The ``val_metrics`` beyond ``val_metric`` (which already has its own column)."""
        return [name for name in self.val_metrics if name != self.metric_name]

    def as_dict(self) -> typing.Dict[str, typing.List[float]]:
        """A plain dict of lists, e.g. for a DataFrame: ``loss``, ``val_loss``,
        ``val_<metric>``, one ``val_<name>`` per further metric, ``epoch_time``."""
        d = {"loss": list(self.loss), "val_loss": list(self.val_loss),
             f"val_{self.metric_name}": list(self.val_metric)}
        for name in self._extra_metrics():
            d[f"val_{name}"] = list(self.val_metrics[name])
        d["epoch_time"] = list(self.epoch_time)
        return d

    def to_csv(self, path: typing.Union[str, "os.PathLike[str]", None] = None
               ) -> typing.Union[str, "os.PathLike[str]"]:
        """The record as CSV (one row per epoch); written to ``path`` if given, else returned.

        Columns: ``epoch, loss, val_loss, val_<metric>``, one ``val_<name>`` per
        further metric of ``fit(..., metrics=...)``, then ``epoch_time``; validation
        cells are empty when there was no validation data.
        """
        extra = self._extra_metrics()
        columns = ["epoch", "loss", "val_loss", f"val_{self.metric_name}",
                   *(f"val_{name}" for name in extra), "epoch_time"]
        lines = [",".join(columns)]
        for e in range(self.n_epochs):
            val = (f"{self.val_loss[e]!r},{self.val_metric[e]!r}" if e < len(self.val_loss)
                   else ",")
            for name in extra:
                values = self.val_metrics[name]
                val += f",{values[e]!r}" if e < len(values) else ","
            time = repr(self.epoch_time[e]) if e < len(self.epoch_time) else ""
            lines.append(f"{e},{self.loss[e]!r},{val},{time}")
        text = "\n".join(lines) + "\n"
        if path is None:
            return text
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def plot(self, path: typing.Union[str, "os.PathLike[str]", None] = None) -> typing.Any:
        """Training and validation curves (``fastbp.plot_history``); needs matplotlib."""
        from .plotting import plot_history
        return plot_history(self, path)

    def _to_state(self):
        """JSON-ready values for ``fastbp.io``."""
        state = {"metric_name": self.metric_name, "loss": list(map(float, self.loss)),
                 "val_loss": list(map(float, self.val_loss)),
                 "val_metric": list(map(float, self.val_metric)),
                 "epoch_time": list(map(float, self.epoch_time)),
                 "best_epoch": self.best_epoch, "stopped_early": bool(self.stopped_early),
                 "stop_reason": self.stop_reason}
        if self.val_metrics:  # a record without them is saved as before
            state["val_metrics"] = {name: list(map(float, values))
                                    for name, values in self.val_metrics.items()}
        return state

    @classmethod
    def _from_state(cls, d):
        """The record ``_to_state`` described (None for None)."""
        if d is None:
            return None
        h = cls(d["metric_name"])
        # files written before fit's metrics= existed have none
        h.val_metrics = {name: list(values) for name, values in d.get("val_metrics", {}).items()}
        h.loss, h.val_loss = list(d["loss"]), list(d["val_loss"])
        h.val_metric, h.epoch_time = list(d["val_metric"]), list(d["epoch_time"])
        h.best_epoch = d["best_epoch"]
        h.stopped_early, h.stop_reason = bool(d["stopped_early"]), d["stop_reason"]
        return h

    def __repr__(self) -> str:
        last = f", loss={self.loss[-1]:.4g}" if self.loss else ""
        val = f", val_loss={self.val_loss[-1]:.4g}" if self.val_loss else ""
        return f"History(epochs={self.n_epochs}{last}{val}, best_epoch={self.best_epoch})"
