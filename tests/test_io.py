"""Save / load: round trips, resuming, and files that must be refused."""
import json
import zipfile

import numpy as np
import pytest

import fastbp
from fastbp import io
from fastbp.optim import SGD, Adam, AdamW


def data(rng, n=60, d=5, k=3):
    return rng.standard_normal((n, d)), rng.integers(0, k, n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation,output", [("relu", "softmax"), ("prelu", "logistic"),
                                               ("tanh", "identity"), ("elu", "exp"),
                                               (["softplus", "hard_tanh"], "softmax")])
def test_round_trip_keeps_architecture_parameters_optimizer_and_history(
        activation, output, dtype, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    hidden = [7, 6] if isinstance(activation, list) else [7]
    model = fastbp.MLP([5, *hidden, 3 if output == "softmax" else 2], activation=activation,
                       output=output, dtype=dtype, seed=4, gamma=0.3)
    if output == "softmax":
        y = rng.integers(0, 3, 40)
    elif output == "logistic":
        y = rng.integers(0, 2, (40, 2))
    elif output == "exp":
        y = rng.poisson(1.0, (40, 2))
    else:
        y = rng.standard_normal((40, 2))
    model.fit(X, y, optimizer=AdamW(0.01), epochs=2, batch_size=8, verbose=0,
              validation_fraction=0.25)
    path = model.save(tmp_path / "model.fastbp")
    again = fastbp.load(path)
    assert repr(again) == repr(model)
    np.testing.assert_array_equal(again.params, model.params)
    assert again.params.dtype == model.params.dtype
    np.testing.assert_array_equal(again._opt_state.buffers, model._opt_state.buffers)
    assert again._opt_state.step == model._opt_state.step
    assert vars(again.optimizer) == vars(model.optimizer)
    assert again.history_.as_dict() == model.history_.as_dict()
    np.testing.assert_array_equal(again.network.forward(again.network.check_X(X)),
                                  model.network.forward(model.network.check_X(X)))


@pytest.mark.parametrize("opt", [SGD(0.05, momentum=0.9, nesterov=True), Adam(0.01)],
                         ids=["sgd", "adam"])
def test_resuming_from_a_file_equals_uninterrupted_training(opt, tmp_path):
    rng = np.random.default_rng(1)
    X, y = data(rng)
    straight = fastbp.MLP([5, 9, 3], seed=2)
    straight.fit(X, y, optimizer=opt, epochs=4, batch_size=7, verbose=0)

    first = fastbp.MLP([5, 9, 3], seed=2)
    first.fit(X, y, optimizer=type(opt)(**vars(opt)), epochs=2, batch_size=7, verbose=0)
    first.save(tmp_path / "half.fastbp")
    resumed = fastbp.load(tmp_path / "half.fastbp")
    resumed.fit(X, y, optimizer=resumed.optimizer, epochs=2, batch_size=7, verbose=0)
    np.testing.assert_array_equal(resumed.params, straight.params)


def test_an_untrained_model_round_trips(tmp_path):
    model = fastbp.MLP([3, 4, 2], seed=0)
    again = fastbp.load(model.save(tmp_path / "m.fastbp"))
    np.testing.assert_array_equal(again.params, model.params)
    assert again.optimizer is None and again.history_ is None


def saved(tmp_path):
    model = fastbp.MLP([3, 4, 2], seed=0)
    model.fit(*data(np.random.default_rng(0), d=3, k=2), epochs=1, verbose=0)
    return model.save(tmp_path / "m.fastbp")


def rewrite(path, change):
    """Rewrite the archive with ``change(arrays)`` applied (meta kept unless changed)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def meta_of(arrays):
    return json.loads(arrays["meta"].tobytes().decode())


def set_meta(arrays, meta):
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)


def test_an_altered_parameter_is_detected(tmp_path):
    path = saved(tmp_path)

    def flip(arrays):
        p = arrays["params"].copy()
        p[3] += 1e-3
        arrays["params"] = p
    rewrite(path, flip)
    with pytest.raises(fastbp.ModelFileError, match="checksum"):
        fastbp.load(path)


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.99])
def test_a_truncated_file_is_refused(cut, tmp_path):
    path = saved(tmp_path)
    data_bytes = path.read_bytes()
    path.write_bytes(data_bytes[:int(len(data_bytes) * cut)])
    with pytest.raises(fastbp.ModelFileError, match="truncated or corrupted"):
        fastbp.load(path)


def test_files_that_are_not_fastbp_models_are_refused(tmp_path):
    with pytest.raises(fastbp.ModelFileError, match="no such file"):
        fastbp.load(tmp_path / "missing.fastbp")
    text = tmp_path / "text.fastbp"
    text.write_text("hello")
    with pytest.raises(fastbp.ModelFileError):
        fastbp.load(text)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(fastbp.ModelFileError, match="missing"):
        fastbp.load(other)


def test_pickled_content_is_never_loaded(tmp_path):
    path = saved(tmp_path)

    def add_object(arrays):
        arrays["params"] = np.array([object()], dtype=object)
    rewrite(path, add_object)
    with pytest.raises(fastbp.ModelFileError):
        fastbp.load(path)


@pytest.mark.parametrize("field,value,message", [
    ("format", "something-else", "not a fastbp model"),
    ("version", 99, "format version 99"),
    ("kind", "Unknown", "unknown model kind"),
])
def test_metadata_changes_are_refused(field, value, message, tmp_path):
    path = saved(tmp_path)

    def change(arrays):
        meta = meta_of(arrays)
        meta[field] = value
        set_meta(arrays, meta)
    rewrite(path, change)
    with pytest.raises(fastbp.ModelFileError, match=message):
        fastbp.load(path)


def test_an_architecture_that_does_not_fit_the_parameters_is_refused(tmp_path):
    path = saved(tmp_path)

    def change(arrays):
        meta = meta_of(arrays)
        meta["architecture"]["layer_sizes"] = [3, 5, 2]
        set_meta(arrays, meta)
    rewrite(path, change)
    with pytest.raises(fastbp.ModelFileError, match="do not fit the architecture"):
        fastbp.load(path)


def test_a_crash_while_saving_keeps_the_previous_file(tmp_path, monkeypatch):
    path = saved(tmp_path)
    before = path.read_bytes()
    model = fastbp.MLP([3, 4, 2], seed=9)

    def crash(f, **arrays):
        f.write(b"partial")
        raise KeyboardInterrupt
    monkeypatch.setattr(io.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    assert zipfile.is_zipfile(path)



def test_a_saved_file_gets_the_usual_permissions_not_a_temporary_files(tmp_path):
    import os
    import stat
    previous = os.umask(0o027)
    try:
        path = fastbp.MLP([3, 4, 2], seed=0).save(tmp_path / "new.fastbp")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 under the umask
        os.chmod(path, 0o604)
        fastbp.MLP([3, 4, 2], seed=1).save(path)  # a replaced file keeps its permissions
        assert stat.S_IMODE(path.stat().st_mode) == 0o604
    finally:
        os.umask(previous)


# ---------------------------------------------------------------- scikit-learn estimators
def fitted_estimators():
    import warnings
    from sklearn.datasets import load_iris, make_multilabel_classification
    from sklearn.exceptions import ConvergenceWarning
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    Xm, Ym = make_multilabel_classification(n_samples=80, n_features=6, random_state=0)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield "strings", fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=20,
                                              random_state=0).fit(X, names), X
        yield "class_weight", fastbp.MLPClassifier(
            hidden_layer_sizes=(8,), max_iter=20, random_state=0, class_weight={0: 2.0, 2: 0.5},
            activation="prelu").fit(X, y), X
        yield "multilabel-float32", fastbp.MLPClassifier(
            hidden_layer_sizes=(8,), max_iter=20, random_state=0,
            early_stopping=True).fit(Xm.astype(np.float32), Ym), Xm.astype(np.float32)
        yield "poisson-lbfgs", fastbp.MLPRegressor(
            loss="poisson", solver="lbfgs", hidden_layer_sizes=(6,), max_iter=20,
            random_state=0).fit(X, rng.poisson(2.0, len(X))), X
        yield "multioutput-sgd", fastbp.MLPRegressor(
            solver="sgd", hidden_layer_sizes=(6, 5), max_iter=20,
            random_state=0).fit(X, np.column_stack([X[:, 0], X[:, 1]])), X


@pytest.mark.parametrize("case", range(5))
def test_estimators_round_trip(case, tmp_path):
    name, est, X = list(fitted_estimators())[case]
    again = fastbp.load(est.save(tmp_path / f"{name}.fastbp"))
    assert type(again) is type(est) and again.get_params() == est.get_params()
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
    if hasattr(est, "predict_proba"):
        np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
        np.testing.assert_array_equal(again.classes_, est.classes_)
    for attr in ("n_iter_", "loss_", "n_layers_", "n_outputs_", "out_activation_",
                 "n_features_in_"):
        assert getattr(again, attr) == getattr(est, attr), attr
    assert getattr(again, "loss_curve_", None) == getattr(est, "loss_curve_", None)
    assert all(a.dtype == b.dtype for a, b in zip(again.coefs_, est.coefs_))


def test_estimator_partial_fit_resumes_exactly(tmp_path):
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = X / 16
    straight = fastbp.MLPClassifier(hidden_layer_sizes=(16,), solver="sgd", random_state=0)
    for _ in range(4):
        straight.partial_fit(X, y, classes=np.arange(10))
    half = fastbp.MLPClassifier(hidden_layer_sizes=(16,), solver="sgd", random_state=0)
    for _ in range(2):
        half.partial_fit(X, y, classes=np.arange(10))
    resumed = fastbp.load(half.save(tmp_path / "half.fastbp"))
    for _ in range(2):
        resumed.partial_fit(X, y)
    for a, b in zip(resumed.coefs_ + resumed.intercepts_, straight.coefs_ + straight.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert resumed.loss_curve_ == straight.loss_curve_


def test_an_unfitted_estimator_round_trips_and_bad_random_state_is_refused(tmp_path):
    est = fastbp.MLPRegressor(hidden_layer_sizes=(3, 2), alpha=0.5, n_jobs=1)
    again = fastbp.load(est.save(tmp_path / "u.fastbp"))
    assert again.get_params() == est.get_params() and not hasattr(again, "coefs_")
    with pytest.raises(ValueError, match="random_state"):
        fastbp.MLPRegressor(random_state=np.random.RandomState(0)).save(tmp_path / "r.fastbp")
