#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""One PPO iteration with four models, rlhf++ against PyTorch in the same run, and its peak
memory against the models' parameter, gradient and optimizer-state bytes.

    ppo_step.py --rlhf BUILD/bench/bench_ppo [--threads 2] [--rounds 9] [--shared-rounds 7]
                [--k 1] [--doc docs/benchmarks.md --meta KEY=VALUE ...]
    ppo_step.py --torch-memory critic|shared   (PyTorch's side of the memory report, run by
                                                the first form in a process of its own)

The iteration (both sides; TRL PPOTrainer's algorithm and defaults): the "small" GPT at the
byte tokenizer's vocabulary (V=259, T=128, C=256, L=4, H=4) as policy, frozen reference (a
copy of the policy), critic (a GPT trunk + a linear value head on its final LayerNorm) and
frozen reward model (a GPT trunk + a linear score head); 8 prompts of 16 random letters;
sampling at temperature 0.7 with a KV cache on both sides (PyTorch: torch_model.sample_cached
under torch.no_grad, torch.multinomial), at most 64 new tokens, a row ending at the byte
tokenizer's EOS (257, kept; the batch runs on until every row has ended: all 64 steps run);
then, without gradients, over the 8 prompt + completion rows (right-padded): the policy's and
the reference's log-probs of the completion (logits / 0.7, log_softmax + gather), the
critic's values V_t = v_head(h_{t-1}) (0 past the completion), the reward model's score at
the last real token; per-token rewards -0.05·(logp - ref_logp) with the score added at the
last completion token; GAE (γ 1, λ 0.95) by a backward loop over the columns, returns =
advantages + values, advantages whitened over the masked batch; then 4 PPO epochs over one
minibatch of the 8 rows (shuffled): policy forward (log-probs, entropies without gradient),
critic forward (values), the clipped surrogate (0.2) + 0.1 · 0.5·max((v - R)², (clip(v, v_old
± 0.2) - R)²), masked means, backward, one gradient-norm clip (1.0) over policy, critic and
value head (clip_grad_norm_), AdamW (lr 1e-6, weight decay 0). PyTorch: eager fp32, the model
of torch_model.py, torch.optim.AdamW. The "shared" variant puts the value head on the
policy's own final hidden states (no critic trunk): one backward through both losses.

rlhf++ runs what a user runs: train::trainer driving train::ppo_method (bench_ppo.cpp), one
metrics line per step. Its rollout is the time in prepare_step (drawing and tokenizing the
prompts, sampling, the four scoring forwards, rewards, GAE, whitening); the update is the
rest (4 trainer steps). PyTorch's rollout is the same part, its update the 4 epochs.

Interleaving: bench_ppo --serve runs K iterations (4K trainer steps) on request; this script
asks for K iterations, then times K PyTorch iterations, alternating which side goes first
each round, so both sides see the same machine state (each side warmed by 2 iterations).
Each round gives a ratio PyTorch / rlhf++; the report is the median ratio with its spread.

Memory: bench_ppo --memory and ppo_step.py --torch-memory each build the models and run 2
iterations in a fresh process; peak = VmHWM at the end minus VmRSS before the models (the
high-water mark reset there through /proc/self/clear_refs), against the sum over the models
of parameter bytes, plus gradient and two AdamW-moment bytes for the trained ones (policy,
critic, value head). For the separate critic, rlhf++ also runs with micro-batches of 2
rows (the minibatch of 8 in 4 accumulated micro-batches): its activations shrink 4×.

Prints a markdown block (written into docs/benchmarks.md with --doc) and, on stderr, the
per-round numbers.
"""
import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn

from report import emit, fmt, meta_lines, spread
from torch_model import GPT, sample_cached
from torch_ops import blas_in_use

V, T, C, L, H = 259, 128, 256, 4, 4  # V: the byte tokenizer's 256 bytes + BOS, EOS, PAD
PROMPTS, PROMPT, NEW, EPOCHS = 8, 16, 64, 4
EOS, PAD = 257, 258
TEMPERATURE, KL_COEF, GAMMA, LAM = 0.7, 0.05, 1.0, 0.95
CLIP, CLIP_VALUE, VF_COEF, LR = 0.2, 0.2, 0.1, 1e-6
BEGIN, END = "<!-- bench-ppo:begin -->", "<!-- bench-ppo:end -->"


def masked_mean(x, m):
    return (x * m).sum() / m.sum()


def masked_whiten(x, m):
    mean = masked_mean(x, m)
    var = masked_mean((x - mean) ** 2, m) * (m.sum() / (m.sum() - 1))  # TRL: unbiased
    return (x - mean) * torch.rsqrt(var + 1e-8)


def frozen(module):
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class TorchPPO:
    """The four models, AdamW over the trained ones, and one iteration (see the top)."""

    def __init__(self, shared):
        self.policy = GPT(V, T, C, L, H)
        self.reference = frozen(copy.deepcopy(self.policy))
        self.critic = None if shared else GPT(V, T, C, L, H)
        self.v_head = nn.Linear(C, 1)
        self.reward = frozen(GPT(V, T, C, L, H))
        self.score = frozen(nn.Linear(C, 1))
        self.trained = [m for m in (self.policy, self.critic, self.v_head) if m is not None]
        self.params = [p for m in self.trained for p in m.parameters()]
        self.opt = torch.optim.AdamW(self.params, lr=LR, weight_decay=0.0)
        self.pool = torch.randint(ord("a"), ord("z") + 1, (64, PROMPT))  # as bench_ppo's
        self.cursor = 0

    def logps(self, logits, comp):
        """Log-probs (R, W) of comp under logits (R, P + W, V) / temperature, and the
        log-softmax of the completion's positions."""
        lp_all = torch.log_softmax(logits[:, PROMPT - 1:-1] / TEMPERATURE, dim=-1)
        return lp_all.gather(2, comp[:, :, None])[:, :, 0], lp_all

    def forward(self, ids, comp):
        """Policy log-probs, their log-softmax and values V_t = v_head(h_{t-1}), (R, W)."""
        if self.critic is None:
            h = self.policy.hidden(ids)
            lp, lp_all = self.logps(h @ self.policy.wte.weight.t(), comp)
        else:
            lp, lp_all = self.logps(self.policy(ids), comp)
            h = self.critic.hidden(ids)
        return lp, lp_all, self.v_head(h[:, PROMPT - 1:-1])[:, :, 0]

    @torch.no_grad()
    def rollout(self):
        i = self.cursor % self.pool.shape[0]
        self.cursor += PROMPTS
        prompts = self.pool[i:i + PROMPTS]
        comp, lengths = sample_cached(self.policy, prompts, NEW, TEMPERATURE, EOS, PAD)
        t_gen = time.perf_counter()
        width = int(lengths.max())
        comp = comp[:, :width]  # right-padded to the longest completion
        ids = torch.cat([prompts, comp], dim=1)
        m = (torch.arange(width)[None, :] < lengths[:, None]).float()
        old_lp, _, values = self.forward(ids, comp)
        ref_lp, _ = self.logps(self.reference(ids), comp)
        values = values * m
        rows = torch.arange(PROMPTS)
        scores = self.score(self.reward.hidden(ids)[rows, PROMPT + lengths - 1])[:, 0]
        rewards = -KL_COEF * (old_lp - ref_lp) * m
        rewards[rows, lengths - 1] += scores
        adv = torch.zeros_like(rewards)
        last = torch.zeros(PROMPTS)
        for t in reversed(range(width)):
            nxt = values[:, t + 1] if t + 1 < width else torch.zeros(PROMPTS)
            last = rewards[:, t] + GAMMA * nxt - values[:, t] + GAMMA * LAM * last
            adv[:, t] = last
        returns = adv + values
        adv = masked_whiten(adv, m) * m
        return t_gen, dict(ids=ids, comp=comp, m=m, old_lp=old_lp, values=values,
                           returns=returns, adv=adv)

    def update(self, ro):
        for _ in range(EPOCHS):  # one minibatch of every row per epoch
            perm = torch.randperm(PROMPTS)
            ids, comp, m = ro["ids"][perm], ro["comp"][perm], ro["m"][perm]
            old_lp, adv = ro["old_lp"][perm], ro["adv"][perm]
            old_v, ret = ro["values"][perm], ro["returns"][perm]
            lp, lp_all, v = self.forward(ids, comp)
            v_clipped = torch.clamp(v, old_v - CLIP_VALUE, old_v + CLIP_VALUE)
            vf_loss = 0.5 * masked_mean(torch.max((v - ret) ** 2, (v_clipped - ret) ** 2), m)
            ratio = torch.exp(lp - old_lp)
            pg = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - CLIP, 1 + CLIP))
            loss = masked_mean(pg, m) + VF_COEF * vf_loss
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            self.opt.step()
            with torch.no_grad():  # the metrics TRL logs
                _ = masked_mean(-(lp_all.exp() * lp_all).sum(-1), m)
                _ = masked_mean(0.5 * (lp - old_lp) ** 2, m)
                _ = masked_mean((ratio - 1).abs() > CLIP, m)

    def iteration(self):
        """(total, rollout, sampling) seconds of one iteration."""
        t0 = time.perf_counter()
        t_gen, ro = self.rollout()
        t1 = time.perf_counter()
        self.update(ro)
        return time.perf_counter() - t0, t1 - t0, t_gen - t0

    def model_bytes(self):
        """Parameter bytes of each model, times 4 for the trained ones (+ gradient, AdamW's
        two moments)."""
        def size(m, trained):
            return (4 if trained else 1) * 4 * sum(p.numel() for p in m.parameters())
        out = {"policy": size(self.policy, True), "reference": size(self.reference, False),
               "value_head": size(self.v_head, True),
               "reward_model": size(self.reward, False) + size(self.score, False)}
        if self.critic is not None:
            out["critic"] = size(self.critic, True)
        return out


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def torch_memory(variant, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    warm = GPT(V, T, C, L, H)  # the thread pool and the allocator, outside the measured part
    with torch.no_grad():
        warm(torch.zeros(1, 8, dtype=torch.long))
    del warm
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    rss0 = status_kb("VmRSS")
    ppo = TorchPPO(variant == "shared")
    for _ in range(2):
        ppo.iteration()
    return {"variant": variant, "rss_before_kb": rss0, "hwm_after_steps_kb": status_kb("VmHWM"),
            "model_bytes": ppo.model_bytes()}


def memory_row(mem):
    """(peak MiB, analytic MiB, ratio) of a memory report."""
    peak = (mem["hwm_after_steps_kb"] - mem["rss_before_kb"]) / 1024
    analytic = sum(mem["model_bytes"].values()) / 2**20
    return peak, analytic, peak / analytic


def interleave(ours, theirs, rounds, show):
    """`rounds` pairs (ours(), theirs()), alternating which side goes first; show(r, a, b)
    after each."""
    pairs = []
    for r in range(rounds):
        order = (ours, theirs) if r % 2 == 0 else (theirs, ours)
        first, second = order[0](), order[1]()
        pairs.append((first, second) if r % 2 == 0 else (second, first))
        show(r, *pairs[-1])
    return pairs


def compare(args, variant, rounds):
    """Interleaved rounds of one variant: per round (rlhf++ total, rollout), (PyTorch total,
    rollout, sampling), seconds per iteration."""
    ppo = TorchPPO(variant == "shared")
    for _ in range(2):
        ppo.iteration()
    server = subprocess.Popen([args.rlhf, "--serve", variant], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)

    def ours():
        server.stdin.write(f"step {EPOCHS * args.k}\n")
        server.stdin.flush()
        return tuple(float(x) / args.k for x in server.stdout.readline().split())

    def theirs():
        runs = [ppo.iteration() for _ in range(args.k)]
        return tuple(sum(r[j] for r in runs) / args.k for j in range(3))

    def show(r, a, b):
        print(f"{variant} round {r}: rlhf++ {a[0] * 1e3:.0f} ms (rollout {a[1] * 1e3:.0f}), "
              f"PyTorch {b[0] * 1e3:.0f} ms (rollout {b[1] * 1e3:.0f}, sampling "
              f"{b[2] * 1e3:.0f}), ratio {b[0] / a[0]:.2f}", file=sys.stderr, flush=True)

    pairs = interleave(ours, theirs, rounds, show)
    server.stdin.write("quit\n")
    server.stdin.close()
    server.wait()
    return pairs


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rlhf", help="the bench_ppo binary")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=9, help="rounds with the separate critic")
    p.add_argument("--shared-rounds", type=int, default=7, help="rounds with the shared "
                   "value head (0: skip)")
    p.add_argument("--k", type=int, default=1, help="iterations per side per round")
    p.add_argument("--torch-memory", choices=["critic", "shared"])
    p.add_argument("--doc")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    if args.torch_memory:
        print(json.dumps(torch_memory(args.torch_memory, args.threads)))
        return
    if not args.rlhf:
        p.error("--rlhf is required")

    def run_json(cmd):
        return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)

    variants = ["critic"] + (["shared"] if args.shared_rounds > 0 else [])
    mem = {v: (run_json([args.rlhf, "--memory", v]),
               run_json([sys.executable, __file__, "--torch-memory", v,
                         "--threads", str(args.threads)])) for v in variants}
    micro2 = run_json([args.rlhf, "--memory", "critic", "2"])

    load_start = os.getloadavg()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    runs = {"critic": compare(args, "critic", args.rounds)}
    if args.shared_rounds > 0:
        runs["shared"] = compare(args, "shared", args.shared_rounds)
    load_end = os.getloadavg()

    def ms(xs):
        return f"{statistics.median(xs) * 1e3:.0f} ms"

    torch_doc = {"torch_version": torch.__version__, "threads": args.threads,
                 "blas": blas_in_use()}
    lines = meta_lines(args.meta, torch_doc, "eager fp32", [load_start])
    lines += ["", "| PPO iteration, small (V=259, T=128, C=256, L=4, H=4), 8 prompts, 16 + 64 "
              "tokens, 4 epochs × 1 minibatch | value |", "|---|---|"]
    names = {"critic": "separate critic (4 models)", "shared": "value head on the policy"}
    for v, pairs in runs.items():
        a, b = [x for x, _ in pairs], [y for _, y in pairs]
        upd = lambda r: r[0] - r[1]  # noqa: E731
        lines += [
            f"| rlhf++ iteration, trainer + ppo_method, {names[v]} (median over rounds) | "
            f"{ms([x[0] for x in a])} |",
            f"| of which rollout (sampling, 4 scoring forwards, GAE) / update (4 epochs) | "
            f"{ms([x[1] for x in a])} / {ms([upd(x) for x in a])} |",
            f"| PyTorch iteration, {names[v]} (median over rounds) | {ms([y[0] for y in b])} |",
            f"| of which rollout (sampling alone) / update | {ms([y[1] for y in b])} "
            f"({ms([y[2] for y in b])}) / {ms([upd(y) for y in b])} |",
            f"| ratio PyTorch / rlhf++ (> 1: rlhf++ faster), {names[v]}, per round | "
            f"{fmt(spread([y[0] / x[0] for x, y in pairs]))} |",
            f"| ratio of the rollout, per round | "
            f"{fmt(spread([y[1] / x[1] for x, y in pairs]))} |",
            f"| ratio of the update, per round | "
            f"{fmt(spread([upd(y) / upd(x) for x, y in pairs]))} |"]
    lines.append("| load average at the end of the interleaved rounds | "
                 + ", ".join(f"{x:.2f}" for x in load_end) + " |")
    lines += ["", "| peak resident memory of PPO, 2 iterations | rlhf++ | PyTorch |",
              "|---|---:|---:|"]
    for v in variants:
        ours, theirs = memory_row(mem[v][0]), memory_row(mem[v][1])
        lines += [
            f"| {names[v]}: peak (VmHWM − VmRSS before the models) | {ours[0]:.1f} MiB | "
            f"{theirs[0]:.1f} MiB |",
            f"| parameters + gradients + AdamW states of the models | {ours[1]:.1f} MiB | "
            f"{theirs[1]:.1f} MiB |",
            f"| ratio peak / that sum | {ours[2]:.2f} | {theirs[2]:.2f} |"]
        act = mem[v][0]["activation_bytes_per_cache"] / 2**20
        lines.append(f"| rlhf++: forward caches (one per model) × activations of one (8 × 80 "
                     f"tokens) | {mem[v][0]['forward_caches']} × {act:.1f} MiB | |")
    peak, analytic, ratio = memory_row(micro2)
    lines.append(f"| rlhf++, separate critic, micro-batches of 2 rows (4 accumulated a "
                 f"minibatch): peak, ratio | {peak:.1f} MiB, {ratio:.2f} | |")
    emit("\n".join(lines), args.doc, BEGIN, END)


if __name__ == "__main__":
    main()
