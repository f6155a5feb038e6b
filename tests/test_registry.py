"""The registries and the compile model: every entry works end to end, and a network
compiles only what it uses."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastbp
from fastbp import specialize
from fastbp.architecture import natural_loss
from fastbp.kernels.activations import ACTIVATIONS
from fastbp.kernels.losses import LOSSES
from fastbp.kernels.optimizers import RULES
from fastbp.optim import OPTIMIZERS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def network(name):
    """A float64 network using ``name``: as its hidden activation, or as its output.

    The configurations are those of test_gradients.py, so the suite compiles them once.
    """
    if ACTIVATIONS[name].hidden:
        return fastbp.MLP([5, 4, 3, 3], activation=name, dtype="float64", seed=1)
    return fastbp.MLP([4, 5, 3], activation="tanh", output=name, loss=natural_loss(name),
                      dtype="float64", seed=2)


def data(model, n, rng):
    X = rng.standard_normal((n, model.layer_sizes[0]))
    k = model.layer_sizes[-1]
    if model.loss == "cross_entropy":
        return X, np.arange(n) % k
    if model.loss == "poisson":
        return X, rng.poisson(1.0, (n, k))
    return X, rng.standard_normal((n, k))


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_registered_activation_trains_gradchecks_and_exports(name, tmp_path):
    """The round trip a new registry entry must pass: fit, central differences in
    float64, and the same outputs from its PyTorch module and its ONNX graph."""
    rng = np.random.default_rng(0)
    model = network(name)
    for slopes in model.slopes_.values():  # learnable γ: one per unit, not all equal
        slopes[...] = rng.uniform(0.05, 0.5, slopes.shape)
    X, y = data(model, 24, rng)
    history = model.fit(X, y, optimizer=fastbp.optim.SGD(0.01), epochs=3, batch_size=8,
                        verbose=0)
    assert np.all(np.isfinite(history.loss)) and np.all(np.isfinite(model.params))
    assert fastbp.check_gradients(model, X[:6], y[:6], l2=0.1) <= 1e-6
    expected = (model.predict_proba(X) if model.is_classifier
                else model.predict(X).reshape(len(X), -1))

    torch = pytest.importorskip("torch")
    with torch.no_grad():
        theirs = model.to_torch()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(theirs, expected, rtol=1e-10, atol=1e-12)

    ort = pytest.importorskip("onnxruntime")
    path = model.to_onnx(tmp_path / f"{name}.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(["output"], {"X": X})
    np.testing.assert_allclose(onnx_out, expected, rtol=1e-10, atol=1e-12)


def test_registries_are_complete_and_consistent():
    """Every entry names what the rest of fastbp reads from it."""
    for name, a in ACTIVATIONS.items():
        assert a.name == name
        assert (a.forward is None) == (a.rows_forward is not None)
        assert a.gamma in (None, "constant", "learnable")
        assert (a.gamma == "learnable") == (a.gamma_derivative is not None)
        assert a.torch and a.onnx
    for name, loss in LOSSES.items():
        assert loss.name == name and loss.canonical_output in ACTIVATIONS
        assert loss.targets in ("labels", "unit", "nonnegative", "real")
    assert {cls.rule for cls in OPTIMIZERS.values()} == set(RULES)


PROBE = """
import json, sys
from pathlib import Path
import numpy as np
import fastbp
from fastbp import specialize
from fastbp.kernels import entries, losses, optimizers
model = fastbp.MLP([6, 8, 8, 3], activation="relu", seed=0)
X = np.random.default_rng(0).standard_normal((40, 6))
model.fit(X, np.arange(40) % 3, epochs=1, verbose=0, strategy="serial")
model.predict(X)
kernels = specialize.network_kernels(specialize.Config(("relu",), "softmax", "cross_entropy"))
source = "".join(Path(part.module.__file__).read_text() for part in (kernels.hidden, kernels.output))
ir = "".join(ir for name in ("train_epoch", "predict_rows")
             for ir in getattr(entries, name).inspect_llvm().values())
print(json.dumps({
    "imports": sorted(line.split(" import ")[1].split(" as ")[0] for line in source.splitlines()
                      if line.startswith(("from fastbp.kernels.activations import",
                                          "from fastbp.kernels.losses import"))),
    "losses": sorted(l.name for l in losses.LOSSES.values() if l.term.signatures),
    "rules": sorted(r.name for r in optimizers.RULES.values() if r.update.signatures),
    "entries_call_activations": "11activations" in ir,
    "entries_call_loss_terms": any(l.term.py_func.__name__ in ir for l in losses.LOSSES.values()),
}))
"""


def run_fresh(code, cache, args=(), **env):
    """Run ``code`` (or, when None, ``python ARGS``) in a new process whose network
    functions compile into ``cache``."""
    environ = dict(os.environ, FASTBP_CACHE_DIR=str(cache), **env)
    command = [sys.executable] + (["-c", code] if code is not None else []) + list(args)
    return subprocess.run(command, cwd=REPO, env=environ, capture_output=True, text=True,
                          timeout=600)


def test_a_network_compiles_only_the_activations_loss_and_rule_it_uses(tmp_path):
    """A relu → softmax network trained with Adam, everything compiled from a cold cache:
    its generated module names only its own activations and loss, only its loss term
    and update rule get compiled, and the entry kernels contain no activation and no
    loss (they call the network's functions by address)."""
    result = run_fresh(PROBE, tmp_path / "fastbp", NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert found == {
        "imports": ["cross_entropy", "relu", "relu_derivative", "softmax_rows"],
        "losses": ["cross_entropy"], "rules": ["adam"],
        "entries_call_activations": False, "entries_call_loss_terms": False}


NOTICE = """
import logging, sys, numpy as np, fastbp
if "--log" in sys.argv:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
fastbp.MLP([3, 5, 2], activation="softplus", seed=0).fit(
    np.zeros((8, 3)), np.arange(8) % 2, epochs=1, verbose=0)
"""
CLI_NOTICE = ["-m", "fastbp", "train", "iris", "--epochs", "1", "--hidden", "4",
              "--activation", "softplus"]


def compile_lines(stderr):
    return [l for l in stderr.splitlines() if "compiling kernels for this network" in l]


def test_a_cold_compile_says_so_once_from_the_command_line_and_a_warm_one_is_silent(
        tmp_path):
    cold = run_fresh(None, tmp_path / "a", args=CLI_NOTICE)
    assert cold.returncode == 0, cold.stderr[-2000:]
    (line,) = compile_lines(cold.stderr)
    assert "(softplus → softmax, cross_entropy)" in line and "once per machine" in line
    warm = run_fresh(None, tmp_path / "a", args=CLI_NOTICE)
    assert warm.returncode == 0 and "compiling" not in warm.stderr, warm.stderr


def test_the_command_line_notice_is_silenced_by_its_variable(monkeypatch):
    import logging
    from fastbp.cli import show_library_messages
    compile_log = logging.getLogger("fastbp.compile")
    monkeypatch.setattr(compile_log, "level", compile_log.level)  # put back afterwards
    monkeypatch.setenv("FASTBP_COMPILE_NOTICE", "0")
    show_library_messages()
    assert not compile_log.isEnabledFor(logging.INFO)
    monkeypatch.delenv("FASTBP_COMPILE_NOTICE")
    show_library_messages()
    assert compile_log.isEnabledFor(logging.INFO)


def test_the_library_logs_the_notice_and_is_silent_unless_logging_is_configured(tmp_path):
    silent = run_fresh(NOTICE, tmp_path / "a")
    assert silent.returncode == 0 and silent.stderr == "", silent.stderr
    logged = run_fresh(NOTICE, tmp_path / "b", args=["--log"])
    assert logged.returncode == 0, logged.stderr[-2000:]
    (line,) = compile_lines(logged.stderr)
    assert line.startswith("fastbp.compile: fastbp: compiling kernels for this network")


def test_import_fastbp_loads_no_kernels_and_no_estimators():
    code = ("import sys, fastbp; heavy = lambda: sorted(m for m in ('numba', 'sklearn', "
            "'scipy', 'fastbp.model', 'fastbp.estimators') if m in sys.modules); "
            "print(heavy()); fastbp.MLP; print(heavy())")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = result.stdout.splitlines()
    assert before == "[]"
    assert "numba" in after and "fastbp.model" in after and "sklearn" not in after


def test_a_pickled_model_predicts_the_same_in_another_process(tmp_path):
    """A model holds the addresses of its compiled functions; a copy in another
    process must not (it looks them up again there)."""
    import pickle
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 4)), np.arange(30) % 3
    model = fastbp.MLP([4, 6, 3], seed=0)
    model.fit(X, y, epochs=2, verbose=0)
    est = fastbp.MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    with pytest.warns(Warning):
        est.fit(X, y)
    expected = np.concatenate([model.predict_proba(X), est.predict_proba(X)])
    (tmp_path / "models.pkl").write_bytes(pickle.dumps((model, est, X)))
    code = ("import pickle, sys, numpy as np; model, est, X = pickle.load(open(sys.argv[1], 'rb'))"
            "; np.save(sys.argv[2], np.concatenate([model.predict_proba(X), "
            "est.predict_proba(X)]))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "models.pkl"),
                             str(tmp_path / "out.npy")], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_a_parallel_entry_costs_its_prange_bodies_too(tmp_path, monkeypatch):
    """What ``auto`` weighs against a short fit: a parallel epoch not compiled yet costs the
    entry and the bodies it calls by address, and what has compiled costs nothing."""
    from fastbp.kernels import network_functions as F
    monkeypatch.setattr(specialize, "_directory", tmp_path)  # no marker: a cold machine
    typical = specialize.TYPICAL_SECONDS
    columns = [f"body_{F.BODIES[s]}" for s in F.TRAIN_COLUMNS if s in F.BODIES]
    assert len(columns) == 5
    assert specialize.entry_compile_seconds("train_epoch_columns", np.float32) == pytest.approx(
        typical["train_epoch_columns"] + sum(typical[name] for name in columns))
    assert specialize.entry_compile_seconds("train_epoch", np.float32) == typical["train_epoch"]
    (tmp_path / "body_shard.float32.s").write_text("1.0\n")  # the shard has compiled
    assert (specialize.entry_compile_seconds("train_epoch_sharded", np.float32)
            == typical["train_epoch_sharded"])
    assert (specialize.entry_compile_seconds("train_epoch_sharded", np.float64)
            == typical["train_epoch_sharded"] + typical["body_shard"])
