"""Training converges on tiny real problems."""
import subprocess
import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastbp


def test_xor_with_tanh():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    model = fastbp.MLP([2, 8, 1], activation="tanh", output="logistic", seed=0)
    history = model.fit(X, y, optimizer=fastbp.optim.Adam(lr=0.05), epochs=300, batch_size=4,
                        verbose=0)
    np.testing.assert_array_equal(model.predict(X), y)
    assert history.loss[-1] < 0.05


def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=0)


def test_digits_native_api_reaches_95_percent():
    X_train, X_test, y_train, y_test = digits_split()
    model = fastbp.MLP([64, 128, 10], seed=0)
    model.fit(X_train, y_train, optimizer=fastbp.optim.Adam(1e-3), epochs=40, verbose=0)
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.95


def test_digits_with_sgd_momentum_and_early_stopping():
    X_train, X_test, y_train, y_test = digits_split()
    model = fastbp.MLP([64, 64, 64, 10], activation=["elu", "tanh"], seed=1)
    history = model.fit(X_train, y_train, optimizer=fastbp.optim.SGD(0.05, momentum=0.9),
                        epochs=200, validation_fraction=0.15, patience=10, verbose=0)
    assert history.stopped_early
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.95


def test_main_job_runs(tmp_path):
    """The README's first command, python -m fastbp, on the fastbp this test imports."""
    out = subprocess.run([sys.executable, "-m", "fastbp"], capture_output=True, text=True,
                         check=True, timeout=600, cwd=tmp_path).stdout
    accuracy = float(out.split("test accuracy:")[1].split()[0])
    assert accuracy >= 0.95
    assert "fit time:" in out
