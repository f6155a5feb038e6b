"""One training epoch per grid row: fastbp beside scikit-learn.

Run: pytest bench --benchmark-only (see bench/README.md).
"""
import warnings

import numpy as np
import pytest

import fastbp
from bench.grid import GRID, LR, MOMENTUM, flops_per_epoch, make_data

ROUNDS = 3


def fastbp_epoch(row):
    sizes, batch, _ = GRID[row]
    X, y = make_data(row)
    model = fastbp.MLP(sizes, activation="relu", seed=0)
    opt = fastbp.optim.SGD(lr=LR, momentum=MOMENTUM)
    return lambda: model.fit(X, y, optimizer=opt, epochs=1, batch_size=batch, verbose=0)


def sklearn_epoch(row):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    sizes, batch, _ = GRID[row]
    X, y = make_data(row)
    clf = MLPClassifier(hidden_layer_sizes=sizes[1:-1], solver="sgd", momentum=MOMENTUM,
                        nesterovs_momentum=False, learning_rate_init=LR, batch_size=batch,
                        max_iter=1, alpha=0, tol=0, n_iter_no_change=10 ** 9, random_state=0)
    classes = np.arange(sizes[-1])

    def epoch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.partial_fit(X, y, classes=classes)
    return epoch


IMPLEMENTATIONS = {"fastbp": fastbp_epoch, "sklearn": sklearn_epoch}


@pytest.mark.parametrize("impl", list(IMPLEMENTATIONS))
@pytest.mark.parametrize("row", list(GRID))
def test_epoch(benchmark, row, impl):
    benchmark.group = f"epoch-{row}"
    run = IMPLEMENTATIONS[impl](row)
    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info["samples_per_s"] = GRID[row][2] / median
    benchmark.extra_info["gflops"] = flops_per_epoch(row) / median / 1e9
