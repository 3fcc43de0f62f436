#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""PyTorch CUDA timings of what bench_cuda measures, on the same shapes (docs/cuda.md).

    logprobs   next-token log-probs and their gradient on (B, T, V) logits: F.cross_entropy
               (mean over B·(T-1) positions) forward + backward w.r.t. the logits,
               (8, 512, 32000) and (8, 512, 50257); GB/s counts the same 2·B·T·V·4 bytes
               as bench_cuda (the minimum traffic: read logits once, write the gradient once)
    gae        TRL's GAE loop (PPOTrainer: a Python loop over reversed t), (256, 1024)
    train      one step of bench/torch_model.py's GPT (eager fp32, AdamW): "small" (V=256,
               T=128, C=256, L=4, H=4, B=8) and "gpt2" (V=50257, T=1024, C=768, L=12, H=12, B=8)

Needs torch >= 2.0 with CUDA. Prints one JSON object per line; ms = median of CUDA-event
times over --reps calls after two warm-ups. TF32 is off (fp32 like rlhf++'s cuBLAS path).
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from torch_model import GPT  # noqa: E402  (bench/torch_model.py, same architecture)


def median_ms(fn, reps):
    fn()
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def bench_logprobs(reps):
    for v in (32000, 50257):
        b, t = 8, 512
        logits = (2.0 * torch.randn(b, t, v)).requires_grad_()
        ids = torch.randint(0, v, (b, t))

        def run():
            logits.grad = None
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, v), ids[:, 1:].reshape(-1))
            loss.backward()

        ms = median_ms(run, reps)
        gbps = 2.0 * b * t * v * 4 / (ms * 1e-3) / 1e9
        print(json.dumps({"op": "logprobs_fused", "impl": "torch", "shape": [b, t, v],
                          "ms": round(ms, 4), "gbps": round(gbps, 1)}))


def bench_gae(reps):
    b, t, gamma, lam = 256, 1024, 1.0, 0.95
    rewards, values = torch.randn(b, t), torch.randn(b, t)

    def run():  # trl PPOTrainer's loop
        lastgaelam = 0
        advantages_reversed = []
        for k in reversed(range(t)):
            nextvalues = values[:, k + 1] if k < t - 1 else 0.0
            delta = rewards[:, k] + gamma * nextvalues - values[:, k]
            lastgaelam = delta + gamma * lam * lastgaelam
            advantages_reversed.append(lastgaelam)
        adv = torch.stack(advantages_reversed[::-1], axis=1)
        return adv, adv + values

    print(json.dumps({"op": "gae", "impl": "torch (TRL loop)", "shape": [b, t],
                      "ms": round(median_ms(run, reps), 4)}))


def bench_train(reps):
    for name, (V, T, C, L, H, B) in (("small", (256, 128, 256, 4, 4, 8)),
                                     ("gpt2", (50257, 1024, 768, 12, 12, 8))):
        model = GPT(V, T, C, L, H)
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-2},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
        ids = torch.randint(0, V, (B, T))

        def run():
            logits = model(ids)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        ms = median_ms(run, reps)
        params = sum(p.numel() for p in model.parameters())
        tokens = B * T
        print(json.dumps({"op": "train_step", "impl": "torch", "config": name,
                          "ms": round(ms, 3), "tokens_per_second": round(tokens / (ms * 1e-3)),
                          "tflops": round(6.0 * params * tokens / (ms * 1e-3) / 1e12, 2),
                          "params": params}))
        del model, opt
        torch.cuda.empty_cache()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("which", nargs="?", default="all", choices=["logprobs", "gae", "train", "all"])
    p.add_argument("--reps", type=int, default=20)
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_default_device("cuda")
    torch.manual_seed(0)
    print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__}))
    if a.which in ("logprobs", "all"):
        bench_logprobs(a.reps)
    if a.which in ("gae", "all"):
        bench_gae(a.reps)
    if a.which in ("train", "all"):
        bench_train(a.reps)


if __name__ == "__main__":
    main()
