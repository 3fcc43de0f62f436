#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/losses/reward.hpp: TRL RewardTrainer's Bradley–Terry loss
(-logsigmoid(r_c - r_r - margin).mean() + c·mean((r_c + r_r)^2)), per-pair weights, soft
labels p (the cross-entropy -p·logsigmoid(d) - (1-p)·logsigmoid(-d)), the gradients by
autograd and the metrics. Writes tests/fixtures/reward.json."""
import torch
import torch.nn.functional as F

from common import Fixture, T, S, f32


def case(fx, name, rc, rr, margin=None, weights=None, center=0.0, labels=None):
    rc, rr = f32(rc), f32(rr)
    d = rc - rr
    if margin is not None:
        margin = f32(margin).detach()
        d = d - margin
    if labels is not None:
        labels = f32(labels).detach()
        losses = -labels * F.logsigmoid(d) - (1 - labels) * F.logsigmoid(-d)
    else:
        losses = -F.logsigmoid(d)
    if weights is not None:
        weights = f32(weights).detach()
        loss = (weights * losses).sum() / weights.sum()
    else:
        loss = losses.mean()
    if center > 0:
        loss = loss + f32(center).detach() * torch.mean((rc + rr) ** 2)
    loss.backward()
    inputs = {"rewards_chosen": T(rc), "rewards_rejected": T(rr)}
    if margin is not None:
        inputs["margin"] = T(margin)
    if weights is not None:
        inputs["weights"] = T(weights)
    if labels is not None:
        inputs["labels"] = T(labels)
    allr = torch.cat([rc, rr]).detach()
    fx.add(name, {"center_rewards_coefficient": float(torch.tensor(center, dtype=torch.float32))},
           inputs,
           {"loss": S(loss), "losses": T(losses), "grad_rewards_chosen": T(rc.grad),
            "grad_rewards_rejected": T(rr.grad),
            "accuracy": S((rc > rr).double().mean()), "margin": S((rc - rr).mean()),
            "min_reward": S(allr.min()), "mean_reward": S(allr.mean()),
            "max_reward": S(allr.max())})


def main():
    g = torch.Generator().manual_seed(1234)
    fx = Fixture("reward")
    n = 37
    rc = torch.randn(n, generator=g) * 2
    rr = torch.randn(n, generator=g) * 2
    case(fx, "random", rc, rr)
    case(fx, "margin", rc, rr, margin=torch.rand(n, generator=g))
    case(fx, "center", rc, rr, center=0.01)
    case(fx, "weights_margin_center", rc, rr, margin=torch.rand(n, generator=g),
         weights=torch.rand(n, generator=g), center=0.05)
    case(fx, "extreme", torch.tensor([1e3, -1e3, 410.0, -610.0, 95.5, 0.0]),
         torch.tensor([-1e3, 1e3, -610.0, 410.0, 95.5, 0.0]))
    case(fx, "single_pair", torch.tensor([0.25]), torch.tensor([-0.5]))
    # Soft labels (their own generator: the cases above stay as they were).
    h = torch.Generator().manual_seed(4321)
    p = torch.rand(n, generator=h)
    p[:4] = torch.tensor([0.0, 1.0, 0.5, 1.0])
    case(fx, "soft_labels", rc, rr, labels=p)
    case(fx, "soft_labels_weights_margin_center", rc, rr, margin=torch.rand(n, generator=h),
         weights=torch.rand(n, generator=h), center=0.05, labels=p)
    case(fx, "soft_labels_extreme", torch.tensor([1e3, -1e3, 410.0, -610.0, 95.5, 0.0]),
         torch.tensor([-1e3, 1e3, -610.0, 410.0, 95.5, 0.0]),
         labels=torch.tensor([0.3, 0.7, 0.0, 1.0, 0.5, 0.25]))
    fx.write()


if __name__ == "__main__":
    main()
