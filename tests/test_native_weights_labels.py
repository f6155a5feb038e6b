"""The native API's sample and class weights, labels of any kind, and further validation
metrics (``MLP.fit(..., sample_weight=, class_weight=, metrics=)``). Each test fails
without the feature it tests."""
import csv

import numpy as np
import pytest
from conftest import assert_close

import fastbp
from fastbp.callbacks import CSVLogger, EarlyStopping
from fastbp.optim import SGD

STRATEGIES = ["serial", "blas", "sharded", "columns"]


def blobs(n=60, seed=0):
    """Three overlapping classes in 4 features (no model separates them fully)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.standard_normal((n, 4)) + 0.8 * np.eye(3, 4)[y]
    return X, y


def classifier(seed=0):
    return fastbp.MLP([4, 6, 3], dtype="float64", seed=seed)


def regressor(seed=0):
    return fastbp.MLP([4, 5, 1], output="identity", dtype="float64", seed=seed)


def full_batch_sgd(model, X, y, epochs=3, **kwargs):
    model.fit(X, y, optimizer=SGD(lr=0.2), epochs=epochs, batch_size=X.shape[0],
              shuffle=False, verbose=0, strategy="serial", **kwargs)
    return model.params.copy()


# ---------------------------------------------------------------- sample weights
@pytest.mark.parametrize("make", [classifier, regressor], ids=["classifier", "regressor"])
def test_an_integer_weight_counts_a_row_that_many_times(make):
    X, y = blobs(24)
    if make is regressor:
        y = X @ [1.0, -0.5, 0.25, 0.0]
    w = np.arange(24) % 4  # 0 removes the row, 3 triples it
    repeated = np.repeat(np.arange(24), w)
    loss, grad = make().loss_and_grad(X, y, l2=0.01, sample_weight=w)
    loss_dup, grad_dup = make().loss_and_grad(X[repeated], y[repeated], l2=0.01)
    unweighted, _ = make().loss_and_grad(X, y, l2=0.01)
    assert abs(loss - unweighted) > 1e-3  # the weights matter here
    assert_close(loss, loss_dup, np.float64)
    assert_close(grad, grad_dup, np.float64)
    # three full-batch SGD epochs: the same steps, so the same weights
    assert_close(full_batch_sgd(make(), X, y, sample_weight=w),
                 full_batch_sgd(make(), X[repeated], y[repeated]), np.float64)


def test_class_weights_are_sample_weights_per_class():
    from sklearn.utils.class_weight import compute_sample_weight
    X, y = blobs(50)  # classes of 17, 17 and 16 rows: 'balanced' is not all ones
    balanced = full_batch_sgd(classifier(), X, y, class_weight="balanced")
    assert_close(balanced, full_batch_sgd(classifier(), X, y,
                                          sample_weight=compute_sample_weight("balanced", y)),
                 np.float64)
    assert np.abs(balanced - full_batch_sgd(classifier(), X, y)).max() > 1e-6
    # a dict multiplies into sample_weight; labels it does not name weigh 1
    w = np.linspace(0.5, 2.0, 50)
    assert_close(full_batch_sgd(classifier(), X, y, sample_weight=w,
                                class_weight={0: 3.0, 2: 0.5}),
                 full_batch_sgd(classifier(), X, y,
                                sample_weight=w * np.array([3.0, 1.0, 0.5])[y]),
                 np.float64)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_trains_the_same_weighted_fit(strategy):
    X, y = blobs(90)
    w = 1.0 + (np.arange(90) % 5)
    w[::7] = 0.0  # rows left out of the batches

    def fit(strategy, **kwargs):
        model = fastbp.MLP([4, 9, 3], dtype="float64", seed=3)
        model.fit(X, y, optimizer=SGD(lr=0.1, momentum=0.9), epochs=2, batch_size=16,
                  verbose=0, n_jobs=2, strategy=strategy, **kwargs)
        return model.params.copy()
    weighted = fit(strategy, sample_weight=w)
    assert_close(weighted, fit("serial", sample_weight=w), np.float64, strategy)
    assert np.abs(weighted - fit(strategy)).max() > 1e-4


def test_validation_rows_carry_their_weights():
    X, y = blobs(60)
    w = np.where(y == 1, 4.0, 1.0)
    model = classifier()
    twin = np.random.RandomState()
    twin.set_state(model._rng.get_state())  # the split the fit will draw
    held = twin.permutation(60)[:15]
    history = model.fit(X, y, epochs=2, verbose=0, validation_fraction=0.25,
                        restore_best=False, sample_weight=w, metrics=["f1"])
    scores = model.evaluate(X[held], y[held], sample_weight=w[held])
    assert history.val_loss[-1] == pytest.approx(scores["loss"], rel=1e-12)
    assert history.val_metric[-1] == pytest.approx(scores["accuracy"], rel=1e-12)
    assert history.val_metrics["f1"][-1] == pytest.approx(scores["f1"], rel=1e-12)
    assert scores["loss"] != pytest.approx(model.evaluate(X[held], y[held])["loss"], rel=1e-3)
    # validation_data takes the weights as a third item, and class_weight applies to it
    X_val, y_val = blobs(30, seed=1)
    model = classifier()
    history = model.fit(X, y, epochs=2, verbose=0, validation_data=(X_val, y_val, w[:30]),
                        class_weight={2: 3.0}, restore_best=False)
    expected = model.evaluate(X_val, y_val, sample_weight=w[:30] * np.where(y_val == 2, 3, 1))
    assert history.val_loss[-1] == pytest.approx(expected["loss"], rel=1e-12)


def test_evaluate_weighs_as_scikit_learn_scores_do():
    from sklearn import metrics as skm
    X, y = blobs(45)
    w = np.random.default_rng(1).uniform(0, 3, 45)
    clf = classifier()
    clf.fit(X, y, epochs=2, verbose=0)
    scores, pred, proba = clf.evaluate(X, y, sample_weight=w), clf.predict(X), clf.predict_proba(X)
    loss_rows = -np.log(proba[np.arange(45), y])
    assert scores["loss"] == pytest.approx(np.average(loss_rows, weights=w), rel=1e-9)
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w))
    assert scores["f1"] == pytest.approx(
        skm.f1_score(y, pred, average="macro", sample_weight=w), rel=1e-12)
    assert scores["log_loss"] == pytest.approx(skm.log_loss(y, proba, sample_weight=w),
                                               rel=1e-9)
    assert clf.evaluate(X, y)["log_loss"] == pytest.approx(skm.log_loss(y, proba), rel=1e-9)
    binary = fastbp.MLP([4, 5, 1], output="logistic", dtype="float64", seed=0)
    binary.fit(X, y == 1, epochs=2, verbose=0)
    p1 = binary.predict_proba(X)[:, 0]
    assert binary.evaluate(X, y == 1, sample_weight=w)["log_loss"] == pytest.approx(
        skm.log_loss(y == 1, p1, sample_weight=w), rel=1e-9)
    target = X @ [1.0, -0.5, 0.25, 0.0]
    reg = regressor()
    reg.fit(X, target, epochs=2, verbose=0)
    scores, out = reg.evaluate(X, target, sample_weight=w), reg.predict(X)
    assert scores["r2"] == pytest.approx(skm.r2_score(target, out, sample_weight=w), rel=1e-9)
    assert scores["mae"] == pytest.approx(
        skm.mean_absolute_error(target, out, sample_weight=w), rel=1e-9)


def snapshot(model):
    return (model.params.copy(), model.history_, model._rng.get_state()[2],
            getattr(model, "classes_", None), model.optimizer)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sample_weight=-np.ones(60)), "negative"),
    (dict(sample_weight=np.r_[np.ones(59), np.nan]), "NaN"),
    (dict(sample_weight=np.ones(59)), "59 values, X has 60 samples"),
    (dict(sample_weight=np.ones(59), class_weight="balanced"), "59 values, y has 60 samples"),
    (dict(sample_weight=np.zeros(60)), "zero everywhere"),
    (dict(class_weight={0: 1.0, 7: 2.0}), "7"),
    (dict(class_weight={0: -1.0}), "class_weight"),
    (dict(class_weight="even"), "class_weight"),
    (dict(class_weight={"a": 0.0, "b": 0.0, "c": 0.0}, labels=True), "zero everywhere"),
    (dict(validation_fraction=0.25, sample_weight=np.r_[np.zeros(59), 1.0]), "weight 0"),
    (dict(metrics=["precision"]), "unknown metric"),
    (dict(metrics=["r2"], validation_fraction=0.2), "regression metric"),
    (dict(metrics="f1", validation_fraction=0.2), "sequence"),
    (dict(metrics=["f1"]), "validation"),
    (dict(validation_data=(np.zeros((2, 4)), ["a", "zebra"]), labels=True), "zebra"),
    (dict(comm=object(), sample_weight=np.ones(60)), "comm"),
])
def test_bad_weights_labels_and_metrics_raise_before_anything_changes(kwargs, message):
    X, y = blobs(60)
    model = classifier()
    model.fit(X, y, epochs=1, verbose=0)  # a history and an optimizer state to keep
    if kwargs.pop("labels", False):
        y = np.array(["a", "b", "c"])[y]
        model = classifier()
        model.fit(X, y, epochs=1, verbose=0)
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, epochs=1, verbose=0, **kwargs)
    after = snapshot(model)
    np.testing.assert_array_equal(after[0], before[0])
    assert after[1] is before[1] and after[2] == before[2] and after[4] is before[4]
    assert after[3] is before[3]


def test_class_weight_is_for_classifiers_only():
    X, y = blobs(30)
    reg = regressor()
    before = reg.params.copy()
    with pytest.raises(ValueError, match="classifiers"):
        reg.fit(X, X[:, 0], epochs=1, verbose=0, class_weight="balanced")
    np.testing.assert_array_equal(reg.params, before)
    assert reg.history_ is None


# ---------------------------------------------------------------- labels
def test_text_labels_round_trip_through_fit_predict_evaluate_and_files(tmp_path):
    X, y = blobs(60)
    names = np.array(["cat", "dog", "emu"])
    text = classifier()
    text.fit(X, list(names[y]), epochs=2, verbose=0, validation_data=(X[:9], names[y[:9]]))
    indices = classifier()
    indices.fit(X, y, epochs=2, verbose=0, validation_data=(X[:9], y[:9]))
    np.testing.assert_array_equal(text.params, indices.params)  # the same fit
    np.testing.assert_array_equal(text.classes_, names)
    np.testing.assert_array_equal(text.predict(X), names[indices.predict(X)])
    assert text.evaluate(X, names[y]) == indices.evaluate(X, y)
    assert text.loss_and_grad(X, names[y])[0] == indices.loss_and_grad(X, y)[0]
    # integer labels keep meaning output indices: no classes_, integer predictions
    assert not hasattr(indices, "classes_")
    assert indices.predict(X).dtype.kind == "i"
    again = fastbp.load(text.save(tmp_path / "text.fastbp"))
    np.testing.assert_array_equal(again.predict(X), text.predict(X))
    np.testing.assert_array_equal(again.classes_, names)
    again.fit(X, names[y], epochs=1, verbose=0, optimizer=again.optimizer)  # same labels
    before = again.params.copy()
    with pytest.raises(ValueError, match="'fox'"):
        again.fit(X[:3], ["cat", "fox", "dog"], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="does not know"):
        again.evaluate(X[:3], [0, 1, 2])  # numbers are not its labels
    np.testing.assert_array_equal(again.params, before)
    assert again.astype("float32").predict(X[:5]).tolist() == again.predict(X[:5]).tolist()


def test_labels_need_one_output_unit_each_and_a_model_that_knows_them():
    X, y = blobs(30)
    model = fastbp.MLP([4, 6, 4], dtype="float64", seed=0)
    with pytest.raises(ValueError, match="3 distinct labels"):
        model.fit(X, np.array(["a", "b", "c"])[y], epochs=1, verbose=0)
    assert not hasattr(model, "classes_") and model.history_ is None
    with pytest.raises(ValueError, match="no classes_"):
        classifier().evaluate(X, np.array(["a", "b", "c"])[y])


def test_class_weight_and_balanced_speak_the_labels_of_y():
    X, y = blobs(50)
    names = np.array(["a", "b", "c"])
    by_label = classifier()
    full_batch_sgd(by_label, X, names[y], class_weight={"a": 2.0, "c": 0.5})
    by_index = classifier()
    full_batch_sgd(by_index, X, y, class_weight={0: 2.0, 2: 0.5})
    np.testing.assert_array_equal(by_label.params, by_index.params)
    balanced = classifier()
    full_batch_sgd(balanced, X, names[y], class_weight="balanced")
    assert_close(balanced.params, full_batch_sgd(classifier(), X, y, class_weight="balanced"),
                 np.float64)


def test_a_model_whose_classes_were_set_by_others_predicts_indices():
    # the command line sets classes_ itself and looks the predicted indices up in it
    X, y = blobs(30)
    model = classifier()
    model.classes_ = np.array(["x", "y", "z"])
    model.fit(X, y, epochs=1, verbose=0)
    assert model.predict(X).dtype.kind == "i"
    assert model.evaluate(X, y) == model.evaluate(X, model.classes_[y])


# ---------------------------------------------------------------- metrics
def test_metrics_are_recorded_every_epoch_and_match_the_restored_weights(tmp_path):
    from sklearn.metrics import f1_score, log_loss
    X, y = blobs(90)
    X_val, y_val = blobs(45, seed=1)
    model = classifier()
    history = model.fit(X, y, optimizer=SGD(lr=0.3), epochs=6, batch_size=8, verbose=0,
                        validation_data=(X_val, y_val), metrics=["f1", "log_loss", "accuracy"])
    assert set(history.val_metrics) == {"f1", "log_loss", "accuracy"}
    assert all(len(v) == 6 for v in history.val_metrics.values())
    assert history.val_metrics["accuracy"] == history.val_metric
    best = history.best_epoch  # restore_best: the model holds that epoch's weights
    assert history.val_metrics["f1"][best] == pytest.approx(
        f1_score(y_val, model.predict(X_val), average="macro"), rel=1e-12)
    assert history.val_metrics["log_loss"][best] == pytest.approx(
        log_loss(y_val, model.predict_proba(X_val)), rel=1e-9)
    table = history.as_dict()
    assert list(table) == ["loss", "val_loss", "val_accuracy", "val_f1", "val_log_loss",
                           "epoch_time"]
    rows = list(csv.DictReader(history.to_csv().splitlines()))
    assert [float(r["val_f1"]) for r in rows] == history.val_metrics["f1"]
    again = fastbp.load(model.save(tmp_path / "m.fastbp"))
    assert again.history_.val_metrics == history.val_metrics
    assert again.history_.as_dict() == table


def test_regression_metrics_and_the_default_history():
    from sklearn.metrics import mean_absolute_error, r2_score
    X, _ = blobs(60)
    target = X @ [1.0, -0.5, 0.25, 0.0]
    model = regressor()
    history = model.fit(X, target, epochs=3, verbose=0, validation_fraction=0.25,
                        restore_best=False, metrics=("mae", "r2"))
    assert list(history.as_dict()) == ["loss", "val_loss", "val_r2", "val_mae", "epoch_time"]
    with pytest.raises(ValueError, match="classification metric"):
        model.fit(X, target, epochs=1, verbose=0, validation_fraction=0.25, metrics=["f1"])
    # without metrics= the record is what it always was
    plain = regressor().fit(X, target, epochs=2, verbose=0, validation_fraction=0.25)
    assert plain.val_metrics == {} and "val_metrics" not in plain._to_state()
    assert list(plain.as_dict()) == ["loss", "val_loss", "val_r2", "epoch_time"]
    # the last epoch's scores, recomputed on a fit whose held-out rows are given explicitly
    twin = regressor()
    rng = np.random.RandomState()
    rng.set_state(twin._rng.get_state())
    held = rng.permutation(60)[:15]
    twin_history = twin.fit(X, target, epochs=3, verbose=0, validation_fraction=0.25,
                            restore_best=False, metrics=("mae", "r2"))
    out = twin.predict(X[held])
    assert twin_history.val_metrics["mae"][-1] == pytest.approx(
        mean_absolute_error(target[held], out), rel=1e-9)
    assert twin_history.val_metrics["r2"][-1] == pytest.approx(
        r2_score(target[held], out), rel=1e-9)
    assert history.val_metrics == twin_history.val_metrics


def test_early_stopping_and_the_csv_log_see_the_metrics(tmp_path):
    X, y = blobs(90)
    X_val, y_val = blobs(45, seed=1)
    stop = EarlyStopping(monitor="val_f1", patience=2)  # 'auto' maximises an F1
    assert stop.mode == "max" and EarlyStopping(monitor="val_log_loss").mode == "min"
    path = tmp_path / "log.csv"
    model = classifier()
    history = model.fit(X, y, optimizer=SGD(lr=1.0, momentum=0.9), epochs=40, batch_size=8,
                        verbose=0, validation_data=(X_val, y_val), metrics=["f1"],
                        callbacks=[stop, CSVLogger(path)])
    f1 = history.val_metrics["f1"]
    assert history.stop_reason == "callback" and stop.stopped_epoch == len(f1) - 1 < 39
    assert stop.best == max(f1) and max(f1[-2:]) <= max(f1[:-2])
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [float(r["val_f1"]) for r in rows] == f1
