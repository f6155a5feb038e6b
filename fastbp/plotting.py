"""Training curves with matplotlib (the optional ``plot`` extra)."""
import os
import typing

from . import _optional

if typing.TYPE_CHECKING:
    import matplotlib.figure

__all__ = ["plot_history"]


def plot_history(history: typing.Any, path: str | os.PathLike[str] | None = None
                 ) -> "matplotlib.figure.Figure":
    """Draw loss (training and validation) and the validation metric per epoch.

    Parameters
    ----------
    history : fastbp.History
    path : str or path-like, optional
        Write the figure there (the format follows the extension, e.g. ``.png``).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        When matplotlib is not installed (``pip install "fastbp[plot]"``).
    """
    # pyplot picks a non-interactive backend when headless
    plt = _optional.require("matplotlib.pyplot", "plotting", "plot")
    epochs = range(1, history.n_epochs + 1)
    has_val = bool(history.val_loss)
    fig, axes = plt.subplots(1, 2 if has_val else 1, figsize=(10 if has_val else 5.5, 4),
                             squeeze=False)
    ax = axes[0, 0]
    ax.plot(epochs, history.loss, label="training", marker="o", markersize=3)
    if has_val:
        ax.plot(epochs, history.val_loss, label="validation", marker="o", markersize=3)
        if history.best_epoch is not None:
            ax.axvline(history.best_epoch + 1, color="grey", linestyle=":",
                       label=f"best epoch ({history.best_epoch + 1})")
    ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if has_val:
        ax = axes[0, 1]
        ax.plot(epochs, history.val_metric, color="tab:green", marker="o", markersize=3)
        ax.set(xlabel="epoch", ylabel=history.metric_name,
               title=f"Validation {history.metric_name}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
