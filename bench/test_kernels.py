"""Per-kernel benchmarks: the M row's first layer (128 × 784 → 256, float32), and the
elementwise passes of a layer.

Every case runs with each library's default thread counts (BLAS, PyTorch's
intra-op pool), so the GEMM-bound cases compare like with like.

- ``kernel-forward``: ``a = relu(x @ W + b)``. fastbp's case calls the
  ``forward_pass`` entry kernel on ``MLP([784, 256], output="relu")``, a
  network whose only layer is exactly this one: the GEMM runs inside the
  kernel (``np.dot`` in Numba, straight to BLAS) and the bias and ReLU in the
  network's own generated function, reached through its address, as in
  training. The only extra work is the entry's own bookkeeping (slicing the
  flat buffers into the layer's views).
- ``kernel-backward``: the weight and bias gradient of a first layer (no δ
  propagated to the input): ``layers.gradients_with_l2`` with no L2.
- ``kernel-update``: one SGD step with momentum over the M row's 269,322
  parameters (``optimizers.sgd_step``, the kernel behind ``SGD.update``).
- ``kernel-elementwise``: the activation applied to a layer's product, on a
  (256, 1024) block: the network's generated ``hidden_forward`` for tanh,
  logistic and relu and ``output_forward`` for softmax, float32 and float64.
  Called in place, as the entry kernels call them (the product is written in
  the activations' block and overwritten by ``f(product + b)``); each round
  starts from a fresh copy of the same product, copied outside the timing.
  ``extra_info["ns_per_element"]`` is the median time per element.
"""
import numpy as np
import pytest

import fastbp
from fastbp import specialize
from fastbp.kernels.layers import gradients_with_l2
from fastbp.kernels.optimizers import sgd_step

N, FAN_IN, FAN_OUT = 128, 784, 256
FLOPS = 2.0 * N * FAN_IN * FAN_OUT
N_UPDATE = 269_322  # the M row's parameters


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    f32 = np.float32
    return {
        "a_in": rng.standard_normal((N, FAN_IN), dtype=f32),
        "W": rng.standard_normal((FAN_IN, FAN_OUT), dtype=f32) * f32(0.05),
        "b": np.zeros(FAN_OUT, f32),
        "out": np.empty((N, FAN_OUT), f32),
        "delta": rng.standard_normal((N, FAN_OUT), dtype=f32),
        "coef_grad": np.empty((FAN_IN, FAN_OUT), f32),
        "intercept_grad": np.empty(FAN_OUT, f32),
    }


def median(benchmark):
    """The median seconds per call, or None when timing is off (``--benchmark-disable``)."""
    return None if benchmark.stats is None else benchmark.stats.stats.median


def record(benchmark, key, value_per_second):
    """``extra_info[key] = value_per_second / median`` when the case was timed."""
    seconds = median(benchmark)
    if seconds is not None:
        benchmark.extra_info[key] = value_per_second / seconds


# ----------------------------------------------------------------------------- forward
@pytest.mark.benchmark(group="kernel-forward")
def test_forward_fastbp(benchmark, arrays):
    """The ``forward_pass`` entry kernel on a network made of this layer alone."""
    a = arrays
    model = fastbp.MLP([FAN_IN, FAN_OUT], output="relu", loss="squared_error",
                       dtype=np.float32, seed=0)
    model.coefs_[0][...] = a["W"]
    model.intercepts_[0][...] = a["b"]
    layers = model.network.layout.layers
    acts, zs, _ = model.network.layout.workspace(N, model.dtype)
    forward = specialize.entry("forward_pass", model.dtype)
    net = model.network.functions()
    out = benchmark(forward, net, a["a_in"], model.params, layers, model.network.gammas, acts, zs)
    expected = np.maximum(a["a_in"] @ a["W"] + a["b"], 0)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    record(benchmark, "gflops", FLOPS / 1e9)


@pytest.mark.benchmark(group="kernel-forward")
def test_forward_numpy(benchmark, arrays):
    a = arrays
    benchmark(lambda: np.maximum(a["a_in"] @ a["W"] + a["b"], 0, out=a["out"]))
    record(benchmark, "gflops", FLOPS / 1e9)


@pytest.mark.benchmark(group="kernel-forward")
def test_forward_torch(benchmark, arrays):
    torch = pytest.importorskip("torch")
    x, W = torch.from_numpy(arrays["a_in"]), torch.from_numpy(arrays["W"].T.copy())
    b = torch.from_numpy(arrays["b"])
    benchmark(lambda: torch.relu(torch.nn.functional.linear(x, W, b)))
    record(benchmark, "gflops", FLOPS / 1e9)


# ----------------------------------------------------------------------------- backward
@pytest.mark.benchmark(group="kernel-backward")
def test_backward_fastbp(benchmark, arrays):
    """Weight and bias gradient of a first layer (no propagation to the input)."""
    a = arrays
    benchmark(gradients_with_l2, a["a_in"], a["delta"], a["W"], 0.0, a["coef_grad"],
              a["intercept_grad"])
    np.testing.assert_allclose(a["coef_grad"], a["a_in"].T @ a["delta"], rtol=1e-3, atol=1e-3)
    record(benchmark, "gflops", FLOPS / 1e9)


@pytest.mark.benchmark(group="kernel-backward")
def test_backward_numpy(benchmark, arrays):
    a = arrays

    def backward():
        np.dot(a["a_in"].T, a["delta"], out=a["coef_grad"])
        a["delta"].sum(axis=0, out=a["intercept_grad"])
    benchmark(backward)
    record(benchmark, "gflops", FLOPS / 1e9)


# ----------------------------------------------------------------------------- update
def update_arrays():
    rng = np.random.default_rng(0)
    p = rng.standard_normal(N_UPDATE, dtype=np.float32)
    g = rng.standard_normal(N_UPDATE, dtype=np.float32)
    return p, g


@pytest.mark.benchmark(group="kernel-update")
def test_update_fastbp(benchmark):
    p, g = update_arrays()
    opt = fastbp.optim.SGD(0.01, momentum=0.9)
    state = np.zeros((opt.n_buffers, N_UPDATE), np.float32)
    hyper = opt.hyper()
    benchmark(sgd_step, p, g, state, hyper, 1, N_UPDATE, 0.0)
    record(benchmark, "params_per_s", N_UPDATE)


@pytest.mark.benchmark(group="kernel-update")
def test_update_numpy(benchmark):
    p, g = update_arrays()
    v = np.zeros(N_UPDATE, np.float32)

    def update():
        v[...] = 0.9 * v - 0.01 * g
        p[...] += v
    benchmark(update)
    record(benchmark, "params_per_s", N_UPDATE)


# ----------------------------------------------------------------------------- elementwise
BLOCK = (256, 1024)
HIDDEN = ("tanh", "logistic", "relu")
ELEMENTWISE_CONFIG = specialize.Config(tuple(sorted(HIDDEN)), "softmax", "cross_entropy")
ELEMENTWISE_ROUNDS = 200


@pytest.mark.benchmark(group="kernel-elementwise")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", HIDDEN + ("softmax",))
def test_elementwise(benchmark, activation, dtype):
    """``a = f(product + b)`` in place on a (256, 1024) block; ns per element in extra_info."""
    kernels = specialize.network_kernels(ELEMENTWISE_CONFIG)
    kernels.addresses(dtype)  # compiles (or loads) the functions for their fixed signatures
    hidden, output = kernels.hidden.module, kernels.output.module
    rng = np.random.default_rng(0)
    product = rng.standard_normal(BLOCK).astype(dtype)
    b = (0.1 * rng.standard_normal(BLOCK[1])).astype(dtype)
    gamma = np.zeros(1, dtype)
    out = np.empty(BLOCK, dtype)

    def fresh_product():  # not timed: the block holds the product again, as after the GEMM
        out[...] = product
        return (), {}

    if activation == "softmax":
        def apply():
            output.output_forward(out, b, gamma, out, out)
    else:
        kind = ELEMENTWISE_CONFIG.hidden.index(activation)

        def apply():
            hidden.hidden_forward(kind, out, b, gamma, out, out)

    benchmark.pedantic(apply, setup=fresh_product, rounds=ELEMENTWISE_ROUNDS, warmup_rounds=1)
    z = product + b
    if activation == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        expected = e / e.sum(axis=1, keepdims=True)
    else:
        expected = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
                    "logistic": lambda v: 1 / (1 + np.exp(-v))}[activation](z)
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-5)
    seconds = median(benchmark)
    if seconds is not None:
        benchmark.extra_info["ns_per_element"] = seconds / out.size * 1e9
