#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/model/optim.hpp: torch.optim.AdamW with two parameter groups (decay and
no decay, from a (P,) decay mask), torch.nn.utils.clip_grad_norm_ over both groups on some
steps, and Hugging Face transformers' LR schedules (constant / linear / cosine with warmup,
optional min-lr ratio) driven by torch.optim.lr_scheduler.LambdaLR. 10 steps per case, in
float64 from float32 inputs and float32-rounded hyper-parameters. Writes
tests/fixtures/adamw.json."""
import math

import torch

from common import Fixture, T, S


def f32(x):
    """A Python float rounded to float32 (what the C++ config holds)."""
    return float(torch.tensor(x, dtype=torch.float32).item())


def lr_lambda(kind, warmup, total, min_ratio, num_cycles=0.5):
    """transformers' get_{constant,linear,cosine}_schedule_with_warmup factors; a min_ratio
    r > 0 maps the decay part f to r + (1 - r)·f (get_cosine_with_min_lr_schedule_with_warmup's
    min_lr_rate). Only steps <= total are recorded for cosine (it rises again past total)."""
    def lam(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        if kind == "constant":
            return 1.0
        if kind == "linear":
            f = max(0.0, float(total - step) / float(max(1, total - warmup)))
        else:
            progress = float(step - warmup) / float(max(1, total - warmup))
            f = max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))
        return min_ratio + (1.0 - min_ratio) * f
    return lam


def sched_config(kind, lr, warmup, total, min_ratio):
    return {"schedule": kind, "lr": lr, "warmup_steps": warmup, "total_steps": total,
            "min_lr_ratio": min_ratio}


def train_case(fx, name, g, P, ranges, lr, betas, eps, wd, sched, clip_steps, max_norm,
               grad_scales, steps=10):
    lr, eps, wd, max_norm = f32(lr), f32(eps), f32(wd), f32(max_norm)
    betas = (f32(betas[0]), f32(betas[1]))
    kind, warmup, total, min_ratio = sched
    min_ratio = f32(min_ratio)
    mask = torch.zeros(P, dtype=torch.float32)
    for off, size, decays in ranges:
        mask[off:off + size] = 1.0 if decays else 0.0
    p0 = torch.randn(P, generator=g).to(torch.float32)
    grads = torch.stack([torch.randn(P, generator=g) * s for s in grad_scales]).to(torch.float32)

    idx_d = (mask != 0).nonzero().flatten()
    idx_n = (mask == 0).nonzero().flatten()
    pd = torch.nn.Parameter(p0.double()[idx_d].clone())
    pn = torch.nn.Parameter(p0.double()[idx_n].clone())
    opt = torch.optim.AdamW([{"params": [pd], "weight_decay": wd},
                             {"params": [pn], "weight_decay": 0.0}],
                            lr=lr, betas=betas, eps=eps)
    sch = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(kind, warmup, total, min_ratio))
    params, norms, lrs = [], [], []
    for t in range(steps):
        gt = grads[t].double()
        pd.grad = gt[idx_d].clone()
        pn.grad = gt[idx_n].clone()
        if t in clip_steps:
            norms.append(float(torch.nn.utils.clip_grad_norm_([pd, pn], max_norm)))
        else:
            norms.append(float(gt.norm()))
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
        full = torch.zeros(P, dtype=torch.float64)
        full[idx_d] = pd.detach()
        full[idx_n] = pn.detach()
        params.append(full)

    def state(key):
        full = torch.zeros(P, dtype=torch.float64)
        full[idx_d] = opt.state[pd][key]
        full[idx_n] = opt.state[pn][key]
        return full

    cfg = {"lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps, "weight_decay": wd,
           "max_norm": max_norm, "clip_steps": sorted(clip_steps),
           "ranges": [[o, s, bool(d)] for o, s, d in ranges]}
    cfg.update(sched_config(kind, lr, warmup, total, min_ratio))
    fx.add(name, cfg, {"params": T(p0), "grads": T(grads), "decay_mask": T(mask)},
           {"params": T(torch.stack(params)), "grad_norm": T(torch.tensor(norms)),
            "lr": T(torch.tensor(lrs)), "exp_avg": T(state("exp_avg")),
            "exp_avg_sq": T(state("exp_avg_sq")), "step": steps})


def schedule_case(fx, name, kind, lr, warmup, total, min_ratio, last):
    lr, min_ratio = f32(lr), f32(min_ratio)
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=lr)
    sch = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(kind, warmup, total, min_ratio))
    lrs = []
    for _ in range(last + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    fx.add(name, sched_config(kind, lr, warmup, total, min_ratio), {},
           {"lr": T(torch.tensor(lrs))})


def main():
    g = torch.Generator().manual_seed(4242)
    fx = Fixture("adamw")
    P = 300
    ranges = [(0, 120, True), (120, 20, False), (140, 140, True), (280, 20, False)]
    # lr 1e-2 cosine warmup, clipping on 4 steps; step 5's small gradients stay below
    # max_norm (the no-clip branch), the others are clipped.
    train_case(fx, "cosine_warmup_clip", g, P, ranges, lr=1e-2, betas=(0.9, 0.95), eps=1e-8,
               wd=0.1, sched=("cosine", 3, 10, 0.0), clip_steps={2, 5, 7, 8}, max_norm=1.0,
               grad_scales=[1.0, 0.5, 2.0, 1.0, 0.1, 0.01, 1.0, 3.0, 1.0, 0.2])
    # torch.optim.AdamW's defaults, constant lr, no clipping.
    train_case(fx, "defaults_constant", g, P, ranges, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
               wd=1e-2, sched=("constant", 0, 0, 0.0), clip_steps=set(), max_norm=1.0,
               grad_scales=[1.0] * 10)
    # Linear warmup + decay to 10% of lr, reached at step 8; clipping every step.
    train_case(fx, "linear_min_lr_clip_all", g, 257, [(0, 200, True), (200, 57, False)],
               lr=3e-3, betas=(0.8, 0.99), eps=1e-6, wd=0.05,
               sched=("linear", 2, 8, 0.1), clip_steps=set(range(10)), max_norm=5.0,
               grad_scales=[0.1, 1.0, 0.3, 0.5, 2.0, 0.05, 1.0, 0.7, 0.2, 1.5])
    schedule_case(fx, "schedule_constant_warmup", "constant", 5e-4, 4, 0, 0.0, 12)
    schedule_case(fx, "schedule_cosine", "cosine", 1e-3, 10, 100, 0.0, 100)
    schedule_case(fx, "schedule_cosine_min_lr", "cosine", 2e-4, 5, 40, 0.1, 40)
    schedule_case(fx, "schedule_cosine_no_warmup", "cosine", 1e-3, 0, 17, 0.0, 17)
    schedule_case(fx, "schedule_linear", "linear", 1e-3, 10, 100, 0.0, 105)
    schedule_case(fx, "schedule_linear_min_lr", "linear", 3e-4, 3, 30, 0.2, 33)
    fx.write()


if __name__ == "__main__":
    main()
