#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""One DPO step, rlhf++ against PyTorch in the same run, and the trainer's overhead.

    dpo_step.py --rlhf BUILD/bench/bench_dpo [--threads 2] [--rounds 15] [--k 3]
                [--doc docs/benchmarks.md --meta KEY=VALUE ...]

The step (both sides): the "small" GPT (V=256, T=128, C=256, L=4, H=4) on 4 preference
pairs = 8 sequences of 128 random tokens (32 prompt, 96 completion); policy forward,
per-token log-probs of the completion (log_softmax + gather, summed per sequence),
reference forward without gradients (torch.no_grad; rlhf++: a model without a gradient
arena), the sigmoid DPO loss (beta 0.1), backward, AdamW. PyTorch: eager fp32, the model of
torch_model.py, torch.optim.AdamW.

Interleaving: bench_dpo --serve runs K rlhf++ steps on request; this script asks for K
steps, then times K PyTorch steps, alternating which side goes first each round, so both
sides see the same machine state. Each round gives a ratio PyTorch / rlhf++; the report is
the median ratio with its spread (min, quartiles, max over the rounds).

Overhead: bench_dpo --overhead runs train::trainer with dpo_method on JSONL pairs of the
same shapes and, every K trainer steps, K bare steps, so the two alternate; overhead per
round = trainer time / bare time - 1 (data reading and tokenization, collation, metrics,
callbacks, gradient-norm clipping, the learning-rate schedule).

Prints a markdown block (written into docs/benchmarks.md with --doc) and, on stderr, the
per-round numbers.
"""
import argparse
import copy
import json
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from report import fmt, meta_lines, spread, write_doc
from torch_model import GPT
from torch_ops import blas_in_use

V, T, C, L, H = 256, 128, 256, 4, 4
PAIRS, PROMPT = 4, 32
BEGIN, END = "<!-- bench-dpo:begin -->", "<!-- bench-dpo:end -->"


def torch_dpo_step():
    policy = GPT(V, T, C, L, H)
    reference = copy.deepcopy(policy).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    decay = [p for p in policy.parameters() if p.dim() >= 2]
    no_decay = [p for p in policy.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-2},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-6)
    ids = torch.randint(0, V, (2 * PAIRS, T))
    mask = torch.zeros(2 * PAIRS, T)
    mask[:, PROMPT:] = 1.0
    labels, m = ids[:, 1:], mask[:, 1:]

    def seq_logps(logits):
        lp = torch.log_softmax(logits[:, :-1], dim=-1)
        return (lp.gather(2, labels[:, :, None])[:, :, 0] * m).sum(1)

    def run():
        pol = seq_logps(policy(ids))
        with torch.no_grad():
            ref = seq_logps(reference(ids))
        logits = 0.1 * ((pol[:PAIRS] - ref[:PAIRS]) - (pol[PAIRS:] - ref[PAIRS:]))
        loss = -F.logsigmoid(logits).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rlhf", required=True, help="the bench_dpo binary")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=21)
    p.add_argument("--k", type=int, default=2, help="steps per side per round")
    p.add_argument("--doc")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    step = torch_dpo_step()
    for _ in range(2):
        step()

    server = subprocess.Popen([args.rlhf, "--serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)

    def ours():
        server.stdin.write(f"step {args.k}\n")
        server.stdin.flush()
        return float(server.stdout.readline())

    def theirs():
        t0 = time.perf_counter()
        for _ in range(args.k):
            step()
        return time.perf_counter() - t0

    ours()  # warm up the server
    ratios, ours_s, theirs_s = [], [], []
    for r in range(args.rounds):
        if r % 2 == 0:
            a = ours()
            b = theirs()
        else:
            b = theirs()
            a = ours()
        ours_s.append(a / args.k)
        theirs_s.append(b / args.k)
        ratios.append(b / a)
        print(f"round {r}: rlhf++ {a / args.k * 1e3:.1f} ms, PyTorch {b / args.k * 1e3:.1f} ms, "
              f"ratio {b / a:.2f}", file=sys.stderr)
    server.stdin.write("quit\n")
    server.stdin.close()
    server.wait()

    over = json.loads(subprocess.run([args.rlhf, "--overhead", str(args.rounds), str(args.k)],
                                     check=True, capture_output=True, text=True).stdout)
    overheads = [100.0 * (t / b - 1.0) for t, b in zip(over["trainer"], over["bare"])]
    for r, (t, b) in enumerate(zip(over["trainer"], over["bare"])):
        print(f"overhead round {r}: trainer {t / args.k * 1e3:.1f} ms, bare "
              f"{b / args.k * 1e3:.1f} ms per step", file=sys.stderr)

    rs, os_, ts, oh = spread(ratios), spread(ours_s), spread(theirs_s), spread(overheads)
    torch_doc = {"torch_version": torch.__version__, "threads": args.threads,
                 "blas": blas_in_use()}
    lines = meta_lines(args.meta, torch_doc, "eager fp32")
    lines += ["",
              "| DPO step, small (V=256, T=128, C=256, L=4, H=4), 4 pairs = 8 × 128 tokens "
              "| value |", "|---|---|",
              f"| rlhf++ step (median over rounds) | {os_['median'] * 1e3:.1f} ms |",
              f"| PyTorch step (median over rounds) | {ts['median'] * 1e3:.1f} ms |",
              f"| ratio PyTorch / rlhf++ (> 1: rlhf++ faster), per round | {fmt(rs)} |",
              f"| trainer overhead beside the bare step, % per round | {fmt(oh)} |"]
    body = "\n".join(lines)
    print(body)
    if args.doc:
        write_doc(args.doc, body, BEGIN, END)


if __name__ == "__main__":
    main()
