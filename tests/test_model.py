"""The native API: parameters, prediction, fit options, optimizers, bad input."""
import numpy as np
import pytest

from conftest import assert_close
import fastbp
from fastbp.optim import SGD, Adam, AdamW


def blobs(n=120, seed=0, n_features=4, n_classes=3):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (n_classes, n_features))
    y = rng.integers(0, n_classes, n)
    return centers[y] + rng.normal(0, 1, (n, n_features)), y


def test_params_are_one_flat_buffer_and_views_alias_it():
    model = fastbp.MLP([3, 4, 2], activation="prelu", seed=0)
    assert model.n_params == 3 * 4 + 4 * 2 + 4 + 2 + 4
    assert model.n_coefs == 3 * 4 + 4 * 2
    assert [W.shape for W in model.coefs_] == [(3, 4), (4, 2)]
    assert [b.shape for b in model.intercepts_] == [(4,), (2,)]
    for view in model.coefs_ + model.intercepts_ + list(model.slopes_.values()):
        assert np.shares_memory(view, model.params)
    model.coefs_[1][2, 1] = 42.0
    assert model.params[3 * 4 + 2 * 2 + 1] == 42.0
    model.intercepts_[0][:] = -1
    assert (model.params[20:24] == -1).all()
    np.testing.assert_array_equal(model.slopes_[0], 0.25)
    model.params = np.zeros(model.n_params)
    assert (model.coefs_[0] == 0).all()


def test_repr_shows_the_architecture():
    text = repr(fastbp.MLP([784, 256, 256, 10], activation=["relu", "tanh"]))
    assert text == ("MLP(784-256[relu]-256[tanh]-10[softmax], loss='cross_entropy', "
                    "dtype=float32, n_params=269322)")


def test_glorot_initialisation_is_seeded_and_bounded():
    a, b = fastbp.MLP([30, 20, 5], seed=7), fastbp.MLP([30, 20, 5], seed=7)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, fastbp.MLP([30, 20, 5], seed=8).params)
    assert np.abs(a.coefs_[0]).max() <= np.sqrt(6 / 50)
    assert np.abs(a.coefs_[0]).max() > 0.9 * np.sqrt(6 / 50)
    logistic = fastbp.MLP([30, 20, 5], activation="logistic", seed=7)
    assert np.abs(logistic.coefs_[0]).max() <= np.sqrt(2 / 50)


def test_natural_losses_and_explicit_pairs():
    assert fastbp.MLP([2, 3]).loss == "cross_entropy"
    assert fastbp.MLP([2, 1], output="logistic").loss == "binary_cross_entropy"
    assert fastbp.MLP([2, 1], output="identity").loss == "squared_error"
    assert fastbp.MLP([2, 1], output="tanh").loss == "squared_error"
    assert fastbp.MLP([2, 1], output="logistic", loss="squared_error").loss == "squared_error"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_and_evaluate(dtype):
    X, y = blobs()
    model = fastbp.MLP([4, 16, 3], dtype=dtype, seed=0)
    model.fit(X, y, epochs=30, verbose=0)
    proba = model.predict_proba(X)
    assert proba.dtype == np.dtype(dtype) and proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(axis=1))
    scores = model.evaluate(X, y)
    assert scores["accuracy"] == np.mean(model.predict(X) == y) > 0.9
    p = np.clip(proba[np.arange(120), y].astype(np.float64), np.finfo(dtype).eps, 1)
    assert scores["loss"] == pytest.approx(-np.mean(np.log(p)), rel=1e-4)


def test_predict_on_more_rows_than_one_chunk(monkeypatch):
    import fastbp.network as m
    X, y = blobs(n=50)
    model = fastbp.MLP([4, 8, 3], seed=0)
    whole = model.predict_proba(X)
    monkeypatch.setattr(m, "PREDICT_CHUNK", 7)
    # a chunk of one row goes through a different BLAS path: equal within rounding
    assert_close(model.predict_proba(X), whole, np.float32)


def test_binary_multilabel_and_regression_outputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    Y = np.c_[X[:, 0] > 0, X[:, 1] + X[:, 2] > 0].astype(int)
    multi = fastbp.MLP([3, 16, 2], output="logistic", seed=0)
    multi.fit(X, Y, epochs=60, verbose=0)
    assert multi.predict(X).shape == (200, 2)
    assert multi.evaluate(X, Y)["accuracy"] > 0.9
    binary = fastbp.MLP([3, 16, 1], output="logistic", seed=0)
    binary.fit(X, Y[:, 0], epochs=60, verbose=0)
    assert binary.predict(X).shape == (200,)
    assert set(np.unique(binary.predict(X))) <= {0, 1}
    reg = fastbp.MLP([3, 32, 1], activation="tanh", output="identity", seed=0)
    target = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    reg.fit(X, target, epochs=100, verbose=0)
    assert reg.predict(X).shape == (200,)
    assert reg.evaluate(X, target)["r2"] > 0.9
    with pytest.raises(ValueError, match="predict_proba needs a classification loss"):
        reg.predict_proba(X)


def test_early_stopping_restores_the_best_weights():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 10))
    y = rng.integers(0, 2, 60)  # pure noise: the validation loss must rise
    X_val, y_val = rng.normal(size=(40, 10)), rng.integers(0, 2, 40)
    model = fastbp.MLP([10, 64, 2], dtype="float64", seed=0)
    history = model.fit(X, y, optimizer=Adam(0.01), epochs=200, batch_size=10,
                        validation_data=(X_val, y_val), patience=5, verbose=0)
    assert history.stopped_early and history.stop_reason == "patience"
    assert history.n_epochs == history.best_epoch + 1 + 5
    assert history.val_loss[history.best_epoch] == min(history.val_loss)
    assert model.evaluate(X_val, y_val)["loss"] == pytest.approx(min(history.val_loss),
                                                                 rel=1e-12)


def test_validation_fraction_and_history():
    X, y = blobs(n=100)
    model = fastbp.MLP([4, 8, 3], seed=0)
    history = model.fit(X, y, epochs=4, validation_fraction=0.25, verbose=0)
    assert history is model.history_
    assert history.n_epochs == len(history.val_loss) == len(history.val_metric) == 4
    assert all(0 <= a <= 1 for a in history.val_metric)
    assert set(history.as_dict()) == {"loss", "val_loss", "val_accuracy", "epoch_time"}


def test_callback_can_stop_training():
    X, y = blobs()
    seen = []

    def stop_at_third(epoch, logs, model):
        seen.append((epoch, logs["loss"]))
        return epoch == 2

    history = fastbp.MLP([4, 8, 3], seed=0).fit(X, y, epochs=10, callbacks=[stop_at_third],
                                                 verbose=0)
    assert history.n_epochs == 3 and history.stop_reason == "callback"
    assert [e for e, _ in seen] == [0, 1, 2]


def test_verbose_2_prints_one_line_per_epoch(capsys):
    X, y = blobs()
    fastbp.MLP([4, 8, 3], seed=0).fit(X, y, epochs=3, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3 loss=")


def test_optimizer_state_carries_over_between_fits():
    X, y = blobs()
    once = fastbp.MLP([4, 8, 3], seed=0)
    once.fit(X, y, optimizer=Adam(0.01), epochs=2, shuffle=False, verbose=0)
    twice = fastbp.MLP([4, 8, 3], seed=0)
    opt = Adam(0.01)
    twice.fit(X, y, optimizer=opt, epochs=1, shuffle=False, verbose=0)
    twice.fit(X, y, optimizer=opt, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_array_equal(once.params, twice.params)
    assert twice._opt_state.step == 2 * 4  # 120 rows / 32 = 4 steps an epoch


@pytest.mark.parametrize("opt", [SGD(0.1, weight_decay=0.01),
                                 SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
                                 Adam(0.01, weight_decay=0.01), AdamW(0.01, weight_decay=0.1)],
                         ids=repr)
def test_fused_epoch_equals_a_custom_loop(opt):
    """fit's whole-epoch kernel and loss_and_grad + optimizer.update agree step by step."""
    X, y = blobs(n=40)
    fused = fastbp.MLP([4, 6, 3], activation="prelu", dtype="float64", seed=0)
    looped = fused.astype("float64")
    fused.fit(X, y, optimizer=opt, epochs=3, batch_size=40, shuffle=False, verbose=0)
    state = opt.init(looped.params, n_decay=looped.n_coefs)
    for _ in range(3):
        _, grads = looped.loss_and_grad(X, y)
        opt.update(grads, state, looped.params)
    np.testing.assert_allclose(fused.params, looped.params, rtol=1e-12, atol=1e-14)


def test_training_loss_includes_the_l2_penalty():
    X, y = blobs(n=32)
    model = fastbp.MLP([4, 5, 3], dtype="float64", seed=0)
    loss, _ = model.loss_and_grad(X, y, l2=0.5)
    penalty = 0.25 * sum(np.sum(W ** 2) for W in model.coefs_)
    assert loss == pytest.approx(model.evaluate(X, y)["loss"] + penalty, rel=1e-12)
    history = model.fit(X, y, optimizer=SGD(1e-12, weight_decay=0.5), epochs=1,
                        batch_size=32, verbose=0)
    assert history.loss[0] == pytest.approx(loss, rel=1e-9)


def test_float32_and_float64_train_alike():
    X, y = blobs()
    a = fastbp.MLP([4, 8, 3], dtype="float32", seed=0)
    b = fastbp.MLP([4, 8, 3], dtype="float64", seed=0)
    for m in (a, b):
        m.fit(X, y, optimizer=SGD(0.05), epochs=3, verbose=0)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-3, atol=1e-4)


def test_divergence_stops_with_a_warning_and_finite_weights():
    X, y = blobs()
    model = fastbp.MLP([4, 8, 1], output="identity", seed=0)
    with pytest.warns(RuntimeWarning, match="diverged"):
        history = model.fit(X * 1e3, y * 1e3, optimizer=SGD(10.0), epochs=5, verbose=0)
    assert history.stop_reason == "diverged"
    assert np.all(np.isfinite(model.params))


def test_auto_with_one_part_runs_serial():
    X, y = blobs()
    model = fastbp.MLP([4, 8, 3], seed=0)
    model.fit(X, y, epochs=1, verbose=0, n_jobs=1)
    assert model.strategy_ == "serial"


def test_r2_matches_scikit_learn():
    from sklearn.metrics import r2_score as sk_r2
    from fastbp.metrics import r2_score
    rng = np.random.default_rng(0)
    Y, out = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    assert r2_score(Y, out) == pytest.approx(sk_r2(Y, out), rel=1e-12)
    Y[:, 1] = 2.0  # a constant column
    assert r2_score(Y, out) == pytest.approx(sk_r2(Y, out), rel=1e-12)
    out[:, 1] = 2.0
    assert r2_score(Y, out) == pytest.approx(sk_r2(Y, out), rel=1e-12)


def test_changing_an_optimizer_between_fits_gets_fresh_buffers():
    X, y = blobs()
    model = fastbp.MLP([4, 8, 3], seed=0)
    opt = SGD(0.05)
    model.fit(X, y, optimizer=opt, epochs=1, verbose=0)
    assert model._opt_state.buffers.shape[0] == 0
    opt.momentum = 0.9  # now needs a velocity buffer
    model.fit(X, y, optimizer=opt, epochs=2, verbose=0)
    assert model._opt_state.buffers.shape == (1, model.n_params)
    assert np.abs(model._opt_state.buffers).sum() > 0


def test_evaluate_reports_f1_and_mae_as_scikit_learn_computes_them():
    from sklearn.metrics import f1_score, mean_absolute_error
    rng = np.random.default_rng(4)
    X = rng.standard_normal((150, 4))
    y = np.where(X[:, 0] > 0.3, 2, (X[:, 1] > 0).astype(int))
    clf = fastbp.MLP([4, 6, 3], seed=0)
    clf.fit(X, y, epochs=2, verbose=0)  # a weak model: some classes rarely predicted
    assert clf.evaluate(X, y)["f1"] == pytest.approx(
        f1_score(y, clf.predict(X), average="macro"), rel=1e-12)
    labels = np.column_stack([X[:, 0] > 0, X[:, 1] > 0.8, X[:, 2] > 5.0]).astype(float)
    multi = fastbp.MLP([4, 6, 3], output="logistic", seed=0)
    multi.fit(X, labels, epochs=2, verbose=0)
    assert multi.evaluate(X, labels)["f1"] == pytest.approx(
        f1_score(labels, multi.predict(X), average="macro", zero_division=0), rel=1e-12)
    binary = fastbp.MLP([4, 6, 1], output="logistic", seed=0)
    binary.fit(X, (X[:, 0] > 0).astype(float), epochs=2, verbose=0)
    assert binary.evaluate(X, (X[:, 0] > 0).astype(float))["f1"] == pytest.approx(
        f1_score(X[:, 0] > 0, binary.predict(X), average="macro"), rel=1e-12)
    target = X @ [1.0, -2.0, 0.5, 0.0]
    reg = fastbp.MLP([4, 6, 1], output="identity", seed=0)
    reg.fit(X, target, epochs=2, verbose=0)
    assert reg.evaluate(X, target)["mae"] == pytest.approx(
        mean_absolute_error(target, reg.predict(X)), rel=1e-6)


def test_the_progress_bar_shows_in_a_terminal_and_in_a_notebook(monkeypatch):
    import sys
    import types
    from fastbp import training
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    monkeypatch.setitem(sys.modules, "IPython", None)
    assert not training.interactive()  # a script whose stderr goes to a file
    notebook = type("ZMQInteractiveShell", (), {})()
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: notebook))
    assert training.interactive()  # a Jupyter kernel: stderr is no terminal, tqdm a widget
    terminal_ipython = type("TerminalInteractiveShell", (), {})()
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: terminal_ipython))
    assert not training.interactive()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert training.interactive()
