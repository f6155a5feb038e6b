"""PyTorch and ONNX interop: equal outputs both ways, clear refusals, optional packages."""
import sys

import numpy as np
import pytest

import fastbp
from fastbp.architecture import HIDDEN_ACTIVATIONS

HIDDEN = sorted(HIDDEN_ACTIVATIONS)
OUTPUTS = ["softmax", "logistic", "identity", "exp"]
DTYPES = ["float32", "float64"]


def tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}


def model_and_data(activation, output, dtype, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, 6)).astype(dtype)
    X[:4] *= 40  # pre-activations far out in the tails (softplus's threshold, saturation)
    model = fastbp.MLP([6, 9, 7, 3], activation=activation, output=output, dtype=dtype,
                       seed=seed, gamma=0.2 if activation in ("leaky_relu", "elu") else None)
    for slopes in model.slopes_.values():  # slopes that differ per unit and in sign
        slopes[...] = rng.uniform(-0.5, 0.5, slopes.shape)
    return model, X


def outputs(model, X):
    """What the converted models must reproduce: predict_proba or predict as 2-D."""
    return model.predict_proba(X) if model.is_classifier else model.predict(X).reshape(len(X), -1)


# ---------------------------------------------------------------------------------- PyTorch
# every hidden activation (before a softmax output) and every output (after tanh layers):
# the suite's usual configurations, each compiled once
CASES = [(a, "softmax") for a in HIDDEN] + [("tanh", o) for o in OUTPUTS if o != "softmax"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation,output", CASES)
def test_to_torch_reproduces_outputs_and_from_torch_gives_the_model_back(activation, output,
                                                                         dtype):
    torch = pytest.importorskip("torch")
    model, X = model_and_data(activation, output, dtype)
    seq = model.to_torch()
    assert all(p.dtype == getattr(torch, dtype) for p in seq.parameters())
    with torch.no_grad():
        theirs = seq(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(theirs, outputs(model, X), **tolerance(dtype))

    back = fastbp.MLP.from_torch(seq)
    assert repr(back) == repr(model)
    assert back.activation == model.activation and back.output == model.output
    assert back.gamma == model.gamma
    np.testing.assert_array_equal(back.params, model.params)


@pytest.mark.parametrize("output", OUTPUTS)
def test_to_torch_logits_leaves_out_the_output_activation(output):
    torch = pytest.importorskip("torch")
    model, X = model_and_data("tanh", output, "float64")
    with torch.no_grad():
        z = model.to_torch(logits=True)(torch.from_numpy(X))
    link = {"softmax": lambda t: torch.softmax(t, dim=1), "logistic": torch.sigmoid,
            "identity": lambda t: t, "exp": torch.exp}[output]
    np.testing.assert_allclose(link(z).numpy(), outputs(model, X), **tolerance("float64"))
    again = fastbp.MLP.from_torch(model.to_torch(logits=True), output=output)
    np.testing.assert_array_equal(again.params, model.params)
    assert again.output == output


def test_to_torch_copies_the_weights_and_leaves_torchs_random_state_alone():
    torch = pytest.importorskip("torch")
    model, X = model_and_data("relu", "softmax", "float32")
    state = torch.get_rng_state()
    seq = model.to_torch()
    assert torch.equal(torch.get_rng_state(), state)
    before = [p.detach().clone() for p in seq.parameters()]
    model.params[...] = 0
    assert all(torch.equal(p, b) for p, b in zip(seq.parameters(), before))
    with torch.no_grad():
        for p in seq.parameters():
            p.zero_()
    assert model.params.sum() == 0 and np.isfinite(model.predict_proba(X)).all()
    # one input or one output: the transposed weights are views unless copied
    for sizes in ([4, 8, 1], [1, 8, 2]):
        narrow = fastbp.MLP(sizes, output="identity", seed=0)
        for p in narrow.to_torch().parameters():
            assert not any(np.shares_memory(p.detach().numpy(), v) for v in
                           narrow.coefs_ + narrow.intercepts_)


def test_a_network_trained_in_torch_predicts_the_same_in_fastbp_and_trains_on():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    net = nn.Sequential(nn.Linear(4, 16), nn.ELU(alpha=0.5), nn.Linear(16, 16), nn.PReLU(),
                        nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(net(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        opt.step()
    model = fastbp.MLP.from_torch(net, output="softmax")
    assert model.loss == "cross_entropy" and model.gamma == 0.5
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(X)), dim=1).numpy()
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(model.predict(X), expected.argmax(axis=1))
    accuracy = model.evaluate(X, y)["accuracy"]
    model.fit(X, y, epochs=30, batch_size=32, verbose=0)
    assert model.evaluate(X, y)["accuracy"] >= accuracy - 0.02


def test_from_torch_accepts_nested_sequentials_no_bias_and_one_shared_prelu_slope():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(1)
    net = nn.Sequential(nn.Sequential(nn.Linear(3, 5, bias=False), nn.PReLU(init=-0.3)),
                        nn.Linear(5, 4), nn.Identity(), nn.Linear(4, 2), nn.Sigmoid())
    model = fastbp.MLP.from_torch(net)
    assert model.layer_sizes == (3, 5, 4, 2)
    assert model.activation == ["prelu", "identity"] and model.output == "logistic"
    assert model.loss == "binary_cross_entropy"
    np.testing.assert_allclose(model.slopes_[0], -0.3)
    np.testing.assert_array_equal(model.intercepts_[0], 0)
    X = np.random.default_rng(2).standard_normal((10, 3)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-5, atol=1e-6)
    assert fastbp.MLP.from_torch(net, dtype="float64").dtype == np.float64


def refusals():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    from fastbp.interop.torch import Exp
    return [
        (nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2)), "Dropout"),
        (nn.Sequential(nn.Linear(3, 4), nn.Hardsigmoid(), nn.Linear(4, 2)), "HardLogistic"),
        (nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2)), "GELU is not supported"),
        (nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), "first module must be a Linear"),
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Tanh(), nn.Linear(4, 2)),
         "two activations in a row"),
        (nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), "takes 5 inputs"),
        (nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=1), nn.Linear(4, 2)),
         "softmax can only follow the last"),
        (nn.Sequential(nn.Linear(3, 4), Exp(), nn.Linear(4, 2)), "exp can only follow"),
        (nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=0)), "Softmax(dim=1), got dim=0"),
        (nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.1), nn.Linear(4, 4), nn.ELU(0.7),
                       nn.Linear(4, 2)), "one γ"),
        (nn.Sequential(nn.Linear(3, 4), nn.Softplus(beta=2), nn.Linear(4, 2)), "beta=2"),
        (nn.Sequential(nn.Linear(3, 4), nn.Hardtanh(0, 1), nn.Linear(4, 2)),
         "Hardtanh(min_val=-1, max_val=1), got min_val=0"),
        (nn.Sequential(nn.Linear(3, 4), nn.PReLU(3), nn.Linear(4, 2)), "3 slopes for 4 units"),
        (nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(-0.1), nn.Linear(4, 2)), ">= 0"),
        (nn.Sequential(), "at least one Linear"),
        (nn.Sequential(nn.Linear(3, 1), nn.Softmax(dim=1)), "at least 2 units"),
        (nn.Sequential(nn.Linear(3, 4).to(torch.float16)), "pass dtype"),
        (nn.Sequential(nn.Linear(3, 4).to(torch.bfloat16)), "pass dtype"),
        (nn.Sequential(nn.Linear(3, 4, device="meta")), "meta device"),
    ]


@pytest.mark.parametrize("case", range(19))
def test_from_torch_refuses_what_it_cannot_represent_and_says_why(case):
    seq, message = refusals()[case]
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fastbp.MLP.from_torch(seq)


def test_from_torch_needs_a_module_and_a_consistent_output():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="torch.nn.Sequential"):
        fastbp.MLP.from_torch([1, 2, 3])
    seq = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Sigmoid())
    with pytest.raises(ValueError, match="already ends in logistic"):
        fastbp.MLP.from_torch(seq, output="softmax")
    assert fastbp.MLP.from_torch(seq, output="logistic").output == "logistic"


# ---------------------------------------------------------------------------------- ONNX
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation,output", CASES)
def test_onnx_runtime_reproduces_predict_and_predict_proba(activation, output, dtype, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model, X = model_and_data(activation, output, dtype)
    path = model.to_onnx(tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["X"]
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"X": X})))
    assert got["output"].dtype == np.dtype(dtype)
    np.testing.assert_allclose(got["output"], outputs(model, X), **tolerance(dtype))
    if model.is_classifier:
        np.testing.assert_array_equal(got["label"], model.predict(X))
    else:
        assert set(got) == {"output"}


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_onnx_labels_of_binary_and_multilabel_models_match_predict(n_outputs, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = fastbp.MLP([4, 8, n_outputs], output="logistic", seed=3)
    X = np.random.default_rng(3).standard_normal((500, 4)).astype(np.float32) * 3
    session = ort.InferenceSession(str(model.to_onnx(tmp_path / "m.onnx")),
                                   providers=["CPUExecutionProvider"])
    label = session.run(["label"], {"X": X})[0]
    assert label.shape == model.predict(X).shape
    np.testing.assert_array_equal(label, model.predict(X))


def test_onnx_graph_records_its_producer_and_a_failed_write_keeps_the_old_file(tmp_path,
                                                                              monkeypatch):
    onnx = pytest.importorskip("onnx")
    from fastbp.interop import onnx as onnx_export
    model, _ = model_and_data("relu", "softmax", "float32")
    path = model.to_onnx(tmp_path / "model.onnx")
    proto = onnx.load(str(path))
    assert proto.producer_name == "fastbp" and proto.producer_version == fastbp.__version__
    assert "6-9[relu]-7[relu]-3[softmax]" in proto.doc_string
    before = path.read_bytes()

    def broken(*_):
        raise RuntimeError("disk full")
    monkeypatch.setattr(onnx_export, "build", broken)
    with pytest.raises(RuntimeError):
        model.to_onnx(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


# ------------------------------------------------------------------------ the estimators
def estimator_cases():
    """Fitted estimators of every kind of output, with data: multiclass with text labels,
    binary with labels that are not 0/1, multilabel, one- and two-output regression."""
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    kwargs = dict(hidden_layer_sizes=(6,), max_iter=30, random_state=0)
    return {
        "multiclass": (fastbp.MLPClassifier(**kwargs), X, names),
        "binary": (fastbp.MLPClassifier(**kwargs), X, np.where(y == 0, 3, 7)),
        "multilabel": (fastbp.MLPClassifier(**kwargs), X,
                       np.eye(3, dtype=int)[y] | (X[:, :3] > 0)),
        "regression": (fastbp.MLPRegressor(**kwargs), X[:, 1:], X[:, 0]),
        "two_outputs": (fastbp.MLPRegressor(**kwargs), X[:, 2:], X[:, :2]),
    }


def estimator_outputs(est, X):
    """What an estimator's exports must reproduce: predict_proba, or predict as 2-D."""
    return (est.predict_proba(X) if hasattr(est, "classes_")
            else est.predict(X).reshape(len(X), -1))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("case", ["multiclass", "binary", "multilabel", "regression",
                                  "two_outputs"])
def test_estimators_export_to_onnx_and_torch_what_they_predict(case, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch = pytest.importorskip("torch")
    est, X, y = estimator_cases()[case]
    est.fit(X, y)
    session = ort.InferenceSession(str(est.to_onnx(tmp_path / "est.onnx")),
                                   providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"X": X})))
    np.testing.assert_allclose(got["output"], estimator_outputs(est, X), rtol=1e-12,
                               atol=1e-12)
    if hasattr(est, "classes_"):
        np.testing.assert_array_equal(got["label"], est.predict(X))
    else:
        assert set(got) == {"output"}
    out = est.to_torch()(torch.from_numpy(X)).detach().numpy()
    expected = estimator_outputs(est, X)
    if case == "binary":  # the network's one output: the probability of classes_[1]
        expected = expected[:, 1:]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_an_unfitted_estimator_has_nothing_to_export(tmp_path):
    from sklearn.exceptions import NotFittedError
    for est in (fastbp.MLPClassifier(), fastbp.MLPRegressor()):
        with pytest.raises(NotFittedError):
            est.to_onnx(tmp_path / "never.onnx")
        with pytest.raises(NotFittedError):
            est.to_torch()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- optional
@pytest.mark.parametrize("module,call", [
    ("torch", lambda m: m.to_torch()),
    ("torch", lambda m: fastbp.MLP.from_torch(None)),
    ("onnx", lambda m: m.to_onnx("never-written.onnx")),
])
def test_missing_optional_package_raises_import_error_naming_the_extra(module, call,
                                                                      monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # makes ``import module`` fail
    with pytest.raises(ImportError, match=rf'needs {module}: pip install "fastbp\[{module}\]"'):
        call(fastbp.MLP([2, 2]))
    assert not (tmp_path / "never-written.onnx").exists()
