#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Joins bench_ops's Google Benchmark JSON with torch_ops.py's JSON into a markdown table.

    report.py RLHF_JSON TORCH_JSON [--doc docs/benchmarks.md --meta KEY=VALUE ...]

Times are medians: the median aggregate of bench_ops's repetitions, the median sample of
torch_ops.py. ratio = PyTorch time / rlhf++ time, so > 1 means rlhf++ is faster. For
GEMM, "vs raw Eigen" is ops::gemm's speed in % of Eigen's own `C.noalias() = A * B` at the
same n (ratio of the two medians; above 100 % when ops::gemm goes to a CBLAS).
Stdlib only.
"""
import argparse
import datetime
import json
import re
import statistics
import sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
UNIT_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def load_rlhf(path):
    """{(family, args...): entry} for the median aggregates of bench_ops."""
    with open(path) as f:
        doc = json.load(f)
    out = {}
    for b in doc["benchmarks"]:
        if b.get("aggregate_name", "median") != "median" or b.get("error_occurred"):
            continue
        family, *rest = b["run_name"].split("/")
        args = tuple(int(m) for m in re.findall(r":(\d+)", "/".join(rest)))
        b["seconds"] = b["real_time"] * UNIT_S[b["time_unit"]]
        out[(family,) + args] = b
    return doc.get("context", {}), out


def load_torch(path):
    with open(path) as f:
        doc = json.load(f)
    return doc, {(r["op"],) + tuple(r["shape"]): r["seconds"] for r in doc["results"]}


def fmt_time(s):
    if s is None:
        return "–"
    return f"{s * 1e3:.3f} ms" if s < 1.0 else f"{s:.3f} s"


def rows(rlhf, torch):
    """(op, shape, rlhf s, torch s, rate, efficiency) for every case both sides ran."""
    for n in (256, 512, 1024):
        raw, ops = rlhf.get(("BM_gemm_eigen_raw", n)), rlhf.get(("BM_gemm_ops", n))
        t = torch.get(("gemm", n, n, n))
        if raw:
            yield ("gemm (raw Eigen)", f"{n}×{n}×{n}", raw["seconds"], t,
                   f"{raw['FLOPS'] / 1e9:.1f} GFLOP/s", "")
        if ops:
            eff = f"{100 * raw['seconds'] / ops['seconds']:.1f} %" if raw else ""
            yield ("ops::gemm", f"{n}×{n}×{n}", ops["seconds"], t,
                   f"{ops['FLOPS'] / 1e9:.1f} GFLOP/s", eff)
    tb, raw = rlhf.get(("BM_gemm_ops_tb", 1024)), rlhf.get(("BM_gemm_eigen_raw", 1024))
    if tb:
        eff = f"{100 * raw['seconds'] / tb['seconds']:.1f} %" if raw else ""
        yield ("ops::gemm, trans_b (x·Wᵀ)", "1024×1024×1024", tb["seconds"],
               torch.get(("gemm_tb", 1024, 1024, 1024)), f"{tb['FLOPS'] / 1e9:.1f} GFLOP/s",
               eff)
    for op, family in (("softmax_rows", "BM_softmax_rows"),
                       ("log_softmax_rows", "BM_log_softmax_rows")):
        for r, c in ((4096, 256), (512, 32000), (64, 50257)):
            b = rlhf.get((family, r, c))
            if b:
                yield (op, f"{r}×{c}", b["seconds"], torch.get((op[:-5], r, c)),
                       f"{b['bytes_per_second'] / 1e9:.1f} GB/s", "")


def table(rlhf, torch):
    lines = ["| op | shape | rlhf++ median | PyTorch median | ratio (PyTorch / rlhf++) "
             "| rlhf++ throughput | vs raw Eigen |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for op, shape, ours, theirs, rate, eff in rows(rlhf, torch):
        ratio = f"{theirs / ours:.2f}" if theirs else "–"
        lines.append(f"| {op} | {shape} | {fmt_time(ours)} | {fmt_time(theirs)} | {ratio} "
                     f"| {rate} | {eff} |")
    return "\n".join(lines)


def provider_table(rlhf):
    """Each GPT product's median time and GFLOP/s through every linked GEMM provider, and
    the total over the products (bench_ops's BM_gemm_provider); '' when none ran."""
    cases = {}
    for key, b in rlhf.items():
        if key[0] != "BM_gemm_provider" or len(key) != 3:
            continue
        provider, name, shape = b.get("label", "||").split("|")
        cases.setdefault((key[2], name, shape), {})[provider] = b
    if not cases:
        return ""
    providers = [p for p in ("onednn", "cblas", "eigen")
                 if any(p in by for by in cases.values())]
    head = " | ".join(f"{p} median | {p} GFLOP/s" for p in providers)
    lines = [f"| GPT \"small\" product | m×n×k | {head} |",
             "|---|---|" + "---:|---:|" * len(providers)]
    totals = dict.fromkeys(providers, 0.0)
    for (_, name, shape), by in sorted(cases.items()):
        cells = []
        for p in providers:
            b = by.get(p)
            if b:
                totals[p] += b["seconds"]
            cells.append(f"{fmt_time(b['seconds'])} | {b['FLOPS'] / 1e9:.1f}" if b else "– | –")
        lines.append(f"| {name} | {shape} | " + " | ".join(cells) + " |")
    lines.append("| all of the above | | " +
                 " | ".join(f"{fmt_time(totals[p])} | " for p in providers) + " |")
    return "\n".join(lines)


def meta_lines(meta_args, torch_doc, torch_how, loads=()):
    """The header lines of a generated block: date, each --meta KEY=VALUE, the PyTorch
    version/threads/BLAS with `torch_how` (how that side runs), and the load averages."""
    lines = [f"- **date**: {datetime.date.today().isoformat()}"]
    lines += [f"- **{k}**: {v}" for k, _, v in (m.partition("=") for m in meta_args)]
    lines.append(f"- **torch**: {torch_doc['torch_version']}, {torch_doc['threads']} threads, "
                 f"{torch_how}, BLAS: {torch_doc.get('blas', 'unknown')}")
    loads = [l for l in loads if l]
    if loads:
        lines.append("- **load average at start**: " +
                     "; ".join(", ".join(f"{x:.2f}" for x in l) for l in loads))
    return lines


def spread(xs):
    """Median, min, quartiles and max of per-round values (the interleaved benchmarks)."""
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return {"median": statistics.median(xs), "min": min(xs), "q1": q[0], "q3": q[2],
            "max": max(xs), "rounds": len(xs)}


def fmt(s):
    """A spread() as "median (min, quartiles, max; rounds)"."""
    return (f"{s['median']:.2f} (min {s['min']:.2f}, quartiles {s['q1']:.2f}-{s['q3']:.2f}, "
            f"max {s['max']:.2f}; {s['rounds']} rounds)")


def emit(body, doc, begin, end):
    """Prints a generated block and, when `doc` is set, writes it between its markers."""
    print(body)
    if doc:
        write_doc(doc, body, begin, end)


def write_doc(path, body, begin=BEGIN, end=END):
    """Replaces the generated block of `path` (between the markers), keeping the rest."""
    BEGIN_, END_ = begin, end
    block = f"{BEGIN_}\n{body}\n{END_}"
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ("# Benchmarks\n\nGenerated by `scripts/bench --write-doc`: rlhf++'s Eigen backend "
               "(`bench/bench_ops.cpp`, Google Benchmark) against raw Eigen and PyTorch eager "
               "(`bench/torch_ops.py`) on the same shapes. Text outside the markers below is "
               "kept when the table is regenerated.\n\n" + BEGIN_ + "\n" + END_ + "\n")
    if BEGIN_ in old and END_ in old:
        new = old[:old.index(BEGIN_)] + block + old[old.index(END_) + len(END_):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(new)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rlhf_json")
    p.add_argument("torch_json")
    p.add_argument("--doc", help="markdown file whose generated block to write")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="a line of the doc's header (machine, compiler, ...)")
    args = p.parse_args()

    context, rlhf = load_rlhf(args.rlhf_json)
    torch_doc, torch = load_torch(args.torch_json)
    t = table(rlhf, torch)
    print(t)
    if args.doc:
        meta = meta_lines(args.meta, torch_doc, "eager, fp32, inference_mode",
                          [context.get("load_avg")])
        notes = ("Medians: bench_ops repetitions (wall time, OpenMP threads) and "
                 "torch_ops.py samples. ratio > 1 means rlhf++ is faster. Softmax "
                 "throughput counts one read of the input and one write of the output. "
                 "\"vs raw Eigen\" is ops::gemm's speed in % of Eigen's own "
                 "`C.noalias() = A * B` (ratio of medians; it moves by several % from run "
                 "to run on a shared machine). ops::gemm on the Eigen backend goes through "
                 "its default GEMM provider: oneDNN when CMake found it, else a CBLAS (here "
                 "OpenBLAS, which PyTorch's torch.mm uses through libblas.so.3), else "
                 "Eigen's own kernel.")
        if torch_doc.get("blas", "").startswith("generic"):
            notes += ("\n\ntorch.mm calls the system libblas.so.3 (see the torch line); "
                      "when that is Debian's reference BLAS, the GEMM ratios measure that "
                      "BLAS, not PyTorch at its best.")
        providers = provider_table(rlhf)
        if providers:
            print("\n" + providers)
            notes += ("\n\nGEMM providers of the Eigen backend on the products of one "
                      "train step of the GPT's \"small\" config (B·T = 1024, C = 256, "
                      "4 heads of 64; bench_ops's BM_gemm_provider, medians of the same "
                      "repetitions). The default provider is the fastest linked one here; "
                      "RLHF_GEMM_PROVIDER chooses another.\n\n" + providers)
        write_doc(args.doc, "\n".join(meta) + "\n\n" + t + "\n\n" + notes)
        print(f"\nwrote {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
