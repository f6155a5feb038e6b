"""The training controls of ``fastbp.callbacks``: schedules, plateaus, early stopping, the
CSV log. Each test fails without the control it tests."""
import csv
import math
from types import SimpleNamespace

import numpy as np
import pytest

import fastbp
from fastbp.callbacks import (CosineDecay, CSVLogger, EarlyStopping, ExponentialDecay,
                              ReduceLROnPlateau, StepDecay)


def fake_model(lr=0.1):
    return SimpleNamespace(optimizer=SimpleNamespace(lr=lr), params=np.zeros(3))


def rates(schedule, losses, lr=0.1):
    """The learning rate after each epoch, ``losses`` as the monitored values."""
    model, out = fake_model(lr), []
    for epoch, loss in enumerate(losses):
        schedule(epoch, {"loss": loss, "val_loss": loss}, model)
        out.append(model.optimizer.lr)
    return out


def data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def test_the_schedules_follow_their_formulas():
    np.testing.assert_allclose(rates(StepDecay(2, gamma=0.5), [1] * 5),
                               [0.1, 0.05, 0.05, 0.025, 0.025])
    np.testing.assert_allclose(rates(ExponentialDecay(0.9), [1] * 3), [0.09, 0.081, 0.0729])
    cosine = rates(CosineDecay(4, min_lr=0.01), [1] * 6)
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * min(k, 4) / 4)) / 2 for k in range(1, 7)]
    np.testing.assert_allclose(cosine, expected)
    assert cosine[3] == pytest.approx(0.01) and cosine[-1] == pytest.approx(0.01)


def test_reduce_on_plateau_lowers_the_rate_after_patience_flat_epochs():
    plateau = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_delta=0.01)
    # improves, then flat (changes below min_delta), then improves, then flat again
    seen = rates(plateau, [1.0, 0.9, 0.895, 0.893, 0.891, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(seen, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025])
    assert plateau.reductions == [4, 8]


def test_reduce_on_plateau_keeps_to_min_lr_and_cools_down():
    plateau = ReduceLROnPlateau(monitor="loss", factor=0.1, patience=1, cooldown=2,
                                min_lr=0.002)
    # lowered after epoch 2, held through the cooldown, lowered to min_lr, then left there
    np.testing.assert_allclose(rates(plateau, [1.0] * 6), [0.1, 0.01, 0.01, 0.002, 0.002,
                                                           0.002])
    assert plateau.reductions == [2, 4]


def test_a_schedule_changes_the_rate_of_a_native_fit():
    X, y = data()
    model = fastbp.MLP([5, 8, 2], seed=0)
    opt = fastbp.optim.SGD(lr=0.1, momentum=0.9)
    model.fit(X, y, optimizer=opt, epochs=3, batch_size=32, verbose=0,
              callbacks=[StepDecay(1, gamma=0.5)])
    assert opt.lr == pytest.approx(0.0125)
    # the rate after the first epoch is the one the second epoch runs with
    again = fastbp.MLP([5, 8, 2], seed=0)
    opt_again = fastbp.optim.SGD(lr=0.1, momentum=0.9)
    again.fit(X, y, optimizer=opt_again, epochs=1, batch_size=32, verbose=0)
    opt_again.lr = 0.05
    again.fit(X, y, optimizer=opt_again, epochs=1, batch_size=32, verbose=0)
    first_two = fastbp.MLP([5, 8, 2], seed=0)
    first_two.fit(X, y, optimizer=fastbp.optim.SGD(lr=0.1, momentum=0.9), epochs=2,
                  batch_size=32, verbose=0, callbacks=[StepDecay(1, gamma=0.5)])
    np.testing.assert_allclose(first_two.params, again.params, rtol=1e-6, atol=1e-7)


def test_early_stopping_watches_its_monitor_with_min_delta_and_restores_the_best():
    stop = EarlyStopping(monitor="val_accuracy", min_delta=0.01, patience=2, restore_best=True)
    model = fake_model()
    accuracies = [0.5, 0.7, 0.705, 0.71, 0.6]  # the last three improve by less than 0.01
    answers = []
    for epoch, acc in enumerate(accuracies):  # as a fit calls it: until it says stop
        model.params = np.full(3, float(epoch))
        answers.append(stop(epoch, {"val_accuracy": acc}, model))
        if answers[-1]:
            break
    assert answers == [False, False, False, True]
    assert stop.best_epoch == 1 and stop.stopped_epoch == 3
    np.testing.assert_array_equal(model.params, [1.0, 1.0, 1.0])  # epoch 1's parameters
    with pytest.raises(ValueError, match="monitors 'val_loss'"):
        EarlyStopping()(0, {"loss": 1.0}, model)


def test_early_stopping_ends_a_native_fit_and_an_estimators():
    X, y = data()
    model = fastbp.MLP([5, 8, 2], seed=0)
    stop = EarlyStopping(monitor="loss", min_delta=10.0, patience=2)  # nothing improves enough
    history = model.fit(X, y, epochs=50, batch_size=32, verbose=0, callbacks=[stop])
    assert history.n_epochs == 3 and history.stop_reason == "callback"
    est = fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0,
                               callbacks=[EarlyStopping(monitor="loss", min_delta=10.0,
                                                        patience=2, restore_best=True)])
    est.fit(X, y)
    assert est.n_iter_ == 3


def test_csv_logger_writes_each_epoch_as_it_ends(tmp_path):
    X, y = data()
    path = tmp_path / "log.csv"
    seen_during_fit = []

    def read_back(epoch, logs, model):
        with open(path, newline="") as f:
            seen_during_fit.append(list(csv.reader(f)))

    model = fastbp.MLP([5, 8, 2], seed=0)
    history = model.fit(X, y, epochs=3, batch_size=32, verbose=0, validation_fraction=0.25,
                        callbacks=[CSVLogger(path), read_back])
    # at the end of the first epoch, before the second ran, the file held its row
    assert seen_during_fit[0][0] == ["epoch", "loss", "val_loss", "val_accuracy"]
    assert len(seen_during_fit[0]) == 2 and seen_during_fit[0][1][0] == "1"
    rows = seen_during_fit[-1][1:]
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    np.testing.assert_allclose([float(r[1]) for r in rows], history.loss)
    np.testing.assert_allclose([float(r[2]) for r in rows], history.val_loss)


@pytest.mark.parametrize("make,match", [
    (lambda: StepDecay(0), "step_size must be an integer >= 1"),
    (lambda: ExponentialDecay(1.5), r"gamma must be a number in \(0, 1\]"),
    (lambda: CosineDecay(10, min_lr=-1), "min_lr must be a number >= 0"),
    (lambda: ReduceLROnPlateau(factor=1.0), r"factor must be a number in \(0, 1\)"),
    (lambda: EarlyStopping(patience=0), "patience must be an integer >= 1"),
    (lambda: EarlyStopping(mode="up"), "mode must be"),
])
def test_bad_settings_are_refused_when_made(make, match):
    with pytest.raises(ValueError, match=match):
        make()
