#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/losses/grpo.hpp: TRL GRPOTrainer's group-relative advantages
(scale_rewards group / batch / none) and its loss (_compute_loss: token or sequence-level
importance weights, epsilon_low / epsilon_high clipping, optional delta cap, beta·k3, the
grpo / bnpo / dr_grpo / dapo aggregations), gradients by autograd, TRL's metrics.
Writes tests/fixtures/grpo.json.

One deliberate deviation from a literal transcription: the log importance weight is
clamped at 80 before exp. TRL's float autograd turns the zero gradient of a clipped token
whose ratio overflows (log-ratio ~ +1e3) into 0·inf = NaN; the clamp changes no finite
value of the cases below (those with log-ratio > 80 are all clipped or capped by delta)
and gives the mathematical gradient, 0.
"""
import torch

from common import Fixture, T, S, f32

LOG_RATIO_CAP = 80.0


def f32v(x):
    """A config value as float32 (what the C++ config holds), as a Python float."""
    return float(torch.tensor(x, dtype=torch.float32).item())


def advantages_case(fx, name, rewards, group_size, scale):
    r = f32(rewards).detach()
    g = group_size
    mean_grouped = r.view(-1, g).mean(dim=1).repeat_interleave(g)
    if scale in ("group", "none"):
        if g > 1:
            std = r.view(-1, g).std(dim=1).repeat_interleave(g)
        else:
            std = torch.zeros_like(r)
    else:
        std = r.std().expand_as(r) if r.numel() > 1 else torch.zeros_like(r)
    adv = r - mean_grouped
    if scale != "none":
        adv = adv / (std + 1e-4)
    is_std_zero = torch.isclose(std, torch.zeros_like(std))
    fx.add(name, {"kind": "advantages", "group_size": g, "scale_rewards": scale},
           {"rewards": T(r)},
           {"advantages": T(adv), "reward": S(mean_grouped.mean()), "reward_std": S(std.mean()),
            "frac_reward_zero_std": S(is_std_zero.double().mean())})


def loss_case(fx, name, logp, adv, mask, old=None, ref=None, beta=0.0, epsilon=0.2,
              epsilon_high=None, delta=None, level="token", loss_type="dapo",
              max_completion_length=8, num_items_in_batch=None):
    logp = f32(logp)
    adv = f32(adv).detach()
    mask = f32(mask).detach()
    old_t = f32(old).detach() if old is not None else None
    ref_t = f32(ref).detach() if ref is not None else None
    beta, epsilon = f32v(beta), f32v(epsilon)
    eps_high = f32v(epsilon_high) if epsilon_high is not None else epsilon
    delta = f32v(delta) if delta is not None else None

    if beta != 0.0:
        d = ref_t - logp
        per_token_kl = torch.exp(d) - d - 1
    old_used = logp.detach() if old_t is None else old_t
    log_ratio = logp - old_used
    if level == "token":
        liw = log_ratio
    else:
        liw = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    coef_1 = torch.exp(liw.clamp(max=LOG_RATIO_CAP))
    coef_2 = torch.clamp(coef_1, 1 - epsilon, 1 + eps_high)
    if delta is not None:
        coef_1 = torch.clamp(coef_1, max=delta)
    a = adv.unsqueeze(1)
    per_token_loss = -torch.min(coef_1 * a, coef_2 * a)
    if beta != 0.0:
        per_token_loss = per_token_loss + beta * per_token_kl
    n = logp.shape[0]
    if loss_type == "grpo":
        loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif loss_type == "bnpo":
        loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    elif loss_type == "dr_grpo":
        loss = (per_token_loss * mask).sum() / (n * max_completion_length)
    elif loss_type == "dapo":
        normalizer = (f32v(num_items_in_batch) if num_items_in_batch is not None
                      else mask.sum().clamp(min=1.0))
        loss = (per_token_loss * mask).sum() / normalizer
    else:
        raise ValueError(loss_type)
    loss.backward()

    token_count = mask.sum().clamp(min=1.0)

    def masked_batch_mean(x):
        if x.shape[1] == 1:
            return x.mean()
        return (x * mask).sum() / token_count

    low = (coef_1 < 1 - epsilon) & (a < 0)
    high = (coef_1 > 1 + eps_high) & (a > 0)
    region = low | high
    inputs = {"per_token_logps": T(logp), "advantages": T(adv), "completion_mask": T(mask)}
    if old_t is not None:
        inputs["old_per_token_logps"] = T(old_t)
    if ref_t is not None:
        inputs["ref_per_token_logps"] = T(ref_t)
    outputs = {
        "loss": S(loss),
        "per_token_loss": T(per_token_loss.expand_as(logp) * (mask != 0)),
        "grad_per_token_logps": T(logp.grad),
        "clip_ratio_low_mean": S(masked_batch_mean(low.double())),
        "clip_ratio_high_mean": S(masked_batch_mean(high.double())),
        "clip_ratio_region_mean": S(masked_batch_mean(region.double())),
    }
    if beta != 0.0:
        outputs["kl"] = S(masked_batch_mean(per_token_kl.detach()))
    config = {"kind": "loss", "beta": beta, "epsilon": epsilon,
              "epsilon_high": f32v(epsilon_high) if epsilon_high is not None else None,
              "delta": delta, "importance_sampling_level": level,
              "loss_type": loss_type, "max_completion_length": max_completion_length,
              "num_items_in_batch": (f32v(num_items_in_batch)
                                     if num_items_in_batch is not None else None)}
    fx.add(name, config, inputs, outputs)


def right_padded_mask(lengths, t):
    m = torch.zeros(len(lengths), t)
    for i, n in enumerate(lengths):
        m[i, :n] = 1.0
    return m


def main():
    g = torch.Generator().manual_seed(20250917)
    fx = Fixture("grpo")

    # Advantages: 4 prompts × 4 completions; prompt 2's rewards all equal (std 0).
    rewards = torch.randn(16, generator=g) * 1.5
    rewards[8:12] = 0.75
    for scale in ("group", "batch", "none"):
        advantages_case(fx, f"advantages_{scale}", rewards, 4, scale)
    advantages_case(fx, "advantages_binary_rewards", torch.tensor(
        [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]), 6, "group")
    advantages_case(fx, "advantages_group_size_1", torch.tensor([0.5, -1.0, 2.0]), 1, "group")
    advantages_case(fx, "advantages_all_equal_batch", torch.full((6,), 2.0), 3, "batch")

    # Loss: 8 completions of up to 6 tokens, ratios spread across the clip range.
    n, t = 8, 6
    lengths = [6, 3, 1, 5, 6, 2, 4, 6]
    mask = right_padded_mask(lengths, t)
    logp = -torch.rand(n, t, generator=g) * 3.0 - 0.05
    old = logp + torch.randn(n, t, generator=g) * 0.3
    ref = logp + torch.randn(n, t, generator=g) * 0.5
    adv = torch.randn(n, generator=g)
    adv[3] = 0.0
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo"):
        for level in ("token", "sequence"):
            for beta in (0.0, 0.04):
                for delta in (None, 1.5):
                    name = f"{loss_type}_{level}_beta{beta}_delta{delta}"
                    loss_case(fx, name, logp, adv, mask, old=old,
                              ref=ref if beta > 0 else None, beta=beta, delta=delta,
                              level=level, loss_type=loss_type)
            loss_case(fx, f"{loss_type}_{level}_on_policy", logp, adv, mask, ref=ref, beta=0.04,
                      level=level, loss_type=loss_type)
    loss_case(fx, "dapo_token_eps_high_0.28", logp, adv, mask, old=old, epsilon_high=0.28)
    # GSPO's paper setting: tiny ε around slightly off-policy sequence ratios.
    loss_case(fx, "grpo_sequence_gspo_eps", logp, adv, mask,
              old=logp + 1e-3 * torch.randn(n, t, generator=g), epsilon=3e-4,
              epsilon_high=4e-4, level="sequence", loss_type="grpo")
    loss_case(fx, "dapo_num_items_in_batch", logp, adv, mask, old=old, ref=ref, beta=0.04,
              num_items_in_batch=96.0)
    loss_case(fx, "dr_grpo_max_len_1024", logp, adv, mask, old=old, loss_type="dr_grpo",
              max_completion_length=1024)

    # Empty completion rows (TRL's mask_truncated_completions) and fractional weights.
    mask0 = mask.clone()
    mask0[1] = 0.0
    mask0[5] = 0.0
    for loss_type in ("grpo", "bnpo", "dapo"):
        for level in ("token", "sequence"):
            loss_case(fx, f"{loss_type}_{level}_empty_rows", logp, adv, mask0, old=old, ref=ref,
                      beta=0.04, level=level, loss_type=loss_type)
    wmask = mask * (0.25 + torch.rand(n, t, generator=g) * 1.5)
    loss_case(fx, "grpo_token_weighted_mask", logp, adv, wmask, old=old, ref=ref, beta=0.04,
              loss_type="grpo")

    # Length-1 completions: T = 1, and T = 4 with one real token per row.
    lp1 = -torch.rand(5, 1, generator=g) * 2.0 - 0.1
    old1 = lp1 + torch.randn(5, 1, generator=g) * 0.3
    ref1 = lp1 + torch.randn(5, 1, generator=g) * 0.3
    adv1 = torch.randn(5, generator=g)
    for level in ("token", "sequence"):
        loss_case(fx, f"length1_T1_{level}", lp1, adv1, torch.ones(5, 1), old=old1, ref=ref1,
                  beta=0.04, level=level, loss_type="grpo")
    lp4 = -torch.rand(5, 4, generator=g) * 2.0 - 0.1
    loss_case(fx, "length1_T4_token", lp4, adv1, right_padded_mask([1] * 5, 4),
              old=lp4 + torch.randn(5, 4, generator=g) * 0.3, level="token", loss_type="bnpo")

    # Extreme log-ratios (±1e3): ratios overflow to inf or underflow to 0. Without delta
    # every +1e3 token has A >= 0 (clipped or zero); with delta any sign is finite.
    lpx = torch.tensor([[-1.5, -0.5, -2.0], [-0.25, -3.0, -1.0], [-1.0, -1.0, -1.0],
                        [-0.75, -2.5, -0.5], [-2.0, -0.1, -1.25]])
    dx = torch.tensor([[1e3, -1e3, 1e3], [-1e3, -1e3, 1e3], [1e3, 1e3, 1e3],
                       [-1e3, -1e3, -1e3], [0.05, 1e3, -1e3]])
    refx = lpx + torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.5, -0.5], [0.2, 0.2, -0.1],
                               [-0.3, 0.1, 0.4], [0.05, -0.05, 0.25]])
    advx = torch.tensor([1.25, 0.5, 0.0, -0.8, 0.3])
    maskx = torch.ones(5, 3)
    maskx[4, 2] = 0.0
    for level in ("token", "sequence"):
        for loss_type in ("grpo", "dapo"):
            loss_case(fx, f"extreme_{level}_{loss_type}", lpx, advx, maskx, old=lpx - dx,
                      ref=refx, beta=0.04, level=level, loss_type=loss_type)
    advx_neg = torch.tensor([-1.25, 0.5, -2.0, -0.8, -0.3])
    for level in ("token", "sequence"):
        loss_case(fx, f"extreme_{level}_delta_negative_advantages", lpx, advx_neg, maskx,
                  old=lpx - dx, delta=2.0, level=level, loss_type="bnpo")
    fx.write()


if __name__ == "__main__":
    main()
