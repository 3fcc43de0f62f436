#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""PyTorch timings of the shapes bench_ops.cpp measures, for scripts/bench to compare.

Run with Debian's /usr/bin/python3 (the one that has python3-torch). Eager mode, fp32,
two threads, inference_mode, outputs preallocated (out=) wherever torch allows, so that
neither side pays for allocation. Prints one JSON object: {"torch_version", "threads",
"blas", "results": [{"op", "shape", "seconds", "samples", "variant"}]} with `seconds` the
median time of one call.
"""
import argparse
import json
import os
import re
import statistics
import sys
import time

import torch

GEMM_SIZES = (256, 512, 1024)
SOFTMAX_SHAPES = ((4096, 256), (512, 32000), (64, 50257))


def median_seconds(fn, samples, target_s):
    """Median time of one call of fn. Each sample times a batch of calls long enough
    (target_s) that the timer's resolution and Python's call overhead do not matter."""
    for _ in range(3):  # warm up: caches, thread pool, lazy init
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    calls = max(1, int(target_s / once))
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def blas_in_use():
    """The BLAS torch.mm ran on. Debian's torch is built with BLAS_INFO=generic: it calls
    whatever libblas.so.3 the alternatives system points to, by default the unoptimised,
    single-threaded reference BLAS, which makes torch.mm far slower than a tuned BLAS."""
    info = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    info = info.group(1) if info else "unknown"
    try:  # the library actually mapped into this process (Linux)
        with open("/proc/self/maps") as f:
            libs = {os.path.realpath(line.split()[-1]) for line in f if "blas" in line}
        return info + (" (" + ", ".join(sorted(libs)) + ")" if libs else "")
    except OSError:
        return info


def softmax_out(x, out, log):
    """torch.softmax has no out= argument; the aten overload behind it does."""
    op = torch.ops.aten._log_softmax if log else torch.ops.aten._softmax
    try:
        op.out(x, -1, False, out=out)
        return (lambda: op.out(x, -1, False, out=out)), "aten out="
    except (AttributeError, RuntimeError):
        f = torch.log_softmax if log else torch.softmax
        return (lambda: f(x, -1)), "allocating"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=7, help="timed samples per op")
    parser.add_argument("--target", type=float, default=0.2,
                        help="seconds of calls per sample")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []

    def record(op, shape, fn, variant):
        s = median_seconds(fn, args.samples, args.target)
        results.append({"op": op, "shape": list(shape), "seconds": s,
                        "samples": args.samples, "variant": variant})
        print(f"torch {op} {shape}: {s * 1e3:.3f} ms", file=sys.stderr)

    with torch.inference_mode():
        for n in GEMM_SIZES:
            a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
            record("gemm", (n, n, n), lambda: torch.mm(a, b, out=c), "mm out=")
        n = 1024
        x, w, y = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        # x @ w.T on a transposed view: the linear-layer layout, no copy of w.
        record("gemm_tb", (n, n, n), lambda: torch.mm(x, w.t(), out=y), "mm out=")

        for rows, cols in SOFTMAX_SHAPES:
            x = torch.empty(rows, cols).uniform_(-8.0, 8.0)  # same range as bench_ops
            out = torch.empty_like(x)
            for log in (False, True):
                fn, variant = softmax_out(x, out, log)
                record("log_softmax" if log else "softmax", (rows, cols), fn, variant)

    json.dump({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
               "blas": blas_in_use(), "results": results}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
