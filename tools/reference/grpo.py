#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/losses/grpo.hpp: TRL GRPOTrainer's group-relative advantages
(scale_rewards group / batch / none) and its loss (_compute_loss: token or sequence-level
importance weights, epsilon_low / epsilon_high clipping, optional delta cap, beta·k3, the
grpo / bnpo / dr_grpo / dapo aggregations), gradients by autograd, TRL's metrics.
Writes tests/fixtures/grpo.json.

The advantages (with NaN = unscorable rewards) and the metrics restate TRL 1.16's
definitions; every case's config records "trl_version". NaN, which JSON lacks, is written
as null (rewards in, statistics of no values out).

One deliberate deviation from a literal transcription: the log importance weight is
clamped at 80 before exp. TRL's float autograd turns the zero gradient of a clipped token
whose ratio overflows (log-ratio ~ +1e3) into 0·inf = NaN; the clamp changes no finite
value of the cases below (those with log-ratio > 80 are all clipped or capped by delta)
and gives the mathematical gradient, 0.
"""
import math

import torch

from common import Fixture, T, S, f32

LOG_RATIO_CAP = 80.0


def f32v(x):
    """A config value as float32 (what the C++ config holds), as a Python float."""
    return float(torch.tensor(x, dtype=torch.float32).item())


TRL_VERSION = "1.16.0 (definitions restated)"


def nanstd(x, dim=None):
    """TRL's nanstd (trainer/utils.py), restated: the NaN-skipping mean of squared deviations
    from the NaN-skipping mean, times n / (n - 1) over the n non-NaN values; NaN if n <= 1."""
    if dim is None:
        x, dim = x.reshape(-1), 0
    count = (~torch.isnan(x)).sum(dim=dim, keepdim=True).to(x.dtype)
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    var = torch.nanmean((x - mean) ** 2, dim=dim, keepdim=True)
    bessel = torch.where(count > 1, count / (count - 1).clamp(min=1.0),
                         torch.full_like(count, float("nan")))
    return (var * bessel).sqrt().squeeze(dim)


def nanmin(x):
    """The min over the non-NaN entries, NaN if there are none (TRL's nanmin)."""
    v = x[~torch.isnan(x)]
    return v.min() if v.numel() else torch.tensor(float("nan"), dtype=x.dtype)


def nanmax(x):
    v = x[~torch.isnan(x)]
    return v.max() if v.numel() else torch.tensor(float("nan"), dtype=x.dtype)


def T_nan(x):
    """A tensor as fixture JSON with NaN written as null (JSON has no NaN)."""
    x = torch.as_tensor(x).detach().to(torch.float64)
    return {"shape": list(x.shape) if x.dim() > 0 else [1],
            "data": [None if math.isnan(v) else float(v) for v in x.flatten().tolist()]}


def S_nan(x):
    """A scalar that may be NaN (a statistic over no values) as null."""
    v = float(torch.as_tensor(x).item())
    return None if math.isnan(v) else S(v)


def advantages_case(fx, name, rewards, num_generations, scale):
    """TRL 1.16's sum_then_normalize advantages and their metrics (NaN = unscorable)."""
    r = f32(rewards).detach()
    g = num_generations
    mean_grouped = torch.nanmean(r.view(-1, g), dim=1).repeat_interleave(g)
    if scale in ("group", "none"):
        if g > 1:
            std = nanstd(r.view(-1, g), dim=1).repeat_interleave(g)
        else:
            std = torch.zeros_like(r)
    else:
        std = nanstd(r).expand_as(r) if r.numel() > 1 else torch.zeros_like(r)
    adv = r - mean_grouped
    if scale != "none":
        adv = adv / (std + 1e-4)
    adv = torch.nan_to_num(adv, nan=0.0)
    is_std_zero = torch.isclose(std, torch.zeros_like(std))
    unscorable = torch.isnan(r)
    fx.add(name, {"kind": "advantages", "num_generations": g, "scale_rewards": scale},
           {"rewards": T_nan(r)},
           {"advantages": T(adv), "reward": S_nan(torch.nanmean(r)),
            "reward_std": S_nan(nanstd(r)),
            "frac_reward_zero_std": S(is_std_zero.double().mean()),
            "num_unscorable": int(unscorable.sum()),
            "frac_reward_unscorable": S(unscorable.double().mean())})


def normalize_then_sum_case(fx, name, rewards_per_func, weights, num_generations, scale):
    """TRL 1.16's multi_objective_aggregation="normalize_then_sum" (GDPO): each reward
    function normalised per group (NaN stays NaN), weighted nansum, unscorable rows NaN, then
    one batch-level normalisation (batch nanmean, batch nanstd + 1e-4; scale_rewards is
    ignored). The metrics are of the raw weighted sum, as TRL logs them."""
    rpf = f32(rewards_per_func).detach()
    w = f32(weights).detach()
    g, f = num_generations, rpf.shape[1]
    unscorable = torch.isnan(rpf).all(dim=1)
    grouped = rpf.view(-1, g, f)
    mean_k = torch.nanmean(grouped, dim=1, keepdim=True)
    std_k = (nanstd(grouped, dim=1).unsqueeze(1) if g > 1 else torch.zeros_like(mean_k))
    z = ((grouped - mean_k) / (std_k + 1e-4)).view(-1, f)
    s = (z * w.unsqueeze(0)).nansum(dim=1)
    s[unscorable] = float("nan")
    std = nanstd(s).expand_as(s) if s.numel() > 1 else torch.zeros_like(s)
    adv = torch.nan_to_num((s - torch.nanmean(s)) / (std + 1e-4), nan=0.0)
    is_std_zero = torch.isclose(std, torch.zeros_like(std))
    raw = (rpf * w.unsqueeze(0)).nansum(dim=1)
    raw[unscorable] = float("nan")
    fx.add(name, {"kind": "advantages", "num_generations": g, "scale_rewards": scale,
                  "multi_objective_aggregation": "normalize_then_sum"},
           {"rewards": T_nan(raw), "rewards_per_func": T_nan(rpf), "weights": T(w)},
           {"advantages": T(adv), "reward": S_nan(torch.nanmean(raw)),
            "reward_std": S_nan(nanstd(raw)),
            "frac_reward_zero_std": S(is_std_zero.double().mean()),
            "num_unscorable": int(unscorable.sum()),
            "frac_reward_unscorable": S(unscorable.double().mean())})


def normalize_then_sum_cases(fx):
    """multi_objective_aggregation="normalize_then_sum". Own generator, after every other
    case, so the cases before these are unchanged."""
    g = torch.Generator().manual_seed(2601)
    nan = float("nan")
    # 3 prompts × 4 completions, 3 reward functions on different scales.
    rpf = torch.randn(12, 3, generator=g) * torch.tensor([1.0, 5.0, 0.2]) + \
        torch.tensor([0.0, 10.0, -1.0])
    for scale in ("group", "batch", "none"):  # scale_rewards is ignored
        normalize_then_sum_case(fx, f"normalize_then_sum_{scale}", rpf, [1.0, 0.5, 2.0], 4,
                                scale)
    # NaN rewards: a function that skips some rows; a group where function 0 scores one row
    # (its nanstd is NaN: that z stays NaN and counts 0); an unscorable row; a group where
    # function 1 is constant (std 0: z = 0).
    r = rpf.clone()
    r[1, 0] = nan
    r[4, 0], r[5, 0], r[6, 0] = nan, nan, nan  # group 1: function 0 scores row 7 only
    r[8:12, 1] = 3.0                           # group 2: function 1 constant
    r[9, :] = nan                              # unscorable
    normalize_then_sum_case(fx, "normalize_then_sum_nan", r, [1.0, -0.5, 2.0], 4, "group")
    # One function, a group with a single scorable completion (its z is NaN → 0 in the sum,
    # still scorable) and an all-unscorable group.
    one = torch.tensor([[0.5], [nan], [nan], [nan], [1.0], [2.0], [-1.0], [0.25],
                        [nan], [nan], [nan], [nan]])
    normalize_then_sum_case(fx, "normalize_then_sum_one_scorable", one, [1.0], 4, "group")
    # Binary rewards, G = 2, a group where every function is constant.
    binary = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0],
                           [1.0, 0.0]])
    normalize_then_sum_case(fx, "normalize_then_sum_binary", binary, [1.0, 1.0], 2, "group")
    # G = 1 (num_generations_eval = 1): every z is 0, so is every advantage; frac 1.
    normalize_then_sum_case(fx, "normalize_then_sum_num_generations_1", rpf[:3], [1.0, 1.0, 1.0],
                            1, "group")
    # One completion in the batch: batch std 0 (N = 1).
    normalize_then_sum_case(fx, "normalize_then_sum_single_completion", rpf[:1], [1.0, 2.0, 3.0],
                            1, "batch")
    # Every row unscorable.
    normalize_then_sum_case(fx, "normalize_then_sum_all_unscorable", torch.full((4, 2), nan),
                            [1.0, 1.0], 2, "group")


def combine_case(fx, name, rewards_per_func, weights):
    """TRL 1.16's weighted nansum of the reward functions (all-NaN row → NaN) and its
    rewards/<name>/mean|std metrics."""
    rpf = f32(rewards_per_func).detach()
    w = f32(weights).detach()
    rewards = (rpf * w.unsqueeze(0)).nansum(dim=1)
    rewards[torch.isnan(rpf).all(dim=1)] = float("nan")
    means = [S_nan(torch.nanmean(rpf[:, j])) for j in range(rpf.shape[1])]
    stds = [S_nan(nanstd(rpf[:, j])) for j in range(rpf.shape[1])]
    fx.add(name, {"kind": "combine"}, {"rewards_per_func": T_nan(rpf), "weights": T(w)},
           {"rewards": T_nan(rewards), "mean": means, "std": stds})


def high_entropy_mask(entropies, mask, rho):
    """TRL's top_entropy_quantile mask, in float32 as TRL computes it: the (1 - rho)
    quantile (torch.quantile, linear interpolation) of the entropies of the tokens with
    mask != 0, then (H·m >= threshold) and m != 0."""
    h = entropies.detach().to(torch.float32)
    m = mask.detach().to(torch.float32)
    vals = h[m != 0]
    if vals.numel() == 0:
        return torch.zeros_like(h, dtype=torch.bool)
    thr = torch.quantile(vals, 1 - rho)
    return ((h * m) >= thr) & (m != 0)


def gamma_weights(adv, log_ratio, mask, is_ratio, k_pos, lam_pos, k_neg, lam_neg):
    """VESPO's φ(w) = e^λ·w^k·e^(-λw) per sequence (B, 1), no gradient: w = e^L with
    L = clamp(Σ_t m·clamp(log ratio_t, -20, 20) [+ Σ_t clamp(log is_t, log 1e-8, 20)],
    log 1e-8, 20); (k, λ) by A >= 0; λ >= 1e-4; non-finite φ -> 0."""
    with torch.no_grad():
        floor = math.log(1e-8)
        s = (torch.clamp(log_ratio, -20.0, 20.0) * mask).sum(-1, keepdim=True)
        if is_ratio is not None:
            s = s + torch.clamp(torch.log(is_ratio), floor, 20.0).sum(-1, keepdim=True)
        big_l = torch.clamp(s, floor, 20.0)
        w = torch.exp(big_l)
        nonneg = adv >= 0
        k = torch.where(nonneg, torch.full_like(adv, k_pos), torch.full_like(adv, k_neg))
        lam = torch.where(nonneg, torch.full_like(adv, lam_pos),
                          torch.full_like(adv, lam_neg)).clamp(min=1e-4)
        phi = torch.exp(lam + k * big_l - lam * w)
        return phi.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)


def loss_case(fx, name, logp, adv, mask, old=None, ref=None, beta=0.0, epsilon=0.2,
              epsilon_high=None, delta=None, level="token", loss_type="dapo",
              max_completion_length=8, num_items_in_batch=None, use_bias_correction_kl=True,
              sapo_temperature_pos=1.0, sapo_temperature_neg=1.05, vespo_k_pos=2.0,
              vespo_lambda_pos=3.0, vespo_k_neg=3.0, vespo_lambda_neg=2.0,
              top_entropy_quantile=1.0, entropies=None, off_policy_mask_threshold=None,
              sampling=None, is_ratio=None, entropy_coef=0.0):
    logp = f32(logp)
    adv = f32(adv).detach()
    mask = f32(mask).detach()
    old_t = f32(old).detach() if old is not None else None
    ref_t = f32(ref).detach() if ref is not None else None
    ent_t = f32(entropies) if entropies is not None else None
    samp_t = f32(sampling).detach() if sampling is not None else None
    isr_t = f32(is_ratio).detach() if is_ratio is not None else None
    beta, epsilon = f32v(beta), f32v(epsilon)
    eps_high = f32v(epsilon_high) if epsilon_high is not None else epsilon
    delta = f32v(delta) if delta is not None else None
    tau_pos, tau_neg = f32v(sapo_temperature_pos), f32v(sapo_temperature_neg)
    vespo = [f32v(v) for v in (vespo_k_pos, vespo_lambda_pos, vespo_k_neg, vespo_lambda_neg)]
    rho = f32v(top_entropy_quantile)
    opsm = f32v(off_policy_mask_threshold) if off_policy_mask_threshold is not None else None
    entropy_coef = f32v(entropy_coef)

    old_used = logp.detach() if old_t is None else old_t
    log_ratio = logp - old_used
    if level == "token":
        liw = log_ratio
    else:
        liw = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    coef_1 = torch.exp(liw.clamp(max=LOG_RATIO_CAP))
    if beta != 0.0:
        d = ref_t - logp
        per_token_kl = torch.exp(d) - d - 1
        if use_bias_correction_kl:  # DeepSeek-V3.2: k3 times the (differentiable) ratio
            per_token_kl = per_token_kl * coef_1
    a = adv.unsqueeze(1)
    clipped_family = loss_type in ("grpo", "bnpo", "dr_grpo", "dapo", "luspo")
    if loss_type == "cispo":  # MiniMax-M1: REINFORCE with a detached, upper-capped ratio
        per_token_loss = -torch.clamp(coef_1, max=eps_high).detach() * a * logp
    elif clipped_family:
        coef_2 = torch.clamp(coef_1, 1 - epsilon, 1 + eps_high)
        if delta is not None:
            coef_1 = torch.clamp(coef_1, max=delta)
        per_token_loss = -torch.min(coef_1 * a, coef_2 * a)
    elif loss_type == "sapo":  # soft gate (4/τ)·σ(τ(ρ - 1)), τ by A > 0
        tau = torch.where(a > 0, torch.full_like(a, tau_pos), torch.full_like(a, tau_neg))
        per_token_loss = -torch.sigmoid(tau * (coef_1 - 1)) * 4 / tau * a
    elif loss_type == "vespo":
        phi = gamma_weights(a, log_ratio.detach(), mask, isr_t, *vespo)
        per_token_loss = -phi * a * logp
    else:
        raise ValueError(loss_type)
    if opsm is not None:  # DeepSeek-V3.2 off-policy sequence mask
        s = samp_t if samp_t is not None else old_used
        kl_s = torch.nan_to_num(s - logp.detach(), nan=0.0)
        avg = (kl_s * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1.0)
        per_token_loss = per_token_loss * ((a >= 0) | (avg <= opsm)).to(mask.dtype)
    entropy_mask = None
    if rho < 1.0:
        entropy_mask = high_entropy_mask(ent_t, mask, rho)
        per_token_loss = per_token_loss * entropy_mask.to(mask.dtype)
    if isr_t is not None and loss_type != "vespo":
        per_token_loss = per_token_loss * isr_t
    if beta != 0.0:
        per_token_loss = per_token_loss + beta * per_token_kl
    n = logp.shape[0]
    if loss_type in ("grpo", "sapo"):
        loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif loss_type == "bnpo":
        loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    elif loss_type == "dr_grpo":
        loss = (per_token_loss * mask).sum() / (n * max_completion_length)
    elif loss_type in ("dapo", "cispo", "vespo"):
        normalizer = (f32v(num_items_in_batch) if num_items_in_batch is not None
                      else mask.sum().clamp(min=1.0))
        loss = (per_token_loss * mask).sum() / normalizer
    elif loss_type == "luspo":
        loss = (per_token_loss * mask).sum(-1).mean()
    else:
        raise ValueError(loss_type)
    policy_loss = loss.detach().clone()
    if entropy_coef != 0.0:
        m_eff = mask if entropy_mask is None else mask * entropy_mask.to(mask.dtype)
        loss = loss - entropy_coef * (ent_t * m_eff).sum() / m_eff.sum().clamp(min=1.0)
    loss.backward()

    token_count = mask.sum().clamp(min=1.0)

    def masked_batch_mean(x):
        if x.shape[1] == 1:
            return x.mean()
        return (x * mask).sum() / token_count

    def masked_seq_mean(x):  # TRL 1.16: per sequence, no clamp (an empty row is 0/0 = NaN)
        if x.shape[1] == 1:
            return x.squeeze(1)
        return (x * mask).sum(-1) / mask.sum(-1)

    low = (coef_1 < 1 - epsilon) & (a < 0)
    high = (coef_1 > 1 + eps_high) & (a > 0)
    region = low | high
    inputs = {"per_token_logps": T(logp), "advantages": T(adv), "completion_mask": T(mask)}
    if old_t is not None:
        inputs["old_per_token_logps"] = T(old_t)
    if ref_t is not None:
        inputs["ref_per_token_logps"] = T(ref_t)
    if ent_t is not None:
        inputs["entropies"] = T(ent_t)
    if samp_t is not None:
        inputs["sampling_per_token_logps"] = T(samp_t)
    if isr_t is not None:
        inputs["importance_sampling_ratio"] = T(isr_t)
    outputs = {
        "loss": S(loss),
        "per_token_loss": T(per_token_loss.expand_as(logp) * (mask != 0)),
        "grad_per_token_logps": T(logp.grad),
    }
    if clipped_family:  # TRL logs the clip ratios for these loss types only
        outputs.update({
            "clip_ratio_low_mean": S(masked_batch_mean(low.double())),
            "clip_ratio_high_mean": S(masked_batch_mean(high.double())),
            "clip_ratio_region_mean": S(masked_batch_mean(region.double())),
            "clip_ratio_low_min": S_nan(nanmin(masked_seq_mean(low.double()))),
            "clip_ratio_high_max": S_nan(nanmax(masked_seq_mean(high.double()))),
        })
    elif loss_type == "cispo":
        outputs["cispo_clip_ratio"] = S(masked_batch_mean(
            ((coef_1 > eps_high) & (a > 0)).double()))
    elif loss_type == "vespo":
        outputs["vespo_phi_seq_mean"] = S(masked_batch_mean(phi))
    if beta != 0.0:
        outputs["kl"] = S(masked_batch_mean(per_token_kl.detach()))
    if ent_t is not None:
        outputs["entropy"] = S(masked_batch_mean(ent_t.detach()))
    if entropy_coef != 0.0:
        outputs["policy_loss"] = S(policy_loss)
        outputs["grad_entropies"] = T(ent_t.grad)
    config = {"kind": "loss", "beta": beta, "epsilon": epsilon,
              "epsilon_high": f32v(epsilon_high) if epsilon_high is not None else None,
              "delta": delta, "importance_sampling_level": level,
              "loss_type": loss_type, "max_completion_length": max_completion_length,
              "num_items_in_batch": (f32v(num_items_in_batch)
                                     if num_items_in_batch is not None else None),
              "use_bias_correction_kl": use_bias_correction_kl,
              "sapo_temperature_pos": tau_pos, "sapo_temperature_neg": tau_neg,
              "vespo_k_pos": vespo[0], "vespo_lambda_pos": vespo[1],
              "vespo_k_neg": vespo[2], "vespo_lambda_neg": vespo[3],
              "top_entropy_quantile": rho, "off_policy_mask_threshold": opsm,
              "entropy_coef": entropy_coef}
    fx.add(name, config, inputs, outputs)


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
    # 4 prompts × 4: three scorable; one scorable; none; all four.
    r = torch.randn(16, generator=g) * 1.5
    r[1] = nan
    r[4], r[6], r[7] = nan, nan, nan
    r[8:12] = nan
    for scale in ("group", "batch", "none"):
        advantages_case(fx, f"advantages_unscorable_{scale}", r, 4, scale)
    advantages_case(fx, "advantages_unscorable_num_generations_1",
                    torch.tensor([0.5, nan, 2.0]), 1, "group")
    # One scorable reward in the batch: its nanstd is NaN, so every advantage is 0.
    advantages_case(fx, "advantages_unscorable_batch_one_scorable",
                    torch.tensor([nan, 1.5, nan, nan]), 2, "batch")
    advantages_case(fx, "advantages_all_unscorable", torch.full((6,), nan), 3, "group")
    advantages_case(fx, "advantages_single_completion_batch", torch.tensor([0.25]), 1, "batch")
    # Reward functions: rows scored by both, by one, by none.
    combine_case(fx, "combine_rewards_unscorable_rows",
                 torch.tensor([[1.0, 0.5], [nan, 2.0], [3.0, nan], [nan, nan], [-1.0, 4.0],
                               [nan, nan]]), [2.0, -0.5])


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
    advantages_case(fx, "advantages_num_generations_1", torch.tensor([0.5, -1.0, 2.0]), 1,
                    "group")
    advantages_case(fx, "advantages_all_equal_batch", torch.full((6,), 2.0), 3, "batch")
    unscorable_cases(fx)

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
    # use_bias_correction_kl off: with it, k3·ρ is infinite where ρ overflows (as in TRL).
    for level in ("token", "sequence"):
        for loss_type in ("grpo", "dapo"):
            loss_case(fx, f"extreme_{level}_{loss_type}", lpx, advx, maskx, old=lpx - dx,
                      ref=refx, beta=0.04, level=level, loss_type=loss_type,
                      use_bias_correction_kl=False)
    advx_neg = torch.tensor([-1.25, 0.5, -2.0, -0.8, -0.3])
    for level in ("token", "sequence"):
        loss_case(fx, f"extreme_{level}_delta_negative_advantages", lpx, advx_neg, maskx,
                  old=lpx - dx, delta=2.0, level=level, loss_type="bnpo")
    # The soft and REINFORCE-form losses stay finite at any ratio and either sign of A.
    for level in ("token", "sequence"):
        for loss_type in ("cispo", "sapo", "vespo"):
            loss_case(fx, f"extreme_{level}_{loss_type}", lpx, advx_neg, maskx, old=lpx - dx,
                      level=level, loss_type=loss_type)

    loss_option_cases(fx, g, logp, adv, mask, old, ref)
    normalize_then_sum_cases(fx)
    for case in fx.cases:
        case["config"]["trl_version"] = TRL_VERSION
    fx.write()


def loss_option_cases(fx, g, logp, adv, mask, old, ref):
    """The loss types cispo, sapo, luspo, vespo and the options top_entropy_quantile,
    off_policy_mask_threshold, use_bias_correction_kl, entropy_coef and the vLLM
    importance-sampling ratio input, on the 8 × 6 batch of main()."""
    n, t = logp.shape
    for loss_type in ("cispo", "sapo", "luspo", "vespo"):
        for level in ("token", "sequence"):
            for beta in (0.0, 0.04):
                loss_case(fx, f"{loss_type}_{level}_beta{beta}", logp, adv, mask, old=old,
                          ref=ref if beta > 0 else None, beta=beta, level=level,
                          loss_type=loss_type)
            loss_case(fx, f"{loss_type}_{level}_on_policy", logp, adv, mask, ref=ref, beta=0.04,
                      level=level, loss_type=loss_type)
    # cispo's cap is epsilon_high itself: ScaleRL's ε_max = 5 and a cap inside the ratios.
    loss_case(fx, "cispo_token_eps_high_5", logp, adv, mask, old=old, epsilon_high=5.0,
              loss_type="cispo")
    loss_case(fx, "cispo_token_eps_high_1.1", logp, adv, mask, old=old, epsilon_high=1.1,
              loss_type="cispo", num_items_in_batch=80.0)
    loss_case(fx, "sapo_token_temperatures", logp, adv, mask, old=old * 1.5 - logp * 0.5,
              sapo_temperature_pos=0.5, sapo_temperature_neg=2.0, loss_type="sapo")
    loss_case(fx, "vespo_token_k_lambda", logp, adv, mask, old=old, vespo_k_pos=1.0,
              vespo_lambda_pos=0.5, vespo_k_neg=4.0, vespo_lambda_neg=0.0, loss_type="vespo")
    mask0 = mask.clone()
    mask0[1] = 0.0
    for loss_type in ("cispo", "sapo", "luspo", "vespo"):
        loss_case(fx, f"{loss_type}_sequence_empty_row", logp, adv, mask0, old=old, ref=ref,
                  beta=0.04, level="sequence", loss_type=loss_type)

    # use_bias_correction_kl = False: the k3 term of TRL < 1.x.
    for level in ("token", "sequence"):
        loss_case(fx, f"grpo_{level}_no_bias_correction_kl", logp, adv, mask, old=old, ref=ref,
                  beta=0.04, level=level, loss_type="grpo", use_bias_correction_kl=False)
    loss_case(fx, "dapo_token_on_policy_no_bias_correction_kl", logp, adv, mask, ref=ref,
              beta=0.04, use_bias_correction_kl=False)

    # top_entropy_quantile: entropies in (0.05, 3), all distinct.
    ent = 0.05 + torch.rand(n, t, generator=g) * 2.95
    for rho in (0.2, 0.5, 0.0):
        for loss_type in ("dapo", "grpo", "cispo"):
            loss_case(fx, f"{loss_type}_token_top_entropy_{rho}", logp, adv, mask, old=old,
                      ref=ref, beta=0.04, loss_type=loss_type, top_entropy_quantile=rho,
                      entropies=ent)
    loss_case(fx, "grpo_sequence_top_entropy_0.3", logp, adv, mask, old=old,
              level="sequence", loss_type="grpo", top_entropy_quantile=0.3, entropies=ent)
    wmask = mask * (0.25 + torch.rand(n, t, generator=g) * 1.5)
    loss_case(fx, "dapo_token_top_entropy_weighted_mask", logp, adv, wmask, old=old,
              top_entropy_quantile=0.4, entropies=ent)
    loss_case(fx, "dapo_token_entropies_quantile_1", logp, adv, mask, old=old, entropies=ent)

    # Off-policy sequence masking (keep A >= 0 or mean KL(sampler || policy) <= δ).
    for thr in (0.0, 0.05):
        for loss_type in ("dapo", "grpo", "sapo"):
            loss_case(fx, f"{loss_type}_token_opsm_{thr}", logp, adv, mask, old=old, ref=ref,
                      beta=0.04, loss_type=loss_type, off_policy_mask_threshold=thr)
    sampling = logp + torch.randn(n, t, generator=g) * 0.4
    for level in ("token", "sequence"):
        loss_case(fx, f"dapo_{level}_opsm_sampling_logps", logp, adv, mask, old=old,
                  level=level, off_policy_mask_threshold=0.02, sampling=sampling)
    loss_case(fx, "vespo_token_opsm_on_policy_sampling", logp, adv, mask,
              loss_type="vespo", off_policy_mask_threshold=-0.05, sampling=sampling)

    # vLLM importance-sampling ratio: token modes (N, T), sequence modes (N, 1).
    is_tok = torch.exp(torch.randn(n, t, generator=g) * 0.2)
    is_tok[2, 3] = 0.0  # token_mask zeroes ratios outside [C_min, C_max]
    is_seq = torch.exp(torch.randn(n, 1, generator=g) * 0.2)
    for loss_type in ("dapo", "cispo", "sapo"):
        loss_case(fx, f"{loss_type}_token_is_ratio_token", logp, adv, mask, old=old, ref=ref,
                  beta=0.04, loss_type=loss_type, is_ratio=is_tok)
    loss_case(fx, "grpo_sequence_is_ratio_sequence", logp, adv, mask, old=old,
              level="sequence", loss_type="grpo", is_ratio=is_seq)
    loss_case(fx, "vespo_token_is_ratio_token", logp, adv, mask, old=old, loss_type="vespo",
              is_ratio=is_tok)

    # Entropy bonus, with and without the entropy mask.
    loss_case(fx, "dapo_token_entropy_coef", logp, adv, mask, old=old, entropies=ent,
              entropy_coef=0.01)
    loss_case(fx, "grpo_token_entropy_coef_top_entropy", logp, adv, mask, old=old, ref=ref,
              beta=0.04, loss_type="grpo", entropies=ent, entropy_coef=0.05,
              top_entropy_quantile=0.25)
    loss_case(fx, "vespo_sequence_all_options", logp, adv, mask0, old=old, ref=ref, beta=0.04,
              level="sequence", loss_type="vespo", entropies=ent, entropy_coef=0.02,
              top_entropy_quantile=0.6, off_policy_mask_threshold=0.0, sampling=sampling,
              is_ratio=is_tok)


if __name__ == "__main__":
    main()
