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
    np.testing.assert_array_equal(again._forward(again._check_X(X)),
                                  model._forward(model._check_X(X)))


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
