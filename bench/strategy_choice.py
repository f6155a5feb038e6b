"""Does ``auto`` pick the fastest strategy on this machine? ``python -m bench.strategy_choice``

For each case (the grid rows and a few more shapes), prices the strategies as
``fastbp.tuning`` does (without recording), then times one epoch of each
strategy, interleaved, median of ``--repeats`` (more for short epochs, up to 50). Prints the priced step time and
the measured epoch time of each, the one priced fastest and the one measured
fastest, and the cost of the pick: its epoch time over the fastest one's.
"""
import argparse
import time

from bench import baselines
from bench.compare import interleaved_medians
from bench.grid import GRID
from fastbp import tuning
from fastbp._threads import parts_for

EXTRA = {"digits": ((64, 100, 10), 200, 1_797), "W512": ((784, 512, 512, 10), 64, 20_000),
         "T-wide": ((64, 256, 10), 32, 20_000)}


def _seconds(fn):
    fn()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join([*GRID, *EXTRA]))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    parts = parts_for(None)
    print(f"{parts} parts; priced step µs / measured epoch s")
    costs = []
    for row in args.rows.split(","):
        case = GRID.get(row) or EXTRA[row]
        sizes, batch, _ = case
        priced = tuning.price(sizes, batch, "float32", parts)
        runners = {s: baselines.fastbp_epoch(case, s) for s in priced}
        once = min(_seconds(fn) for fn in runners.values())  # short epochs: more of them
        measured = interleaved_medians(runners, max(args.repeats, min(50, int(0.3 / once))))
        pick, best = min(priced, key=priced.get), min(measured, key=measured.get)
        costs.append(measured[pick] / measured[best])
        cells = "  ".join(f"{s} {priced[s] * 1e6:,.0f}/{measured[s]:.3f}" for s in priced)
        print(f"{row:<7} {cells}  picked {pick}, fastest {best}, cost {costs[-1]:.2f}×",
              flush=True)
    print(f"picked the fastest in {sum(c == 1 for c in costs)} of {len(costs)} cases; "
          f"worst cost {max(costs):.2f}×")


if __name__ == "__main__":
    main()
