"""Projected communication / computation ratio of data-parallel training on a cluster.

    mpiexec -n 1 python -m bench.distributed --rows M,L,XL --json 1rank.json
    python -m bench.scaling_projection 1rank.json

Reads the one-rank measurements of ``bench.distributed`` (compute time per step
with the grid's batch, on this machine's 2 cores, and the reduced message
size) and projects, for ``p`` nodes like this one on an Ethernet of a given
bandwidth, the time of one ring Allreduce,
``2 (p − 1)/p · bytes / bandwidth + 2 (p − 1) · latency``, against the compute
time of one step:

- strong scaling: the grid's global batch split over the nodes, compute
  ``t₁ / p`` (optimistic: small local batches run below the measured rate);
- weak scaling: every node keeps the grid's batch (global batch ``p·B``),
  compute ``t₁``.

A ratio above 1 means the step waits longer for the network than it computes
(without overlapping the two).
"""
import json
import sys

LATENCY_S = 30e-6  # per message on TCP over Ethernet (assumed)
NODES = (4, 8, 16, 32, 64)
GBITS = (10, 25, 100)


def allreduce_seconds(n_bytes, nodes, gbit):
    return 2 * (nodes - 1) / nodes * n_bytes / (gbit * 1e9 / 8) + 2 * (nodes - 1) * LATENCY_S


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    rows = json.load(open(argv[0]))
    print("| row | message | compute/step (1 node) | network | "
          + " | ".join(f"{p} nodes" for p in NODES) + " |")
    print("|---|---|---|---|" + "---|" * len(NODES))
    for r in rows:
        compute = r["compute_ms_per_step"] / 1e3
        for gbit in GBITS:
            cells = []
            for p in NODES:
                comm = allreduce_seconds(r["message_bytes"], p, gbit)
                cells.append(f"{comm / (compute / p):.2f} / {comm / compute:.2f}")
            print(f"| {r['row']} | {r['message_bytes'] / 1e6:.1f} MB | {compute * 1e3:.2f} ms | "
                  f"{gbit} Gbit/s | " + " | ".join(cells) + " |")
    print("\ncells: strong / weak scaling ratio of Allreduce time to compute time per step")


if __name__ == "__main__":
    main()
