"""SC: 24-8-2 network, tanh hidden, batch 200, one loss + gradient (no update)."""
import numpy as np
import pytest

import fastbp
from bench import baselines
from fastbp.kernels import train as K


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((200, 24), dtype=np.float32), rng.integers(0, 2, 200)


@pytest.mark.benchmark(group="SC-loss-and-gradient")
def test_sc_fastbp_kernel(benchmark, data):
    X, y = data
    model = fastbp.MLP([24, 8, 2], activation="tanh", seed=0)
    Y = model._check_targets(y, 200)
    grads = np.empty_like(model.params)
    acts, zs, deltas = model._layout.workspace(200, model.dtype)
    benchmark(K.forward_backward, X, Y, model.params, grads, model._layout.layers,
              model._gammas, model._loss_code, model._canonical, 0.0, 200, acts, zs, deltas)


@pytest.mark.benchmark(group="SC-loss-and-gradient")
def test_sc_fastbp_loss_and_grad(benchmark, data):
    X, y = data
    model = fastbp.MLP([24, 8, 2], activation="tanh", seed=0)
    benchmark(model.loss_and_grad, X, y)


@pytest.mark.benchmark(group="SC-loss-and-gradient")
def test_sc_torch(benchmark, data):
    torch = pytest.importorskip("torch")
    X, y = data
    net = baselines.torch_network([24, 8, 2], hidden="tanh")
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()

    def loss_grad():
        net.zero_grad()
        loss_fn(net(Xt), yt).backward()
    benchmark(loss_grad)
