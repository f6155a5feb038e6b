"""Every kernel against tests/reference.py, per activation × dtype × odd shapes."""
import numpy as np
import pytest

from conftest import DTYPES, SHAPES, assert_close
import reference as ref
from fastbp.architecture import LOSSES, OUTPUT_ACTIVATIONS
from fastbp.kernels import dense, losses, optim

ALL = ref.HIDDEN + ["softmax"]
GAMMA = {"leaky_relu": 0.1, "elu": 0.7}


def gamma_for(name, width, rng, dtype):
    """(kernel's gamma vector, reference's gamma)."""
    if name == "prelu":
        g = rng.uniform(0.05, 0.5, width).astype(dtype)
        return g, g.astype(np.float64)
    g = GAMMA.get(name, 0.0)
    return np.array([g], dtype=dtype), g


def draw(rng, dtype, *shape, scale=1.5):
    return (scale * rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL)
def test_dense_forward(name, dtype, shape, rng):
    n, fan_in, fan_out = shape
    if name == "softmax" and fan_out == 1:
        fan_out = 2
    a_in, W, b = draw(rng, dtype, n, fan_in), draw(rng, dtype, fan_in, fan_out), draw(rng, dtype, fan_out)
    gamma, g_ref = gamma_for(name, fan_out, rng, dtype)
    z_out = np.full((n, fan_out), np.nan, dtype=dtype)
    a_out = np.full((n, fan_out), np.nan, dtype=dtype)
    dense.dense_forward(a_in, W, b, OUTPUT_ACTIVATIONS[name], gamma, z_out, a_out)
    z = a_in.astype(np.float64) @ W + b
    assert_close(a_out, ref.activate(z, name, g_ref), dtype, name)
    if name == "prelu":
        assert_close(z_out, z, dtype, "prelu keeps z")
    else:
        assert np.isnan(z_out).all(), "z_out is written by prelu only"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL)
def test_activation_backward(name, dtype, shape, rng):
    n, _, width = shape
    if name == "softmax" and width == 1:
        width = 2
    z = draw(rng, dtype, n, width)
    gamma, g_ref = gamma_for(name, width, rng, dtype)
    a = ref.activate(z.astype(np.float64), name, g_ref).astype(dtype)
    grad = draw(rng, dtype, n, width)
    expected, slope_expected = ref.chain(grad.astype(np.float64), z.astype(np.float64),
                                         a.astype(np.float64), name, g_ref)
    slope_grad = np.full(width, np.nan, dtype=dtype)
    dense.activation_backward(grad, a, z, OUTPUT_ACTIVATIONS[name], gamma, slope_grad)
    assert_close(grad, expected, dtype, name)
    if name == "prelu":
        assert_close(slope_grad, slope_expected, dtype, "prelu slope gradient")
    else:
        assert np.isnan(slope_grad).all()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name_in", ref.HIDDEN)
def test_dense_backward(name_in, dtype, shape, rng):
    """coef/intercept gradients with L2 folded in, δ of the layer below, penalty."""
    n, fan_in, fan_out = shape
    z_in = draw(rng, dtype, n, fan_in)
    gamma, g_ref = gamma_for(name_in, fan_in, rng, dtype)
    a_in = ref.activate(z_in.astype(np.float64), name_in, g_ref).astype(dtype)
    W, delta = draw(rng, dtype, fan_in, fan_out), draw(rng, dtype, n, fan_out)
    l2 = 0.3
    coef_grad = np.empty((fan_in, fan_out), dtype=dtype)
    intercept_grad = np.empty(fan_out, dtype=dtype)
    delta_in = np.empty((n, fan_in), dtype=dtype)
    slope_grad = np.zeros(fan_in, dtype=dtype)
    penalty = dense.dense_backward(a_in, delta, W, l2, coef_grad, intercept_grad, True,
                                   z_in, OUTPUT_ACTIVATIONS[name_in], gamma, slope_grad,
                                   delta_in)
    a64, d64, W64 = a_in.astype(np.float64), delta.astype(np.float64), W.astype(np.float64)
    assert_close(coef_grad, a64.T @ d64 + l2 * W64, dtype, "coef_grad")
    assert_close(intercept_grad, d64.sum(axis=0), dtype, "intercept_grad")
    assert_close(penalty, 0.5 * l2 * np.sum(W64 ** 2), dtype, "penalty")
    expected, slope_expected = ref.chain(d64 @ W64.T, z_in.astype(np.float64), a64,
                                         name_in, g_ref)
    assert_close(delta_in, expected, dtype, "delta_in")
    if name_in == "prelu":
        assert_close(slope_grad, slope_expected, dtype, "prelu slope gradient")


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_backward_first_layer_does_not_propagate(dtype, rng):
    a_in, delta, W = draw(rng, dtype, 4, 3), draw(rng, dtype, 4, 2), draw(rng, dtype, 3, 2)
    sentinel = np.full((4, 3), 7.0, dtype=dtype)
    dense.dense_backward(a_in, delta, W, 0.0, np.empty((3, 2), dtype), np.empty(2, dtype),
                         False, a_in, 0, np.zeros(1, dtype), np.zeros(1, dtype), sentinel)
    assert (sentinel == 7.0).all()


PAIRS = [("softmax", "cross_entropy"), ("logistic", "binary_cross_entropy"),
         ("identity", "squared_error"), ("logistic", "squared_error"),
         ("tanh", "squared_error"), ("softmax", "squared_error"), ("prelu", "squared_error"),
         ("relu", "squared_error"), ("elu", "squared_error"), ("hard_tanh", "squared_error"),
         ("exp", "poisson"), ("identity", "mean_squared_error"),
         ("tanh", "mean_squared_error")]
CANONICAL = {("softmax", "cross_entropy"), ("logistic", "binary_cross_entropy"),
             ("identity", "squared_error"), ("exp", "poisson"),
             ("identity", "mean_squared_error")}
# scikit-learn's squared error is not a user-facing loss name of the native API
LOSS_CODES = {**LOSSES, "mean_squared_error": losses.MEAN_SQUARED_ERROR}


def targets(loss, n, width, rng, dtype):
    if loss == "cross_entropy":
        return np.eye(width, dtype=dtype)[rng.integers(0, width, n)]
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, (n, width)).astype(dtype)
    if loss == "poisson":
        return rng.poisson(1.5, (n, width)).astype(dtype)
    return draw(rng, dtype, n, width)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output,loss", PAIRS)
def test_output_delta(output, loss, dtype, shape, weighted, rng):
    """δ and loss against the reference's chain rule; with a column of sample
    weights after the targets, the weighted mean of both."""
    n, _, width = shape
    width = max(width, 2) if output == "softmax" else width
    z = draw(rng, dtype, n, width)
    gamma, g_ref = gamma_for(output, width, rng, dtype)
    a = ref.activate(z.astype(np.float64), output, g_ref).astype(dtype)
    Y = targets(loss, n, width, rng, dtype)
    weights = rng.uniform(0.1, 3.0, n) if weighted else None
    Y_in = np.column_stack([Y, weights]).astype(dtype) if weighted else Y
    norm = losses.batch_weight(Y_in, width)
    delta = np.empty((n, width), dtype=dtype)
    slope_grad = np.zeros(width, dtype=dtype)
    total = losses.output_delta(a, Y_in, z, OUTPUT_ACTIVATIONS[output], gamma, slope_grad,
                                LOSS_CODES[loss], (output, loss) in CANONICAL, 1.0 / norm,
                                delta)
    a64, Y64 = a.astype(np.float64), Y.astype(np.float64)
    w64 = Y_in[:, width].astype(np.float64) if weighted else None
    assert norm == pytest.approx(n if w64 is None else w64.sum())
    assert_close(total / norm, ref.loss_value(a64, Y64, loss, w64), dtype, "loss")
    expected, slope_expected = ref.chain(ref.loss_grad_a(a64, Y64, loss, w64),
                                         z.astype(np.float64), a64, output, g_ref)
    assert_close(delta, expected, dtype, "delta")
    if output == "prelu":
        assert_close(slope_grad, slope_expected, dtype, "prelu slope gradient")


def test_cross_entropy_clips_zero_probability():
    a = np.array([[0.0, 1.0]])
    Y = np.array([[1.0, 0.0]])
    total = losses.output_delta(a, Y, a, 10, np.zeros(1), np.zeros(1), 0, True, 1.0,
                                np.empty_like(a))
    assert total == pytest.approx(-np.log(np.finfo(np.float64).eps))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_update(momentum, nesterov, dtype, rng):
    n, n_decay, lr, l2 = 11, 6, 0.05, 0.01
    p, g = draw(rng, dtype, n), draw(rng, dtype, n)
    velocity = draw(rng, dtype, n) if momentum else np.empty(0, dtype)
    g_l2 = g.astype(np.float64) + np.r_[l2 * p[:n_decay].astype(np.float64), np.zeros(n - n_decay)]
    p_exp, v_exp = ref.sgd_step(p.astype(np.float64), g_l2, velocity.astype(np.float64),
                                lr, momentum, nesterov)
    optim.sgd_update(p, g, velocity, lr, momentum, nesterov, l2, n_decay)
    assert_close(p, p_exp, dtype, "params")
    if momentum:
        assert_close(velocity, v_exp, dtype, "velocity")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_update(weight_decay, dtype, rng):
    n, n_decay, lr, b1, b2, eps = 9, 4, 0.01, 0.9, 0.999, 1e-8
    p, g = draw(rng, dtype, n), draw(rng, dtype, n)
    m, v = draw(rng, dtype, n), np.abs(draw(rng, dtype, n))
    p64, m64, v64 = p.astype(np.float64), m.astype(np.float64), v.astype(np.float64)
    for t in (1, 2, 3):
        p64_d, m64, v64 = ref.adam_step(p64[:n_decay], g[:n_decay].astype(np.float64),
                                        m64[:n_decay], v64[:n_decay], t, lr, b1, b2, eps,
                                        weight_decay), m64, v64
        rest = ref.adam_step(p64[n_decay:], g[n_decay:].astype(np.float64), m64[n_decay:],
                             v64[n_decay:], t, lr, b1, b2, eps)
        p64 = np.r_[p64_d[0], rest[0]]
        m64, v64 = np.r_[p64_d[1], rest[1]], np.r_[p64_d[2], rest[2]]
        optim.adam_update(p, g, m, v, t, lr, b1, b2, eps, 0.0, weight_decay, n_decay)
    assert_close(p, p64, dtype, "params")
    assert_close(m, m64, dtype, "m")
    assert_close(v, v64, dtype, "v")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite(bad, dtype):
    from fastbp.kernels.checks import all_finite
    a = np.linspace(-1e30, 1e30, 101).astype(dtype)
    assert all_finite(a)
    assert all_finite(np.array([np.finfo(dtype).max] * 3, dtype=dtype))
    for where in (0, 50, 100):
        b = a.copy()
        b[where] = bad
        assert not all_finite(b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [0, 1])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_gemm_on_blocks_of_flat_buffers(trans_a, trans_b, beta, dtype, rng):
    """Column blocks of wider row-major matrices, addressed by offset and row stride."""
    from fastbp.kernels.blas import NO_TRANS, TRANS, gemm
    m, n, k = 5, 4, 7
    a_shape = (k, m) if trans_a else (m, k)
    b_shape = (n, k) if trans_b else (k, n)
    A = draw(rng, dtype, a_shape[0], a_shape[1] + 3)  # the block starts at column 2
    B = draw(rng, dtype, b_shape[0], b_shape[1] + 1)  # ... at column 1
    C = draw(rng, dtype, m, n + 5)  # ... at column 3
    a_block = A[:, 2:2 + a_shape[1]]
    b_block = B[:, 1:1 + b_shape[1]]
    expected = C.astype(np.float64)
    expected[:, 3:3 + n] = (beta * expected[:, 3:3 + n]
                            + (a_block.T if trans_a else a_block).astype(np.float64)
                            @ (b_block.T if trans_b else b_block).astype(np.float64))
    status = gemm(TRANS if trans_a else NO_TRANS, TRANS if trans_b else NO_TRANS, m, n, k,
                  A.reshape(-1)[2:], A.shape[1], B.reshape(-1)[1:], B.shape[1],
                  C.reshape(-1)[3:], C.shape[1], np.array([1, beta], dtype=dtype))
    assert status == 0
    assert_close(C, expected, dtype, "C, its block and the untouched columns around it")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["exp", "expm1", "tanh"])
def test_elementary_functions_match_numpy(name, dtype):
    """The vectorisable exp/expm1/tanh: within a few ulp of NumPy, special values exact."""
    import numba
    from fastbp.kernels import elementary
    from fastbp.kernels._config import ERROR_MODEL, FASTMATH
    fn = getattr(elementary, f"fast_{name}")

    @numba.njit(fastmath=set(FASTMATH), error_model=ERROR_MODEL)
    def apply(a, out):
        for i in range(a.size):
            out[i] = fn(a[i])

    rng = np.random.default_rng(0)
    info = np.finfo(dtype)
    limit = np.log(info.max) * 1.05
    a = np.concatenate([rng.uniform(-limit, limit, 20000), rng.uniform(-1, 1, 20000),
                        np.sign(rng.uniform(-1, 1, 5000)) * 10.0 ** rng.uniform(-30, 0, 5000),
                        [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45]]).astype(dtype)
    out = np.empty_like(a)
    apply(a, out)
    with np.errstate(all="ignore"):
        expected = getattr(np, name)(a.astype(np.float64)).astype(dtype).astype(np.float64)
    normal = np.isfinite(expected) & (np.abs(expected) >= info.tiny)
    ulps = {np.float32: 4, np.float64: 256}[dtype]  # reassociation costs float64 some bits
    np.testing.assert_allclose(out[normal], expected[normal], rtol=ulps * info.eps, atol=0)
    # inf, NaN, 0 and results that underflow: the same as NumPy (up to the smallest normal)
    np.testing.assert_allclose(out[~normal], expected[~normal], rtol=0, atol=info.tiny)
