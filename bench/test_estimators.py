"""The drop-in estimators beside scikit-learn's own, same parameters (identical results).

Run: pytest bench --benchmark-only -k estimator (see bench/README.md).
"""
import warnings

import numpy as np
import pytest
from sklearn import neural_network as sk
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import fastbp

ROUNDS = 3


def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16, y


def synthetic(n):
    def data():
        rng = np.random.default_rng(0)
        return rng.standard_normal((n, 784), dtype=np.float32), rng.integers(0, 10, n)
    data.__name__ = f"synthetic_{n}"
    return data


wide, large = synthetic(20000), synthetic(60000)


CASES = {
    "digits-adam": (digits, {}),
    "digits-sgd": (digits, {"solver": "sgd", "max_iter": 100}),
    "digits-lbfgs": (digits, {"solver": "lbfgs"}),
    "784x128-adam": (wide, {"hidden_layer_sizes": (128,), "max_iter": 10}),
    "784x128-sgd": (wide, {"hidden_layer_sizes": (128,), "solver": "sgd", "max_iter": 10}),
    # the large case: 60,000 x 784, two hidden layers of 256, a few epochs each
    "60k-256x256-adam": (large, {"hidden_layer_sizes": (256, 256), "max_iter": 5}),
    "60k-256x256-sgd": (large, {"hidden_layer_sizes": (256, 256), "solver": "sgd",
                                "max_iter": 5}),
    "60k-256x256-lbfgs": (large, {"hidden_layer_sizes": (256, 256), "solver": "lbfgs",
                                  "max_iter": 20}),
}


@pytest.mark.parametrize("impl", ["fastbp", "sklearn"])
@pytest.mark.parametrize("case", list(CASES))
def test_estimator_fit(benchmark, case, impl):
    data, params = CASES[case]
    X, y = data()
    cls = fastbp.MLPClassifier if impl == "fastbp" else sk.MLPClassifier
    benchmark.group = f"estimator-{case}"

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return cls(random_state=0, **params).fit(X, y)
    benchmark.pedantic(fit, rounds=ROUNDS, warmup_rounds=1, iterations=1)
