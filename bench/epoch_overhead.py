"""The Python loop's cost per epoch: many short epochs of a small network.

``python -m bench.epoch_overhead`` fits 64-32-10 on 461 rows of digits (batch 128,
with a validation split) for 300 epochs, natively and through ``MLPClassifier``, five
times each, and prints the median time per epoch. At this size an epoch's arithmetic is a
few microseconds, so the figure is the loop around the kernel: run it on two checkouts to
compare them.
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits

import fastbp


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # the estimator's ConvergenceWarning
    X, y = load_digits(return_X_y=True)
    X, y = (X / 16.0)[:512], y[:512]
    fastbp.MLP([64, 32, 10], seed=0).fit(X, y, epochs=2, verbose=0)  # compile or load
    fastbp.MLPClassifier((32,), max_iter=2, random_state=0).fit(X, y)
    times = {"native": [], "estimator": []}
    for _ in range(args.repeats):
        model = fastbp.MLP([64, 32, 10], seed=0)
        start = time.perf_counter()
        model.fit(X, y, epochs=args.epochs, batch_size=128, verbose=0, validation_fraction=0.1)
        times["native"].append((time.perf_counter() - start) / args.epochs)
        clf = fastbp.MLPClassifier((32,), max_iter=args.epochs, batch_size=128, random_state=0,
                                   tol=0, n_iter_no_change=10 ** 6)
        start = time.perf_counter()
        clf.fit(X, y)
        times["estimator"].append((time.perf_counter() - start) / args.epochs)
    print("  ".join(f"{name}: {np.median(t) * 1e6:.0f} µs/epoch" for name, t in times.items()))


if __name__ == "__main__":
    main()
