"""Bad input raises a ValueError that names the problem, before any state changes."""
import numpy as np
import pytest

import fastbp
from fastbp.optim import SGD, Adam, AdamW

X = np.random.default_rng(0).normal(size=(20, 3))
y = np.arange(20) % 2


@pytest.mark.parametrize("kwargs,match", [
    (dict(layer_sizes=[3]), "at least an input and an output"),
    (dict(layer_sizes=[3, 0, 2]), "positive integers"),
    (dict(layer_sizes=[3, -4, 2]), "positive integers"),
    (dict(layer_sizes=[3, 2.5, 2]), "positive integers"),
    (dict(layer_sizes="3-2"), "sequence of ints"),
    (dict(layer_sizes=[3, 4, 2], activation="sigmoid"), "unknown hidden activation 'sigmoid'"),
    (dict(layer_sizes=[3, 4, 2], activation="softmax"), "softmax is an output only"),
    (dict(layer_sizes=[3, 4, 4, 2], activation=["relu"]), "1 names for 2 hidden"),
    (dict(layer_sizes=[3, 4, 2], output="sigmoid"), "unknown output 'sigmoid'"),
    (dict(layer_sizes=[3, 4, 2], loss="hinge"), "unknown loss 'hinge'"),
    (dict(layer_sizes=[3, 4, 2], output="identity", loss="cross_entropy"), "needs output='softmax'"),
    (dict(layer_sizes=[3, 4, 2], output="tanh", loss="binary_cross_entropy"), "needs output='logistic'"),
    (dict(layer_sizes=[3, 4, 1]), "softmax output needs at least 2 units"),
    (dict(layer_sizes=[3, 4, 2], dtype="float16"), "dtype must be"),
    (dict(layer_sizes=[3, 4, 2], seed=-1), "seed must be"),
    (dict(layer_sizes=[3, 4, 2], activation="leaky_relu", gamma=-0.1), "gamma must be >= 0"),
    (dict(layer_sizes=[3, 4, 2], activation="elu", gamma=float("nan")), "gamma must be a finite"),
])
def test_constructor_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fastbp.MLP(**kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=0), "lr must be in"), (dict(lr=float("inf")), "lr must be a finite"),
    (dict(momentum=1.0), "momentum must be in"), (dict(momentum=-0.1), "momentum must be in"),
    (dict(nesterov=True), "nesterov=True needs momentum"), (dict(nesterov=1), "nesterov must be a bool"),
    (dict(weight_decay=-1), "weight_decay must be in"),
])
def test_sgd_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SGD(**kwargs)


@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize("kwargs,match", [
    (dict(b1=1.0), "b1 must be in"), (dict(b2=-0.5), "b2 must be in"),
    (dict(eps=0), "eps must be in"), (dict(lr="0.1"), "lr must be a finite"),
])
def test_adam_rejects(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_optimizer_update_rejects_mismatched_input():
    opt = SGD(0.1, momentum=0.5)
    p = np.zeros(5)
    state = opt.init(p)
    with pytest.raises(ValueError, match="do not match params"):
        opt.update(np.zeros(4), state, p)
    with pytest.raises(ValueError, match="call init"):
        opt.update(np.zeros(6), state, np.zeros(6))
    with pytest.raises(ValueError, match="NaN or inf"):
        opt.update(np.full(5, np.nan), state, p)
    with pytest.raises(ValueError, match="n_decay"):
        opt.init(p, n_decay=6)
    assert state.step == 0 and (p == 0).all()


FIT_CASES = [
    (dict(X=X[:, :2]), "X has 2 features, the model expects 3"),
    (dict(X=X[0]), "X must be 2-D"),
    (dict(X=X[:0], y=y[:0]), "X has no samples"),
    (dict(X=np.where(X > 1, np.nan, X)), "X contains NaN or infinity"),
    (dict(X=np.where(X > 1, np.inf, X)), "X contains NaN or infinity"),
    (dict(X=X.astype(str)), "X must be numeric"),
    (dict(y=y[:-1]), "y has 19 samples, X has 20"),
    (dict(y=np.where(y == 1, 2, y)), r"integer class labels in \[0, 2\)"),
    (dict(y=y - 1), r"integer class labels in \[0, 2\)"),
    (dict(y=y + 0.5), "integer class labels"),
    (dict(y=np.where(y == 1, np.nan, y)), "y contains NaN or infinity"),
    (dict(y=np.ones((20, 3))), r"shape \(20,\) integer labels or \(20, 2\)"),
    (dict(y=np.full((20, 2), 0.7)), "rows must sum to 1"),
    (dict(epochs=0), "epochs must be an integer >= 1"),
    (dict(epochs=2.5), "epochs must be an integer"),
    (dict(batch_size=0), "batch_size must be an integer >= 1"),
    (dict(batch_size=-3), "batch_size must be an integer >= 1"),
    (dict(optimizer="adam"), "optimizer must be a fastbp.optim optimizer"),
    (dict(patience=3), "patience needs validation_data or validation_fraction"),
    (dict(patience=0, validation_fraction=0.2), "patience must be an integer >= 1"),
    (dict(validation_fraction=1.5), r"validation_fraction must be a number in \(0, 1\)"),
    (dict(validation_fraction=0.01), "need at least one sample on each side"),
    (dict(validation_fraction=0.2, validation_data=(X, y)), "not both"),
    (dict(validation_data=X), "must be a pair"),
    (dict(validation_data=(X[:, :2], y)), "X_val has 2 features"),
    (dict(validation_data=(X, y[:5])), "y_val has 5 samples"),
    (dict(callbacks=[1]), "callbacks must be callables"),
    (dict(n_jobs=0), "n_jobs must be None, -1 or a positive integer"),
    (dict(verbose=-1), "verbose must be an integer >= 0"),
    (dict(shuffle="yes"), "shuffle must be a bool"),
    (dict(strategy="gpu"), "unknown strategy 'gpu'"),
]


@pytest.mark.parametrize("kwargs,match", FIT_CASES)
def test_fit_rejects_before_changing_state(kwargs, match):
    model = fastbp.MLP([3, 4, 2], seed=0)
    opt = Adam()
    model.fit(X, y, optimizer=opt, epochs=1, verbose=0)  # a trained model with state
    params, rng_state, history = model.params.copy(), model._rng.get_state(), model.history_
    step = model._opt_state.step
    args = dict(X=X, y=y, optimizer=opt, epochs=1, verbose=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        model.fit(args.pop("X"), args.pop("y"), **args)
    np.testing.assert_array_equal(model.params, params)
    assert model.history_ is history and model._opt_state.step == step
    np.testing.assert_array_equal(model._rng.get_state()[1], rng_state[1])


@pytest.mark.parametrize("method", ["predict", "predict_proba", "evaluate", "loss_and_grad"])
@pytest.mark.parametrize("bad,match", [(X[:, :2], "X has 2 features"),
                                       (np.full((2, 3), np.nan), "NaN"),
                                       ([[1, 2], [3]], "could not be read"),
                                       (np.zeros((0, 3)), "no samples")])
def test_inference_rejects(method, bad, match):
    model = fastbp.MLP([3, 4, 2], seed=0)
    args = (bad,) if method.startswith("predict") else (bad, np.zeros(len(bad), int))
    with pytest.raises(ValueError, match=match):
        getattr(model, method)(*args)


def test_loss_and_grad_rejects_bad_l2():
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0"):
        fastbp.MLP([3, 4, 2]).loss_and_grad(X, y, l2=-1)


def test_params_setter_checks_shape():
    model = fastbp.MLP([3, 4, 2])
    with pytest.raises(ValueError, match="params must have shape"):
        model.params = np.zeros(3)


def test_integer_bool_and_noncontiguous_input_work():
    model = fastbp.MLP([3, 4, 2], seed=0)
    model.fit(np.asfortranarray((X > 0).astype(int)), y.astype(bool), epochs=1, verbose=0)
    wide = np.repeat(X, 2, axis=1)[:, ::2]  # a strided view
    assert model.predict(wide).shape == (20,)


def test_batch_larger_than_data_is_capped():
    history = fastbp.MLP([3, 4, 2], seed=0).fit(X, y, batch_size=1000, epochs=2, verbose=0)
    assert history.n_epochs == 2
