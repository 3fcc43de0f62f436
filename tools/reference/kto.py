#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/losses/kto.hpp: TRL KTOTrainer's kto_loss (loss_type kto and
apo_zero_unpaired) on per-example log-probs with 0/1 labels, the detached reference point
z0 = clamp(mean(KL_logps - ref_KL_logps), min=0), the gradient w.r.t. the policy log-probs
by autograd and TRL's summed metrics. Writes tests/fixtures/kto.json."""
import torch

from common import Fixture, T, S, f32


def f32c(x):
    """A config value as the float32 the C++ side holds."""
    return float(torch.tensor(x, dtype=torch.float32))


def case(fx, name, lp, rp, labels, pkl=None, rkl=None, beta=0.1, wd=1.0, wu=1.0,
         loss_type="kto"):
    beta, wd, wu = f32c(beta), f32c(wd), f32c(wu)
    lp, rp = f32(lp), f32(rp)
    lab = torch.as_tensor(labels, dtype=torch.float32)
    chosen = lab == 1
    if loss_type == "kto":
        pkl, rkl = f32(pkl).detach(), f32(rkl).detach()
        kl = (pkl - rkl).mean().detach().clamp(min=0)
    else:
        kl = torch.zeros((), dtype=torch.float64)
    # TRL's layout: chosen and rejected split by label, concatenated, mean over all.
    cr = lp[chosen] - rp[chosen]
    rj = lp[~chosen] - rp[~chosen]
    if loss_type == "kto":
        chosen_losses = 1 - torch.sigmoid(beta * (cr - kl))
        rejected_losses = 1 - torch.sigmoid(beta * (kl - rj))
    else:
        chosen_losses = 1 - torch.sigmoid(beta * cr)
        rejected_losses = torch.sigmoid(beta * rj)
    trl_losses = torch.cat((wd * chosen_losses, wu * rejected_losses), 0)
    loss = trl_losses.mean()
    loss.backward()
    # Per-example losses in batch order.
    per = torch.empty(lp.shape[0], dtype=torch.float64)
    per[chosen] = (wd * chosen_losses).detach()
    per[~chosen] = (wu * rejected_losses).detach()
    inputs = {"policy_logps": T(lp), "reference_logps": T(rp), "labels": T(lab)}
    if loss_type == "kto":
        inputs["policy_kl_logps"] = T(pkl)
        inputs["reference_kl_logps"] = T(rkl)
    r = (beta * (lp - rp)).detach()
    fx.add(name, {"beta": beta, "desirable_weight": wd, "undesirable_weight": wu,
                  "loss_type": loss_type},
           inputs,
           {"loss": S(loss), "losses": T(per), "grad_policy_logps": T(lp.grad),
            "kl": S(kl),
            "rewards/chosen_sum": S(r[chosen].sum()), "logps/chosen_sum": S(lp.detach()[chosen].sum()),
            "count/chosen": S(chosen.sum()),
            "rewards/rejected_sum": S(r[~chosen].sum()),
            "logps/rejected_sum": S(lp.detach()[~chosen].sum()),
            "count/rejected": S((~chosen).sum())})


def main():
    g = torch.Generator().manual_seed(2024)
    fx = Fixture("kto")
    n = 37
    ref = -20 - 10 * torch.rand(n, generator=g)
    lp = ref + 3 * torch.randn(n, generator=g)
    labels = (torch.rand(n, generator=g) < 0.6).float()
    # KL pairs: the rotation by one of the same completions, shifted so z0 > 0.
    ref_kl = -25 - 10 * torch.rand(n, generator=g)
    pol_kl = ref_kl + 1.5 + torch.randn(n, generator=g)
    case(fx, "random", lp, ref, labels, pol_kl, ref_kl)
    case(fx, "z0_clamped_at_zero", lp, ref, labels, ref_kl - 2.0, ref_kl)
    case(fx, "weights_beta", lp, ref, labels, pol_kl, ref_kl, beta=0.5, wd=1.33, wu=0.7)
    case(fx, "apo_zero_unpaired", lp, ref, labels, loss_type="apo_zero_unpaired")
    case(fx, "apo_zero_unpaired_weights", lp, ref, labels, beta=0.3, wd=0.5, wu=2.0,
         loss_type="apo_zero_unpaired")
    ones = torch.ones(n)
    case(fx, "all_desirable", lp, ref, ones, pol_kl, ref_kl)
    case(fx, "all_undesirable", lp, ref, 0 * ones, pol_kl, ref_kl, wu=1.5)
    case(fx, "single_example", [-12.5], [-13.0], [1.0], [-14.0], [-14.75])
    # Extremes: log-ratios ±1e3 and TRL's stability values 410 / -610 / 95.5.
    lp_x = torch.tensor([1e3, -1e3, 410.0, -610.0, 95.5, -95.5, 0.0, -1e3])
    rp_x = torch.tensor([-1e3, 1e3, -610.0, 410.0, 0.0, 0.0, 0.0, -1e3])
    lab_x = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    kl_x = torch.tensor([410.0, -610.0, 95.5, 1e3, -1e3, 0.0, 1.0, 500.0])
    case(fx, "extreme", lp_x, rp_x, lab_x, kl_x, torch.zeros(8))
    case(fx, "extreme_apo", lp_x, rp_x, lab_x, loss_type="apo_zero_unpaired")
    fx.write()


if __name__ == "__main__":
    main()
