"""Checkpoint callback, History export and training plots."""
import csv
import io as stdio

import numpy as np
import pytest

import fastbp
from fastbp.callbacks import Checkpoint


def fitted(tmp_path, callbacks=(), epochs=6):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((120, 4)), rng.integers(0, 3, 120)
    model = fastbp.MLP([4, 8, 3], seed=0)
    history = model.fit(X, y, epochs=epochs, batch_size=16, verbose=0, validation_fraction=0.25,
                        callbacks=callbacks, restore_best=False)
    return model, history


def test_checkpoint_every_n_epochs_and_the_best_so_far(tmp_path):
    cb = Checkpoint(tmp_path / "epoch{epoch}.fastbp", every=2, best_path=tmp_path / "best.fastbp")
    model, history = fitted(tmp_path, callbacks=[cb])
    assert sorted(p.name for p in tmp_path.glob("epoch*.fastbp")) == [
        "epoch2.fastbp", "epoch4.fastbp", "epoch6.fastbp"]
    last = fastbp.load(tmp_path / "epoch6.fastbp")
    np.testing.assert_array_equal(last.params, model.params)
    best = fastbp.load(tmp_path / "best.fastbp")
    assert best.history_.n_epochs == history.best_epoch + 1
    assert best.history_.val_loss[-1] == min(history.val_loss)


def test_checkpoint_arguments_are_checked():
    with pytest.raises(ValueError, match="path"):
        Checkpoint()
    with pytest.raises(ValueError, match="every"):
        Checkpoint("m.fastbp", every=0)


def test_history_exports_to_a_dict_and_csv(tmp_path):
    _, history = fitted(tmp_path)
    rows = list(csv.DictReader(stdio.StringIO(history.to_csv())))
    assert [int(r["epoch"]) for r in rows] == list(range(6))
    assert [float(r["loss"]) for r in rows] == history.loss
    assert [float(r["val_accuracy"]) for r in rows] == history.val_metric
    path = history.to_csv(tmp_path / "h.csv")
    assert path.read_text() == history.to_csv()
    assert history.as_dict()["loss"] == history.loss


def test_plot_history_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    _, history = fitted(tmp_path)
    fig = history.plot(tmp_path / "curves.png")
    data = (tmp_path / "curves.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Validation accuracy"]
    assert len(fig.axes[0].lines[0].get_xdata()) == 6
