"""Full backward pass against central differences (float64) and the NumPy reference."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import DTYPES, assert_close, reference_loss_and_flat_grad
import fastbp
from fastbp.architecture import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, check_loss, natural_loss
from fastbp.kernels.losses import LOSSES


def check_loss_ok(output, loss):
    try:
        check_loss(output, loss)
    except ValueError:
        return False
    return True


TOLERANCE = 1e-6
# every output with its natural loss, and with squared error through the chain rule
PAIRS = sorted({(o, natural_loss(o)) for o in OUTPUT_ACTIVATIONS}
               | {(o, "squared_error") for o in OUTPUT_ACTIVATIONS
                  if check_loss_ok(o, "squared_error")})


def data(model, n, rng):
    X = rng.standard_normal((n, model.layer_sizes[0]))
    k = model.layer_sizes[-1]
    kind = LOSSES[model.loss].targets
    if kind == "labels":
        y = rng.integers(0, k, n)
    elif kind == "unit":
        y = rng.integers(0, 2, (n, k))
    elif kind == "nonnegative":
        y = rng.poisson(1.0, (n, k))
    else:
        y = rng.standard_normal((n, k))
    return X, y


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_backprop_matches_central_differences_per_hidden_activation(activation, rng):
    model = fastbp.MLP([5, 4, 3, 3], activation=activation, dtype="float64", seed=1)
    # move prelu's slopes off their shared start value so each is checked on its own
    for slopes in model.slopes_.values():
        slopes[...] = rng.uniform(0.05, 0.5, slopes.shape)
    X, y = data(model, 6, rng)
    assert fastbp.check_gradients(model, X, y, l2=0.1) <= TOLERANCE


@pytest.mark.parametrize("output,loss", PAIRS)
def test_backprop_matches_central_differences_per_output_loss_pair(output, loss, rng):
    model = fastbp.MLP([4, 5, 3], activation="tanh", output=output, loss=loss,
                       dtype="float64", seed=2)
    X, y = data(model, 7, rng)
    assert fastbp.check_gradients(model, X, y) <= TOLERANCE


def test_gradient_check_detects_a_wrong_gradient(rng, monkeypatch):
    """The check itself must be able to fail: corrupt one gradient entry."""
    model = fastbp.MLP([3, 4, 2], activation="tanh", dtype="float64", seed=3)
    X, y = data(model, 5, rng)
    original = fastbp.MLP.loss_and_grad

    def corrupted(self, X, y, l2=0.0):
        loss, grad = original(self, X, y, l2)
        grad[7] *= 1.001
        return loss, grad

    monkeypatch.setattr(fastbp.MLP, "loss_and_grad", corrupted)
    assert fastbp.check_gradients(model, X, y) > 1e-4


# the suite's usual configurations, each compiled once (fastbp.specialize): every hidden
# activation before a softmax output, every output/loss pair after tanh layers
CONFIGS = ([(a, "softmax", "cross_entropy") for a in HIDDEN_ACTIVATIONS]
           + [("tanh", output, loss) for output, loss in PAIRS])


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=3, max_size=4),
       config=st.sampled_from(CONFIGS),
       n=st.integers(1, 9),
       dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2 ** 16))
def test_loss_and_grad_matches_reference(sizes, config, n, dtype, seed):
    activation, output, loss = config
    if output == "softmax":
        sizes = sizes[:-1] + [max(2, sizes[-1])]
    model = fastbp.MLP(sizes, activation=activation, output=output, loss=loss,
                       dtype=dtype, seed=seed)
    X, y = data(model, n, np.random.default_rng(seed))
    value, grad = model.loss_and_grad(X, y, l2=0.05)
    Y = model.network.check_targets(y, n)
    expected_value, expected_grad = reference_loss_and_flat_grad(
        model, X.astype(dtype), Y, 0.05)
    assert_close(value, expected_value, dtype, "loss")
    assert_close(grad, expected_grad, dtype, "gradient")


def test_probability_targets_that_nearly_sum_to_one_are_normalised():
    # a − y is the gradient only for rows that sum to exactly 1; rows off by 5e-4 are
    # accepted and rescaled, so the gradient still matches the loss
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((5, 3)), rng.dirichlet(np.ones(3), 5) * 0.9995
    model = fastbp.MLP([3, 4, 3], activation="tanh", dtype="float64", seed=0)
    assert fastbp.check_gradients(model, X, Y) < 1e-6
