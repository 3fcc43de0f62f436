#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Joins bench_algorithms's Google Benchmark JSON with torch_algorithms.py's JSON into a
markdown table (the alignment-math part of docs/benchmarks.md).

    report_algorithms.py RLHF_JSON TORCH_JSON [--doc docs/benchmarks.md --meta KEY=VALUE ...]

ratio = PyTorch median / rlhf++ median (> 1: rlhf++ faster). "% of copy" compares an op's
bytes per second with BM_copy (a 2-thread memcpy of 500 MB, read + write) measured in the
same run. Stdlib only.
"""
import argparse
import sys

from report import fmt_time, load_rlhf, load_torch, meta_lines, write_doc

BEGIN, END = "<!-- bench-algorithms:begin -->", "<!-- bench-algorithms:end -->"


def rows(rlhf, torch):
    copy = next((b for k, b in rlhf.items() if k[0] == "BM_copy"), None)
    copy_bw = copy["bytes_per_second"] if copy else None
    if copy:
        yield ("copy bandwidth (memcpy, 2 threads)", "500 MB", copy["seconds"], None,
               f"{copy_bw / 1e9:.1f} GB/s", "100 %")

    def bw(b):
        gbs = b["bytes_per_second"]
        return f"{gbs / 1e9:.1f} GB/s", (f"{100 * gbs / copy_bw:.0f} %" if copy_bw else "")

    for op, fam in (("log-probs + grad (fused)", "BM_logprobs_fused"),
                    ("log-probs forward", "BM_logprobs_forward")):
        torch_op = "logprobs_fused" if "fused" in fam else "logprobs_forward"
        for shape in ((8, 512, 256), (8, 512, 32000), (8, 512, 50257)):
            b = rlhf.get((fam,) + shape)
            if b:
                rate, pct = bw(b)
                yield (op, "×".join(map(str, shape)), b["seconds"],
                       torch.get((torch_op,) + shape), rate, pct)
    b = rlhf.get(("BM_gae", 256, 1024))
    if b:
        rate, pct = bw(b)
        yield ("GAE (advantages + returns)", "256×1024", b["seconds"],
               torch.get(("gae", 256, 1024)), rate, pct)
    for n in (64, 512, 4096):
        b = rlhf.get(("BM_dpo_sigmoid", n))
        if b:
            yield ("DPO sigmoid loss + grad + metrics", f"N={n}", b["seconds"],
                   torch.get(("dpo_sigmoid", n)), f"{1e9 * b['seconds'] / n:.1f} ns/example", "")
    for n, t in ((64, 128), (512, 128), (4096, 128)):
        b = rlhf.get(("BM_ppo", n, t))
        if b:
            yield ("PPO loss + grads + metrics", f"{n}×{t}", b["seconds"],
                   torch.get(("ppo", n, t)), f"{1e9 * b['seconds'] / (n * t):.2f} ns/token", "")


def table(rlhf, torch):
    lines = ["| op | shape | rlhf++ median | PyTorch median | ratio (PyTorch / rlhf++) "
             "| rlhf++ throughput | % of copy bandwidth |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for op, shape, ours, theirs, rate, pct in rows(rlhf, torch):
        ratio = f"{theirs / ours:.2f}" if theirs else "–"
        lines.append(f"| {op} | {shape} | {fmt_time(ours)} | {fmt_time(theirs)} | {ratio} "
                     f"| {rate} | {pct} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rlhf_json")
    p.add_argument("torch_json")
    p.add_argument("--doc")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    context, rlhf = load_rlhf(args.rlhf_json)
    torch_doc, torch = load_torch(args.torch_json)
    t = table(rlhf, torch)
    print(t)
    if args.doc:
        meta = meta_lines(args.meta, torch_doc,
                          "eager, fp32 (autograd for the gradients, as TRL runs it)",
                          [context.get("load_avg")])
        notes = ("Medians of the repetitions (wall time). Log-prob throughput counts the "
                 "logits read once plus, for the fused op, the gradient written once (the "
                 "minimum traffic); GAE counts rewards, values and mask read and advantages and "
                 "returns written. PyTorch's log-probs are `log_softmax → gather → masked sum "
                 "→ backward`; its GAE is TRL's reverse Python loop over T.")
        write_doc(args.doc, "\n".join(meta) + "\n\n" + t + "\n\n" + notes, BEGIN, END)
        print(f"\nwrote {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
