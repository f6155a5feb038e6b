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


def make_data(row, seed=0):
    """float32 inputs from N(0, 1), labels uniform over the classes."""
    sizes, _, n = GRID[row]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], n)
    return X, y


def n_params(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def flops_per_epoch(row):
    """≈ 6 FLOPs per parameter per sample (forward, backward, weight gradient)."""
    sizes, _, n = GRID[row]
    return 6.0 * n_params(sizes) * n
