"""fastbp.MLPClassifier / MLPRegressor against scikit-learn's own estimators."""
import inspect
import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse
from sklearn import neural_network as sk
from sklearn.base import clone
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits, load_iris,
                              make_multilabel_classification)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastbp

PAIRS = [(fastbp.MLPClassifier, sk.MLPClassifier), (fastbp.MLPRegressor, sk.MLPRegressor)]
EXTRAS = {fastbp.MLPClassifier: ["n_jobs", "class_weight", "progress", "on_divergence",
                                  "callbacks"],
          fastbp.MLPRegressor: ["n_jobs", "progress", "on_divergence", "callbacks"]}


@pytest.mark.parametrize("ours,theirs", PAIRS)
def test_signature_is_scikit_learns_plus_keyword_only_extras(ours, theirs):
    mine = inspect.signature(ours.__init__).parameters
    ref = inspect.signature(theirs.__init__).parameters
    assert list(mine)[:len(ref)] == list(ref)
    for name, p in ref.items():
        assert (mine[name].default, mine[name].kind) == (p.default, p.kind), name
    extras = list(mine)[len(ref):]
    assert extras == EXTRAS[ours]
    assert all(mine[e].kind is inspect.Parameter.KEYWORD_ONLY for e in extras)
    assert ours().get_params() == {**theirs().get_params(),
                                   **{e: mine[e].default for e in extras}}


@parametrize_with_checks([fastbp.MLPClassifier(max_iter=100), fastbp.MLPRegressor(max_iter=100)])
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ---------------------------------------------------------------------- parity
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16, y


def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def multilabel():
    return make_multilabel_classification(n_samples=300, n_features=12, n_classes=4,
                                          random_state=0)


def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def poisson():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 6))
    return X, rng.poisson(np.exp(0.4 * X[:, 0] - 0.3 * X[:, 1]))


CLASSIFICATION = [digits, iris, breast_cancer, multilabel]
SOLVERS = [("sgd", {"momentum": 0.9}), ("sgd", {"learning_rate": "invscaling"}),
           ("sgd", {"learning_rate": "adaptive", "nesterovs_momentum": False}),
           ("adam", {}), ("lbfgs", {})]
SOLVER_IDS = ["sgd-momentum", "sgd-invscaling", "sgd-adaptive-heavyball", "adam", "lbfgs"]


def fit_both(ours, theirs, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ours(**params).fit(X, y), theirs(**params).fit(X, y)


def assert_same_weights(a, b, rtol=1e-9, atol=1e-12):
    for mine, ref in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(mine, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("solver,extra", SOLVERS, ids=SOLVER_IDS)
@pytest.mark.parametrize("dataset", CLASSIFICATION + [diabetes, poisson],
                         ids=lambda f: f.__name__)
def test_same_weights_as_scikit_learn_after_a_few_epochs(dataset, solver, extra, seed):
    """Same initial weights, batches, order and formulas: after 4 epochs (or
    L-BFGS iterations) in float64 the weights agree to rounding."""
    X, y = dataset()
    if dataset in CLASSIFICATION:
        pair = PAIRS[0]
        params = {}
    else:
        pair = PAIRS[1]
        params = {"loss": "poisson"} if dataset is poisson else {}
        if dataset is poisson:
            extra = {**extra, "learning_rate_init": 1e-3}
    ours, theirs = fit_both(*pair, X, y, hidden_layer_sizes=(17, 9), solver=solver,
                            max_iter=4, random_state=seed, alpha=1e-3, **params, **extra)
    assert_same_weights(ours, theirs)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    assert ours.n_iter_ == theirs.n_iter_
    if solver != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("dataset", [digits, iris, breast_cancer, multilabel, diabetes],
                         ids=lambda f: f.__name__)
def test_held_out_score_matches_scikit_learn(dataset, solver):
    """A full fit, three seeds: held-out accuracy / R² within 0.02 of scikit-learn's."""
    X, y = dataset()
    pair = PAIRS[1] if dataset is diabetes else PAIRS[0]
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    for seed in range(3):
        ours, theirs = fit_both(*pair, X_train, y_train, hidden_layer_sizes=(32,),
                                solver=solver, max_iter=60, random_state=seed,
                                learning_rate_init=0.01 if solver == "sgd" else 0.001)
        assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.02


def test_float32_is_kept_and_close_to_scikit_learn():
    X, y = digits()
    X = X.astype(np.float32)
    ours, theirs = fit_both(*PAIRS[0], X, y, hidden_layer_sizes=(32,), max_iter=5,
                            random_state=0)
    assert all(c.dtype == np.float32 for c in ours.coefs_ + ours.intercepts_)
    assert ours.predict_proba(X).dtype == np.float32
    assert_same_weights(ours, theirs, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- semantics
def test_no_improvement_rule_stops_at_the_same_epoch_as_scikit_learn():
    X, y = digits()
    ours, theirs = fit_both(*PAIRS[0], X, y, hidden_layer_sizes=(16,), solver="sgd",
                            learning_rate_init=0.5, tol=0.05, n_iter_no_change=3,
                            max_iter=200, random_state=0)
    assert ours.n_iter_ == theirs.n_iter_ < 200
    assert ours._no_improvement_count == theirs._no_improvement_count


def test_adaptive_learning_rate_divides_by_five_like_scikit_learn():
    X, y = digits()
    ours, theirs = fit_both(*PAIRS[0], X, y, hidden_layer_sizes=(16,), solver="sgd",
                            learning_rate="adaptive", learning_rate_init=0.5, tol=0.05,
                            n_iter_no_change=2, max_iter=40, random_state=0)
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate)
    assert ours.n_iter_ == theirs.n_iter_
    assert_same_weights(ours, theirs)


def test_early_stopping_restores_the_best_weights_and_keeps_a_validation_loss_curve():
    X, y = digits()
    ours, theirs = fit_both(*PAIRS[0], X, y, hidden_layer_sizes=(32,), early_stopping=True,
                            n_iter_no_change=3, max_iter=200, random_state=0)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.validation_scores_ == pytest.approx(theirs.validation_scores_)
    best = int(np.argmax(ours.validation_scores_))
    assert best < ours.n_iter_ - 1  # the last epoch was not the best: weights were restored
    assert_same_weights(ours, theirs)
    assert ours.score(*digits()) == pytest.approx(theirs.score(*digits()))
    assert len(ours.validation_loss_curve_) == ours.n_iter_
    assert all(np.isfinite(ours.validation_loss_curve_))


def test_partial_fit_is_one_epoch_and_matches_scikit_learn():
    X, y = digits()
    ours = fastbp.MLPClassifier(hidden_layer_sizes=(16,), random_state=0)
    theirs = sk.MLPClassifier(hidden_layer_sizes=(16,), random_state=0)
    for _ in range(3):
        ours.partial_fit(X, y, classes=np.arange(10))
        theirs.partial_fit(X, y, classes=np.arange(10))
    assert ours.n_iter_ == 1 and len(ours.loss_curve_) == 3
    assert_same_weights(ours, theirs)


def test_warm_start_continues_from_the_previous_weights():
    X, y = iris()
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, warm_start=True)
    ours, theirs = fit_both(*PAIRS[0], X, y, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert len(ours.loss_curve_) == 10
    assert_same_weights(ours, theirs)


@pytest.mark.parametrize("est", [fastbp.MLPClassifier, fastbp.MLPRegressor])
def test_integer_sample_weights_equal_repeated_rows(est):
    X, y = iris()
    if est is fastbp.MLPRegressor:
        y = y.astype(float)
    w = np.random.default_rng(0).integers(1, 4, len(y))
    params = dict(hidden_layer_sizes=(8,), solver="sgd", batch_size=len(y) * 4, shuffle=False,
                  max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = est(**params).fit(X, y, sample_weight=w)
        repeated = est(**params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    assert_same_weights(weighted, repeated)


def test_sparse_input_gives_the_dense_result():
    X, y = digits()
    dense, _ = fit_both(*PAIRS[0], X, y, hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    for fmt in (scipy.sparse.csr_matrix, scipy.sparse.csc_matrix):
        sparse, _ = fit_both(*PAIRS[0], fmt(X), y, hidden_layer_sizes=(16,), max_iter=3,
                             random_state=0)
        assert_same_weights(sparse, dense)
        np.testing.assert_array_equal(sparse.predict(fmt(X)), dense.predict(X))


def test_string_and_multilabel_targets_and_multioutput_regression():
    X, y = iris()
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf, ref = fit_both(*PAIRS[0], X, names, hidden_layer_sizes=(16,), max_iter=300,
                        learning_rate_init=0.01, random_state=0)
    np.testing.assert_array_equal(clf.classes_, ref.classes_)
    np.testing.assert_array_equal(clf.predict(X), ref.predict(X))
    assert clf.score(X, names) > 0.9
    Xm, Ym = multilabel()
    ml = fastbp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0).fit(Xm, Ym)
    assert ml.predict(Xm).shape == Ym.shape and ml.out_activation_ == "logistic"
    Xr, yr = diabetes()
    Yr = np.column_stack([yr, -yr])
    reg = fastbp.MLPRegressor(hidden_layer_sizes=(16,), max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(Xr, Yr)
    assert reg.predict(Xr).shape == Yr.shape and reg.n_outputs_ == 2


def test_max_iter_warns_and_non_finite_weights_raise():
    X, y = iris()
    with pytest.warns(ConvergenceWarning):
        fastbp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    Xr, yr = diabetes()
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        fastbp.MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=10.0,
                            max_iter=20, random_state=0).fit(Xr * 1e3, yr * 1e3)


DIVERGING = dict(hidden_layer_sizes=(100,), activation="identity", solver="sgd",
                 learning_rate_init=1.0, max_iter=20, early_stopping=True, random_state=0)


def test_a_diverging_early_stopping_fit_finishes_as_scikit_learns_does():
    """scikit-learn's issue 29504: NaN scores recorded up to max_iter, the best weights kept."""
    X, y = iris()
    fits = []
    for cls in (fastbp.MLPRegressor, sk.MLPRegressor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(cls(**DIVERGING).fit(X, y))
    ours, theirs = fits
    assert ours.n_iter_ == theirs.n_iter_ == DIVERGING["max_iter"]
    assert ours.t_ == theirs.t_
    np.testing.assert_array_equal(np.isnan(ours.validation_scores_),
                                  np.isnan(theirs.validation_scores_))
    assert np.isnan(ours.validation_scores_[-1]) and np.isnan(ours.loss_curve_[-1])
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_,
                                                        rel=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-7, atol=1e-9)


def test_on_divergence_raise_refuses_the_diverging_fit_and_leaves_the_estimator():
    X, y = iris()
    est = fastbp.MLPRegressor(**DIVERGING, on_divergence="raise")
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        est.fit(X, y)
    assert not hasattr(est, "coefs_") and not hasattr(est, "n_iter_")


def test_partial_fit_exists_where_scikit_learn_has_it():
    for cls, theirs in PAIRS:
        for solver in ("sgd", "adam", "lbfgs"):
            assert (hasattr(cls(solver=solver), "partial_fit")
                    == hasattr(theirs(solver=solver), "partial_fit")), (cls, solver)
    assert not hasattr(fastbp.MLPClassifier(solver="lbfgs"), "partial_fit")


def test_lbfgs_fit_keeps_scikit_learns_packing_and_its_loss_gradient_hook():
    """After an L-BFGS fit, scikit-learn's ``_loss_grad_lbfgs`` (its numerical-gradient test
    calls it) runs on fastbp's estimator and agrees with the kernel's loss and gradient."""
    X, y = iris()
    kwargs = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=3, alpha=1e-3,
                  random_state=0, activation="tanh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = fastbp.MLPClassifier(**kwargs).fit(X, y)
        theirs = sk.MLPClassifier(**kwargs).fit(X, y)
    assert ours._coef_indptr == theirs._coef_indptr
    assert ours._intercept_indptr == theirs._intercept_indptr
    theta = np.concatenate([a.ravel() for a in ours.coefs_ + ours.intercepts_])
    Y = ours._label_binarizer.transform(y).astype(float)
    units = [X.shape[1], 5, 3]
    buffers = ([X] + [np.empty((len(X), u)) for u in units[1:]],
               [np.empty((len(X), u)) for u in units[1:]],
               [np.empty((a, b)) for a, b in zip(units[:-1], units[1:])],
               [np.empty(b) for b in units[1:]])
    loss, grad = ours._loss_grad_lbfgs(theta, X, Y, None, *buffers)
    net = ours._network(np.float64)
    kernel_grad = np.empty_like(net.params)
    kernel_loss = net.gradient(X, Y, kernel_grad, net.layout.workspace(len(X), np.float64),
                               l2_per_weight=1e-3)
    assert loss == pytest.approx(kernel_loss, rel=1e-12)
    np.testing.assert_allclose(grad, kernel_grad, rtol=1e-10, atol=1e-14)


def test_callbacks_see_every_epoch_can_stop_the_fit_and_checkpoint_the_estimator(tmp_path):
    X, y = iris()
    seen = []

    def record(epoch, logs, est):
        seen.append((epoch, dict(logs), est.n_iter_))
        return epoch == 4  # stop after the fifth epoch

    checkpoint = fastbp.callbacks.Checkpoint(tmp_path / "est.fastbp")
    est = fastbp.MLPClassifier(hidden_layer_sizes=(5,), max_iter=50, random_state=0,
                               early_stopping=True, callbacks=[record, checkpoint])
    est.fit(X, y)
    assert est.n_iter_ == 5 and [e for e, _, _ in seen] == list(range(5))
    assert [n for _, _, n in seen] == [1, 2, 3, 4, 5]
    assert [logs["loss"] for _, logs, _ in seen] == est.loss_curve_
    assert [logs["val_score"] for _, logs, _ in seen] == est.validation_scores_
    saved = fastbp.load(tmp_path / "est.fastbp")  # the last epoch's estimator
    assert saved.n_iter_ == 5 and saved.callbacks is None
    # L-BFGS: once per iteration, with the loss at the iterate
    losses = []
    fastbp.MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=200, random_state=0,
                        callbacks=[lambda i, logs, est: losses.append(logs["loss"]) or i == 2]
                        ).fit(*diabetes())
    assert len(losses) == 3 and losses[0] > losses[-1]
    with pytest.raises(ValueError, match="callbacks must be callables"):
        fastbp.MLPClassifier(callbacks=["not callable"]).fit(X, y)


# One row per behaviour a scikit-learn user relies on: the estimator, its parameters, the
# data and the calls. Each is run with scikit-learn's estimator and with fastbp's, and every
# fitted attribute scikit-learn sets is compared (FITTED_ATTRIBUTES), with the predictions.
def _sparse(data):
    X, y = data
    return scipy.sparse.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0)), y


def _frame(data):
    import pandas as pd
    X, y = data
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), y


def _two_targets(data):
    X, y = data
    return X[:, 1:], np.column_stack([X[:, 0], y])


def _weights(X, y):
    return np.linspace(0.5, 2.0, len(y))


BEHAVIOURS = {
    "multioutput regression": ("reg", {}, lambda: _two_targets(diabetes()), ["fit"]),
    "multilabel classification": ("clf", {"solver": "sgd"}, multilabel, ["fit"]),
    "sparse input": ("clf", {}, lambda: _sparse(iris()), ["fit"]),
    "sample_weight": ("reg", {"solver": "sgd"}, diabetes, ["fit_weighted"]),
    "warm_start": ("clf", {"warm_start": True}, iris, ["fit", "fit"]),
    "partial_fit with classes": ("clf", {"solver": "sgd"}, iris,
                                 ["partial_fit_classes", "partial_fit", "partial_fit"]),
    "early_stopping, validation_fraction": ("clf", {"early_stopping": True,
                                                    "validation_fraction": 0.2}, breast_cancer,
                                            ["fit"]),
    "n_iter_no_change": ("reg", {"n_iter_no_change": 2, "tol": 1e-2, "max_iter": 50},
                         diabetes, ["fit"]),
    "lbfgs max_fun": ("clf", {"solver": "lbfgs", "max_fun": 15}, iris, ["fit"]),
    "feature_names_in_ (pandas)": ("reg", {}, lambda: _frame(diabetes()), ["fit"]),
}
FITTED_ATTRIBUTES = ("n_iter_", "t_", "loss_", "best_loss_", "loss_curve_",
                     "validation_scores_", "best_validation_score_", "n_features_in_",
                     "feature_names_in_", "n_outputs_", "n_layers_", "out_activation_",
                     "classes_", "coefs_", "intercepts_")


def _run_behaviour(cls, params, data, calls):
    X, y = data
    est = cls(**{"hidden_layer_sizes": (6,), "max_iter": 8, "random_state": 0, **params})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for call in calls:
            if call == "fit_weighted":
                est.fit(X, y, sample_weight=_weights(X, y))
            elif call == "partial_fit_classes":
                est.partial_fit(X, y, classes=np.unique(y))
            else:
                getattr(est, call)(X, y)
    return est


@pytest.mark.parametrize("behaviour", list(BEHAVIOURS))
def test_fitted_attributes_and_predictions_are_scikit_learns(behaviour):
    kind, params, make_data, calls = BEHAVIOURS[behaviour]
    ours_cls, theirs_cls = PAIRS[0] if kind == "clf" else PAIRS[1]
    data = make_data()
    ours = _run_behaviour(ours_cls, params, data, calls)
    theirs = _run_behaviour(theirs_cls, params, data, calls)
    compared = [a for a in FITTED_ATTRIBUTES if hasattr(theirs, a)]
    assert [a for a in FITTED_ATTRIBUTES if hasattr(ours, a)] == compared
    for name in compared:
        mine, ref = getattr(ours, name), getattr(theirs, name)
        if name in ("coefs_", "intercepts_"):
            assert len(mine) == len(ref), name
            for a, b in zip(mine, ref):
                np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9, err_msg=name)
        elif isinstance(ref, (list, float, np.floating)):  # curves and scores, NaN included
            np.testing.assert_allclose(np.asarray(mine, dtype=float),
                                       np.asarray(ref, dtype=float), rtol=1e-7, atol=1e-9,
                                       err_msg=name)
        elif isinstance(ref, np.ndarray):  # classes_, feature_names_in_
            np.testing.assert_array_equal(mine, ref, err_msg=name)
        else:
            assert mine == ref, name
    X = data[0]
    if kind == "clf":
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-7,
                                   atol=1e-9)
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-7, atol=1e-9)


def test_clone_and_pickle_round_trip():
    X, y = iris()
    est = fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0,
                               n_jobs=1, activation="elu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert clone(est).get_params() == est.get_params()
    with warnings.catch_warnings():  # a clone is unfitted; fitted again, it is the same model
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_array_equal(clone(est).fit(X, y).predict_proba(X),
                                      est.predict_proba(X))
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert loaded.n_iter_ == est.n_iter_ and loaded.loss_curve_ == est.loss_curve_
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        again.partial_fit(X, y)  # training continues after unpickling
    assert again.n_iter_ == 1


# ---------------------------------------------------------------------- extras
def test_every_fastbp_activation_trains():
    X, y = iris()
    for activation in ["leaky_relu", "prelu", "elu", "softplus", "hard_logistic", "hard_tanh"]:
        est = fastbp.MLPClassifier(hidden_layer_sizes=(16,), activation=activation,
                                   max_iter=300, random_state=0, learning_rate_init=0.01)
        est.fit(X, y)
        assert est.score(X, y) > 0.9, activation
        if activation == "prelu":  # the learnable slopes are trained and exposed
            (slopes,) = est.slopes_.values()
            assert slopes.shape == (16,) and not np.allclose(slopes, 0.25)


def test_first_prelu_fit_starts_from_gamma_whatever_memory_held():
    # scikit-learn's initialisation fills weights and biases only: the slopes
    # must start at γ, not at what a freed block of memory held (here NaN)
    X, y = iris()
    for dtype in (np.float64, np.float32):
        junk = [np.full(n, np.nan, dtype=dtype) for n in (16, 67, 100, 131) for _ in range(4)]
        del junk
        est = fastbp.MLPClassifier(hidden_layer_sizes=(16,), activation="prelu", max_iter=1,
                                   random_state=0, learning_rate_init=1e-9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X.astype(dtype), y)
        (slopes,) = est.slopes_.values()
        np.testing.assert_allclose(slopes, 0.25, atol=1e-6)


def test_unknown_activation_is_refused_by_scikit_learns_validation():
    with pytest.raises(ValueError, match="activation"):
        fastbp.MLPClassifier(activation="swish").fit(*iris())


def test_class_weight_is_a_sample_weight_per_class():
    X, y = iris()
    weights = {0: 1.0, 1: 3.0, 2: 0.5}
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        by_class = fastbp.MLPClassifier(class_weight=weights, **params).fit(X, y)
        by_sample = fastbp.MLPClassifier(**params).fit(
            X, y, sample_weight=np.vectorize(weights.get)(y))
        balanced = fastbp.MLPClassifier(class_weight="balanced", **params).fit(X, y)
    assert_same_weights(by_class, by_sample)
    assert not np.allclose(balanced.coefs_[0], by_class.coefs_[0])
    with pytest.raises(ValueError, match="balanced"):
        fastbp.MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_n_jobs_gives_the_same_weights_and_progress_bar_runs(capsys):
    X, y = digits()
    params = dict(hidden_layer_sizes=(64,), batch_size=128, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = fastbp.MLPClassifier(n_jobs=1, **params).fit(X, y)
        two = fastbp.MLPClassifier(n_jobs=2, progress=True, **params).fit(X, y)
    assert_same_weights(one, two, rtol=1e-9, atol=1e-12)
    assert "epoch" in capsys.readouterr().err


# ---------------------------------------------------------------------- composition
def test_pipeline_grid_search_with_threads_and_processes_and_cross_val_score():
    X, y = iris()
    pipe = make_pipeline(StandardScaler(), fastbp.MLPClassifier(max_iter=50, random_state=0))
    grid = {"mlpclassifier__hidden_layer_sizes": [(4,), (8,)]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        from joblib import parallel_backend
        results = []
        for backend in ("threading", "loky"):
            with parallel_backend(backend):
                search = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
            results.append(search.cv_results_["mean_test_score"])
        scores = cross_val_score(pipe, X, y, cv=3)
    np.testing.assert_allclose(results[0], results[1])
    assert scores.shape == (3,) and np.all(scores > 0.5)


def fit_and_count_cache_misses(X, y):
    """In a worker process: fit, and count the kernels that had to compile there."""
    from fastbp.kernels import entries
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fastbp.MLPClassifier(hidden_layer_sizes=(7,), max_iter=5, random_state=0).fit(X, y)
    dispatchers = [getattr(entries, n) for n in ("train_epoch", "predict_rows")]
    return (sum(sum(d.stats.cache_misses.values()) for d in dispatchers),
            sum(sum(d.stats.cache_hits.values()) for d in dispatchers))


def test_loky_workers_load_the_kernels_from_the_disk_cache():
    """GridSearchCV's process workers: with a warm cache nothing compiles again per worker."""
    from joblib.externals.loky import ProcessPoolExecutor
    X, y = iris()
    fit_and_count_cache_misses(X, y)  # warms the cache in this process (if it was cold)
    # loky's processes, fresh ones: not joblib's shared executor, which other tests reuse
    with ProcessPoolExecutor(max_workers=2) as executor:
        counts = list(executor.map(fit_and_count_cache_misses, [X, X], [y, y]))
    assert all(misses == 0 and hits >= 1 for misses, hits in counts), counts


def test_fits_in_worker_threads_default_to_one_kernel_thread():
    """One thread in a worker thread, but the work split into the same parts (same results)."""
    import threading
    import numba
    est = fastbp.MLPClassifier()
    seen = []
    worker = threading.Thread(target=lambda: seen.append(est._threads()))
    worker.start()
    worker.join()
    assert seen == [(est._threads()[0], 1)]
    assert est._threads()[0] == numba.config.NUMBA_DEFAULT_NUM_THREADS
    assert fastbp.MLPClassifier(n_jobs=2)._threads() == (2, min(2, numba.config.NUMBA_NUM_THREADS))


# ---------------------------------------------------------------------- interop
@pytest.mark.parametrize("dataset", [digits, multilabel, diabetes, poisson],
                         ids=lambda f: f.__name__)
def test_to_and_from_scikit_learn_predict_the_same(dataset):
    X, y = dataset()
    regression = dataset in (diabetes, poisson)
    ours_cls, theirs_cls = PAIRS[1] if regression else PAIRS[0]
    params = {"loss": "poisson"} if dataset is poisson else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(hidden_layer_sizes=(12,), max_iter=15, random_state=0, **params).fit(X, y)
        theirs = theirs_cls(hidden_layer_sizes=(12,), max_iter=15, random_state=1,
                            **params).fit(X, y)
    converted = ours.to_sklearn()
    assert type(converted) is theirs_cls
    np.testing.assert_allclose(converted.predict(X), ours.predict(X), rtol=1e-10, atol=1e-12)
    back = ours_cls.from_sklearn(theirs)
    assert type(back) is ours_cls
    np.testing.assert_allclose(back.predict(X), theirs.predict(X), rtol=1e-10, atol=1e-12)
    if not regression:
        np.testing.assert_allclose(back.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        back.partial_fit(X, y)  # the converted estimator trains on
    assert back.n_iter_ == 1


def test_interop_refuses_what_scikit_learn_cannot_hold():
    X, y = iris()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        elu = fastbp.MLPClassifier(activation="elu", max_iter=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="no 'elu' activation"):
        elu.to_sklearn()
    with pytest.raises(ValueError, match="needs a MLPClassifier"):
        fastbp.MLPClassifier.from_sklearn(sk.MLPRegressor())
