#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Data-parallel scaling on this machine: bench_dist at 1 rank × 2b (OMP_NUM_THREADS = all
cores) and at 2 ranks × b (the cores split between them), interleaved in pairs, so that the
machine's load moves both sides alike.

    dist_scaling.py --bench BUILD/bench/bench_dist [--pairs 7] [--batch 4] [--config small]

Prints each pair, then the median (min–max) of: tokens/s at 1 and 2 ranks and their ratio,
the step time, and the all-reduce time of the 2-rank runs with the bytes it moves, plus the
load average before and after. Needs mpirun (Open MPI: --oversubscribe, root allowed)."""
import argparse
import json
import os
import statistics
import subprocess


def run(bench, ranks, batch, config, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    out = subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(ranks),
                          bench, "--config",
                          config, "--batch", str(batch), "--steps", "8", "--warmup", "2"],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def spread(values, digits=2):
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}–{max(values):.{digits}f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", required=True)
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--batch", type=int, default=4, help="b: examples per rank at 2 ranks")
    ap.add_argument("--config", default="small")
    a = ap.parse_args()
    cores = os.cpu_count() or 2
    load = os.getloadavg()[0]
    one, two = [], []
    for i in range(a.pairs):
        one.append(run(a.bench, 1, 2 * a.batch, a.config, cores))
        two.append(run(a.bench, 2, a.batch, a.config, max(1, cores // 2)))
        print(f"pair {i}: 1 rank {one[-1]['tokens_per_s']:.0f} tokens/s, 2 ranks "
              f"{two[-1]['tokens_per_s']:.0f} tokens/s, "
              f"all-reduce {two[-1]['allreduce_ms'][0]:.1f} ms", flush=True)
    ratio = [t["tokens_per_s"] / o["tokens_per_s"] for o, t in zip(one, two)]
    print(f"\nconfig {a.config}, {two[0]['params']} parameters: "
          f"{two[0]['allreduce_bytes'] / 1e6:.1f} MB all-reduced per step; {cores} cores; "
          f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"tokens/s, 1 rank x {2 * a.batch}: {spread([o['tokens_per_s'] for o in one], 0)}")
    print(f"tokens/s, 2 ranks x {a.batch}: {spread([t['tokens_per_s'] for t in two], 0)}")
    print(f"2 ranks / 1 rank: {spread(ratio)}")
    print(f"step ms, 1 rank: {spread([o['step_ms'][0] for o in one], 1)}; "
          f"2 ranks: {spread([t['step_ms'][0] for t in two], 1)}")
    ar = [t["allreduce_ms"][0] for t in two]
    share = [t["allreduce_ms"][0] / t["step_ms"][0] for t in two]
    rate = [t["allreduce_bytes"] / 1e6 / (t["allreduce_ms"][0] / 1e3) for t in two]
    print(f"all-reduce at 2 ranks: {spread(ar, 1)} ms per step, "
          f"{spread([100 * s for s in share], 1)} % of the step; {spread(rate, 0)} MB/s")


if __name__ == "__main__":
    main()
