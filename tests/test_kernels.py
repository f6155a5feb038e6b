"""Every kernel against tests/reference.py, per activation × dtype × odd shapes.

The activation and loss kernels are a network's own functions (``fastbp.specialize``),
called here directly: the code a fit runs, compiled for one activation each.
"""
import numpy as np
import pytest

from conftest import DTYPES, SHAPES, assert_close
import reference as ref
from fastbp import specialize
from fastbp.architecture import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, natural_loss
from fastbp.kernels import optimizers
from fastbp.kernels.activations import ACTIVATIONS
from fastbp.kernels.losses import LOSSES, batch_weight

GAMMA = {"leaky_relu": 0.1, "elu": 0.7}


def gamma_for(name, width, rng, dtype):
    """(kernel's gamma vector, reference's gamma)."""
    if ACTIVATIONS[name].gamma == "learnable":
        g = rng.uniform(0.05, 0.5, width).astype(dtype)
        return g, g.astype(np.float64)
    g = GAMMA.get(name, 0.0)
    return np.array([g], dtype=dtype), g


def draw(rng, dtype, *shape, scale=1.5):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def hidden_config(name):
    """The configuration the suite uses for hidden activation ``name`` (kind 0)."""
    return specialize.Config((name,), "softmax", "cross_entropy")


def output_config(output, loss=None):
    """The configuration the suite uses for an output (tanh hidden layers)."""
    return specialize.Config(("tanh",), output, loss or natural_loss(output))


def functions(name):
    """The network functions of a network whose layers use activation ``name``.

    The configurations are the suite's usual ones (test_gradients.py), compiled once.
    """
    if ACTIVATIONS[name].hidden:
        return specialize.network_kernels(hidden_config(name)).hidden.module
    return specialize.network_kernels(output_config(name)).output.module


def forward(name, product, b, gamma, z_out, a_out):
    module = functions(name)
    if ACTIVATIONS[name].hidden:
        module.hidden_forward(0, product, b, gamma, z_out, a_out)
    else:
        module.output_forward(product, b, gamma, z_out, a_out)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", OUTPUT_ACTIVATIONS)
def test_activation_forward(name, dtype, shape, rng):
    """``a = f(product + b)``; ``z`` kept exactly by the activations that read it."""
    n, fan_in, fan_out = shape
    if name == "softmax" and fan_out == 1:
        fan_out = 2
    a_in, W, b = draw(rng, dtype, n, fan_in), draw(rng, dtype, fan_in, fan_out), draw(rng, dtype, fan_out)
    gamma, g_ref = gamma_for(name, fan_out, rng, dtype)
    product = a_in @ W
    keeps_z = ACTIVATIONS[name].reads_z
    z_out = np.full((n, fan_out), np.nan, dtype=dtype)
    a_out = np.full((n, fan_out), np.nan, dtype=dtype)
    # as the kernels call it: the product is in z (which is a itself unless z is kept)
    (z_out if keeps_z else a_out)[...] = product
    forward(name, z_out if keeps_z else a_out, b, gamma, z_out if keeps_z else a_out, a_out)
    z = product.astype(np.float64) + b
    assert_close(a_out, ref.activate(z, name, g_ref), dtype, name)
    if keeps_z:
        assert_close(z_out, z, dtype, f"{name} keeps z")
    else:
        assert np.isnan(z_out).all(), "z_out is written only by activations that keep z"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_activation_backward(name, dtype, shape, rng):
    """``grad ⊙= f'`` from ``a`` (or ``z``), and the gradient of a learnable γ."""
    n, _, width = shape
    z = draw(rng, dtype, n, width)
    gamma, g_ref = gamma_for(name, width, rng, dtype)
    a = ref.activate(z.astype(np.float64), name, g_ref).astype(dtype)
    grad = draw(rng, dtype, n, width)
    expected, slope_expected = ref.chain(grad.astype(np.float64), z.astype(np.float64),
                                         a.astype(np.float64), name, g_ref)
    slope_grad = np.full(width, np.nan, dtype=dtype)
    z_in = z if ACTIVATIONS[name].reads_z else a
    functions(name).hidden_backward(0, grad, a, z_in, gamma, slope_grad)
    assert_close(grad, expected, dtype, name)
    if ACTIVATIONS[name].gamma == "learnable":
        assert_close(slope_grad, slope_expected, dtype, "slope gradient")
    else:
        assert np.isnan(slope_grad).all()


PAIRS = [("softmax", "cross_entropy"), ("logistic", "binary_cross_entropy"),
         ("identity", "squared_error"), ("logistic", "squared_error"),
         ("tanh", "squared_error"), ("softmax", "squared_error"), ("prelu", "squared_error"),
         ("relu", "squared_error"), ("elu", "squared_error"), ("hard_tanh", "squared_error"),
         ("exp", "poisson"), ("identity", "sklearn_squared_error"),
         ("tanh", "sklearn_squared_error")]


def targets(loss, n, width, rng, dtype):
    kind = LOSSES[loss].targets
    if kind == "labels":
        return np.eye(width, dtype=dtype)[rng.integers(0, width, n)]
    if kind == "unit":
        return rng.integers(0, 2, (n, width)).astype(dtype)
    if kind == "nonnegative":
        return rng.poisson(1.5, (n, width)).astype(dtype)
    return draw(rng, dtype, n, width)


def output_functions(output, loss):
    return specialize.network_kernels(output_config(output, loss)).output.module


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
    norm = batch_weight(Y_in, width)
    delta = np.empty((n, width), dtype=dtype)
    slope_grad = np.zeros(width, dtype=dtype)
    module = output_functions(output, loss)
    total = module.output_delta(a, Y_in, z, gamma, slope_grad, 1.0 / norm, delta)
    a64, Y64 = a.astype(np.float64), Y.astype(np.float64)
    w64 = Y_in[:, width].astype(np.float64) if weighted else None
    assert norm == pytest.approx(n if w64 is None else w64.sum())
    assert_close(total / norm, ref.loss_value(a64, Y64, loss, w64), dtype, "loss")
    assert module.output_loss(a, Y_in) == pytest.approx(total, rel=1e-12)
    expected, slope_expected = ref.chain(ref.loss_grad_a(a64, Y64, loss, w64),
                                         z.astype(np.float64), a64, output, g_ref)
    assert_close(delta, expected, dtype, "delta")
    if ACTIVATIONS[output].gamma == "learnable":
        assert_close(slope_grad, slope_expected, dtype, "slope gradient")


def test_every_loss_is_checked_with_its_canonical_output():
    assert {loss for _, loss in PAIRS} == set(LOSSES)
    assert {(LOSSES[loss].canonical_output, loss) for loss in LOSSES} <= set(PAIRS)


def test_cross_entropy_clips_zero_probability():
    a = np.array([[0.0, 1.0]])
    Y = np.array([[1.0, 0.0]])
    total = output_functions("softmax", "cross_entropy").output_loss(a, Y)
    assert total == pytest.approx(-np.log(np.finfo(np.float64).eps))


def hyper(lr=0.0, momentum=0.0, nesterov=False, b1=0.0, b2=0.0, eps=0.0, weight_decay=0.0):
    h = np.zeros(optimizers.N_HYPER)
    h[[optimizers.H_LR, optimizers.H_MOMENTUM, optimizers.H_NESTEROV, optimizers.H_B1,
       optimizers.H_B2, optimizers.H_EPS, optimizers.H_WEIGHT_DECAY]] = (
        lr, momentum, nesterov, b1, b2, eps, weight_decay)
    return h


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_update(momentum, nesterov, dtype, rng):
    n, n_decay, lr, l2 = 11, 6, 0.05, 0.01
    p, g = draw(rng, dtype, n), draw(rng, dtype, n)
    state = draw(rng, dtype, 1 if momentum else 0, n)
    velocity = state[0] if momentum else np.empty(0)
    g_l2 = g.astype(np.float64) + np.r_[l2 * p[:n_decay].astype(np.float64), np.zeros(n - n_decay)]
    p_exp, v_exp = ref.sgd_step(p.astype(np.float64), g_l2, velocity.astype(np.float64),
                                lr, momentum, nesterov)
    optimizers.sgd_step(p, g, state, hyper(lr, momentum, nesterov), 1, n_decay, l2)
    assert_close(p, p_exp, dtype, "params")
    if momentum:
        assert_close(state[0], v_exp, dtype, "velocity")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_update(weight_decay, dtype, rng):
    n, n_decay, lr, b1, b2, eps = 9, 4, 0.01, 0.9, 0.999, 1e-8
    p, g = draw(rng, dtype, n), draw(rng, dtype, n)
    state = np.stack([draw(rng, dtype, n), np.abs(draw(rng, dtype, n))])
    p64, m64, v64 = p.astype(np.float64), state[0].astype(np.float64), state[1].astype(np.float64)
    for t in (1, 2, 3):
        p64_d, m64, v64 = ref.adam_step(p64[:n_decay], g[:n_decay].astype(np.float64),
                                        m64[:n_decay], v64[:n_decay], t, lr, b1, b2, eps,
                                        weight_decay), m64, v64
        rest = ref.adam_step(p64[n_decay:], g[n_decay:].astype(np.float64), m64[n_decay:],
                             v64[n_decay:], t, lr, b1, b2, eps)
        p64 = np.r_[p64_d[0], rest[0]]
        m64, v64 = np.r_[p64_d[1], rest[1]], np.r_[p64_d[2], rest[2]]
        optimizers.adam_step(p, g, state, hyper(lr, b1=b1, b2=b2, eps=eps,
                                                weight_decay=weight_decay), t, n_decay, 0.0)
    assert_close(p, p64, dtype, "params")
    assert_close(state[0], m64, dtype, "m")
    assert_close(state[1], v64, dtype, "v")


def test_every_optimizer_has_a_reference_example():
    from fastbp.optim import OPTIMIZERS
    covered = {type(make(0.0)) for make in ref.OPTIMIZER_EXAMPLES.values()}
    assert set(OPTIMIZERS.values()) <= covered


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ref.OPTIMIZER_EXAMPLES))
def test_every_optimizer_update_matches_its_reference_step(name, dtype, rng):
    """Three steps of ``update`` (the rule's kernel over the whole buffer), weight decay on
    the leading ``n_decay`` entries, against ``reference.optimizer_step``."""
    n, n_decay = 10, 6
    opt = ref.OPTIMIZER_EXAMPLES[name](0.1)
    p = draw(rng, dtype, n)
    state = opt.init(p, n_decay=n_decay)
    p64, buffers = p.astype(np.float64), np.zeros((2, n))
    for t in (1, 2, 3):
        g = draw(rng, dtype, n)
        coupled = np.r_[opt.l2 * p64[:n_decay], np.zeros(n - n_decay)]
        p64, buffers = ref.optimizer_step(opt, p64, g.astype(np.float64) + coupled, buffers,
                                          t, n_decay)
        opt.update(g, state, p)
    assert_close(p, p64, dtype, "params")
    for k in range(opt.n_buffers):
        assert_close(state.buffers[k], buffers[k], dtype, f"state {k}")


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
def test_peak_magnitude_is_the_largest_absolute_value_or_inf(dtype):
    from fastbp.kernels.checks import peak_magnitude
    rng = np.random.default_rng(3)
    tiny = np.finfo(dtype).smallest_subnormal
    for a in (rng.standard_normal(1001).astype(dtype) * 1e3,
              np.array([-0.0, 0.0, tiny, -2 * tiny], dtype=dtype),
              np.array([np.finfo(dtype).max, -np.finfo(dtype).max], dtype=dtype),
              np.array([-5.5], dtype=dtype)):
        assert peak_magnitude(a) == np.abs(a).max()
    a = rng.standard_normal(257).astype(dtype)
    for bad in (np.nan, -np.nan, np.inf, -np.inf):
        for where in (0, 100, 256):
            b = a.copy()
            b[where] = bad
            assert peak_magnitude(b) == np.inf
    assert peak_magnitude(np.zeros(0, dtype=dtype)) == 0.0
    assert peak_magnitude(a[::3]) == np.abs(a[::3]).max()  # a strided view


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


def test_borrowed_arrays_and_records_share_memory_and_refuse_other_layouts():
    import numba
    from numba.core.errors import TypingError
    from fastbp.kernels.borrow import borrow

    @numba.njit
    def double_the_second_row(a):
        b = borrow(a)
        b[1] *= 2
        return b.sum()

    @numba.njit
    def scale_through_a_record(record):
        x, k, y = borrow(record)  # arrays lose their owner; the scalar passes through
        x[:] *= k
        y[0] = k
        return x.sum() + y.sum()

    a = np.arange(6.0).reshape(2, 3)
    assert double_the_second_row(a) == 0 + 1 + 2 + 6 + 8 + 10
    np.testing.assert_array_equal(a.ravel(), [0, 1, 2, 6, 8, 10])
    x, y = np.ones(3), np.zeros(2, dtype=np.float32)
    assert scale_through_a_record((x, 3.0, y)) == 9.0 + 3.0
    np.testing.assert_array_equal(x, [3, 3, 3])
    np.testing.assert_array_equal(y, [3, 0])
    with pytest.raises(TypingError, match="C-contiguous"):
        double_the_second_row(np.asfortranarray(a))
    with pytest.raises(TypingError, match="C-contiguous"):
        scale_through_a_record((x[::2], 1.0, y))


def test_borrowed_read_only_arrays_are_typed_writable_and_keep_their_values():
    import numba
    from fastbp.kernels.borrow import borrow

    # compiled for writable arrays only, as the network's functions are
    total = numba.njit("float64(float64[::1])")(lambda a: a.sum())

    @numba.njit
    def total_of_borrowed(x, record):
        y, k = borrow(record)
        return total(borrow(x)) + k * total(y)

    x = np.arange(3.0)
    x.flags.writeable = False
    assert total_of_borrowed(x, (x, 2.0)) == 3 * (0 + 1 + 2)
    np.testing.assert_array_equal(x, [0, 1, 2])


def test_unliteral_compiles_a_callee_once_for_different_constants():
    import numba
    from fastbp.kernels.unliteral import unliteral

    def scale(k, x):
        return k * x
    scaled_by_literals, scaled_plainly = numba.njit(scale), numba.njit(scale)

    @numba.njit
    def literal_calls(x):
        return scaled_by_literals(2, x) + scaled_by_literals(3, x)

    @numba.njit
    def plain_calls(x):
        return scaled_plainly(unliteral(2), x) + scaled_plainly(unliteral(3), x)

    assert literal_calls(1.0) == plain_calls(1.0) == 5.0
    assert len(scaled_by_literals.signatures) == 2  # one compile per constant
    assert len(scaled_plainly.signatures) == 1
