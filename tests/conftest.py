import numpy as np
import pytest

# One tolerance table per dtype: kernels (fastmath, reassociated sums, float32
# storage) against the float64 NumPy reference computed from the same inputs.
TOL = {
    np.float32: dict(rtol=2e-4, atol=2e-5),
    np.float64: dict(rtol=1e-9, atol=1e-11),
}
DTYPES = [np.float32, np.float64]
# odd shapes: 1×1, sizes that divide nothing, a wider one
SHAPES = [(1, 1, 1), (7, 5, 3), (13, 17, 9)]


def assert_close(actual, expected, dtype, what=""):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected,
                               err_msg=what, **TOL[dtype])


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def reference_gammas(model):
    """Each layer's γ for tests/reference.py: prelu's slope vector, else the constant."""
    return [model.slopes_[l].astype(np.float64) if name == "prelu"
            else model.network.layout.gamma_per_layer[l]
            for l, name in enumerate(model.network.layout.activations)]


def reference_loss_and_flat_grad(model, X, Y, l2=0.0):
    """The reference's loss and gradient of ``model`` on checked ``(X, Y)``, in ``params`` layout."""
    import reference as ref
    value, cg, ig, sg = ref.loss_and_grads(
        X.astype(np.float64), Y.astype(np.float64),
        [W.astype(np.float64) for W in model.coefs_],
        [b.astype(np.float64) for b in model.intercepts_],
        model.network.layout.activations, reference_gammas(model), model.loss, l2)
    return value, np.concatenate([W.ravel() for W in cg] + ig + [sg[l] for l in sorted(sg)])
