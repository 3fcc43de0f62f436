#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""PyTorch timings of the shapes bench_algorithms.cpp measures, written the way TRL writes
them (eager, fp32), for scripts/bench to compare.

    logprobs_fused     log_softmax -> gather -> masked sum -> backward (grad w.r.t. logits)
    logprobs_forward   the same forward under inference_mode
    gae                TRL's reverse Python loop over T on (B, T) tensors
    dpo_sigmoid        DPO sigmoid loss + metrics + backward on (B,) log-probs
    ppo                clipped policy + value loss + metrics + backward on (B, T)

Run with Debian's /usr/bin/python3. Prints {"torch_version", "threads", "results": [{"op",
"shape", "seconds", "samples"}]}, seconds = median time of one call.
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F

from torch_ops import median_seconds

LOGPROB_SHAPES = ((8, 512, 256), (8, 512, 32000), (8, 512, 50257))
GAE_SHAPES = ((256, 1024),)
DPO_SIZES = (64, 512, 4096)
PPO_SHAPES = ((64, 128), (512, 128), (4096, 128))


def logprobs(b, t, v, backward):
    logits = torch.empty(b, t, v).uniform_(-8.0, 8.0).requires_grad_(backward)
    ids = torch.randint(0, v, (b, t))
    mask = torch.ones(b, t)

    def fwd():
        lp = torch.log_softmax(logits[:, :-1], dim=-1)
        tok = lp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        return (tok * mask[:, 1:]).sum(-1)

    if not backward:
        def run():
            with torch.inference_mode():
                fwd()
        return run

    def run():
        logits.grad = None
        fwd().sum().backward()
    return run


def gae(b, t, gamma=1.0, lam=0.95):
    rewards, values = torch.randn(b, t), torch.randn(b, t)

    def run():
        with torch.no_grad():
            last = 0
            rev = []
            for i in reversed(range(t)):
                nxt = values[:, i + 1] if i < t - 1 else 0.0
                delta = rewards[:, i] + gamma * nxt - values[:, i]
                last = delta + gamma * lam * last
                rev.append(last)
            adv = torch.stack(rev[::-1], dim=1)
            return adv, adv + values
    return run


def dpo(n, beta=0.1):
    lc, lr = (torch.randn(n) * 50 - 200).requires_grad_(), (torch.randn(n) * 50 - 200).requires_grad_()
    rc, rr = torch.randn(n) * 50 - 200, torch.randn(n) * 50 - 200

    def run():
        lc.grad = lr.grad = None
        logits = (lc - rc) - (lr - rr)
        loss = -F.logsigmoid(beta * logits).mean()
        cr, rj = beta * (lc - rc).detach(), beta * (lr - rr).detach()
        metrics = (cr.mean(), rj.mean(), (cr > rj).float().mean(), (cr - rj).mean())
        loss.backward()
        return metrics
    return run


def ppo(b, t, cliprange=0.2, cliprange_value=0.2, vf_coef=0.1):
    logp = (torch.randn(b, t) * 0.1 - 2).requires_grad_()
    old = logp.detach() + torch.randn(b, t) * 0.1
    adv = torch.randn(b, t)
    v = torch.randn(b, t).requires_grad_()
    v_old, ret = v.detach() + torch.randn(b, t) * 0.1, torch.randn(b, t)
    mask = torch.ones(b, t)

    def mmean(x):
        return (x * mask).sum() / mask.sum()

    def run():
        logp.grad = v.grad = None
        ratio = torch.exp(logp - old)
        pg = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - cliprange, 1 + cliprange))
        vc = torch.clamp(v, v_old - cliprange_value, v_old + cliprange_value)
        vf = 0.5 * torch.max((v - ret) ** 2, (vc - ret) ** 2)
        loss = mmean(pg) + vf_coef * mmean(vf)
        with torch.no_grad():
            stats = (0.5 * mmean((logp - old) ** 2), mmean((pg > -adv * ratio).float()),
                     mmean(((v - ret) ** 2 < (vc - ret) ** 2).float()), mmean(ratio))
        loss.backward()
        return stats
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--target", type=float, default=0.3, help="seconds of calls per sample")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []

    def record(op, shape, fn):
        s = median_seconds(fn, args.samples, args.target)
        results.append({"op": op, "shape": list(shape), "seconds": s, "samples": args.samples})
        print(f"torch {op} {shape}: {s * 1e3:.3f} ms", file=sys.stderr)

    for shape in LOGPROB_SHAPES:
        record("logprobs_fused", shape, logprobs(*shape, backward=True))
        record("logprobs_forward", shape, logprobs(*shape, backward=False))
    for shape in GAE_SHAPES:
        record("gae", shape, gae(*shape))
    for n in DPO_SIZES:
        record("dpo_sigmoid", (n,), dpo(n))
    for shape in PPO_SHAPES:
        record("ppo", shape, ppo(*shape))
    json.dump({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
               "results": results}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
