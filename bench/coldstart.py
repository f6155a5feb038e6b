"""Cold-start benchmark: wall time of whole fresh Python processes, cold and warm cache.

    python -m bench.coldstart [--repeats 3] [--json PATH]

Run from the repository root. Every figure is the wall time of one child
process (``sys.executable``), from its start to its exit, so it includes the
interpreter's start, the imports, loading or compiling the kernels and the
work itself. Each case runs ``--repeats`` times; the table gives the median,
min and max, the target and the child's peak resident memory (median).

A *cold* run gets a brand-new, empty temporary directory as both
``NUMBA_CACHE_DIR`` and ``FASTBP_CACHE_DIR``: every kernel it needs is
compiled. A *warm* run gets a directory that one untimed run of the same
workload filled before any timing (the import cases take the digits case's). Children get ``FASTBP_COMPILE_NOTICE=0``
and the rest of this process's environment; their output is captured and
shown only when one fails.

Cases:

``digits-cold`` / ``digits-warm``
    ``fastbp.MLPClassifier(max_iter=50, random_state=0)`` fit on all of
    scikit-learn's digits (float64, as loaded), then ``score`` on them.
``digits-sklearn``
    The same script with scikit-learn's ``MLPClassifier``. Each round runs the
    cases one after the other, scikit-learn between the two fastbp runs
    (warm, scikit-learn, cold, ...), so the ratios compare neighbours in time
    on this shared machine.
``main-job-cold`` / ``main-job-warm``
    ``python -m fastbp``: the README's main job (an MLP on digits).
``float32-cold`` / ``float32+float64-cold``
    ``fastbp.MLP([64, 32, 10])`` fit for two epochs on 256 random rows in
    float32 only, or in float32 then in float64. The derived
    ``float64-extra-cold`` is the difference of their medians: what a second
    dtype adds to a cold start.
``python-pass`` / ``import-warm`` / ``import-mlp-warm``
    ``python -c "pass"`` (the interpreter's own start), ``python -c "import
    fastbp"`` and ``python -c "import fastbp; fastbp.MLP"`` (warm cache).
    ``import fastbp`` is lazy: its public names load their modules on first
    use, so the third is what the first use of the library costs (the model,
    NumPy, Numba and the kernels' modules; nothing compiles). The derived
    ``import-net`` and ``import-mlp-net`` subtract the interpreter's start.

Targets: digits cold ≤ 10 s, digits warm ≤ scikit-learn's time in the same
run, main job cold ≤ 10 s and warm ≤ 2 s, float64 extra ≤ 5 s, import ≤ 0.5 s
(net of the interpreter's start; shown for both imports).

Peak memory is each child's own ``ru_maxrss`` (``os.wait4``), not the
maximum over all children that ``RUSAGE_CHILDREN`` would give.

The library's sources must not change during a run: the caches are keyed by
them, and an edit would turn warm runs cold.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DIGITS = """
from sklearn.datasets import load_digits
from {module} import MLPClassifier

X, y = load_digits(return_X_y=True)
clf = MLPClassifier(max_iter=50, random_state=0).fit(X, y)
print(f"accuracy {{clf.score(X, y):.4f}}")
"""

SMALL_FITS = """
import numpy as np
import fastbp

rng = np.random.default_rng(0)
X, y = rng.standard_normal((256, 64)), rng.integers(0, 10, 256)
for dtype in {dtypes!r}:
    model = fastbp.MLP([64, 32, 10], dtype=dtype, seed=0)
    model.fit(X.astype(dtype), y, epochs=2, verbose=0)
    print(dtype, "fitted")
"""


@dataclass
class Case:
    """One measured process: its command line, its cache and its target.

    ``cache`` is ``"cold"`` (a new empty directory per run) or ``"warm"``: the
    directory of case ``cache_of`` (this case's own by default), filled by one
    untimed run of that case before the timed rounds. The target is ``limit``
    seconds, or the median of case ``limit_of``.
    """

    name: str
    args: list
    cache: str
    cache_of: str = None
    limit: float = None
    limit_of: str = None
    seconds: list = field(default_factory=list)
    peak_mib: list = field(default_factory=list)
    last_stdout: str = ""

    @property
    def median(self):
        return statistics.median(self.seconds)

    @property
    def target(self):
        if self.limit_of:
            return f"<= {self.limit_of}"
        return "" if self.limit is None else f"<= {self.limit:g} s"

    def verdict(self, medians):
        """"ok" or "MISSED" against the target ("" without one); ``medians`` by case name."""
        limit = medians[self.limit_of] if self.limit_of else self.limit
        return "" if limit is None else verdict(self.median, limit)

    def summary(self):
        return {"seconds": self.seconds, "median_s": self.median, "min_s": min(self.seconds),
                "max_s": max(self.seconds), "peak_rss_mib": self.peak_mib,
                "cache": self.cache, "target": self.target, "command": self.args,
                "last_stdout": self.last_stdout}


def verdict(value, limit):
    return "ok" if value <= limit else "MISSED"


def python(*args):
    return [sys.executable, *args]


def small_fits(*dtypes):
    return python("-c", SMALL_FITS.format(dtypes=dtypes))


def make_cases():
    """The cases, in the order a round runs them (scikit-learn between fastbp's runs).

    scikit-learn's case compiles nothing; its "warm" is the untimed first run,
    which fills the OS's file cache for it as for the fastbp cases.
    """
    digits_fastbp = python("-c", DIGITS.format(module="fastbp"))
    digits_sklearn = python("-c", DIGITS.format(module="sklearn.neural_network"))
    return [
        Case("digits-warm", digits_fastbp, "warm", limit_of="digits-sklearn"),
        Case("digits-sklearn", digits_sklearn, "warm"),
        Case("digits-cold", digits_fastbp, "cold", limit=10),
        Case("main-job-warm", python("-m", "fastbp"), "warm", limit=2),
        Case("main-job-cold", python("-m", "fastbp"), "cold", limit=10),
        Case("float32-cold", small_fits("float32"), "cold"),
        Case("float32+float64-cold", small_fits("float32", "float64"), "cold"),
        # the interpreter alone, and the import, with the cache a digits fit warmed
        Case("python-pass", python("-c", "pass"), "warm", cache_of="digits-warm"),
        Case("import-warm", python("-c", "import fastbp"), "warm", cache_of="digits-warm"),
        Case("import-mlp-warm", python("-c", "import fastbp; fastbp.MLP"), "warm",
             cache_of="digits-warm"),
    ]


class ChildFailed(RuntimeError):
    pass


def run_child(args, cache_dir):
    """``(seconds, peak MiB, stdout)`` of one child process with ``cache_dir`` as its caches."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "FASTBP_CACHE_DIR": str(cache_dir),
           "FASTBP_COMPILE_NOTICE": "0"}
    # Files rather than pipes: nothing to drain while waiting, so os.wait4 can reap the
    # child itself and return that child's own resource usage.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        if child.returncode != 0:
            raise ChildFailed(f"{' '.join(args)}\nexited with {child.returncode}\n"
                              f"--- stdout\n{stdout}--- stderr\n"
                              f"{err.read().decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024, stdout  # ru_maxrss is in KiB on Linux


def measure(cases, repeats, scratch, log=print):
    """Warm the warm caches (one untimed run each), then run ``repeats`` rounds of every case."""
    warm_dirs = {}
    for case in cases:
        if case.cache == "warm" and case.cache_of is None:
            warm_dirs[case.name] = scratch / f"warm-{case.name}"
            warm_dirs[case.name].mkdir()
            log(f"  warming up: {case.name}")
            run_child(case.args, warm_dirs[case.name])
    for case in cases:
        if case.cache_of is not None and case.cache_of not in warm_dirs:
            raise ValueError(f"{case.name} takes the cache of {case.cache_of}, "
                             "which is not a warmed case")
    log(f"{repeats} round(s) of {len(cases)} cases")
    for r in range(repeats):
        for case in cases:
            if case.cache == "cold":
                cache = Path(tempfile.mkdtemp(prefix=f"cold-{case.name}-", dir=scratch))
            else:
                cache = warm_dirs[case.cache_of or case.name]
            try:
                seconds, peak, stdout = run_child(case.args, cache)
            finally:
                if case.cache == "cold":
                    shutil.rmtree(cache, ignore_errors=True)
            case.seconds.append(seconds)
            case.peak_mib.append(peak)
            lines = stdout.strip().splitlines()
            case.last_stdout = lines[-1] if lines else ""
            log(f"  round {r + 1}: {case.name:22s} {seconds:7.2f} s")


def derive(medians):
    """The derived figures and the ratios, with their targets and verdicts."""
    f64 = medians["float32+float64-cold"] - medians["float32-cold"]
    derived = {"float64-extra-cold": {"seconds": f64, "target": "<= 5 s",
                                      "verdict": verdict(f64, 5)}}
    for name in ("import", "import-mlp"):
        net = medians[f"{name}-warm"] - medians["python-pass"]
        derived[f"{name}-net"] = {"seconds": net, "target": "<= 0.5 s",
                                  "verdict": verdict(net, 0.5)}
    warm_vs_sklearn = medians["digits-warm"] / medians["digits-sklearn"]
    ratios = {
        "digits-warm / digits-sklearn": {"ratio": warm_vs_sklearn, "target": "<= 1",
                                         "verdict": verdict(warm_vs_sklearn, 1)},
        "digits-cold / digits-sklearn": {
            "ratio": medians["digits-cold"] / medians["digits-sklearn"]},
        "digits-cold / digits-warm": {"ratio": medians["digits-cold"] / medians["digits-warm"]},
        "main-job-cold / main-job-warm": {
            "ratio": medians["main-job-cold"] / medians["main-job-warm"]},
    }
    return derived, ratios


def print_table(cases, derived, ratios):
    medians = {case.name: case.median for case in cases}
    by_name = {case.name: case for case in cases}
    print(f"\nWall time of a fresh process, {len(cases[0].seconds)} run(s) per case "
          "(seconds):\n")
    print(f"{'case':24s} {'median':>8s} {'min':>8s} {'max':>8s} {'peak MiB':>9s}  "
          f"{'target':20s} verdict")
    for case in cases:
        s = case.seconds
        print(f"{case.name:24s} {case.median:8.2f} {min(s):8.2f} {max(s):8.2f} "
              f"{statistics.median(case.peak_mib):9.0f}  {case.target:20s} "
              f"{case.verdict(medians)}")
    print()
    for name, d in derived.items():
        print(f"{name:24s} {d['seconds']:8.2f} {'':28s}  {d['target']:20s} {d['verdict']}")
    print()
    for name, r in ratios.items():
        print(f"{name:32s} {r['ratio']:6.2f}x  {r.get('target', ''):8s} {r.get('verdict', '')}")
    print(f"\nscores: fastbp {by_name['digits-warm'].last_stdout}, "
          f"scikit-learn {by_name['digits-sklearn'].last_stdout}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    cases = make_cases()
    scratch = Path(tempfile.mkdtemp(prefix="fastbp-coldstart-"))
    try:
        measure(cases, args.repeats, scratch)
    except ChildFailed as exc:
        print(f"a child process failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    derived, ratios = derive({case.name: case.median for case in cases})
    print_table(cases, derived, ratios)
    if args.json:
        report = {"repeats": args.repeats, "python": sys.version.split()[0],
                  "machine": platform.platform(), "cpus": os.cpu_count(),
                  "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "cases": {case.name: case.summary() for case in cases},
                  "derived": derived, "ratios": ratios}
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
