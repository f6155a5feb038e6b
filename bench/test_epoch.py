"""One training epoch per grid row, every implementation side by side.

Run: pytest bench --benchmark-only (see bench/README.md).
"""
import pytest

from bench import baselines
from bench.grid import GRID, flops_per_epoch

ROUNDS = 3
IMPLEMENTATIONS = {
    "fastbp": lambda row: baselines.fastbp_epoch(row, "auto"),
    "fastbp-serial": lambda row: baselines.fastbp_epoch(row, "serial"),
    "fastbp-blas": lambda row: baselines.fastbp_epoch(row, "blas"),
    "fastbp-sharded": lambda row: baselines.fastbp_epoch(row, "sharded"),
    "fastbp-columns": lambda row: baselines.fastbp_epoch(row, "columns"),
    "numpy": baselines.numpy_epoch,
    "sklearn": baselines.sklearn_epoch,
    "torch": lambda row: baselines.torch_epoch(row),
    "torch-1thread": lambda row: baselines.torch_epoch(row, threads=1),
    "jax": baselines.jax_epoch,
}
OPTIONAL = {"torch": "torch", "jax": "jax"}  # implementation prefix: package it needs


@pytest.mark.parametrize("impl", list(IMPLEMENTATIONS))
@pytest.mark.parametrize("row", list(GRID))
def test_epoch(benchmark, row, impl):
    for prefix, package in OPTIONAL.items():
        if impl.startswith(prefix):
            pytest.importorskip(package)
    benchmark.group = f"epoch-{row}"
    run = IMPLEMENTATIONS[impl](row)
    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info["samples_per_s"] = GRID[row][2] / median
    benchmark.extra_info["gflops"] = flops_per_epoch(row) / median / 1e9
    if hasattr(run, "model"):
        benchmark.extra_info["strategy"] = run.model.strategy_
