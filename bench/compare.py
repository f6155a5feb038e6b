"""Side-by-side comparison in one run: ``python -m bench.compare``.

Measures, in this process and this run: the float32 GEMM rate (2048³), one
training epoch of every grid row for fastbp (each strategy), the NumPy
reference, scikit-learn, PyTorch (1 thread and its default) and JAX (the whole
epoch as one jitted ``lax.scan``), the SC loss + gradient case, 1- vs 2-thread scaling, prediction throughput, peak memory of a
fit and the cold-start times. Prints one table and writes it as JSON.
``--plot PATH`` adds the width sweep (784-w-w-10, w = 32 … 2048): GFLOP/s of
fastbp, PyTorch and JAX against the hidden width, with the GEMM rate as the
limit, drawn into PATH.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import fastbp
from bench import baselines
from bench.grid import GRID, SWEEP_WIDTHS, case, flops_per_epoch, make_data, sweep_case

STRATEGIES = ("serial", "blas", "sharded", "columns")


def median_time(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gemm_rate(repeats=5):
    """GFLOP/s of a 2048³ float32 product: the faster of NumPy's BLAS and PyTorch's."""
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    b = a.copy()
    best = median_time(lambda: a @ b, repeats)
    if has("torch"):
        import torch
        at, bt = torch.from_numpy(a), torch.from_numpy(b)
        best = min(best, median_time(lambda: at @ bt, repeats))
    return 2 * 2048 ** 3 / best / 1e9


def has(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def interleaved_medians(runners, repeats):
    """Median time of each runner, one warm-up call each, then rounds of one call per runner.

    Interleaving spreads a change in the shared machine's load over every runner
    instead of charging it to whichever ran at that moment.
    """
    for fn in runners.values():
        fn()
    times = {name: [] for name in runners}
    for _ in range(repeats):
        for name, fn in runners.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def epoch_row(row, repeats, with_numpy=True, strategies=STRATEGIES, with_sklearn=True):
    """Median epoch times of every implementation for one grid row, measured interleaved."""
    runners = {f"fastbp-{strategy}": baselines.fastbp_epoch(row, strategy)
               for strategy in strategies}
    auto = baselines.fastbp_epoch(row, "auto")
    runners["fastbp"] = auto
    if with_numpy:
        runners["numpy"] = baselines.numpy_epoch(row)
    if with_sklearn:
        runners["sklearn"] = baselines.sklearn_epoch(row)
    if has("torch"):
        runners["torch-1thread"] = baselines.torch_epoch(row, threads=1)
        runners["torch-default"] = baselines.torch_epoch(row)
    if has("jax"):
        runners["jax"] = baselines.jax_epoch(row)
    return interleaved_medians(runners, repeats), auto.model.strategy_


def width_sweep(repeats):
    """GFLOP/s of fastbp, the best PyTorch and JAX on 784-w-w-10 for each sweep width."""
    out = {}
    for width in SWEEP_WIDTHS:
        row = sweep_case(width)
        times, chosen = epoch_row(row, repeats, with_numpy=False, strategies=(),
                                  with_sklearn=False)
        flops = flops_per_epoch(row) / 1e9
        rates = {"fastbp": flops / times["fastbp"], "strategy": chosen}
        torch_times = [v for k, v in times.items() if k.startswith("torch")]
        if torch_times:
            rates["torch"] = flops / min(torch_times)
        if "jax" in times:
            rates["jax"] = flops / times["jax"]
        out[width] = rates
        print(f"  width {width:>5}: " + ", ".join(
            f"{k} {v:.1f}" for k, v in rates.items() if k != "strategy")
            + f" GFLOP/s (fastbp {chosen})", flush=True)
    return out


def plot_sweep(sweep, gemm, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    widths = sorted(sweep)
    for name, style in (("fastbp", "o-"), ("torch", "s--"), ("jax", "^--")):
        if all(name in sweep[w] for w in widths):
            ax.plot(widths, [sweep[w][name] for w in widths], style,
                    label={"torch": "PyTorch (best of 1 / all threads)", "jax": "JAX (lax.scan epoch)"}.get(name, name))
    ax.axhline(gemm, color="gray", linestyle=":", label="float32 GEMM 2048³ (same run)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set_xlabel("hidden width w (784-w-w-10, batch 128, SGD + momentum, float32)")
    ax.set_ylabel("training GFLOP/s")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"written: {path}")


def sc_case(repeats):
    """24-8-2, tanh hidden, batch 200: one loss + gradient evaluation, no update."""
    out = {"fastbp-kernel": median_time(baselines.sc_fastbp_kernel(), repeats * 2000),
           "fastbp-loss_and_grad": median_time(baselines.sc_fastbp_api(), repeats * 500)}
    if has("torch"):
        out["torch"] = median_time(baselines.sc_torch(), repeats * 500)
    if has("jax"):
        out["jax"] = median_time(baselines.sc_jax(), repeats * 500)
    return out


def predict_case(row, repeats):
    X, _ = make_data(row)
    epoch = baselines.fastbp_epoch(row)
    model = epoch.model
    out = {"fastbp": median_time(lambda: model.predict_proba(X), repeats)}
    if has("torch"):
        import torch
        net = baselines.torch_network(case(row)[0])
        Xt = torch.from_numpy(X)

        def torch_predict():
            with torch.inference_mode():
                torch.softmax(net(Xt), dim=1)
        out["torch"] = median_time(torch_predict, repeats)
    return {k: len(X) / v for k, v in out.items()}  # rows per second


def thread_scaling(row, repeats):
    t = interleaved_medians({"1-thread": baselines.fastbp_epoch(row, n_jobs=1),
                             "2-thread": baselines.fastbp_epoch(row, n_jobs=2)}, repeats)
    return {**t, "speedup": t["1-thread"] / t["2-thread"]}


SUBPROCESS_FIT = """
import time, resource
start = time.perf_counter()
import fastbp
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
fastbp.MLP([64, 128, 10], seed=0).fit(X / 16, y, epochs=1, verbose=0)
print(time.perf_counter() - start)
"""

# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a child
# started from this (large) process would report the parent's size.
SUBPROCESS_RSS = """
import numpy as np, fastbp
from bench.grid import GRID, make_data
def peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
sizes, batch, n = GRID["M"]
X, y = make_data("M")
model = fastbp.MLP(sizes, seed=0)
opt = fastbp.optim.SGD(0.01, momentum=0.9)
model.fit(X[:2 * batch], y[:2 * batch], optimizer=opt, epochs=1, batch_size=batch, verbose=0)
before = peak()  # interpreter, libraries, kernels loaded (or compiled), data
model.fit(X, y, optimizer=opt, epochs=1, batch_size=batch, verbose=0)
print(peak(), before, X.nbytes / 2**20, model.params.nbytes / 2**20)
"""


# Peak RSS of a fresh process that builds a grid row's data and model and trains it for two
# epochs, the same for every peer: what a user's training process needs at its largest.
SUBPROCESS_PEER_RSS = """
import sys
from bench import baselines
def peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
epoch = getattr(baselines, sys.argv[1] + "_epoch")(sys.argv[2])
epoch()
epoch()
print(peak())
"""


def peer_rss(row):
    """``peer -> peak RSS in MiB`` of a fresh process training ``row`` for two epochs."""
    peers = ["fastbp"] + [p for p in ("torch", "jax") if has(p)]
    return {p: run_python(SUBPROCESS_PEER_RSS, args=[p, row])[0] for p in peers}


def run_python(code, env=None, args=()):
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True, env={**os.environ, **(env or {})},
                         cwd=Path(__file__).resolve().parent.parent)
    return [float(v) for v in out.stdout.split()]


def cold_start():
    warm = statistics.median(run_python(SUBPROCESS_FIT)[0] for _ in range(3))
    with tempfile.TemporaryDirectory() as cache:
        # both caches: Numba's, and fastbp's generated network functions
        cold = run_python(SUBPROCESS_FIT, {"NUMBA_CACHE_DIR": cache,
                                           "FASTBP_CACHE_DIR": os.path.join(cache, "fastbp"),
                                           "FASTBP_COMPILE_NOTICE": "0"})[0]
    return {"warm_cache_s": warm, "cold_cache_s": cold}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="T,S,M,L,XL", help="grid rows, comma separated")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per case")
    parser.add_argument("--json", default="bench/results/compare.json")
    parser.add_argument("--plot", metavar="PATH",
                        help="also run the width sweep and draw GFLOP/s against width into PATH")
    parser.add_argument("--skip-extras", action="store_true",
                        help="only the epoch table (no SC, scaling, predict, RSS, cold start)")
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    for r in rows:
        if r not in GRID:
            parser.error(f"unknown row {r!r}; choose from {list(GRID)}")

    given = sys.argv[1:] if argv is None else argv
    report = {"date": datetime.date.today().isoformat(),
              "command": " ".join(["python -m bench.compare", *given]),
              "machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                          "python": platform.python_version(), "fastbp": fastbp.__version__},
              "rows": {}}
    peak = gemm_rate()
    report["gemm_gflops"] = peak
    print(f"float32 GEMM 2048³: {peak:.1f} GFLOP/s (same run)\n")
    header = (f"{'row':<4}{'fastbp':>9}{'strategy':>9}{'serial':>8}{'blas':>8}{'sharded':>8}"
              f"{'columns':>8}{'numpy':>8}{'sklearn':>8}{'torch1':>8}{'torchN':>8}{'jax':>8}"
              f"{'×torch':>8}{'×jax':>7}{'×sklearn':>9}{'GFLOP/s':>8}{'%GEMM':>7}")
    print(header)
    for row in rows:
        times, chosen = epoch_row(row, args.repeats)
        ours = times["fastbp"]
        best_torch = min((v for k, v in times.items() if k.startswith("torch")), default=None)
        gflops = flops_per_epoch(row) / ours / 1e9
        entry = {"times_s": times, "strategy": chosen, "gflops": gflops,
                 "fraction_of_gemm": gflops / peak,
                 "vs_sklearn": times["sklearn"] / ours,
                 "vs_best_torch": best_torch / ours if best_torch else None,
                 "vs_jax": times["jax"] / ours if "jax" in times else None}
        report["rows"][row] = entry
        cell = lambda k: f"{times[k]:8.3f}" if k in times else f"{'-':>8}"  # noqa: E731
        vs_torch = f"{entry['vs_best_torch']:8.2f}" if best_torch else f"{'-':>8}"
        vs_jax = f"{entry['vs_jax']:7.2f}" if entry["vs_jax"] else f"{'-':>7}"
        print(f"{row:<4}{ours:9.3f}{chosen:>9}{cell('fastbp-serial')}{cell('fastbp-blas')}"
              f"{cell('fastbp-sharded')}{cell('fastbp-columns')}{cell('numpy')}{cell('sklearn')}"
              f"{cell('torch-1thread')}{cell('torch-default')}{cell('jax')}{vs_torch}{vs_jax}"
              f"{entry['vs_sklearn']:9.2f}{gflops:8.1f}{entry['fraction_of_gemm']:7.0%}",
              flush=True)
    print("(seconds per epoch, medians of", args.repeats, "epochs measured interleaved; "
          "×: baseline time / fastbp time)")

    if not args.skip_extras:
        sc = sc_case(args.repeats)
        report["SC"] = sc
        line = ", ".join(f"{k} {v * 1e6:.1f} µs" for k, v in sc.items())
        print(f"\nSC 24-8-2 tanh, batch 200, loss + gradient: {line}")
        for peer in ("torch", "jax"):
            if peer in sc:
                print(f"  {peer} / fastbp: kernel {sc[peer] / sc['fastbp-kernel']:.1f}×, "
                      f"loss_and_grad {sc[peer] / sc['fastbp-loss_and_grad']:.1f}×")
        for row in ("S", "M"):
            scaling = thread_scaling(row, args.repeats)
            report.setdefault("thread_scaling", {})[row] = scaling
            print(f"{row}: 1 thread {scaling['1-thread']:.3f} s, 2 threads "
                  f"{scaling['2-thread']:.3f} s, speedup {scaling['speedup']:.2f}×")
        for row in ("M", "L"):
            rates = predict_case(row, args.repeats)
            report.setdefault("predict_rows_per_s", {})[row] = rates
            print(f"predict {row}: " + ", ".join(f"{k} {v:,.0f} rows/s" for k, v in rates.items()))
        rss, before, data_mb, params_mb = run_python(SUBPROCESS_RSS)
        report["peak_rss_mb_fit_M"] = {"peak_rss": rss, "before_fit": before, "data": data_mb,
                                       "params": params_mb}
        print(f"peak RSS of a fresh process fitting M: {rss:.0f} MiB; before the full fit "
              f"{before:.0f} MiB (interpreter, libraries, kernels, data {data_mb:.0f} MiB); "
              f"the fit adds {rss - before:.0f} MiB (params {params_mb:.1f} MiB)")
        rss = peer_rss("XL")
        report["peak_rss_mb_two_epochs_XL"] = rss
        print("peak RSS of a fresh process training XL for two epochs: "
              + ", ".join(f"{k} {v:.0f} MiB" for k, v in rss.items()))
        start = cold_start()
        report["cold_start"] = start
        print(f"import fastbp + first fit on digits, fresh process: warm cache "
              f"{start['warm_cache_s']:.2f} s, cold cache {start['cold_cache_s']:.1f} s")

    if args.plot:
        print("\nwidth sweep, 784-w-w-10, batch 128:")
        report["width_sweep_gflops"] = width_sweep(args.repeats)
        plot_sweep(report["width_sweep_gflops"], peak, args.plot)

    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
