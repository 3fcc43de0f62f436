#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/losses/ppo.hpp: TRL's PPO clipped surrogate and clipped value loss with
masked means over the whole batch (TRL 0.11's ppo loss / current PPOTrainer's inner loop),
optional entropy bonus, the classic ratio_threshold skip, gradients by autograd and the
metrics (approxkl and the other statistics masked, as TRL 0.11 computes them).
Writes tests/fixtures/ppo.json."""
import torch

from common import Fixture, T, S, f32


def masked_mean(x, m):
    return (x * m).sum() / m.sum()


def case(fx, name, lp, olp, adv, v, ov, ret, mask, entropy=None, cliprange=0.2,
         cliprange_value=0.2, vf_coef=0.1, entropy_coef=0.0, ratio_threshold=None):
    lp, v = f32(lp), f32(v)
    olp, adv, ov, ret = (f32(x).detach() for x in (olp, adv, ov, ret))
    m = f32(mask).detach()
    c, cv = (float(torch.tensor(x, dtype=torch.float32)) for x in (cliprange, cliprange_value))
    vf_coef = float(torch.tensor(vf_coef, dtype=torch.float32))
    entropy_coef = float(torch.tensor(entropy_coef, dtype=torch.float32))
    ent = f32(entropy) if entropy is not None else None

    vclip = torch.clamp(v, ov - cv, ov + cv)
    vf1, vf2 = (v - ret) ** 2, (vclip - ret) ** 2
    vf_loss = 0.5 * masked_mean(torch.max(vf1, vf2), m)
    d = lp - olp
    ratio = torch.exp(d)
    pg1 = -adv * ratio
    pg2 = -adv * torch.clamp(ratio, 1.0 - c, 1.0 + c)
    pg_loss = masked_mean(torch.max(pg1, pg2), m)
    loss = pg_loss + vf_coef * vf_loss
    if ent is not None:
        ent_mean = masked_mean(ent, m)
        loss = loss - entropy_coef * ent_mean
    ratio_mean = masked_mean(ratio, m)
    skipped = ratio_threshold is not None and ratio_mean.item() > ratio_threshold
    if skipped:  # TRL 0.11: loss, pg_loss and vf_loss multiplied by 0
        loss, pg_loss, vf_loss = loss * 0.0, pg_loss * 0.0, vf_loss * 0.0
    loss.backward()

    config = {"cliprange": c, "cliprange_value": cv, "vf_coef": vf_coef,
              "entropy_coef": entropy_coef}
    if ratio_threshold is not None:
        config["ratio_threshold"] = ratio_threshold
    inputs = {"logprobs": T(lp), "old_logprobs": T(olp), "advantages": T(adv), "values": T(v),
              "old_values": T(ov), "returns": T(ret), "mask": T(m)}
    outputs = {"loss": S(loss), "pg_loss": S(pg_loss), "vf_loss": S(vf_loss),
               "skipped": 1 if skipped else 0,
               "grad_logprobs": T(lp.grad), "grad_values": T(v.grad),
               "policy/approxkl_avg": S(0.5 * masked_mean(d.detach() ** 2, m)),
               "ppo/policy/policykl": S(masked_mean(-d.detach(), m)),
               "policy/clipfrac_avg": S(masked_mean((pg2 > pg1).double(), m)),
               "val/clipfrac_avg": S(masked_mean((vf2 > vf1).double(), m)),
               "val/ratio": S(ratio_mean)}
    if ent is not None:
        inputs["entropy"] = T(ent)
        outputs["grad_entropy"] = T(ent.grad)
        outputs["policy/entropy_avg"] = S(ent_mean)
    fx.add(name, config, inputs, outputs)


def right_mask(lengths, t):
    return (torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]).float()


def main():
    g = torch.Generator().manual_seed(99)
    fx = Fixture("ppo")
    n, t = 5, 8

    def rnd(*s, scale=1.0):
        return torch.randn(*s, generator=g) * scale

    olp = -torch.rand(n, t, generator=g) * 3
    lp = olp + rnd(n, t, scale=0.3)  # ratios both inside and outside [0.8, 1.2]
    adv, ov = rnd(n, t), rnd(n, t)
    v = ov + rnd(n, t, scale=0.4)
    ret = ov + rnd(n, t)
    mask = right_mask([8, 3, 1, 6, 5], t)
    ent = torch.rand(n, t, generator=g) * 2
    case(fx, "random", lp, olp, adv, v, ov, ret, mask)
    case(fx, "random_entropy", lp, olp, adv, v, ov, ret, mask, entropy=ent, entropy_coef=0.01)
    case(fx, "random_tight_clips", lp, olp, adv, v, ov, ret, mask, cliprange=0.05,
         cliprange_value=0.1, vf_coef=0.5)
    w = mask * torch.tensor([1.0, 0.5, 2.0, 1.0, 1.0, 0.25, 1.0, 3.0])
    case(fx, "weighted_mask", lp, olp, adv, v, ov, ret, w, entropy=ent, entropy_coef=0.05)
    # Left padding / prompt zeros and a fully masked row (allowed: the means are global).
    lm = mask.clone()
    lm[0, :2] = 0
    lm[2] = 0
    case(fx, "prompt_zeros_and_empty_row", lp, olp, adv, v, ov, ret, lm)

    # Extreme log-prob differences: ratios of e^-1000 = 0 and e^80 (finite in float32),
    # advantage signs chosen so the loss stays finite (A < 0 with ratio e^80 would be +huge,
    # e^1000 overflows: the C++ test checks that separately).
    olp_x = torch.tensor([[0.0, -80.0, -2.0, -1.0], [-90.0, -3.0, 0.0, -5.0],
                          [-1.0, -1.0, -1.0, -1.0]])
    lp_x = torch.tensor([[-1000.0, 0.0, -2.0, -1.3], [-10.0, -1003.0, -30.0, -5.0],
                         [-1.0, -1.0, -1.0, -1.0]])
    adv_x = torch.tensor([[1.5, 0.7, -0.3, -2.0], [2.0, -1.0, 0.5, 0.0],
                          [1.0, 0.0, 0.0, 0.0]])
    ov_x = torch.tensor([[0.0, 5.0, -3.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    v_x = torch.tensor([[100.0, -50.0, -3.1, 1.05], [0.3, -0.3, 0.1, 0.0],
                        [0.5, 0.0, 0.0, 0.0]])
    ret_x = torch.tensor([[-100.0, 40.0, 2.0, 1.0], [1.0, -1.0, 0.0, 0.05],
                          [0.0, 0.0, 0.0, 0.0]])
    m_x = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    case(fx, "extreme_ratios_one_token_row", lp_x, olp_x, adv_x, v_x, ov_x, ret_x, m_x)

    # Classic ratio_threshold: mean ratio e^3 ≈ 20 > 10 → skipped; and a kept batch.
    case(fx, "ratio_threshold_skip", olp + 3.0, olp, adv, v, ov, ret, mask,
         ratio_threshold=10.0)
    case(fx, "ratio_threshold_kept", lp, olp, adv, v, ov, ret, mask, ratio_threshold=10.0)
    fx.write()


if __name__ == "__main__":
    main()
