#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""The GPT train step and KV-cache generation, rlhf++ against PyTorch, interleaved.

    model_step.py --rlhf BUILD/bench/bench_model [--threads 2] [--rounds 11]
                  [--rss RSS_JSON ...] [--doc docs/benchmarks.md --meta KEY=VALUE ...]

Cases (the shapes of bench_model.cpp and torch_model.py):
    gemm      C = A·B, 1024×1024×1024 fp32: the GEMM peak (rlhf++: ops::gemm on the Eigen
              backend; PyTorch: torch.mm), the denominator of MFU
    products  after each train-step turn, the wall time inside that config's products
              ("gemmtime": the same steps on bench_model's gemm_timed_backend), so each
              round also gives the step's share spent outside GEMMs
    tiny      train step V=256, T=64,  C=128, L=2, H=4, B=8
    small     train step V=256, T=128, C=256, L=4, H=4, B=8
    generate  greedy generation on small (max_seq_len 144): 8 prompts of 16 tokens, 128 new

Interleaving: `bench_model --serve` keeps every case built and warm and answers "run K
calls" with their wall time; this script times K PyTorch calls of the same case next to
it. In each round every case runs on both sides, the side that goes first alternating
between rounds, so both sides see the same machine state. Each round gives a ratio
PyTorch / rlhf++ per case and, for the train steps, the model FLOP/s of that round over
the GEMM peak of the same round (MFU). Reported: medians over the rounds with their spread
(min, quartiles, max), and the load average before and after.

Peak RSS is a per-process maximum, so it comes from separate Google Benchmark runs
(--rss: bench_model's JSON for BM_train_step/config:0 and config:1, one process each).

Prints a markdown block (written into docs/benchmarks.md with --doc) and, on stderr, the
per-round numbers.
"""
import argparse
import os
import subprocess
import sys
import time

import torch

from report import fmt, load_rlhf, meta_lines, spread, write_doc
import torch_model
from torch_ops import blas_in_use

BEGIN, END = "<!-- bench-model:begin -->", "<!-- bench-model:end -->"
GEMM_N = 1024
TRAIN = {"tiny": (0, dict(V=256, T=64, C=128, L=2, H=4, B=8)),
         "small": (1, dict(V=256, T=128, C=256, L=4, H=4, B=8))}
GEN = dict(TRAIN["small"][1], T=torch_model.GEN_PROMPT + torch_model.GEN_NEW)
# Calls per side per round: each side's turn lasts ~0.1-0.5 s on a 2-core machine.
CALLS = {"gemm": 4, "tiny": 8, "small": 3, "generate": 1}


def mb(x):
    return f"{x / 1e6:.1f} MB"


def torch_cases():
    """{case: (callable, params)}: PyTorch's side of every case, warmed up."""
    a, b = torch.rand(GEMM_N, GEMM_N) * 2 - 1, torch.rand(GEMM_N, GEMM_N) * 2 - 1
    out = torch.empty(GEMM_N, GEMM_N)
    cases = {"gemm": (lambda: torch.mm(a, b, out=out), 0)}
    for name, (_, c) in TRAIN.items():
        cases[name] = torch_model.train_step(**c)
    cases["generate"] = torch_model.generate(**GEN)
    for fn, _ in cases.values():
        for _ in range(2):
            fn()
    return cases


class Server:
    """bench_model --serve: one command per line, one wall time in seconds per answer."""

    def __init__(self, binary):
        self.p = subprocess.Popen([binary, "--serve"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        answer = self.p.stdout.readline()
        if not answer:
            sys.exit(f"model_step.py: bench_model --serve ended on '{line}'")
        return float(answer)

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        if self.p.wait() != 0:
            sys.exit(f"model_step.py: bench_model --serve exited with {self.p.returncode}")


def command(case, k):
    if case == "gemm":
        return f"gemm {k}"
    if case == "generate":
        return f"generate {k}"
    return f"train {TRAIN[case][0]} {k}"


def timed(fn, k):
    t0 = time.perf_counter()
    for _ in range(k):
        fn()
    return time.perf_counter() - t0


def run_rounds(server, theirs, rounds):
    """{case: {"ours": [s per call], "theirs": [...], "ratio": [...]}} over the rounds."""
    for case, k in CALLS.items():  # the server builds and warms each case on first use
        server.ask(command(case, k))
    res = {c: {"ours": [], "theirs": [], "ratio": []} for c in CALLS}
    for r in range(rounds):
        for case, k in CALLS.items():
            fn = theirs[case][0]
            if r % 2 == 0:
                a = server.ask(command(case, k))
                b = timed(fn, k)
            else:
                b = timed(fn, k)
                a = server.ask(command(case, k))
            res[case]["ours"].append(a / k)
            res[case]["theirs"].append(b / k)
            res[case]["ratio"].append(b / a)
            if case in TRAIN:  # the same steps' products alone, right after
                res[case].setdefault("gemm", []).append(
                    server.ask(f"gemmtime {TRAIN[case][0]} {k}") / k)
        print(f"round {r}: " + ", ".join(
            f"{c} {res[c]['ours'][-1] * 1e3:.1f}/{res[c]['theirs'][-1] * 1e3:.1f} ms"
            for c in CALLS) + " (rlhf++/PyTorch)", file=sys.stderr)
    return res


def rss_rows(paths):
    """{config index: Google Benchmark entry of BM_train_step} from the --rss files."""
    out = {}
    for path in paths:
        _, r = load_rlhf(path)
        for key, b in r.items():
            if key[0] == "BM_train_step" and len(key) == 2:
                out[key[1]] = b
    return out


def ms(x):
    return f"{x * 1e3:.1f} ms"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rlhf", required=True, help="the bench_model binary")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--rss", nargs="*", default=[], help="bench_model JSON with peak RSS")
    p.add_argument("--doc")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    if args.rounds < 7:
        p.error("--rounds must be at least 7 (a median and quartiles need several pairs)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    theirs = torch_cases()
    load_before = os.getloadavg()
    server = Server(args.rlhf)
    res = run_rounds(server, theirs, args.rounds)
    server.close()
    load_after = os.getloadavg()

    gemm_flops = 2.0 * GEMM_N ** 3
    peak_ours = [gemm_flops / s for s in res["gemm"]["ours"]]
    peak_theirs = [gemm_flops / s for s in res["gemm"]["theirs"]]
    rss = rss_rows(args.rss)
    lines = ["| config | rlhf++ median | PyTorch median | ratio PyTorch / rlhf++ per round "
             "| rlhf++ tokens/s | rlhf++ model GFLOP/s | MFU per round | peak RSS / analytic |",
             "|---|---:|---:|---|---:|---:|---|---|"]
    for name, (idx, c) in TRAIN.items():
        params = theirs[name][1]
        tokens = c["B"] * c["T"]
        ours = res[name]["ours"]
        mfu = [100.0 * 6.0 * params * tokens / s / peak for s, peak in zip(ours, peak_ours)]
        o = spread(ours)
        b = rss.get(idx)
        mem = "–"
        if b:
            r, base, ana = b["peak_rss_bytes"], b["baseline_rss_bytes"], b["analytic_bytes"]
            mem = (f"{mb(r)} / {mb(ana)} = {r / ana:.2f}× "
                   f"(without the {mb(base)} baseline: {(r - base) / ana:.2f}×)")
        desc = ", ".join(f"{k}={v}" for k, v in c.items())
        lines.append(f"| {name} ({desc}) | {ms(o['median'])} "
                     f"| {ms(spread(res[name]['theirs'])['median'])} | {fmt(spread(res[name]['ratio']))} "
                     f"| {tokens / o['median']:,.0f} "
                     f"| {6.0 * params * tokens / o['median'] / 1e9:.1f} "
                     f"| {fmt(spread(mfu))} % | {mem} |")
    floor_lines = ["| config | products' wall time per step | share of rlhf++'s step "
                   "(per round) | time outside the products | PyTorch / products' time "
                   "(ceiling of the ratio) |", "|---|---:|---|---:|---|"]
    for name in TRAIN:
        r = res[name]
        share = [100.0 * g / o for g, o in zip(r["gemm"], r["ours"])]
        outside = [o - g for g, o in zip(r["gemm"], r["ours"])]
        ceiling = [t / g for g, t in zip(r["gemm"], r["theirs"])]
        floor_lines.append(f"| {name} | {ms(spread(r['gemm'])['median'])} | {fmt(spread(share))} % "
                           f"| {ms(spread(outside)['median'])} | {fmt(spread(ceiling))} |")
    g = res["generate"]
    n_tok = GEN["B"] * torch_model.GEN_NEW
    gen_lines = ["| generation | rlhf++ median | PyTorch median "
                 "| ratio PyTorch / rlhf++ per round | rlhf++ tokens/s | PyTorch tokens/s |",
                 "|---|---:|---:|---|---:|---:|",
                 f"| small (V=256, C=256, L=4, H=4, max_seq_len 144), B={GEN['B']}, prompt "
                 f"{torch_model.GEN_PROMPT} + {torch_model.GEN_NEW} new tokens, greedy "
                 f"| {ms(spread(g['ours'])['median'])} | {ms(spread(g['theirs'])['median'])} "
                 f"| {fmt(spread(g['ratio']))} | {n_tok / spread(g['ours'])['median']:,.0f} "
                 f"| {n_tok / spread(g['theirs'])['median']:,.0f} |"]
    po, pt = spread(peak_ours), spread(peak_theirs)
    peak_line = (f"fp32 GEMM peak, {GEMM_N}³, GFLOP/s per round: rlhf++ `ops::gemm` (Eigen "
                 f"backend) {fmt({k: v / 1e9 if k != 'rounds' else v for k, v in po.items()})}; "
                 f"PyTorch `torch.mm` "
                 f"{fmt({k: v / 1e9 if k != 'rounds' else v for k, v in pt.items()})}")
    torch_doc = {"torch_version": torch.__version__, "threads": args.threads,
                 "blas": blas_in_use()}
    meta = meta_lines(args.meta, torch_doc, "eager, fp32, torch.optim.AdamW")
    meta.append("- **load average (1, 5, 15 min)**: before "
                + ", ".join(f"{x:.2f}" for x in load_before) + "; after "
                + ", ".join(f"{x:.2f}" for x in load_after))
    meta.append(f"- **{peak_line}**")
    notes = ("Interleaved (bench/model_step.py): in each of the rounds every case runs "
             f"{', '.join(f'{k} × {v}' for k, v in CALLS.items())} calls on each side, "
             "the side that goes first alternating between rounds; times are per call, "
             "medians over the rounds; a ratio > 1 means rlhf++ is faster. One train step = "
             "forward → next-token cross-entropy (mean over B·(T-1) positions; rlhf++: "
             "`losses::sft_loss` with a mask of ones) → zero grads → backward → AdamW "
             "(lr 1e-3, weight decay 1e-2 on matrices and embeddings), on random tokens. "
             "Model GFLOP/s = 6 · params · B·T / median time, params without padded "
             "embedding rows (the LM head is tied: wte counts once), attention score FLOPs "
             "ignored (the usual model-FLOPs convention). MFU per round = that round's model "
             "FLOP/s over the same round's rlhf++ GEMM peak. Peak RSS = getrusage ru_maxrss "
             "of a separate Google Benchmark process per config (bench_model.cpp); the "
             "baseline is the resident set before the model was allocated. Analytic = "
             "4 bytes · (params + grads + 2 · params AdamW moments + the activation floats "
             "of `gpt_activations::floats()`), arenas at their padded size. PyTorch: the "
             "same GPT written plainly (bench/torch_model.py, masked-softmax attention). "
             "Generation: one `model::generate` call (rlhf++) or the plain PyTorch KV-cache "
             "loop of torch_model.py = one (8, 16) prefill + 127 single-token decode steps, "
             "greedy, no stop tokens, cache allocation inside the timed call on both sides. "
             "Products' wall time: right after each train-step turn, the same number of steps "
             "on `gemm_timed_backend` (bench_model.cpp: the Eigen backend adding up the wall "
             "time inside every `gemm` and `gemm_bias` call, attention issuing its products "
             "from the calling thread); the share is over the same round's step, and PyTorch's "
             "step over the products' time is the ratio rlhf++ would reach if everything "
             "outside the products took no time.")
    body = "\n".join(["### GPT train step and generation (`scripts/bench --only model`)", ""]
                     + meta + ["", "\n".join(lines), "", "\n".join(floor_lines), "",
                               "\n".join(gen_lines), "", notes])
    print(body)
    if args.doc:
        write_doc(args.doc, body, BEGIN, END)
        print(f"\nwrote {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
