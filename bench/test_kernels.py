"""Per-kernel benchmarks on the M row's first layer (128 × 784 → 256, float32)."""
import numpy as np
import pytest

from fastbp.kernels import activations as A
from fastbp.kernels import dense, optim

N, FAN_IN, FAN_OUT = 128, 784, 256
FLOPS = 2.0 * N * FAN_IN * FAN_OUT


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
        "gamma": np.zeros(1, f32),
    }


def record(benchmark, flops):
    benchmark.extra_info["gflops"] = flops / benchmark.stats.stats.median / 1e9


@pytest.mark.benchmark(group="kernel-forward")
def test_forward_fastbp(benchmark, arrays):
    a = arrays
    benchmark(dense.dense_forward, a["a_in"], a["W"], a["b"], A.RELU, a["gamma"], a["out"],
              a["out"])
    record(benchmark, FLOPS)


@pytest.mark.benchmark(group="kernel-forward")
def test_forward_numpy(benchmark, arrays):
    a = arrays
    benchmark(lambda: np.maximum(a["a_in"] @ a["W"] + a["b"], 0, out=a["out"]))
    record(benchmark, FLOPS)


@pytest.mark.benchmark(group="kernel-forward")
def test_forward_torch(benchmark, arrays):
    torch = pytest.importorskip("torch")
    x, W = torch.from_numpy(arrays["a_in"]), torch.from_numpy(arrays["W"].T.copy())
    b = torch.from_numpy(arrays["b"])
    benchmark(lambda: torch.relu(torch.nn.functional.linear(x, W, b)))
    record(benchmark, FLOPS)


@pytest.mark.benchmark(group="kernel-backward")
def test_backward_fastbp(benchmark, arrays):
    """Weight and bias gradient of a first layer (no propagation to the input)."""
    a = arrays
    benchmark(dense.dense_backward, a["a_in"], a["delta"], a["W"], 0.0, a["coef_grad"],
              a["intercept_grad"], False, a["a_in"], A.IDENTITY, a["gamma"], a["gamma"],
              a["a_in"])
    record(benchmark, FLOPS)


@pytest.mark.benchmark(group="kernel-backward")
def test_backward_numpy(benchmark, arrays):
    a = arrays

    def backward():
        np.dot(a["a_in"].T, a["delta"], out=a["coef_grad"])
        a["delta"].sum(axis=0, out=a["intercept_grad"])
    benchmark(backward)
    record(benchmark, FLOPS)


@pytest.mark.benchmark(group="kernel-update")
def test_update_fastbp(benchmark):
    n = 269_322  # the M row's parameters
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    v = np.zeros(n, np.float32)
    benchmark(optim.sgd_update, p, g, v, 0.01, 0.9, False, 0.0, n)
    benchmark.extra_info["params_per_s"] = n / benchmark.stats.stats.median


@pytest.mark.benchmark(group="kernel-update")
def test_update_numpy(benchmark):
    n = 269_322
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    v = np.zeros(n, np.float32)

    def update():
        v[...] = 0.9 * v - 0.01 * g
        p[...] += v
    benchmark(update)
    benchmark.extra_info["params_per_s"] = n / benchmark.stats.stats.median
