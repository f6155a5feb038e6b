"""A scikit-learn pipeline searched with each MLPClassifier: scikit-learn's and fastbp's.

``StandardScaler`` + ``MLPClassifier`` in ``GridSearchCV`` over ``alpha`` and the hidden
sizes, 3-fold, ``n_jobs=2`` (joblib's loky processes), on digits; the same code with either
estimator. Prints each search's best parameters, best cross-validated score, held-out score
and wall time::

    python -m bench.grid_search
"""
import argparse
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as ScikitLearnMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastbp

GRID = {"mlpclassifier__alpha": [1e-4, 1e-2, 1.0],
        "mlpclassifier__hidden_layer_sizes": [(32,), (64,), (128,)]}


def search(estimator_class, X, y, n_jobs):
    """The fitted search and its wall time in seconds."""
    pipeline = make_pipeline(StandardScaler(), estimator_class(max_iter=200, random_state=0))
    grid = GridSearchCV(pipeline, GRID, cv=3, n_jobs=n_jobs)
    start = time.perf_counter()
    grid.fit(X, y)
    return grid, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2, help="GridSearchCV's n_jobs")
    args = parser.parse_args(argv)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    print(f"{'estimator':<14}{'best parameters':<44}{'CV score':>9}{'held out':>9}"
          f"{'seconds':>9}")
    scores = []
    for name, cls in (("scikit-learn", ScikitLearnMLPClassifier),
                      ("fastbp", fastbp.MLPClassifier)):
        grid, seconds = search(cls, X_train, y_train, args.n_jobs)
        best = {k.split("__")[1]: v for k, v in grid.best_params_.items()}
        scores.append(grid.cv_results_["mean_test_score"])
        print(f"{name:<14}{str(best):<44}{grid.best_score_:9.4f}"
              f"{grid.score(X_test, y_test):9.4f}{seconds:9.1f}", flush=True)
    print(f"largest difference of a grid point's mean CV score: "
          f"{abs(scores[0] - scores[1]).max():.2g} ({len(scores[0])} points)")


if __name__ == "__main__":
    main()
