"""SC: 24-8-2 network, tanh hidden, batch 200, one loss + gradient (no update)."""
import pytest

from bench import baselines

RUNNERS = {"fastbp-kernel": baselines.sc_fastbp_kernel,
           "fastbp-loss_and_grad": baselines.sc_fastbp_api,
           "torch": baselines.sc_torch,
           "jax": baselines.sc_jax}


@pytest.mark.benchmark(group="SC-loss-and-gradient")
@pytest.mark.parametrize("impl", list(RUNNERS))
def test_sc(benchmark, impl):
    if impl in ("torch", "jax"):
        pytest.importorskip(impl)
    benchmark(RUNNERS[impl]())
