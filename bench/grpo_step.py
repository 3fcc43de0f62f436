#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""One GRPO step, rlhf++ against PyTorch in the same run, and the trainer's overhead.

    grpo_step.py --rlhf BUILD/bench/bench_grpo [--threads 2] [--rounds 21] [--k 2]
                 [--doc docs/benchmarks.md --meta KEY=VALUE ...]

The step (both sides): the "small" GPT at the byte tokenizer's vocabulary (V=259, T=128,
C=256, L=4, H=4); 8 prompts of 16 tokens × 4 generations = 32 rows; sampling at
temperature 1 (top-k/top-p off) with a KV cache on both sides (prefill, then one token at a
time; PyTorch: torch_model.sample_cached under torch.no_grad, torch.multinomial), at most
64 new tokens, a row ending at the byte tokenizer's EOS (257, kept; about 1 row in 5 at this
random initialisation; the batch runs on until every row has ended, so all 64 steps run);
the reward = share of even ids among a completion's tokens (EOS aside); group advantages
(r - group mean) / (group std + 1e-4) (TRL's scale_rewards "group"); the policy forward
over the 32 prompt + completion rows (right-padded), per-token log-probs of the completion
(log_softmax + gather) and entropies (softmax, without gradient, as TRL); TRL's dapo loss
at ratio 1 (on-policy, beta 0: no reference): per-token -min(ratio·A, clip(ratio)·A) with
ratio = exp(lp - lp.detach()), Σ mask·loss / Σ mask; backward; gradient-norm clip 1.0
(clip_grad_norm_; the trainer's default); AdamW (lr 1e-6, weight decay 0, constant).
PyTorch: eager fp32, the model of torch_model.py, torch.optim.AdamW.

rlhf++ runs what a user runs: train::trainer driving train::grpo_method (bench_grpo.cpp),
with one metrics line per step (logging_steps 1). Its generation time is the time until
the reward function is called (drawing and tokenizing the prompts, sampling, decoding the
completions); the update is the rest (rewards, advantages, forward, loss, backward, clip,
AdamW, logging). PyTorch's generation is the sampling loop; its update is the rest.

Interleaving: bench_grpo --serve runs K rlhf++ steps on request; this script asks for K
steps, then times K PyTorch steps, alternating which side goes first each round, so both
sides see the same machine state. Each round gives a ratio PyTorch / rlhf++; the report is
the median ratio with its spread (min, quartiles, max over the rounds).

Overhead: bench_grpo --overhead runs the trainer and, every K trainer steps, K bare steps
(prepare_step, train_micro_batch, clip, AdamW called directly on a second copy of the
method), so the two alternate; overhead per round = trainer time / bare time - 1.

Prints a markdown block (written into docs/benchmarks.md with --doc) and, on stderr, the
per-round numbers.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from report import fmt, meta_lines, spread, write_doc
from torch_model import GPT, sample_cached
from torch_ops import blas_in_use

V, T, C, L, H = 259, 128, 256, 4, 4  # V: the byte tokenizer's 256 bytes + BOS, EOS, PAD
PROMPTS, G, PROMPT, NEW = 8, 4, 16, 64
EOS, PAD = 257, 258
TEMPERATURE, EPSILON = 1.0, 0.2
BEGIN, END = "<!-- bench-grpo:begin -->", "<!-- bench-grpo:end -->"


def torch_grpo_step():
    policy = GPT(V, T, C, L, H)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-6, weight_decay=0.0)
    pool = torch.randint(ord("a"), ord("z") + 1, (64, PROMPT))  # as bench_grpo's prompts
    cursor = [0]

    def rewards_of(comp, m):
        """Share of even ids among each completion's tokens, EOS aside."""
        real = m * (comp != EOS)
        n = real.sum(1)
        even = (real * (comp % 2 == 0)).sum(1)
        return torch.where(n > 0, even / n.clamp(min=1), torch.zeros_like(n))

    def run():
        t0 = time.perf_counter()
        i = cursor[0] % pool.shape[0]
        cursor[0] += PROMPTS
        prompts = pool[i:i + PROMPTS].repeat_interleave(G, dim=0)  # (32, 16)
        comp, lengths = sample_cached(policy, prompts, NEW, TEMPERATURE, EOS, PAD)
        t_gen = time.perf_counter()
        width = int(lengths.max())
        comp = comp[:, :width]  # right-padded to the longest completion
        m = (torch.arange(width)[None, :] < lengths[:, None]).float()
        r = rewards_of(comp, m)
        grouped = r.view(-1, G)
        mean = grouped.mean(1).repeat_interleave(G)
        std = grouped.std(1).repeat_interleave(G)
        adv = (r - mean) / (std + 1e-4)

        ids = torch.cat([prompts, comp], dim=1)
        logits = policy(ids)[:, PROMPT - 1:-1] / TEMPERATURE  # the completion's positions
        logp_all = torch.log_softmax(logits, dim=-1)
        lp = logp_all.gather(2, comp[:, :, None])[:, :, 0]
        with torch.no_grad():
            entropy = -(torch.softmax(logits, dim=-1) * logp_all).sum(-1)
        ratio = torch.exp(lp - lp.detach())
        clipped = torch.clamp(ratio, 1 - EPSILON, 1 + EPSILON)
        per_token = -torch.min(ratio * adv[:, None], clipped * adv[:, None])
        loss = (per_token * m).sum() / m.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        _ = (entropy * m).sum() / m.sum()  # the entropy metric
        return t_gen - t0, time.perf_counter() - t0
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rlhf", required=True, help="the bench_grpo binary")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=21)
    p.add_argument("--k", type=int, default=2, help="steps per side per round")
    p.add_argument("--no-overhead", action="store_true", help="skip the trainer's overhead")
    p.add_argument("--doc")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    load_start = os.getloadavg()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    step = torch_grpo_step()
    for _ in range(2):
        step()

    server = subprocess.Popen([args.rlhf, "--serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)

    def ours():
        server.stdin.write(f"step {args.k}\n")
        server.stdin.flush()
        total, gen = (float(x) for x in server.stdout.readline().split())
        return total, gen

    def theirs():
        total = gen = 0.0
        for _ in range(args.k):
            g, t = step()
            gen += g
            total += t
        return total, gen

    ours()  # warm up the server (it ran 2 steps before answering)
    ratios, gen_ratios, upd_ratios = [], [], []
    ours_s, theirs_s, ours_gen, theirs_gen, ours_upd, theirs_upd = [], [], [], [], [], []
    for r in range(args.rounds):
        if r % 2 == 0:
            a, ag = ours()
            b, bg = theirs()
        else:
            b, bg = theirs()
            a, ag = ours()
        k = args.k
        ours_s.append(a / k)
        theirs_s.append(b / k)
        ours_gen.append(ag / k)
        theirs_gen.append(bg / k)
        ours_upd.append((a - ag) / k)
        theirs_upd.append((b - bg) / k)
        ratios.append(b / a)
        gen_ratios.append(bg / ag)
        upd_ratios.append((b - bg) / (a - ag))
        print(f"round {r}: rlhf++ {a / k * 1e3:.1f} ms (generation {ag / k * 1e3:.1f}), "
              f"PyTorch {b / k * 1e3:.1f} ms (generation {bg / k * 1e3:.1f}), "
              f"ratio {b / a:.2f}", file=sys.stderr)
    server.stdin.write("quit\n")
    server.stdin.close()
    server.wait()
    load_end = os.getloadavg()

    oh = None
    if not args.no_overhead:
        over = json.loads(subprocess.run(
            [args.rlhf, "--overhead", str(args.rounds), str(args.k)], check=True,
            capture_output=True, text=True).stdout)
        overheads = [100.0 * (t / b - 1.0) for t, b in zip(over["trainer"], over["bare"])]
        for r, (t, b) in enumerate(zip(over["trainer"], over["bare"])):
            print(f"overhead round {r}: trainer {t / args.k * 1e3:.1f} ms, bare "
                  f"{b / args.k * 1e3:.1f} ms per step", file=sys.stderr)
        oh = spread(overheads)

    ms = lambda xs: f"{statistics.median(xs) * 1e3:.1f} ms"  # noqa: E731
    torch_doc = {"torch_version": torch.__version__, "threads": args.threads,
                 "blas": blas_in_use()}
    lines = meta_lines(args.meta, torch_doc, "eager fp32", [load_start])
    lines += ["",
              "| GRPO step, small (V=259, T=128, C=256, L=4, H=4), 8 prompts × 4 generations, "
              "16 + 64 tokens | value |", "|---|---|",
              f"| rlhf++ step, trainer + grpo_method (median over rounds) | {ms(ours_s)} |",
              f"| of which generation / update | {ms(ours_gen)} / {ms(ours_upd)} |",
              f"| PyTorch step (median over rounds) | {ms(theirs_s)} |",
              f"| of which generation / update | {ms(theirs_gen)} / {ms(theirs_upd)} |",
              f"| ratio PyTorch / rlhf++ (> 1: rlhf++ faster), per round | "
              f"{fmt(spread(ratios))} |",
              f"| ratio of the generation, per round | {fmt(spread(gen_ratios))} |",
              f"| ratio of the update, per round | {fmt(spread(upd_ratios))} |"]
    if oh is not None:
        lines.append(f"| trainer overhead beside the bare step, % per round | {fmt(oh)} |")
    lines.append("| load average at the end of the interleaved rounds | "
                 + ", ".join(f"{x:.2f}" for x in load_end) + " |")
    body = "\n".join(lines)
    print(body)
    if args.doc:
        write_doc(args.doc, body, BEGIN, END)


if __name__ == "__main__":
    main()
