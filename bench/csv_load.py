"""Loading a large CSV: the command line's reader beside ``pandas.read_csv``.

    python -m bench.csv_load [--mb 200] [--repeats 3] [--keep PATH]

Writes a CSV of about ``--mb`` megabytes (20 float columns of random numbers
with 6 significant digits and a text label column, as ``DataFrame.to_csv``
writes them, with pandas' index column), then loads it in fresh processes, one
case after the other in each round:

``pandas.read_csv``
    ``pandas.read_csv(path)``: the data frame, nothing more.
``pandas.read_csv+to_numpy``
    ``pandas.read_csv(path)``, then the features as one float64 array: what a
    program that trains on the file holds.
``fastbp (pandas)``
    ``fastbp.cli.table.read_table(path)``, as ``fastbp train`` reads a CSV when
    pandas is installed: the features as float64, the labels as text (the whole
    file at once when four times its size fits in the memory available, as here).
``fastbp (pandas, chunks)``
    The same in chunks of rows, as when the memory is short.
``fastbp (fallback)``
    The same without pandas (``engine="python"``, the ``csv`` module).

Each figure is the median over ``--repeats`` rounds of the wall time of the
load alone (the imports before it excluded) and of the process's peak resident
memory (``ru_maxrss`` from ``os.wait4``) above what the process held after its
imports (``baseline``, its resident memory then, printed too; Linux's ``/proc``).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CASES = {
    "pandas.read_csv": ("import pandas as pd", "pd.read_csv(path)"),
    "pandas.read_csv+to_numpy": ("import pandas as pd",
                                 "df = pd.read_csv(path, index_col=0); "
                                 "X = df.drop(columns='label').to_numpy(np.float64)"),
    "fastbp (pandas)": ("from fastbp.cli.table import read_table; import pandas",
                        "read_table(path, engine='pandas')"),
    "fastbp (pandas, chunks)": ("from fastbp.cli.table import read_table; import pandas",
                                "read_table(path, engine='pandas-chunks')"),
    "fastbp (fallback)": ("from fastbp.cli.table import read_table",
                          "read_table(path, engine='python')"),
}

CHILD = """
import json, os, resource, sys, time
from pathlib import Path
import numpy as np
{imports}
path = Path(sys.argv[1])
# what the process holds now (its peak so far may be higher: the imports' temporaries)
baseline = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
start = time.perf_counter()
{load}
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "baseline_kib": baseline}}))
"""


def write_csv(path, megabytes, seed=0):
    """A CSV of about ``megabytes`` MB, written in blocks by pandas (index column included)."""
    import pandas as pd
    rng = np.random.default_rng(seed)
    block, written, start = 50_000, 0, 0
    with open(path, "w", newline="") as f:
        while written < megabytes * 1e6:
            X = rng.standard_normal((block, 20))
            df = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)],
                              index=range(start, start + block))
            df["label"] = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
            df.to_csv(f, header=start == 0, float_format="%.6g")
            start += block
            written = f.tell()
    return start


def run_case(name, path):
    imports, load = CASES[name]
    code = CHILD.format(imports=imports, load=load)
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read(), proc.stderr.read()
    if status != 0:
        raise RuntimeError(f"{name} failed:\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    return result["seconds"], usage.ru_maxrss / 1024, result["baseline_kib"] / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200, help="size of the CSV in MB")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every case")
    parser.add_argument("--keep", help="write the CSV here and keep it (default: a "
                        "temporary file, removed)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    folder = None
    if args.keep:
        path = Path(args.keep)
    else:
        folder = tempfile.TemporaryDirectory()
        path = Path(folder.name) / "large.csv"
    t = time.perf_counter()
    rows = write_csv(path, args.mb)
    size = path.stat().st_size / 1e6
    print(f"{path}: {size:.0f} MB, {rows:,} rows x 21 columns and an index "
          f"(written in {time.perf_counter() - t:.1f} s)")
    figures = {name: [] for name in CASES}
    for _ in range(args.repeats):
        for name in CASES:
            figures[name].append(run_case(name, path))
    print(f"{'case':<26}{'load s':>9}{'peak MiB':>10}{'above baseline':>16}{'baseline':>10}")
    summary = {}
    for name, runs in figures.items():
        seconds, peak, base = (float(np.median(v)) for v in zip(*runs))
        summary[name] = {"seconds": seconds, "peak_mib": peak, "baseline_mib": base,
                         "runs": runs}
        print(f"{name:<26}{seconds:>9.2f}{peak:>10.0f}{peak - base:>16.0f}{base:>10.0f}")
    ref = summary["pandas.read_csv"]
    for name in ("fastbp (pandas)", "fastbp (pandas, chunks)", "fastbp (fallback)"):
        s = summary[name]
        print(f"{name}: {s['seconds'] / ref['seconds']:.2f}x pandas.read_csv's time, "
              f"{(s['peak_mib'] - s['baseline_mib']) / (ref['peak_mib'] - ref['baseline_mib']):.2f}"
              "x its memory above the baseline")
    if args.json:
        Path(args.json).write_text(json.dumps({"mb": size, "rows": rows, "cases": summary},
                                              indent=1))
    if folder is not None:
        folder.cleanup()


if __name__ == "__main__":
    main()
