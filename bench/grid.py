"""The benchmark grid: one epoch of minibatch SGD (momentum 0.9, lr 0.01), ReLU, softmax."""
import numpy as np

# id: (layer sizes, batch size, samples)
GRID = {
    "T": ((64, 32, 10), 32, 20_000),
    "S": ((784, 128, 10), 32, 60_000),
    "M": ((784, 256, 256, 10), 128, 60_000),
    "L": ((784, 1024, 1024, 10), 256, 30_000),
    "XL": ((784, 2048, 2048, 2048, 10), 256, 10_000),
}
LR = 0.01
MOMENTUM = 0.9


def case(row):
    """``(layer sizes, batch size, samples)`` of a grid row's id, or such a tuple itself."""
    return GRID[row] if isinstance(row, str) else row


# The width sweep of ``python -m bench.compare --plot``: 784-w-w-10, batch 128, with about
# the same work per epoch at every width (6 FLOPs per parameter and sample).
SWEEP_WIDTHS = (32, 64, 128, 256, 512, 1024, 2048)
SWEEP_FLOPS = 4e10


def sweep_case(width):
    sizes = (784, width, width, 10)
    n = int(min(60_000, max(4_096, SWEEP_FLOPS / (6 * n_params(sizes)))))
    return sizes, 128, n


def make_data(row, seed=0):
    """float32 inputs from N(0, 1), labels uniform over the classes."""
    sizes, _, n = case(row)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], n)
    return X, y


def n_params(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def flops_per_epoch(row):
    """≈ 6 FLOPs per parameter per sample (forward, backward, weight gradient)."""
    sizes, _, n = case(row)
    return 6.0 * n_params(sizes) * n
