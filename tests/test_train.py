"""The whole-network kernels (epoch, prediction) against the NumPy reference."""
import numpy as np
import pytest

from conftest import DTYPES, assert_close, reference_gammas, reference_loss_and_flat_grad
import reference as ref
import fastbp
from fastbp.kernels import train as K
from fastbp.optim import SGD, Adam


def run_epoch(model, opt, state, X, Y, perm, batch):
    layout = model._layout
    acts, zs, deltas = layout.workspace(batch, model.dtype)
    return K.train_epoch(X, Y, perm, batch, model.params, np.empty_like(model.params),
                         state.buffers, layout.layers, model._gammas, model._loss_code,
                         model._canonical, opt.l2, opt.code, opt.hyper(), state.step,
                         state.n_decay, np.empty(batch * X.shape[1], model.dtype),
                         np.empty(batch * Y.shape[1], model.dtype), acts, zs, deltas)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9), Adam(0.01)], ids=["sgd", "adam"])
@pytest.mark.parametrize("activation", ["tanh", "prelu"])
def test_train_epoch_matches_reference_minibatch_loop(activation, opt, dtype):
    """Gather by permutation, a short last batch, forward/backward, update: step by step."""
    rng = np.random.default_rng(0)
    model = fastbp.MLP([5, 7, 4, 3], activation=activation, dtype=dtype, seed=0)
    X = rng.standard_normal((23, 5)).astype(dtype)
    Y = model._check_targets(rng.integers(0, 3, 23), 23)
    perm = rng.permutation(23)
    batch = 5
    state = opt.init(model.params, n_decay=model.n_coefs)

    expected = model.astype("float64")
    p = expected.params
    buffers = np.zeros((2, p.size))
    losses = []
    for step, start in enumerate(range(0, 23, batch), start=1):
        rows = perm[start:start + batch]
        value, g = reference_loss_and_flat_grad(expected, X[rows], Y[rows])
        losses.append(value * len(rows))
        if isinstance(opt, Adam):
            p[...], buffers[0], buffers[1] = ref.adam_step(p, g, buffers[0], buffers[1], step,
                                                           opt.lr, opt.b1, opt.b2, opt.eps)
        else:
            p[...], buffers[0] = ref.sgd_step(p, g, buffers[0], opt.lr, opt.momentum, False)

    loss = run_epoch(model, opt, state, X, Y, perm, batch)
    assert_close(loss, sum(losses) / 23, dtype, "epoch loss")
    assert_close(model.params, p, dtype, "parameters after the epoch")


def test_step_loop_does_not_allocate():
    """Allocations per epoch call do not grow with the number of steps."""
    from numba.core.runtime import _nrt_python, rtsys
    model = fastbp.MLP([6, 8, 8, 3], activation="prelu", seed=0)
    X = np.random.default_rng(0).standard_normal((400, 6)).astype(np.float32)
    Y = model._check_targets(np.arange(400) % 3, 400)
    opt = Adam()
    state = opt.init(model.params, n_decay=model.n_coefs)
    run_epoch(model, opt, state, X, Y, np.arange(4), 4)  # compile first
    _nrt_python.memsys_enable_stats()
    try:
        counts = []
        for n in (4, 400):  # 1 step, then 100 steps
            before = rtsys.get_allocation_stats().alloc
            run_epoch(model, opt, state, X, Y, np.arange(n), 4)
            counts.append(rtsys.get_allocation_stats().alloc - before)
    finally:
        _nrt_python.memsys_disable_stats()
    assert counts[0] == counts[1], f"allocations for 1 step vs 100 steps: {counts}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity", "prelu"])
def test_prediction_matches_reference_forward(output, dtype):
    rng = np.random.default_rng(1)
    model = fastbp.MLP([4, 9, 3], activation="elu", output=output, dtype=dtype, seed=1)
    X = rng.standard_normal((11, 4))
    _, acts = ref.forward(X.astype(dtype).astype(np.float64),
                          [W.astype(np.float64) for W in model.coefs_],
                          [b.astype(np.float64) for b in model.intercepts_],
                          model._layout.activations, reference_gammas(model))
    assert_close(model._forward(model._check_X(X)), acts[-1], dtype)
