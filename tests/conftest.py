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
