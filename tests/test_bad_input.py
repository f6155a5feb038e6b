"""Bad input at every public entry point: one table of cases, run against each.

``CASES`` has one row per kind of bad input: how to build it for each kind of
entry point (``ENTRY_POINTS``) and what each entry point must do with it.
Either it works, and then its result equals that of the equivalent clean input
(``clean``) or passes the row's ``check``; or it raises a ValueError/TypeError
whose message names the problem, and the model it was called on (parameters,
optimizer state, history, generator, every attribute) is left exactly as it was.
The command line instead exits with status 2 after one line on stderr,
``fastbp: error: ...``, leaving its ``--out`` file alone.

Outcomes are looked up by entry point: an exact id wins, then the first
matching glob.
"""
import dataclasses
import fnmatch
import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable, NamedTuple

import numpy as np
import pytest

import fastbp
from fastbp import io as fastbp_io

pytestmark = [pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")]

N = 30
X = np.random.default_rng(0).normal(size=(N, 3))
Y = {"clf": np.arange(N) % 3, "reg": X @ [1.0, -2.0, 0.5]}
# the command line's data: enough rows for its test and validation splits
CLI_X = np.random.default_rng(1).normal(size=(60, 3))
CLI_Y = np.arange(60) % 3


# ------------------------------------------------------------------------------ outcomes
class Raises(NamedTuple):
    exc: type
    match: str  # re.search in the message (the command line: in its one stderr line)


class WorksOr(NamedTuple):
    """Either outcome is right: works as checked, or raises ``alternative``."""
    alternative: Raises


WORKS = "works"


def raises(match, exc=ValueError):
    return Raises(exc, match)


# ------------------------------------------------------------------------------ inputs
def with_value(a, value):
    """A float copy of ``a`` whose first entry is ``value``."""
    a = np.array(a, dtype=float)
    a.flat[0] = value
    return a


def strided(a):
    """The same values as a non-contiguous view: every other row of a Fortran-ordered array."""
    return np.asfortranarray(np.repeat(a, 2, axis=0))[::2]


def read_only(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


def altered(change):
    """A model-file builder: the good file with ``change(arrays, meta)`` applied, under a
    valid checksum so that the check under test is the one that refuses it."""
    def build(good, path):
        with np.load(good) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(arrays.pop("meta").tobytes())
        change(arrays, meta)
        meta["sha256"] = fastbp_io._digest(arrays)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with open(path, "wb") as f:  # a path would get '.npz' appended
            np.savez(f, **arrays)  # an object array is pickled: load must refuse it
        return path
    return build


def set_array(name, make):
    return altered(lambda arrays, meta: arrays.__setitem__(name, make(arrays[name])))


def set_arch(key, value):
    return altered(lambda arrays, meta: meta["architecture"].__setitem__(key, value))


def read_only_file(good, path):
    shutil.copy(good, path)
    os.chmod(path, 0o444)
    return path


def text_cell_csv(X, y):
    """The data as CSV text whose feature 'b' holds a word on line 5."""
    rows = [["a", "b", "c", "y"]] + [[*map(str, x), str(t)] for x, t in zip(X, y)]
    rows[4][1] = "abc"
    return "".join(",".join(row) + "\n" for row in rows)


# ------------------------------------------------------------------------------ checks
def assert_finite(result):
    for value in leaves(result):
        assert np.all(np.isfinite(value)), result


def leaves(result):
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, (list, tuple)):
        return [leaf for item in result for leaf in leaves(item)]
    return [np.asarray(result)]


def assert_same(result, expected):
    got, want = leaves(result), leaves(expected)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def method_of(entry):
    return entry.split(".")[1].split("/")[0]


def weights(obj):
    if isinstance(obj, fastbp.MLP):
        return obj.params.copy()
    return np.concatenate([a.ravel() for a in obj.coefs_ + obj.intercepts_])


def trained(result, ctx):
    """A fit that changed the weights, to finite values."""
    assert_finite(result)
    assert not np.array_equal(weights(ctx.target), weights(ctx.fresh()))


def check_one_sample(entry, result, ctx):
    method, x1, y1 = method_of(entry), ctx.X, ctx.y
    fresh = ctx.fresh()
    if method in ("predict", "predict_proba"):  # the row's result among all rows'
        # (to rounding: one row and a batch take different summation orders)
        np.testing.assert_allclose(result, getattr(fresh, method)(X)[:1], rtol=1e-5, atol=1e-6)
    elif method in ("fit", "partial_fit"):
        trained(result, ctx)
        if entry == "MLPClassifier.fit":  # one sample is one class: scikit-learn accepts it
            assert list(ctx.target.classes_) == [y1[0]] and ctx.target.predict(X)[0] == y1[0]
    elif method in ("evaluate", "loss_and_grad"):  # the loss, from the forward pass by hand
        if ctx.kind == "clf":
            expected = -np.log(fresh.predict_proba(x1)[0, y1[0]])
        else:
            expected = 0.5 * (fresh.predict(x1)[0] - y1[0]) ** 2
        assert_finite(result)
        loss = result["loss"] if method == "evaluate" else result[0]
        assert loss == pytest.approx(expected, rel=1e-4)
    elif entry == "MLPClassifier.score":
        assert result == float(fresh.predict(x1)[0] == y1[0])
    else:  # MLPRegressor.score: R² of one sample is undefined, scikit-learn says so
        assert np.isnan(result)
        assert any("R^2 score is not well-defined" in str(w.message) for w in ctx.warnings)


def check_one_class(entry, result, ctx):
    fresh, method = ctx.fresh(), method_of(entry)
    assert_finite(result)
    if entry == "MLP.fit/clf":  # trained toward the one class
        assert (ctx.target.predict_proba(X)[:, 0].mean() > fresh.predict_proba(X)[:, 0].mean())
    elif method == "evaluate":
        assert result["accuracy"] == np.mean(fresh.predict(X) == 0)
        assert result["loss"] == pytest.approx(-np.log(fresh.predict_proba(X)[:, 0]).mean(),
                                               rel=1e-4)
    elif method == "loss_and_grad":
        assert result[0] == pytest.approx(fresh.evaluate(X, np.zeros(N, int))["loss"], rel=1e-5)
    elif entry == "MLPClassifier.fit":
        assert list(ctx.target.classes_) == [0] and set(ctx.target.predict(X)) == {0}
    elif entry == "MLPClassifier.partial_fit":  # a batch with one of the known classes
        trained(result, ctx)
        assert list(ctx.target.classes_) == [0, 1, 2]
    else:  # score
        assert result == np.mean(fresh.predict(X) == 0)


def check_unseen(entry, result, ctx):
    if entry == "MLPClassifier.fit":  # a new fit learns the new label: 7 where 2 was
        assert list(ctx.target.classes_) == [0, 1, 7]
        before = ctx.fresh().predict(X)
        np.testing.assert_array_equal(ctx.target.predict(X), np.where(before == 2, 7, before))
    else:  # score: the unseen label counts as a miss
        assert result == np.mean(ctx.fresh().predict(X) == ctx.y)


def check_refit(entry, result, ctx):
    """scikit-learn's fit starts afresh: other features or outputs are a new problem."""
    trained(result, ctx)
    est = ctx.target
    assert est.n_features_in_ == ctx.X.shape[1] and est.coefs_[0].shape[0] == ctx.X.shape[1]
    n_outputs = 1 if ctx.y.ndim == 1 else ctx.y.shape[1]
    assert est.predict(ctx.X).shape == ((N,) if n_outputs == 1 else (N, n_outputs))


def check_huge(entry, result, ctx):
    """Finite results; regression losses agree with float64 arithmetic."""
    assert_finite(result)
    method = method_of(entry)
    if method in ("fit", "partial_fit"):
        trained(result, ctx)
        assert_finite(ctx.target.predict(ctx.X))
    elif method in ("evaluate", "loss_and_grad") and ctx.kind == "reg":
        pred = ctx.fresh().predict(ctx.X).astype(np.float64)
        expected = 0.5 * np.mean((pred - ctx.y) ** 2)
        assert (result["loss"] if method == "evaluate" else result[0]) == pytest.approx(
            expected, rel=1e-4)


# ------------------------------------------------------------------------------ the table
@dataclass
class Case:
    expect: dict  # entry-point id or glob(s) → outcome
    X: Callable = None  # X → bad X, for every entry point taking data (and the CLI's file)
    y: Callable = None  # y → bad y
    kw: dict = field(default_factory=dict)  # MLP method → keyword arguments
    est: dict = field(default_factory=dict)  # estimators: set_params before the call
    params: Callable = None  # a model's params → the value given to MLP.params
    ctor: dict = None  # MLP(**ctor)
    load: Callable = None  # (good model file, path) → the file given to fastbp.load
    cli: tuple = ()  # extra arguments of `fastbp train`, or ("predict", ...)
    csv: Callable = None  # (X, y) → CSV text: the CLI's data file instead of an .npz
    clean: dict = None  # 'works': the same call with these fields instead gives the same result
    check: Callable = None  # 'works' without an equivalent clean input: check(entry, result, ctx)


NATIVE = "MLP.*/*"  # fit, predict, predict_proba, evaluate, loss_and_grad of MLP
EST = "MLP[CR]*"  # MLPClassifier and MLPRegressor
EST_Y = ("MLP[CR]*.fit", "MLP[CR]*.partial_fit", "MLP[CR]*.score")
EST_FIT = ("MLP[CR]*.fit", "MLP[CR]*.partial_fit")


def y_entries(kind):
    """The MLP methods taking y, of a classifier ('clf'), a regressor ('reg') or both ('*')."""
    return tuple(f"MLP.{m}/{kind}" for m in ("fit", "evaluate", "loss_and_grad"))


NATIVE_Y = y_entries("*")
NAN = raises("X contains NaN or infinity")
UNSET = dict(X=None, y=None, params=None, load=None)  # clean: the unaltered input

CASES = {
    "nan_X": Case(
        X=lambda X: with_value(X, np.nan), params=lambda p: with_value(p, np.nan),
        load=set_array("params", lambda p: with_value(p, np.nan).astype(p.dtype)),
        expect={NATIVE: NAN, EST: raises("Input X contains NaN"),
                "MLP.params": raises("params contains NaN or infinity"),
                "load": raises("params contains NaN or infinity"),
                "cli": raises("features contain NaN or infinity")}),
    "inf_X": Case(
        X=lambda X: with_value(X, -np.inf), params=lambda p: with_value(p, np.inf),
        load=set_array("params", lambda p: with_value(p, np.inf).astype(p.dtype)),
        expect={NATIVE: NAN, EST: raises("Input X contains infinity"),
                "MLP.params": raises("params contains NaN or infinity"),
                "load": raises("params contains NaN or infinity"),
                "cli": raises("features contain NaN or infinity")}),
    "nan_y": Case(
        y=lambda y: with_value(y, np.nan),
        load=set_array("optimizer_state", lambda s: with_value(s, np.nan).astype(s.dtype)),
        expect={NATIVE_Y: raises("y contains NaN or infinity"), EST_Y: raises("contains NaN"),
                "load": raises("optimizer_state contains NaN or infinity"),
                "cli": raises("target contains NaN or infinity")}),
    "inf_y": Case(
        y=lambda y: with_value(y, np.inf),
        load=set_array("optimizer_state", lambda s: with_value(s, np.inf).astype(s.dtype)),
        expect={NATIVE_Y: raises("y contains NaN or infinity"),
                EST_Y: raises("contains infinity"),
                "load": raises("optimizer_state contains NaN or infinity"),
                "cli": raises("target contains NaN or infinity")}),
    "X_1d": Case(
        X=lambda X: X[:, 0], params=lambda p: p[None],
        load=set_array("params", lambda p: p[None]),
        expect={NATIVE: raises(r"X must be 2-D, got shape \(30,\)"),
                EST: raises("Expected 2D array, got 1D array"),
                "MLP.params": raises(r"params must be 1-D, got shape \(1, \d+\)"),
                "load": raises(r"\(1, \d+\) float32 parameters do not fit"),
                "cli": raises(r"X must be 2-d, got shape \(60,\)")}),
    "wrong_n_features": Case(
        X=lambda X: X[:, :2], params=lambda p: p[:-1],
        load=set_array("params", lambda p: p[:-1]), cli=("predict",),
        check=check_refit,
        expect={NATIVE: raises("X has 2 features, the model expects 3"),
                "MLP[CR]*.fit": WORKS,  # scikit-learn's fit starts a new model
                EST: raises("X has 2 features, but MLP[CR]\\w+ is expecting 3"),
                "MLP.params": raises(r"params must have shape \(\d+,\)"),
                "load": raises("parameters do not fit the architecture"),
                "cli": raises("2 features, the model takes 3")}),
    "wrong_y_shape": Case(
        y=lambda y: np.c_[y, y], check=check_refit,
        expect={y_entries("clf"): raises(r"y must have shape \(30,\) integer labels or "
                                         r"\(30, 3\)"),
                y_entries("reg"): raises(r"y must have shape \(30,\) or \(30, 1\)"),
                "MLPClassifier.fit": raises("Multioutput target data is not supported"),
                "MLPClassifier.partial_fit": raises("Unknown label type"),
                "MLPClassifier.score": raises("multiclass-multioutput"),
                "MLPRegressor.fit": WORKS,  # a new fit, of two outputs
                "MLPRegressor.partial_fit": raises("output"),
                "MLPRegressor.score": raises("different number of output"),
                "cli": raises(r"y must be 1-d \(one target per row\), got shape \(60, 2\)")}),
    "mismatched_lengths": Case(
        y=lambda y: y[:-1],
        load=set_array("optimizer_state", lambda s: s[:, :-1]),
        expect={NATIVE_Y: raises("y has 29 samples, X has 30"),
                EST_Y: raises(r"inconsistent numbers of samples: \[(30, 29|29, 30)\]"),
                "load": raises(r"optimizer state \(2, \d+\) does not fit Adam"),
                "cli": raises("X has 60 rows but y has 59")}),
    "zero_samples": Case(
        X=lambda X: X[:0], y=lambda y: y[:0], params=lambda p: p[:0],
        load=set_array("params", lambda p: p[:0]),
        expect={NATIVE: raises(r"X has no samples \(shape \(0, 3\)\)"),
                EST: raises(r"Found array with 0 sample\(s\)"),
                "MLP.params": raises("params is empty"),
                "load": raises(r"\(0,\) float32 parameters do not fit"),
                "cli": raises(r"X has no rows \(shape \(0, 3\)\)")}),
    "zero_features": Case(
        X=lambda X: X[:, :0], ctor=dict(layer_sizes=[0, 5, 3]),
        load=set_arch("layer_sizes", [0, 5, 3]),
        expect={NATIVE: raises(r"X has no features \(shape \(30, 0\)\)"),
                EST: raises(r"Found array with 0 feature\(s\)"),
                "MLP()": raises(r"layer sizes must be positive integers, got \[0, 5, 3\]"),
                "load": raises("architecture cannot be rebuilt"),
                "cli": raises(r"X has no columns \(shape \(60, 0\)\)")}),
    "one_sample": Case(
        X=lambda X: X[:1], y=lambda y: y[:1], cli=("--task", "regression"),
        check=check_one_sample,
        expect={NATIVE: WORKS, EST: WORKS,
                "cli": raises("cannot split 1 samples for testing")}),
    "one_class": Case(
        y=lambda y: np.zeros_like(y), check=check_one_class,
        expect={y_entries("clf"): WORKS,
                ("MLPClassifier.fit", "MLPClassifier.partial_fit",
                 "MLPClassifier.score"): WORKS,
                "cli": raises("the target has a single class")}),
    "unseen_label": Case(
        y=lambda y: np.where(y == 2, 7, y), check=check_unseen,
        expect={y_entries("clf"): raises(r"integer class labels in \[0, 3\)"),
                "MLPClassifier.fit": WORKS,
                "MLPClassifier.partial_fit": raises("`y` has classes not in `self.classes_`"),
                "MLPClassifier.score": WORKS}),
    "string_X": Case(
        X=lambda X: np.full(X.shape, "abc"), params=lambda p: p.astype(str),
        load=set_array("params", lambda p: p.astype(str)), csv=text_cell_csv,
        expect={NATIVE: raises("X must be numeric, got dtype <U3"),
                EST_FIT: raises("could not convert string to float"),
                EST: raises("not compatible with arrays of bytes/strings"),
                "MLP.params": raises("params must be numeric, got dtype <U"),
                "load": raises("<U\\d+ parameters do not fit"),
                "cli": raises("line 5, column 'b': 'abc' is not a number")}),
    "object_X": Case(
        X=lambda X: X.astype(object), params=lambda p: p.astype(object),
        load=set_array("params", lambda p: p.astype(object)),
        clean=dict(X=None),
        expect={NATIVE: raises("X must be numeric, got dtype object"),
                EST: WORKS,  # scikit-learn converts numbers held as objects
                "MLP.params": raises("params must be numeric, got dtype object"),
                "load": raises("pickled Python objects, which fastbp never loads"),
                "cli": raises("cannot read the .npz")}),
    "non_contiguous": Case(
        X=strided, y=strided, params=strided, clean=UNSET,
        expect={NATIVE: WORKS, EST: WORKS, "MLP.params": WORKS}),
    "read_only": Case(
        X=read_only, y=read_only, params=read_only, load=read_only_file, clean=UNSET,
        expect={NATIVE: WORKS, EST: WORKS, "MLP.params": WORKS, "load": WORKS}),
    # 1e30 squared overflows float32: a float32 model refuses such values, naming the
    # limit (its inputs, params and files alike); float64 (the estimators'
    # default) takes them. The command line standardises its inputs, so it works.
    "huge_X": Case(
        X=lambda X: X * 1e30, params=lambda p: with_value(p, 1e30),
        load=set_array("params", lambda p: with_value(p, 1e30).astype(p.dtype)),
        check=check_huge,
        expect={NATIVE: raises("X holds values up to 2\\.33e\\+30 in magnitude, too large "
                               "for float32"),
                EST: WORKS,
                "MLP.params": raises("params holds values up to 1e\\+30 in magnitude, too "
                                     "large for float32"),
                "load": raises("params holds values up to 1e\\+30 in magnitude"),
                "cli": WORKS}),
    "huge_X_float32": Case(
        X=lambda X: (X * 1e30).astype(np.float32), check=check_huge,
        expect={NATIVE: raises("X holds values up to 2\\.33e\\+30 in magnitude, too large "
                               "for float32"),
                "MLP[CR]*.fit": raises("too large|non-finite", ValueError),
                EST: WORKS}),  # partial_fit, predict, score: in the float64 of the fitted model
    "huge_y": Case(
        y=lambda y: y * 1e30 + 0.5, check=check_huge,
        expect={y_entries("clf"): raises(r"integer class labels in \[0, 3\)"),
                "MLP.fit/reg": raises("y .*(too large|overflow)"),
                # the loss is summed in float64: right, unless y gets X's limit too
                y_entries("reg"): WorksOr(raises("y .*(too large|overflow)")),
                "MLPClassifier.fit": raises("Unknown label type"),
                "MLPClassifier.partial_fit": raises("Unknown label type"),
                "MLPClassifier.score": raises("can't handle a mix of continuous"),
                ("MLPRegressor.fit", "MLPRegressor.partial_fit",
                 "MLPRegressor.score"): WORKS,
                "cli": WORKS}),
    "int_X": Case(
        X=lambda X: np.round(X * 3).astype(np.int64),
        params=lambda p: np.round(p * 10).astype(np.int32), cli=("predict",),
        clean=dict(X=lambda X: np.round(X * 3), params=lambda p: np.round(p * 10)),
        expect={NATIVE: WORKS, EST: WORKS, "MLP.params": WORKS, "cli": WORKS}),
    "bool_X": Case(
        X=lambda X: X > 0, params=lambda p: p > 0, cli=("predict",),
        clean=dict(X=lambda X: (X > 0).astype(float), params=lambda p: (p > 0).astype(float)),
        expect={NATIVE: WORKS, EST: WORKS, "MLP.params": WORKS, "cli": WORKS}),
    "param_wrong_type": Case(  # a number given as a string, and the like
        kw={"fit": dict(epochs="2"), "loss_and_grad": dict(l2="0.1")},
        est=dict(learning_rate_init="0.1"), params=lambda p: p.astype(complex),
        ctor=dict(layer_sizes=[3, "5", 3]),
        load=altered(lambda arrays, meta: meta["optimizer"].__setitem__("step", "x")),
        cli=("--epochs", "x"),
        # scikit-learn validates parameters at the first fit only: partial_fit on a fitted
        # estimator skips that by design (sklearn.base._fit_context), hence no cell for it
        expect={"MLP.fit/*": raises("epochs must be an integer >= 1, got '2'"),
                "MLP.loss_and_grad/*": raises("l2", (ValueError, TypeError)),
                "MLP[CR]*.fit": raises("'learning_rate_init' parameter of MLP[CR]\\w+ must be"),
                "MLP.params": raises("params must be numeric, got dtype complex128"),
                "MLP()": raises(r"layer sizes must be positive integers, got \[3, '5', 3\]"),
                "load": raises("the metadata is malformed"),
                "cli": raises("argument --epochs: invalid int value: 'x'")}),
    "param_wrong_kind": Case(  # None or a number where a list or a name belongs
        kw={"fit": dict(callbacks=None)}, est=dict(activation=3),
        ctor=dict(layer_sizes=[3, 5, 3], activation=3),
        load=set_arch("activation", 3), cli=("--hidden", "4,x"),
        expect={"MLP.fit/*": raises("callbacks", (ValueError, TypeError)),
                "MLP()": raises("activation", (ValueError, TypeError)),
                "MLP[CR]*.fit": raises("'activation' parameter of MLP[CR]\\w+ must be"),
                "load": raises("the architecture cannot be rebuilt"),
                "cli": raises("--hidden must be comma-separated integers, got '4,x'")}),
    "size_zero": Case(
        kw={"fit": dict(batch_size=0)}, est=dict(hidden_layer_sizes=(0,)),
        ctor=dict(layer_sizes=[3, 0, 3]), load=set_arch("layer_sizes", [3, 0, 3]),
        cli=("--batch-size", "0"),
        expect={"MLP.fit/*": raises("batch_size must be an integer >= 1, got 0"),
                EST_FIT: raises(r"hidden_layer_sizes must be > 0, got \[0\]"),
                "MLP()": raises(r"layer sizes must be positive integers, got \[3, 0, 3\]"),
                "load": raises("architecture cannot be rebuilt .*positive integers"),
                "cli": raises("--batch-size must be a positive integer, got 0")}),
    "size_negative": Case(
        kw={"fit": dict(batch_size=-3)}, est=dict(batch_size=-3),
        ctor=dict(layer_sizes=[3, -2, 3]), load=set_arch("layer_sizes", [3, -2, 3]),
        cli=("--hidden", "-2"),
        expect={"MLP.fit/*": raises("batch_size must be an integer >= 1, got -3"),
                "MLP[CR]*.fit": raises("'batch_size' parameter of MLP[CR]\\w+ must be"),
                "MLP()": raises(r"layer sizes must be positive integers, got \[3, -2, 3\]"),
                "load": raises("architecture cannot be rebuilt .*positive integers"),
                "cli": raises("--hidden must be positive integers, got '-2'")}),
    "batch_larger_than_data": Case(  # capped at the number of samples
        kw={"fit": dict(batch_size=1000)}, est=dict(batch_size=1000),
        cli=("--batch-size", "100000"),
        clean=dict(kw={"fit": dict(batch_size=N)}, est=dict(batch_size=N)),
        expect={"MLP.fit/*": WORKS, EST_FIT: WORKS, "cli": WORKS}),
}

KINDS = ("clf", "reg")
ENTRY_POINTS = (
    [f"MLP.{m}/{k}" for k in KINDS
     for m in ("fit", "predict", "predict_proba", "evaluate", "loss_and_grad")
     if (k, m) != ("reg", "predict_proba")]
    + ["MLP.params", "MLP()", "load"]
    + [f"{cls}.{m}" for cls in ("MLPClassifier", "MLPRegressor")
       for m in ("fit", "partial_fit", "predict", "predict_proba", "score")
       if (cls, m) != ("MLPRegressor", "predict_proba")]
    + ["cli"])


def outcome(case, entry):
    if entry in case.expect:
        return case.expect[entry]
    for key, value in case.expect.items():
        if any(fnmatch.fnmatchcase(entry, k) for k in ((key,) if isinstance(key, str) else key)):
            return value
    return None


def cells(cli):
    return list(_cells(cli))


def _cells(cli):
    for name, case in CASES.items():
        for entry in ENTRY_POINTS:
            expected = outcome(case, entry)
            if expected is None or (entry == "cli") != cli:
                continue
            yield pytest.param(name, entry, expected, id=f"{name}-{entry}")


# ------------------------------------------------------------------------------ running
def native_model(kind):
    """A small trained MLP: with optimizer state, history and a used generator."""
    model = fastbp.MLP([3, 5, 3] if kind == "clf" else [3, 5, 1],
                       output="softmax" if kind == "clf" else "identity", seed=0)
    model.fit(X, Y[kind], epochs=1, batch_size=8, verbose=0, n_jobs=1)
    return model


def estimator(cls):
    est = getattr(fastbp, cls)(hidden_layer_sizes=(5,), max_iter=3, batch_size=8,
                               random_state=0, n_jobs=1)
    return est.fit(X, Y["clf" if cls == "MLPClassifier" else "reg"])


def kind_of(entry):
    if entry.startswith("MLP."):
        return entry.split("/")[1] if "/" in entry else "clf"
    return "clf" if entry.startswith("MLPClassifier") else "reg"


def make_target(entry, case):
    """What the entry point acts on: a trained model or estimator (None for MLP() and load)."""
    if entry.startswith("MLP."):
        return native_model(kind_of(entry))
    if entry in ("MLP()", "load"):
        return None
    est = estimator(entry.split(".")[0])
    return est.set_params(**case.est)  # the bad parameter is part of the input


def data(case, kind, X=X, y=None):
    """The case's (X, y), from the clean data of a classifier or regressor."""
    y = Y[kind] if y is None else y
    return (X if case.X is None else case.X(X)), (y if case.y is None else case.y(y))


def invoke(entry, target, case, tmp_path):
    """Call the entry point on the case's input; its result in comparable form."""
    Xb, yb = data(case, kind_of(entry))
    if entry == "MLP.params":
        target.params = target.params.copy() if case.params is None else case.params(
            target.params.copy())
        return target.params.copy()
    if entry == "MLP()":
        return fastbp.MLP(seed=0, **case.ctor).params
    if entry == "load":
        good = native_model("clf").save(tmp_path / "good.fastbp")
        path = good if case.load is None else case.load(good, tmp_path / "bad.fastbp")
        return fastbp.load(path).params.copy()
    method = method_of(entry)
    if entry.startswith("MLP."):
        kw = case.kw.get(method, {})
        if method == "fit":
            args = dict(optimizer=target.optimizer, epochs=2, batch_size=8, verbose=0, n_jobs=1)
            history = target.fit(Xb, yb, **{**args, **kw})
            return dict(params=target.params.copy(), state=target._opt_state.buffers.copy(),
                        loss=np.array(history.loss), diverged=history.stop_reason == "diverged")
        return getattr(target, method)(*((Xb,) if method.startswith("predict") else (Xb, yb)),
                                       **kw)
    if method in ("fit", "partial_fit"):
        getattr(target, method)(Xb, yb)
        return [a.copy() for a in target.coefs_ + target.intercepts_]
    return getattr(target, method)(*((Xb,) if method.startswith("predict") else (Xb, yb)))


def freeze(obj, seen=None):
    """A comparable copy of an object's whole state: arrays as bytes, generators as state."""
    seen = set() if seen is None else seen
    if isinstance(obj, np.ndarray):
        return ("array", obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, np.random.RandomState):
        return freeze(obj.get_state(), seen)
    if isinstance(obj, float):
        return repr(obj)  # NaN equals NaN
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [freeze(v, seen) for v in obj])
    if isinstance(obj, dict):
        return {k: freeze(v, seen) for k, v in obj.items()}
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        if id(obj) in seen:
            return ("seen", type(obj).__name__)
        seen.add(id(obj))
        return (type(obj).__name__, {k: freeze(v, seen) for k, v in vars(obj).items()})
    return obj


def assert_unchanged(target, before):
    after = freeze(target)
    changed = sorted(k for k in before[1].keys() | after[1].keys()
                     if before[1].get(k) != after[1].get(k))
    assert not changed, f"state changed before the error: {changed}"


@pytest.mark.parametrize("name,entry,expected", cells(cli=False))
def test_entry_point(name, entry, expected, tmp_path):
    case = CASES[name]
    target = make_target(entry, case)
    before = None if target is None else freeze(target)
    failure = expected.alternative if isinstance(expected, WorksOr) else expected
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = invoke(entry, target, case, tmp_path)
        except (ValueError, TypeError) as exc:
            if not isinstance(failure, Raises) or not isinstance(exc, failure.exc):
                raise
            assert re.search(failure.match, str(exc)), f"{str(exc)!r} does not match " \
                                                       f"{failure.match!r}"
            if target is not None:
                assert_unchanged(target, before)
            return
    assert expected is WORKS or isinstance(expected, WorksOr), (
        f"no error; expected {expected.exc.__name__} matching {expected.match!r}")
    if entry.startswith("MLP.fit"):
        assert not result["diverged"]
    Xb, yb = data(case, kind_of(entry))
    ctx = SimpleNamespace(target=target, kind=kind_of(entry), X=Xb, y=yb, warnings=caught,
                          fresh=lambda: make_target(entry, Case({})))
    if case.clean is not None:
        reference = dataclasses.replace(case, **case.clean)
        assert_finite(result)
        assert_same(result, invoke(entry, make_target(entry, reference), reference, tmp_path))
    else:
        case.check(entry, result, ctx)


# ------------------------------------------------------------------------------ command line
SENTINEL = b"left alone"


def cli_model(path):
    """A classifier as `fastbp train` saves one: labels and input standardisation included."""
    mean, scale = CLI_X.mean(axis=0), CLI_X.std(axis=0)
    model = fastbp.MLP([3, 5, 3], seed=0)
    model.fit((CLI_X - mean) / scale, CLI_Y, epochs=3, batch_size=8, verbose=0, n_jobs=1)
    model.classes_ = np.array(["a", "b", "c"])
    model.input_mean_, model.input_scale_ = mean, scale
    model.save(path)
    return model


def cli_argv(case, d, model_path):
    """Write the case's data file into ``d``; the argument list of its one run."""
    Xb, yb = data(case, None, CLI_X, CLI_Y)
    out = d / "out"
    out.write_bytes(SENTINEL)
    if case.cli[:1] == ("predict",):
        np.savez(d / "data.npz", X=Xb)
        return ["predict", model_path, d / "data.npz", "--out", out, *case.cli[1:]]
    if case.csv is not None:  # text of its own, from the clean data
        path = d / "data.csv"
        path.write_text(case.csv(CLI_X, CLI_Y))
    else:
        path = d / "data.npz"
        np.savez(path, X=Xb, y=yb)
    return ["train", path, "--hidden", "4", "--epochs", "2", "--out", out, *case.cli]


def run_command(argv):
    """``fastbp ARGV`` in this process, as the console script runs it: its status, its
    output, and any exception's traceback on its stderr (which the cells refuse)."""
    import contextlib
    import io
    import traceback
    from fastbp.cli import main
    out, err = io.StringIO(), io.StringIO()
    notice = os.environ.get("FASTBP_COMPILE_NOTICE")
    os.environ["FASTBP_COMPILE_NOTICE"] = "0"  # a cell's stderr is its error line alone
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse's own exit
            status = exc.code
        except Exception:
            traceback.print_exc()
            status = 1
        finally:
            if notice is None:
                del os.environ["FASTBP_COMPILE_NOTICE"]
            else:
                os.environ["FASTBP_COMPILE_NOTICE"] = notice
    return SimpleNamespace(returncode=status, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture(scope="module")
def cli_runs(request, tmp_path_factory):
    """Every selected command-line case, run in this process (a subprocess each cost 12 s
    of the test run; the console script is main() and an exit; tests/test_cli.py runs
    it in subprocesses)."""
    names = [item.callspec.params["name"] for item in request.session.items
             if getattr(item, "originalname", None) == "test_command_line"]
    root = tmp_path_factory.mktemp("cli")
    model = cli_model(root / "model.fastbp")
    argvs = {}
    for name in names:
        (root / name).mkdir()
        argvs[name] = cli_argv(CASES[name], root / name, root / "model.fastbp")

    results = {name: run_command(argvs[name]) for name in names}
    return SimpleNamespace(results=results, argvs=argvs, model=model)


@pytest.mark.parametrize("name,entry,expected", cells(cli=True))
def test_command_line(name, entry, expected, cli_runs):
    case, result = CASES[name], cli_runs.results[name]
    out = cli_runs.argvs[name][cli_runs.argvs[name].index("--out") + 1]
    assert "Traceback" not in result.stderr, result.stderr
    if isinstance(expected, Raises):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith("fastbp: error: "), lines[0]
        assert re.search(expected.match, lines[0]), lines[0]
        assert out.read_bytes() == SENTINEL  # nothing written
        return
    assert result.returncode == 0, result.stderr
    if case.cli[:1] == ("predict",):  # the labels predicted in-process from the clean input
        model = cli_runs.model
        clean = case.clean["X"](CLI_X)
        expected_labels = model.classes_[model.predict((clean - model.input_mean_)
                                                       / model.input_scale_)]
        assert out.read_text().split() == ["prediction", *expected_labels]
        return
    score = re.search(r"test (accuracy|r2): (\S+)", result.stdout)
    assert score and np.isfinite(float(score.group(2))), result.stdout
    model = fastbp.load(out)
    assert np.isfinite(model.params).all() and model.history_.n_epochs == 2


# ------------------------------------------------------------------------------ beyond the table
def test_the_table_names_valid_entry_points_and_exceptions():
    for name, case in CASES.items():
        for key, value in case.expect.items():
            keys = (key,) if isinstance(key, str) else key
            assert all(fnmatch.filter(ENTRY_POINTS, k) for k in keys), (name, key)
            if value is WORKS or isinstance(value, WorksOr):
                assert case.clean is not None or case.check is not None, name
            failure = value.alternative if isinstance(value, WorksOr) else value
            if isinstance(failure, Raises):
                excs = failure.exc if isinstance(failure.exc, tuple) else (failure.exc,)
                assert all(issubclass(e, (ValueError, TypeError)) for e in excs), name


STATE_CHANGES = {  # what a failed call must not do, one small change each
    "MLP step": ("MLP", lambda m: setattr(m._opt_state, "step", m._opt_state.step + 1)),
    "MLP moments": ("MLP", lambda m: m._opt_state.buffers.__setitem__((0, 0), 1.0)),
    "MLP history": ("MLP", lambda m: m.history_.loss.append(0.0)),
    "MLP generator": ("MLP", lambda m: m._rng.rand()),
    "MLP weights": ("MLP", lambda m: m.coefs_[0].__setitem__((0, 0), 1.0)),
    "estimator step": ("MLPClassifier", lambda e: setattr(e._optimizer.state, "step", 0)),
    "estimator n_iter_": ("MLPClassifier", lambda e: setattr(e, "n_iter_", 0)),
    "estimator loss_curve_": ("MLPClassifier", lambda e: e.loss_curve_.append(0.0)),
    "estimator weights": ("MLPClassifier", lambda e: e._net.params.__setitem__(0, 1.0)),
}


@pytest.mark.parametrize("name", STATE_CHANGES)
def test_the_state_check_sees_every_change(name):
    # the table's 'nothing changed' is only as good as this comparison
    kind, change = STATE_CHANGES[name]
    target = native_model("clf") if kind == "MLP" else estimator(kind)
    before = freeze(target)
    change(target)
    with pytest.raises(AssertionError, match="state changed"):
        assert_unchanged(target, before)


def test_a_diverging_partial_fit_leaves_the_estimator_as_it_was():
    est = fastbp.MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0, n_jobs=1)
    est.fit(X.astype(np.float32), Y["reg"].astype(np.float32))  # trains in float32
    before = freeze(est)
    with pytest.raises(ValueError, match="non-finite|too large"):
        est.partial_fit((X * 1e30).astype(np.float32), Y["reg"].astype(np.float32))
    assert_unchanged(est, before)


def test_huge_values_work_in_float64():
    # 1e30 is refused by a float32 model (its square overflows) but not by a float64 one
    model = fastbp.MLP([3, 5, 3], seed=0, dtype="float64")
    history = model.fit(X * 1e30, Y["clf"], epochs=2, batch_size=8, verbose=0, n_jobs=1)
    assert history.stop_reason is None and np.isfinite(model.params).all()
    assert np.isfinite(model.predict_proba(X * 1e30)).all()
    model.params = np.full(model.n_params, 1e30)
    assert np.isfinite(model.evaluate(X, Y["clf"])["loss"])


def test_values_past_float32_are_named_as_too_large_not_as_infinite():
    # finite float64 input beyond float32's range turns infinite in the cast: say what it was
    with pytest.raises(ValueError, match="X holds values up to 1e\\+39 in magnitude"):
        fastbp.MLP([3, 5, 3]).predict(np.full((2, 3), 1e39))


def test_an_overflowing_forward_pass_is_reported_not_returned():
    model = fastbp.MLP([3, 4, 4, 2], seed=0)
    model.params = np.full(model.n_params, 1e15)
    with pytest.raises(ValueError, match="overflowed for 2 of 2 rows"):
        model.predict(np.full((2, 3), 1e15))
    with pytest.raises(ValueError, match="the loss is not finite"):
        model.evaluate(np.full((2, 3), 1e15), [0, 1])


def test_read_only_inputs_reuse_the_kernels_writable_inputs_compiled(tmp_path):
    """A read-only memory map (what joblib hands its workers) runs the kernels a writable
    array compiled: no entry kernel and no check gets a second signature (each would cost
    seconds of compiling), and the results are the same."""
    from fastbp.kernels import checks, entries
    from fastbp.kernels import network as kernel_network
    dispatchers = [getattr(entries, name) for name in (
        "train_epoch", "predict_rows", "evaluate_rows", "forward_backward")]
    dispatchers += [checks._peak_bits, kernel_network.gather_rows]
    rng = np.random.default_rng(3)
    X64 = rng.normal(size=(60, 4))
    y = np.arange(60) % 3

    def run(X, y):
        model = fastbp.MLP([4, 8, 3], seed=0, dtype=X.dtype)
        model.fit(X, y, epochs=2, batch_size=16, verbose=0, strategy="serial")
        est = fastbp.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5, random_state=0)
        est.fit(X, X[:, 0])
        return (model.params.copy(), model.predict(X), model.evaluate(X, y)["loss"],
                model.loss_and_grad(X, y)[1], est.predict(X))

    for X in (X64.astype(np.float32), X64):
        writable = run(X, y)
        signatures = [list(d.signatures) for d in dispatchers]
        np.save(tmp_path / "X.npy", X)
        np.save(tmp_path / "y.npy", y)
        mapped_X = np.load(tmp_path / "X.npy", mmap_mode="r")
        mapped_y = np.load(tmp_path / "y.npy", mmap_mode="r")
        assert not mapped_X.flags.writeable and not mapped_y.flags.writeable
        mapped = run(mapped_X, mapped_y)
        assert [list(d.signatures) for d in dispatchers] == signatures
        for a, b in zip(writable, mapped):
            np.testing.assert_array_equal(a, b)
        del mapped_X, mapped_y


# ------------------------------------------------------------------------------ as scikit-learn
# What fastbp's estimators refuse on purpose where scikit-learn's take it (docs/sklearn.md,
# "Behaviours side by side"): float32 values whose squares overflow.
REFUSED_WHERE_SCIKIT_LEARN_WORKS = {("huge_X_float32", "MLPClassifier.fit"),
                                    ("huge_X_float32", "MLPRegressor.fit")}


def estimator_refusals():
    """The cells where a fastbp estimator raises."""
    for param in cells(cli=False):
        name, entry, expected = param.values
        failure = expected.alternative if isinstance(expected, WorksOr) else expected
        if entry.startswith(("MLPClassifier.", "MLPRegressor.")) and isinstance(failure, Raises):
            yield pytest.param(name, entry, failure, id=f"{name}-{entry}")


@pytest.mark.parametrize("name,entry,failure", list(estimator_refusals()))
def test_estimators_raise_the_exception_type_scikit_learn_raises(name, entry, failure, tmp_path):
    """Bad input at an estimator's entry point: scikit-learn's own estimator, fitted the
    same way, raises an exception of the type fastbp's raises (its InvalidParameterError
    is both a ValueError and a TypeError)."""
    from sklearn import neural_network
    case = CASES[name]
    cls = entry.split(".")[0]
    theirs = getattr(neural_network, cls)(hidden_layer_sizes=(5,), max_iter=3, batch_size=8,
                                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.fit(X, Y["clf" if cls == "MLPClassifier" else "reg"])
        theirs.set_params(**case.est)
        if (name, entry) in REFUSED_WHERE_SCIKIT_LEARN_WORKS:
            invoke(entry, theirs, case, tmp_path)
            return
        with pytest.raises(failure.exc):
            invoke(entry, theirs, case, tmp_path)
