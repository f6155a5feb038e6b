"""A/B comparison of the benchmark cases of two checkouts, run alternately in one run.

Run from anywhere (each checkout needs its own environment with that checkout installed
editable with the ``bench`` extra)::

    python bench/ab.py --old /work/baseline --old-python /work/venv-old/bin/python \\
        --new /work/main --new-python /work/venv/bin/python \\
        [--rows T,S,M,L,XL] \\
        [--impls fastbp,fastbp-serial,fastbp-blas,fastbp-sharded,fastbp-columns] \\
        [--tests test_epoch.py,test_sc.py] [--rounds 3] [--json PATH]

For every selected case of ``bench/test_epoch.py`` (``test_epoch[{row}-{impl}]``) and
``bench/test_sc.py`` (``test_sc[{impl}]``) present in both checkouts:

1. one untimed warm-up run in the old checkout, then one in the new one (they fill each
   checkout's own Numba and fastbp caches, so no timed run pays for a compile);
2. ``--rounds`` timed runs in each, alternately: old, new, old, new, ... so that a change in
   the shared machine's load falls on both sides alike.

Each run is a fresh ``python -m pytest <node id> --benchmark-only --benchmark-json=... -q
-p no:cacheprovider`` with the checkout as working directory, its own python and its own
caches (``NUMBA_CACHE_DIR=<tmp>/old``, ``FASTBP_CACHE_DIR=<tmp>/old/fastbp``,
``FASTBP_COMPILE_NOTICE=0``; ``new`` likewise). A run's result is pytest-benchmark's median
(``benchmarks[0]["stats"]["median"]``, itself the median of the test's own rounds); a side's
result is the median of its runs' medians.

The table's ``speedup`` is ``old time / new time`` (median of medians): above 1 the new
checkout is faster (1.25 = new takes 20% less time), below 1 it is slower. ``range`` is
the lowest and highest ``old/new`` over the rounds (round i's old run against round i's new
run), and ``spread`` each side's (max - min) / median of its runs' medians: a speedup
within the range's noise is no change. The ``numpy`` and ``torch`` cases do not use fastbp,
so ``--impls numpy`` measures the machine's noise alone (speedup ~1 expected).

A case missing from one checkout, or skipped by pytest in either, is listed as skipped; a
run that fails is reported with the end of its output, and the script exits 1.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIDES = ("old", "new")

# Prints the files fastbp and its kernels are imported from, and the grid's row ids.
PROBE = """
import json, os
import fastbp, fastbp.kernels
out = {"fastbp": os.path.realpath(fastbp.__file__),
       "kernels": os.path.realpath(fastbp.kernels.__file__), "rows": None}
try:
    from bench.grid import GRID
    out["rows"] = list(GRID)
except Exception:
    pass
print("AB-PROBE " + json.dumps(out))
"""


class Side:
    """One checkout: its path, python, environment and collected cases."""

    def __init__(self, name, checkout, python, tmp):
        self.name = name
        self.checkout = Path(checkout).resolve()
        # keep the venv's bin/python path as given: resolving it would leave the venv
        self.python = str(Path(python).absolute())
        cache = Path(tmp) / name
        cache.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ,
                        NUMBA_CACHE_DIR=str(cache),
                        FASTBP_CACHE_DIR=str(cache / "fastbp"),
                        FASTBP_COMPILE_NOTICE="0",
                        # no __pycache__ written into the checkouts
                        PYTHONDONTWRITEBYTECODE="1")
        self.env.pop("PYTEST_ADDOPTS", None)
        self.rows = None
        self.nodeids = {}   # test file -> list of node ids

    def run(self, args, timeout=None):
        return subprocess.run([self.python, *args], cwd=self.checkout, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def describe(self):
        """``commit`` (short hash, ``+dirty`` with uncommitted changes) of the checkout."""
        def git(*args):
            out = subprocess.run(["git", "--no-optional-locks", "-C", str(self.checkout), *args],
                                 capture_output=True, text=True, check=False)
            return out.stdout.strip() if out.returncode == 0 else ""
        commit = git("rev-parse", "--short", "HEAD") or "?"
        if git("status", "--porcelain", "--untracked-files=no"):
            commit += "+dirty"
        return commit

    def probe(self):
        """Checks that this python imports fastbp from this checkout; reads the grid rows."""
        proc = self.run(["-c", PROBE], timeout=300)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("AB-PROBE ")), None)
        if proc.returncode != 0 or line is None:
            fail(f"{self.name}: {self.python} cannot import fastbp in {self.checkout}:\n"
                 + tail(proc.stdout + proc.stderr))
        info = json.loads(line[len("AB-PROBE "):])
        for key in ("fastbp", "kernels"):
            if not Path(info[key]).is_relative_to(self.checkout):
                fail(f"{self.name}: {self.python} imports {info[key]}, not from {self.checkout}"
                     f" (install it there: {self.python} -m pip install -e "
                     f"\"{self.checkout}[bench]\")")
        self.rows = info["rows"]

    def collect(self, test_file):
        """The node ids of ``bench/<test_file>`` (none when the file is missing)."""
        if not (self.checkout / "bench" / test_file).is_file():
            self.nodeids[test_file] = []
            return
        proc = self.run(["-m", "pytest", f"bench/{test_file}", "--collect-only", "-q",
                         "-p", "no:cacheprovider"], timeout=600)
        prefix = f"bench/{test_file}::"
        ids = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip().startswith(prefix)]
        if proc.returncode not in (0, 5) or (proc.returncode == 0 and not ids):
            fail(f"{self.name}: collecting bench/{test_file} in {self.checkout} failed:\n"
                 + tail(proc.stdout + proc.stderr))
        self.nodeids[test_file] = ids


def fail(message):
    print(f"ab.py: {message}", file=sys.stderr)
    sys.exit(2)


def tail(text, lines=15):
    return "\n".join("    " + ln for ln in text.strip().splitlines()[-lines:])


def split_list(value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def parse_case(nodeid, grid_rows):
    """``(function, row, impl)`` of a node id; ``row`` is None for a case without one.

    ``test_epoch[T-fastbp-serial]`` and ``test_epoch[fastbp-serial-T]`` both give
    ``("test_epoch", "T", "fastbp-serial")``; ``test_sc[fastbp-kernel]`` gives
    ``("test_sc", None, "fastbp-kernel")``.
    """
    name = nodeid.split("::", 1)[1]
    if "[" not in name:
        return name, None, None
    func, param = name[:-1].split("[", 1)
    for row in sorted(grid_rows, key=len, reverse=True):
        if param.startswith(f"{row}-"):
            return func, row, param[len(row) + 1:]
        if param.endswith(f"-{row}"):
            return func, row, param[:-len(row) - 1]
    return func, None, param


def label(func, row, impl):
    if impl is None:
        return func
    return f"{func}[{row}-{impl}]" if row is not None else f"{func}[{impl}]"


def select_cases(sides, tests, rows, impls):
    """The selected cases in order: ``(label, {side: node id or None})``."""
    grid_rows = set().union(*(s.rows or [] for s in sides.values())) | set(rows or [])
    cases = {}
    for test_file in tests:
        for side in sides.values():
            for nodeid in side.nodeids[test_file]:
                func, row, impl = parse_case(nodeid, grid_rows)
                if rows is not None and row is not None and row not in rows:
                    continue
                if impls is None:
                    if impl is None or not impl.startswith("fastbp"):
                        continue
                elif impl not in impls:
                    continue
                key = (test_file, label(func, row, impl))
                cases.setdefault(key, dict.fromkeys(SIDES))[side.name] = nodeid
    return [(key[1], ids) for key, ids in cases.items()]


def run_case(side, nodeid, json_path, timeout):
    """``(median seconds, extra_info, None)``, ``(None, None, reason)`` if skipped or failed."""
    if json_path.exists():
        json_path.unlink()
    args = ["-m", "pytest", nodeid, "--benchmark-only", f"--benchmark-json={json_path}", "-q",
            "-p", "no:cacheprovider"]
    try:
        proc = side.run(args, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None, f"failed: no result within {timeout:g} s"
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        return None, None, f"failed (pytest exit {proc.returncode}):\n{tail(output)}"
    try:
        benchmarks = json.loads(json_path.read_text())["benchmarks"]
    except (OSError, ValueError, KeyError):
        benchmarks = []
    if not benchmarks:
        skipped = [ln for ln in output.splitlines() if "SKIPPED" in ln]
        return None, None, "skipped" + (f": {skipped[-1].strip()}" if skipped else "")
    return benchmarks[0]["stats"]["median"], benchmarks[0].get("extra_info", {}), None


def fmt_time(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def summarize(result):
    """Adds the medians, speedup, range and spreads to a measured case."""
    old, new = result["old_medians"], result["new_medians"]
    if not old or not new:
        return
    result["old_median"] = statistics.median(old)
    result["new_median"] = statistics.median(new)
    result["speedup"] = result["old_median"] / result["new_median"]
    ratios = [o / n for o, n in zip(old, new)]
    result["speedup_min"], result["speedup_max"] = min(ratios), max(ratios)
    for side in SIDES:
        times = result[f"{side}_medians"]
        result[f"{side}_spread"] = (max(times) - min(times)) / statistics.median(times)


def print_table(results, rounds):
    header = ("case", "old", "new", "speedup", "range", "old spread", "new spread")
    rows = []
    for r in results:
        if "speedup" not in r:
            continue
        rows.append((r["case"], fmt_time(r["old_median"]), fmt_time(r["new_median"]),
                     f"{r['speedup']:.3f}", f"{r['speedup_min']:.2f}-{r['speedup_max']:.2f}",
                     f"{100 * r['old_spread']:.1f}%", f"{100 * r['new_spread']:.1f}%"))
    print()
    if rows:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        # the case left-aligned, the numbers right-aligned
        line = "  ".join([f"{{:<{widths[0]}}}"] + [f"{{:>{w}}}" for w in widths[1:]])
        print(line.format(*header))
        print("  ".join("-" * w for w in widths))
        for row in rows:
            print(line.format(*row))
        print(f"\nold/new: median of {rounds} run medians per side; speedup = old time / new "
              "time (>1: new is faster); range: per-round old/new; spread: (max-min)/median")
    else:
        print("no case measured")
    for r in results:
        if "speedup" not in r:
            print(f"{r['case']}: {r['status']}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare the benchmark cases of two checkouts, run alternately "
                    "(speedup = old time / new time, >1: new is faster).")
    parser.add_argument("--old", required=True, help="the baseline checkout")
    parser.add_argument("--old-python", required=True,
                        help="python of an environment with --old installed (editable, "
                             "bench extra)")
    parser.add_argument("--new", required=True, help="the checkout compared to the baseline")
    parser.add_argument("--new-python", required=True,
                        help="python of an environment with --new installed")
    parser.add_argument("--rows", help="grid rows, comma separated (default: every row)")
    parser.add_argument("--impls",
                        help="implementation ids, comma separated, e.g. fastbp,fastbp-serial "
                             "or fastbp-kernel (test_sc) (default: every id starting with "
                             "'fastbp')")
    parser.add_argument("--tests", default="test_epoch.py,test_sc.py",
                        help="files of bench/, comma separated (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed runs per case and checkout (default: %(default)s)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds a single pytest run may take (default: %(default)s)")
    parser.add_argument("--tmpdir",
                        help="directory for the caches and run files, kept afterwards (a "
                             "second run with the same one starts warm); default: a "
                             "temporary directory, deleted at the end")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    tests = [t if t.endswith(".py") else f"{t}.py"
             for t in (Path(t).name for t in split_list(args.tests) or [])]
    if not tests:
        parser.error("--tests names no file")
    rows, impls = split_list(args.rows), split_list(args.impls)
    for name, checkout, python in (("old", args.old, args.old_python),
                                   ("new", args.new, args.new_python)):
        if not (Path(checkout) / "bench").is_dir():
            parser.error(f"--{name} {checkout}: no bench/ directory there")
        if not os.access(python, os.X_OK):
            parser.error(f"--{name}-python {python}: not an executable")

    tmp = Path(args.tmpdir) if args.tmpdir else Path(tempfile.mkdtemp(prefix="fastbp-ab-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        return compare(args, tests, rows, impls, tmp)
    finally:
        if not args.tmpdir:
            shutil.rmtree(tmp, ignore_errors=True)


def compare(args, tests, rows, impls, tmp):
    sides = {"old": Side("old", args.old, args.old_python, tmp),
             "new": Side("new", args.new, args.new_python, tmp)}
    info = {}
    for side in sides.values():
        side.probe()
        for test_file in tests:
            side.collect(test_file)
        info[side.name] = {"checkout": str(side.checkout), "python": side.python,
                           "commit": side.describe()}
        print(f"{side.name}: {side.checkout} @ {info[side.name]['commit']} ({side.python})",
              file=sys.stderr)

    for test_file in tests:
        absent = [s.name for s in sides.values() if not s.nodeids[test_file]]
        if absent:
            where = f"the {absent[0]} checkout" if len(absent) == 1 else "either checkout"
            print(f"bench/{test_file}: no case in {where}", file=sys.stderr)
    cases = select_cases(sides, tests, rows, impls)
    results = []
    runnable = []
    for case, ids in cases:
        result = {"case": case, "nodeid_old": ids["old"], "nodeid_new": ids["new"],
                  "old_medians": [], "new_medians": [], "status": "measured"}
        results.append(result)
        missing = [s for s in SIDES if ids[s] is None]
        if missing:
            result["status"] = f"skipped: not in the {missing[0]} checkout"
        else:
            runnable.append(result)
    if not cases:
        fail("no case matches --tests/--rows/--impls in either checkout")
    for r in results:
        if r not in runnable:
            print(f"{r['case']}: {r['status']}", file=sys.stderr)

    total = len(runnable) * 2 * (args.rounds + 1)
    done = 0
    interrupted = False
    started = time.perf_counter()
    try:
        for result in runnable:
            plan = [(s, None) for s in SIDES] + [(s, i) for i in range(args.rounds)
                                                 for s in SIDES]
            for side_name, round_ in plan:
                done += 1
                side = sides[side_name]
                what = "warm-up" if round_ is None else f"round {round_ + 1}"
                median, extra, problem = run_case(side, result[f"nodeid_{side_name}"],
                                                  tmp / f"run-{side_name}.json", args.timeout)
                elapsed = time.perf_counter() - started
                shown = fmt_time(median) if problem is None else problem.splitlines()[0]
                print(f"[{done}/{total} {elapsed:.0f}s] {result['case']} {side_name} {what}: "
                      f"{shown}", file=sys.stderr)
                if problem is not None:
                    result["status"] = f"{problem} ({side_name} {what})"
                    if problem.startswith("failed"):
                        print(problem, file=sys.stderr)
                    done += len(plan) - plan.index((side_name, round_)) - 1
                    break
                if round_ is not None:
                    result[f"{side_name}_medians"].append(median)
                    result[f"{side_name}_extra_info"] = extra
            if result["status"] == "measured":
                summarize(result)
    except KeyboardInterrupt:
        interrupted = True
        print("\nab.py: interrupted; the cases finished so far:", file=sys.stderr)
        for result in runnable:
            if "speedup" not in result and result["status"] == "measured":
                result["status"] = "interrupted"

    print_table(results, args.rounds)
    if args.json:
        report = {"old": info["old"], "new": info["new"], "rounds": args.rounds,
                  "tests": tests, "rows": rows, "impls": impls,
                  "speedup": "old median / new median (>1: new is faster)",
                  "cases": results}
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {path}", file=sys.stderr)
    if interrupted:
        return 130
    return 1 if any(r["status"].startswith("failed") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
