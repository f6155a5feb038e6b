"""The whole-network kernels (epoch, prediction) against the NumPy reference."""
import numpy as np
import pytest

from conftest import DTYPES, assert_close, reference_gammas, reference_loss_and_flat_grad
import reference as ref
import fastbp
from fastbp._threads import thread_limit
from fastbp.optim import SGD, Adam
from fastbp.strategy import thread_counts


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
            if isinstance(opt, Adam):
                p[...], buffers[0], buffers[1] = ref.adam_step(
                    p, g, buffers[0], buffers[1], step, opt.lr, opt.b1, opt.b2, opt.eps)
            else:
                p[...], buffers[0] = ref.sgd_step(p, g, buffers[0], opt.lr, opt.momentum,
                                                  opt.nesterov)
        losses.append(total / len(X))
    return losses, p


@pytest.mark.parametrize("strategy", ["serial", "blas", "sharded"])
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
    losses, p = reference_epochs(model, opt, X, model._check_targets(y, 22), batch, 2)
    history = model.fit(X, y, optimizer=opt, epochs=2, batch_size=batch, shuffle=False,
                        verbose=0, n_jobs=2, strategy=strategy)
    assert model.strategy_ == strategy
    assert_close(history.loss, losses, dtype, "epoch losses")
    assert_close(model.params, p, dtype, "parameters after two epochs")


@pytest.mark.parametrize("strategy", ["serial", "blas", "sharded"])
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


@pytest.mark.parametrize("strategy", ["serial", "sharded"])
def test_step_loop_does_not_allocate(strategy):
    """Allocations per epoch call do not grow with the number of steps."""
    from numba.core.runtime import _nrt_python, rtsys
    model = fastbp.MLP([6, 8, 8, 3], activation="prelu", seed=0)
    X = np.random.default_rng(0).standard_normal((400, 6)).astype(np.float32)
    Y = model._check_targets(np.arange(400) % 3, 400)
    opt = Adam()
    state = opt.init(model.params, n_decay=model.n_coefs)
    run = model._epoch_runner(X, Y, opt, state, 4, strategy, 2)
    with thread_limit(*thread_counts(strategy, 2)):
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


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity", "prelu"])
def test_prediction_matches_reference_forward(output, dtype, parallel, monkeypatch):
    import fastbp.model
    if parallel:  # small chunks spread over 2 threads, a short last chunk
        monkeypatch.setattr(fastbp.model, "PARALLEL_PREDICT_MIN_ROWS", 2)
        monkeypatch.setattr(fastbp.model, "PREDICT_CHUNK", 3)
    rng = np.random.default_rng(1)
    model = fastbp.MLP([4, 9, 3], activation="elu", output=output, dtype=dtype, seed=1)
    X = rng.standard_normal((11, 4))
    _, acts = ref.forward(X.astype(dtype).astype(np.float64),
                          [W.astype(np.float64) for W in model.coefs_],
                          [b.astype(np.float64) for b in model.intercepts_],
                          model._layout.activations, reference_gammas(model))
    assert_close(model._forward(model._check_X(X)), acts[-1], dtype)
