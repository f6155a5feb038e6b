"""The whole-network kernels (epoch, prediction) against the NumPy reference."""
import numpy as np
import pytest

from conftest import DTYPES, assert_close, reference_gammas, reference_loss_and_flat_grad
import reference as ref
import fastbp
from fastbp._threads import kernel_threads
from fastbp.optim import SGD, Adam, AdamW
from fastbp.strategy import thread_counts
from fastbp.training import KernelEpochs


def reference_epochs(model, opt, X, Y, batch, epochs):
    """The reference minibatch loop over the rows in order: (mean losses, final params)."""
    expected = model.astype("float64")
    p = expected.params
    buffers = np.zeros((2, p.size))
    step, losses = 0, []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch):
            step += 1
            value, g = reference_loss_and_flat_grad(expected, X[start:start + batch],
                                                    Y[start:start + batch])
            total += value * len(X[start:start + batch])
            p[...], buffers[...] = ref.optimizer_step(opt, p, g, buffers, step, model.n_coefs)
        losses.append(total / len(X))
    return losses, p


@pytest.mark.parametrize("strategy", ["serial", "blas", "sharded", "columns"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9), Adam(0.01)], ids=["sgd", "adam"])
@pytest.mark.parametrize("activation,batch", [("tanh", 5), ("prelu", 3)])
def test_every_strategy_matches_reference_minibatch_loop(activation, batch, opt, dtype,
                                                         strategy):
    """Batches in order, a short last batch (a single row with batch 3: an empty
    shard), forward/backward, update; two epochs, step by step."""
    rng = np.random.default_rng(0)
    model = fastbp.MLP([5, 7, 4, 3], activation=activation, dtype=dtype, seed=0)
    X = rng.standard_normal((22, 5)).astype(dtype)
    y = rng.integers(0, 3, 22)
    losses, p = reference_epochs(model, opt, X, model.network.check_targets(y, 22), batch, 2)
    history = model.fit(X, y, optimizer=opt, epochs=2, batch_size=batch, shuffle=False,
                        verbose=0, n_jobs=2, strategy=strategy)
    assert model.strategy_ == strategy
    assert_close(history.loss, losses, dtype, "epoch losses")
    assert_close(model.params, p, dtype, "parameters after two epochs")


@pytest.mark.parametrize("strategy", ["serial", "blas", "sharded", "columns"])
def test_same_seed_and_threads_give_bit_identical_weights(strategy):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 8)), rng.integers(0, 4, 300)
    runs = []
    for _ in range(2):
        model = fastbp.MLP([8, 32, 32, 4], seed=3)
        model.fit(X, y, optimizer=SGD(0.05, momentum=0.9), epochs=3, batch_size=16,
                  verbose=0, n_jobs=2, strategy=strategy)
        runs.append(model.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("strategy", ["serial", "blas", "sharded", "columns"])
def test_step_loop_does_not_allocate(strategy):
    """Allocations per epoch call do not grow with the number of steps."""
    from numba.core.runtime import _nrt_python, rtsys
    model = fastbp.MLP([6, 8, 8, 3], activation="prelu", seed=0)
    X = np.random.default_rng(0).standard_normal((400, 6)).astype(np.float32)
    Y = model.network.check_targets(np.arange(400) % 3, 400)
    opt = Adam()
    state = opt.init(model.params, n_decay=model.n_coefs)
    steps = KernelEpochs(model.network, X, Y, opt, state, 4, strategy, 2)

    def run(perm):  # the whole epoch in one kernel call
        return steps.run(perm, 0, steps.n_steps(perm))
    with kernel_threads(*thread_counts(strategy, 2, 2)):
        run(np.arange(4))  # compile first
        _nrt_python.memsys_enable_stats()
        try:
            counts = []
            for n in (4, 400):  # 1 step, then 100 steps
                before = rtsys.get_allocation_stats().alloc
                run(np.arange(n))
                counts.append(rtsys.get_allocation_stats().alloc - before)
        finally:
            _nrt_python.memsys_disable_stats()
    assert counts[0] == counts[1], f"allocations for 1 step vs 100 steps: {counts}"


@pytest.mark.parametrize("strategy", ["serial", "columns"])
def test_a_warm_fit_grows_by_order_and_targets_only(strategy):
    """Traced (Python and NumPy) memory of a warm fit: 8x the rows cost only what a fit
    holds per row, never a copy of the data or anything per step."""
    import tracemalloc
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8 * 2048, 64)).astype(np.float32)
    y = rng.integers(0, 10, X.shape[0])
    model = fastbp.MLP([64, 32, 10], seed=0)
    opt = SGD(0.01, momentum=0.9)
    fit = dict(optimizer=opt, epochs=1, batch_size=32, verbose=0, n_jobs=2, strategy=strategy)
    model.fit(X[:2048], y[:2048], **fit)  # compiled, and every lazy import done
    peaks = []
    for n in (2048, 8 * 2048):
        tracemalloc.start()
        try:
            model.fit(X[:n], y[:n], **fit)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    # per row and fit: the shuffle order and the label codes (8 bytes each), the one-hot
    # targets (10 float32); a copy of the data would add 256 bytes per row
    per_row = 8 + 8 + 10 * 4
    assert peaks[1] - peaks[0] <= 7 * 2048 * per_row + 16 * 1024, peaks


@pytest.mark.parametrize("n_blocks", [1, 2, 3])
@pytest.mark.parametrize("opt", [SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                                 SGD(0.1), AdamW(0.01, weight_decay=0.05)],
                         ids=["nesterov-l2", "plain-sgd", "adamw"])
@pytest.mark.parametrize("activation,output", [("prelu", "softmax"), ("tanh", "prelu")])
def test_columns_epoch_matches_serial_epoch(activation, output, opt, n_blocks):
    """Units split into 1-3 blocks (more blocks than cores is allowed), blocks of
    uneven width, coupled and decoupled decay, prelu slopes on either side of
    the split, a short last batch: parameters, optimizer state and loss agree."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((45, 6))
    results = []
    for strategy in ("serial", "columns"):
        model = fastbp.MLP([6, 40, 33, 3], activation=activation, output=output,
                           dtype=np.float64, seed=2)
        Y = model.network.check_targets(rng.integers(0, 3, 45) if output == "softmax"
                                         else rng.standard_normal((45, 3)), 45)
        state = opt.init(model.params, n_decay=model.n_coefs)
        steps = KernelEpochs(model.network, model.network.check_X(X), Y, opt, state, 8,
                             strategy, n_blocks)
        with kernel_threads(*thread_counts(strategy, n_blocks, 2)):
            losses = [steps.run(perm, 0, steps.n_steps(perm))
                      for perm in (np.random.default_rng(e).permutation(45) for e in range(2))]
        results.append((losses, model.params.copy(), state.buffers.copy()))
        rng = np.random.default_rng(5)
        X = rng.standard_normal((45, 6))
    (serial_loss, serial_p, serial_s), (col_loss, col_p, col_s) = results
    np.testing.assert_allclose(col_loss, serial_loss, rtol=1e-12)
    np.testing.assert_allclose(col_p, serial_p, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(col_s, serial_s, rtol=1e-10, atol=1e-12)


def test_columns_unit_bounds_align_wide_layers_and_cover_every_unit():
    from fastbp.strategy import unit_bounds
    layout = fastbp.MLP([784, 1000, 20, 10]).network.layout
    bounds = unit_bounds(layout, 3)
    assert bounds[0].tolist() == [0, 336, 672, 1000]  # multiples of 16
    assert bounds[1].tolist() == [0, 7, 13, 20]  # too narrow to align
    assert bounds[:, 0].tolist() == [0, 0, 0] and bounds[:2, -1].tolist() == [1000, 20]


def test_columns_stops_a_diverging_epoch_with_the_last_finite_weights():
    X = np.random.default_rng(0).standard_normal((64, 4)) * 1e3
    model = fastbp.MLP([4, 16, 1], output="identity", seed=0)
    with pytest.warns(RuntimeWarning, match="diverged"):
        history = model.fit(X, X[:, 0] * 1e3, optimizer=SGD(10.0), epochs=5, batch_size=8,
                            verbose=0, n_jobs=2, strategy="columns")
    assert model.strategy_ == "columns"
    assert history.stop_reason == "diverged"
    assert np.all(np.isfinite(model.params))


def test_columns_without_a_hidden_layer_runs_serial():
    X = np.random.default_rng(0).standard_normal((20, 4))
    model = fastbp.MLP([4, 3], seed=0)
    model.fit(X, np.arange(20) % 3, epochs=1, verbose=0, n_jobs=2, strategy="columns")
    assert model.strategy_ == "serial"


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity", "prelu"])
def test_prediction_matches_reference_forward(output, dtype, parallel, monkeypatch):
    import fastbp.network
    if parallel:  # small chunks spread over 2 threads, a short last chunk
        monkeypatch.setattr(fastbp.network, "PARALLEL_PREDICT_MIN_MACS", 0)
        monkeypatch.setattr(fastbp.network, "PREDICT_CHUNK", 3)
    rng = np.random.default_rng(1)
    activation = "elu" if output == "softmax" else "tanh"  # the suite's usual configurations
    model = fastbp.MLP([4, 9, 3], activation=activation, output=output, dtype=dtype, seed=1)
    X = rng.standard_normal((11, 4))
    _, acts = ref.forward(X.astype(dtype).astype(np.float64),
                          [W.astype(np.float64) for W in model.coefs_],
                          [b.astype(np.float64) for b in model.intercepts_],
                          model.network.layout.activations, reference_gammas(model))
    assert_close(model.network.forward(model.network.check_X(X)), acts[-1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_weights_equal_repeated_rows_and_scale_l2_by_batch_weight(dtype):
    """A weights column after the targets: integer weights give the loss and
    gradient of the rows repeated that many times; ``l2_per_weight`` adds
    ``alpha / Σw`` to the L2 coefficient (scikit-learn's ``alpha``)."""
    rng = np.random.default_rng(3)
    model = fastbp.MLP([4, 6, 3], activation="tanh", dtype=dtype, seed=0)
    X = rng.standard_normal((5, 4)).astype(dtype)
    Y = model.network.check_targets(rng.integers(0, 3, 5), 5)
    w = np.array([1, 3, 2, 1, 2])

    def loss_grad(X, Y, l2, l2_per_weight, norm):
        grads = np.empty_like(model.params)
        workspace = model.network.layout.workspace(X.shape[0], dtype)
        loss = model.network.gradient(X, Y, grads, workspace, l2, l2_per_weight, norm)
        return loss, grads

    weighted = loss_grad(X, np.column_stack([Y, w]).astype(dtype), 0.0, 0.7, float(w.sum()))
    repeated = loss_grad(np.repeat(X, w, axis=0), np.repeat(Y, w, axis=0), 0.7 / w.sum(), 0.0,
                         float(w.sum()))
    assert_close(weighted[0], repeated[0], dtype, "loss")
    assert_close(weighted[1], repeated[1], dtype, "gradient")
