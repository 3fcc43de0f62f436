#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/losses/rloo.hpp: TRL's current RLOOTrainer (the GRPO-style trainer
of TRL >= 0.23 / 1.x). Advantages as _generate_and_score_completions computes them (reward
clipping, sequence-level k1 KL penalty β·Σ m·(old - ref), leave-one-out baseline over
contiguous groups of k, optional batch normalisation) and the loss of _compute_loss
(sequence log-ratio Σ m·logp - old_logps, clipped with epsilon / epsilon_high, mean over
sequences), gradients by autograd, TRL's metrics. Writes tests/fixtures/rloo.json.
Advantages (NaN rewards = unscorable) and metrics restate TRL 1.16, recorded as
"trl_version" in every case's config; NaN is written as null (see grpo.py, whose nan-aware
helpers this script shares).

As in grpo.py the log-ratio is clamped at 80 before exp so that autograd's 0·inf of an
overflowing, clipped ratio becomes the mathematical zero gradient; no finite value of the
cases below changes.
"""
import torch

from common import Fixture, T, S, f32
from grpo import TRL_VERSION, S_nan, T_nan, nanmax, nanmin, nanstd

LOG_RATIO_CAP = 80.0


def f32v(x):
    return float(torch.tensor(x, dtype=torch.float32).item())


def advantages_case(fx, name, rewards, k, beta=0.05, normalize=False, clip_range=None,
                    mask=None, old=None, ref=None):
    """TRL 1.16's RLOO advantages and metrics (NaN = unscorable)."""
    raw = f32(rewards).detach()
    r = raw.clone()
    beta = f32v(beta)
    inputs = {"rewards": T_nan(raw)}
    if clip_range is not None:
        clip_range = (f32v(clip_range[0]), f32v(clip_range[1]))
        r = r.clamp(min=clip_range[0], max=clip_range[1])  # NaN stays NaN
    outputs = {}
    if beta != 0.0:
        mask, old, ref = f32(mask).detach(), f32(old).detach(), f32(ref).detach()
        per_token_kl = old - ref
        kl = (per_token_kl * mask).sum(-1)
        r = r - beta * kl
        outputs["kl"] = S((per_token_kl * mask).sum() / mask.sum().clamp(min=1.0))
        inputs.update({"completion_mask": T(mask), "old_per_token_logps": T(old),
                       "ref_per_token_logps": T(ref)})
    grouped = r.view(-1, k)
    # k = 1 (num_generations_eval = 1): TRL takes the std as 0 and every advantage as 0.
    std = nanstd(grouped, dim=1) if k > 1 else torch.zeros(grouped.shape[0], dtype=r.dtype)
    is_std_zero = torch.isclose(std, torch.zeros_like(std))
    if k > 1:
        # Leave-one-out over the scorable siblings: c - 1 of them (0/0 = NaN when c = 1).
        scorable = (~torch.isnan(grouped)).sum(dim=1, keepdim=True).to(grouped.dtype)
        baselines = ((torch.nansum(grouped, dim=1, keepdim=True) - grouped)
                     / (scorable - 1)).view(-1)
        adv = r - baselines
    else:
        adv = torch.zeros_like(r)
    if normalize:
        adv = (adv - torch.nanmean(adv)) / (nanstd(adv) + 1e-4)
    adv = torch.nan_to_num(adv, nan=0.0)
    unscorable = torch.isnan(raw)
    # The logged reward statistics are of the raw rewards (not clipped, no KL penalty).
    outputs.update({"advantages": T(adv), "reward": S_nan(torch.nanmean(raw)),
                    "reward_std": S_nan(nanstd(raw)),
                    "frac_reward_zero_std": S(is_std_zero.double().mean()),
                    "num_unscorable": int(unscorable.sum()),
                    "frac_reward_unscorable": S(unscorable.double().mean())})
    fx.add(name, {"kind": "advantages", "beta": beta, "num_generations": k,
                  "normalize_advantages": normalize,
                  "reward_clip_range": list(clip_range) if clip_range else None},
           inputs, outputs)


def loss_case(fx, name, logp, adv, mask, old_logps=None, epsilon=0.2, epsilon_high=None):
    logp = f32(logp)
    adv = f32(adv).detach()
    mask = f32(mask).detach()
    epsilon = f32v(epsilon)
    eps_high = f32v(epsilon_high) if epsilon_high is not None else epsilon
    logps = (logp * mask).sum(1)
    old = f32(old_logps).detach() if old_logps is not None else logps.detach()
    log_ratio = logps - old
    coef_1 = torch.exp(log_ratio.clamp(max=LOG_RATIO_CAP))
    coef_2 = torch.clamp(coef_1, 1 - epsilon, 1 + eps_high)
    per_sequence_loss = -torch.min(coef_1 * adv, coef_2 * adv)
    loss = per_sequence_loss.mean()
    loss.backward()
    low = (coef_1 < 1 - epsilon) & (adv < 0)
    high = (coef_1 > 1 + eps_high) & (adv > 0)
    inputs = {"per_token_logps": T(logp), "advantages": T(adv), "completion_mask": T(mask)}
    if old_logps is not None:
        inputs["old_logps"] = T(old)
    fx.add(name, {"kind": "loss", "epsilon": epsilon,
                  "epsilon_high": f32v(epsilon_high) if epsilon_high is not None else None},
           inputs,
           {"loss": S(loss), "losses": T(per_sequence_loss), "grad_per_token_logps": T(logp.grad),
            "clip_ratio_low_mean": S(low.double().mean()),
            "clip_ratio_high_mean": S(high.double().mean()),
            "clip_ratio_region_mean": S((low | high).double().mean()),
            "clip_ratio_low_min": S(nanmin(low.double())),
            "clip_ratio_high_max": S(nanmax(high.double()))})


def right_padded_mask(lengths, t):
    m = torch.zeros(len(lengths), t)
    for i, n in enumerate(lengths):
        m[i, :n] = 1.0
    return m


def unscorable_cases(fx):
    """NaN rewards (TRL 1.16: every reward function returned None). Own generator, so the
    cases after these draw the same numbers as before."""
    g = torch.Generator().manual_seed(116)
    nan = float("nan")
    n, t = 12, 5
    mask = right_padded_mask([5, 2, 4, 1, 5, 3, 5, 5, 2, 4, 3, 1], t)
    old = -torch.rand(n, t, generator=g) * 3.0 - 0.05
    ref = old + torch.randn(n, t, generator=g) * 0.4
    # Groups of 4: three scorable; one scorable (0/0 baseline); none.
    r = torch.randn(n, generator=g) * 2.0
    r[1] = nan
    r[4], r[6], r[7] = nan, nan, nan
    r[8:12] = nan
    for beta in (0.0, 0.05):
        for normalize in (False, True):
            advantages_case(fx, f"advantages_unscorable_beta{beta}_norm{int(normalize)}", r, 4,
                            beta=beta, normalize=normalize, mask=mask, old=old, ref=ref)
    # The logged reward is of the raw rewards: the clip and the KL penalty do not move it.
    advantages_case(fx, "advantages_unscorable_clip_range", r, 4, beta=0.05,
                    clip_range=(-1.0, 0.5), mask=mask, old=old, ref=ref)
    advantages_case(fx, "advantages_unscorable_k2", torch.tensor([nan, 1.0, 2.0, 3.0, nan, nan]),
                    2, beta=0.0, normalize=True)
    advantages_case(fx, "advantages_all_unscorable", torch.full((4,), nan), 2, beta=0.0)


def num_generations_1_cases(fx):
    """num_generations_eval = 1 (TRL evaluates with groups of one): no leave-one-out baseline,
    every advantage 0 and every group zero-std; the KL and reward metrics as usual. Own
    generator, after every other case."""
    g = torch.Generator().manual_seed(1)
    nan = float("nan")
    n, t = 5, 4
    mask = right_padded_mask([4, 2, 3, 1, 4], t)
    old = -torch.rand(n, t, generator=g) * 3.0 - 0.05
    ref = old + torch.randn(n, t, generator=g) * 0.4
    r = torch.randn(n, generator=g) * 2.0
    r[2] = nan
    for beta in (0.0, 0.05):
        for normalize in (False, True):
            advantages_case(fx, f"advantages_k1_beta{beta}_norm{int(normalize)}", r, 1,
                            beta=beta, normalize=normalize, mask=mask, old=old, ref=ref)
    advantages_case(fx, "advantages_k1_single_completion", torch.tensor([0.75]), 1, beta=0.0,
                    normalize=True)


def main():
    g = torch.Generator().manual_seed(31415)
    fx = Fixture("rloo")

    # Advantages: 12 completions of up to 5 tokens; groups of k in {2, 3, 4}.
    n, t = 12, 5
    mask = right_padded_mask([5, 2, 4, 1, 5, 3, 5, 5, 2, 4, 3, 1], t)
    old = -torch.rand(n, t, generator=g) * 3.0 - 0.05
    ref = old + torch.randn(n, t, generator=g) * 0.4
    rewards = torch.randn(n, generator=g) * 2.0
    rewards[4:8] = 1.0  # one group of 4 with equal scores (their KL still differs)
    for k in (2, 3, 4):
        for beta in (0.0, 0.05):
            for normalize in (False, True):
                advantages_case(fx, f"advantages_k{k}_beta{beta}_norm{int(normalize)}", rewards,
                                k, beta=beta, normalize=normalize, mask=mask, old=old, ref=ref)
    advantages_case(fx, "advantages_clip_range", rewards, 4, beta=0.05, clip_range=(-1.0, 1.5),
                    mask=mask, old=old, ref=ref)
    advantages_case(fx, "advantages_equal_rewards_no_kl", torch.full((6,), 0.5), 3, beta=0.0)
    advantages_case(fx, "advantages_binary_rewards", torch.tensor(
        [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]), 4, beta=0.0)
    unscorable_cases(fx)

    # Loss: 8 sequences of up to 6 tokens; sequence log-ratios spread across the clip range.
    n, t = 8, 6
    mask = right_padded_mask([6, 3, 1, 5, 6, 2, 4, 6], t)
    logp = -torch.rand(n, t, generator=g) * 2.0 - 0.05
    seq = (logp * mask).sum(1)
    old_logps = seq + torch.randn(n, generator=g) * 0.3
    adv = torch.randn(n, generator=g)
    adv[5] = 0.0
    loss_case(fx, "off_policy", logp, adv, mask, old_logps=old_logps)
    loss_case(fx, "on_policy", logp, adv, mask)
    loss_case(fx, "eps_high_0.28", logp, adv, mask, old_logps=old_logps, epsilon_high=0.28)
    loss_case(fx, "eps_0.1", logp, adv, mask, old_logps=old_logps, epsilon=0.1)
    # An empty row (TRL's mask_truncated_completions): its logps and old_logps are both 0.
    mask0 = mask.clone()
    mask0[3] = 0.0
    old0 = old_logps.clone()
    old0[3] = 0.0
    loss_case(fx, "empty_row", logp, adv, mask0, old_logps=old0)
    loss_case(fx, "weighted_mask", logp, adv, mask * (0.25 + torch.rand(n, t, generator=g)),
              old_logps=old_logps)
    lp1 = -torch.rand(4, 1, generator=g) * 2.0 - 0.1
    loss_case(fx, "length1_T1", lp1, torch.tensor([0.7, -1.1, 0.2, -0.4]), torch.ones(4, 1),
              old_logps=lp1[:, 0] + torch.randn(4, generator=g) * 0.3)

    # Extreme sequence log-ratios ±1e3: +1e3 only with A >= 0 (clipped or zero), -1e3 any A.
    lpx = torch.tensor([[-1.5, -0.5], [-0.25, -3.0], [-1.0, -1.0], [-0.75, -2.5], [-2.0, -0.1]])
    seqx = lpx.sum(1)
    dx = torch.tensor([1e3, -1e3, 1e3, -1e3, 0.1])
    advx = torch.tensor([1.25, 0.5, 0.0, -0.8, 0.3])
    loss_case(fx, "extreme", lpx, advx, torch.ones(5, 2), old_logps=seqx - dx)
    # Every sequence low-clipped (clip_ratio/low_min = 1), none high-clipped.
    loss_case(fx, "all_low_clipped", lpx, -advx.abs() - 0.1, torch.ones(5, 2),
              old_logps=seqx + 0.5)
    num_generations_1_cases(fx)
    for case in fx.cases:
        case["config"]["trl_version"] = TRL_VERSION
    fx.write()


if __name__ == "__main__":
    main()
