// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// RLOO (REINFORCE Leave-One-Out; Kool et al. 2019, Ahmadian et al. 2024) as TRL's current
// RLOOTrainer computes it (the GRPO-style trainer of TRL >= 0.23 / 1.x). docs/algorithms/rloo.md.
//
//   r_i   ← clip(r_i) - β·Σ_t m·(old_logp - ref_logp)          (sequence-level k1 penalty)
//   b_i   = (nansum_group r - r_i) / (c - 1)                    (leave-one-out baseline,
//                                                                c = scorable in the group)
//   A_i   = r_i - b_i     [optional (A - nanmean(A)) / (nanstd(A) + 1e-4) over the batch]
//           NaN (unscorable reward, or c = 1) → A_i = 0
//   x_i   = Σ_t m·logp - old_logps_i                            (sequence log-ratio, a sum)
//   loss  = mean_i( -min(e^x·A, clamp(e^x, 1 - ε_low, 1 + ε_high)·A) )
//
// Groups are contiguous blocks of k = num_generations completions (TRL repeats each
// prompt k times in a row).
#pragma once

#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/losses/detail/grpo_kernels.hpp"
#include "rlhf/losses/grpo.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/reductions.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {

/// TRL RLOOConfig's names and defaults.
struct rloo_config {
  /// KL coefficient of the reward penalty (TRL default 0.05; 0 = no reference model).
  float beta = 0.05f;
  /// k: completions per prompt (TRL default 2; rloo_advantages only). 1 is TRL's
  /// num_generations_eval = 1 case: no leave-one-out baseline exists, every advantage is 0
  /// and every group counts as zero-std.
  index_t num_generations = 2;
  /// ε_low of the sequence-level clip (TRL: epsilon, default 0.2); in (0, 1).
  float epsilon = 0.2f;
  /// ε_high; unset = epsilon.
  std::optional<float> epsilon_high;
  /// Normalise the advantages over the batch: (A - mean) / (std + 1e-4).
  bool normalize_advantages = false;
  /// Clamp the (weighted) rewards to [min, max] before the KL penalty; unset = off.
  std::optional<std::pair<float, float>> reward_clip_range;
};

// --- Advantages ------------------------------------------------------------------------
//
// TRL 1.16's definitions (_generate_and_score_completions). A NaN reward marks an
// unscorable completion (TRL: every reward function returned None): it stays NaN through
// the clip and the KL penalty, is left out of every sum, mean and std, and gets advantage 0.

/// The tensors rloo_advantages reads.
template <class B>
struct rloo_advantage_inputs {
  const typename B::tensor& rewards;                        ///< (N,) one score; NaN = unscorable
  const typename B::tensor* completion_mask = nullptr;      ///< (N, T); required when beta > 0
  const typename B::tensor* old_per_token_logps = nullptr;  ///< (N, T) sampling policy
  const typename B::tensor* ref_per_token_logps = nullptr;  ///< (N, T) reference
};

/// What TRL 1.16 logs when it computes the RLOO advantages, plus rlhf++'s count of
/// unscorable completions. A statistic over no values is NaN, as in TRL (whose log() drops
/// NaN).
struct rloo_advantage_metrics {
  float reward = 0;      ///< nanmean of the raw rewards (before the clip and the KL penalty)
  float reward_std = 0;  ///< nanstd of the raw rewards over the whole batch
  /// Fraction of groups whose nanstd of the clipped, KL-penalised rewards is 0
  /// (torch.isclose: <= 1e-8; a NaN std, fewer than 2 scorable, is not 0).
  float frac_reward_zero_std = 0;
  float kl = 0;                      ///< Σ m·(old - ref) / max(Σ m, 1), when beta > 0
  bool has_kl = false;               ///< whether kl was computed (beta > 0) and is reported
  index_t num_unscorable = 0;        ///< rlhf++'s (not TRL's): completions with reward NaN
  float frac_reward_unscorable = 0;  ///< rlhf++'s (not TRL's): num_unscorable / N
  /// TRL's names, then rlhf++'s frac_reward_unscorable.
  [[nodiscard]] named_metrics named() const {
    named_metrics m{{"reward", reward},
                    {"reward_std", reward_std},
                    {"frac_reward_zero_std", frac_reward_zero_std},
                    {"frac_reward_unscorable", frac_reward_unscorable}};
    if (has_kl) m.emplace_back("kl", kl);
    return m;
  }
};

/// RLOO advantages into `out` (N,), which may be `in.rewards` itself. With c_g the number
/// of scorable (non-NaN) completions of the group:
///
///   r_i ← clamp(r_i) - β·Σ_t m·(old - ref)        (NaN stays NaN)
///   A_i = r_i - (nansum_group(r) - r_i) / (c_g - 1)
///   [A ← (A - nanmean(A)) / (nanstd(A) + 1e-4) over the batch]
///   then A_i = 0 wherever that is NaN (TRL's nan_to_num): unscorable completions, and
///   groups with one scorable completion (0/0). k = 1 (TRL's num_generations_eval = 1):
///   every A_i = 0 and every group's std is 0.
template <class B>
rloo_advantage_metrics rloo_advantages(const rloo_advantage_inputs<B>& in, const rloo_config& cfg,
                                       typename B::tensor& out) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "rloo_advantages";
  assert_tensor_backend<B>();
  check_rank(fn, "rewards", in.rewards.shape(), 1, 1);
  const index_t n = in.rewards.size();
  if (n == 0) throw shape_error("rloo_advantages: batch is empty (rewards has 0 completions)");
  check_config(cfg.num_generations >= 1, fn, "num_generations", ">= 1", cfg.num_generations);
  if (n % cfg.num_generations != 0) {
    throw shape_error(rlhf::detail::concat(fn, ": num_generations (", cfg.num_generations,
                                           ") must divide the number of rewards (", n, ")"));
  }
  check_config(std::isfinite(cfg.beta) && cfg.beta >= 0.0f, fn, "beta", "finite and >= 0",
               cfg.beta);
  if (cfg.reward_clip_range) {
    const auto [cmin, cmax] = *cfg.reward_clip_range;
    if (!(std::isfinite(cmin) && std::isfinite(cmax) && cmin <= cmax)) {
      throw config_error(rlhf::detail::concat(fn,
                                              ": reward_clip_range must be finite with "
                                              "min <= max, got (",
                                              cmin, ", ", cmax, ")"));
    }
  }
  check_dim(fn, "out's element count (one per reward)", out.size(), n);
  detail::check_finite_or_nan<B>(fn, "rewards", in.rewards);
  const bool use_kl = cfg.beta > 0.0f;
  index_t t_len = 0;
  if (use_kl) {
    if (!in.completion_mask || !in.old_per_token_logps || !in.ref_per_token_logps) {
      throw config_error(rlhf::detail::concat(
          fn,
          ": completion_mask, old_per_token_logps and ref_per_token_logps are required "
          "when beta > 0, got beta = ",
          cfg.beta));
    }
    check_rank(fn, "completion_mask", in.completion_mask->shape(), 2, 2);
    check_dim(fn, "completion_mask rows (one per reward)", in.completion_mask->shape()[0], n);
    check_same_shape(fn, "old_per_token_logps", in.old_per_token_logps->shape(), "completion_mask",
                     in.completion_mask->shape());
    check_same_shape(fn, "ref_per_token_logps", in.ref_per_token_logps->shape(), "completion_mask",
                     in.completion_mask->shape());
    ops::check_mask<B>(fn, "completion_mask", *in.completion_mask);
    ops::check_finite<B>(fn, "old_per_token_logps", *in.old_per_token_logps);
    ops::check_finite<B>(fn, "ref_per_token_logps", *in.ref_per_token_logps);
    t_len = in.completion_mask->shape()[1];
  }

  // The logged reward statistics are of the raw rewards; before `out` (maybe the rewards
  // themselves) is written.
  const detail::nan_moments raw = detail::nan_moments_of<B>(in.rewards);
  rloo_advantage_metrics m;
  m.reward = raw.mean;
  m.reward_std = raw.std;
  m.num_unscorable = n - raw.count;
  m.frac_reward_unscorable = static_cast<float>(m.num_unscorable) / static_cast<float>(n);

  // Pass 1, per completion: the clipped, penalised reward (into out) and the KL statistics.
  const index_t k = cfg.num_generations, groups = n / k, tl = t_len;
  tensor row_stats(shape{2, n});  // Σ m·(old - ref), Σ m
  const float* r = B::data(in.rewards);
  const float* mk = use_kl ? B::data(*in.completion_mask) : nullptr;
  const float* old = use_kl ? B::data(*in.old_per_token_logps) : nullptr;
  const float* ref = use_kl ? B::data(*in.ref_per_token_logps) : nullptr;
  float* o = B::data(out);
  float* rs = B::data(row_stats);
  const bool clip = cfg.reward_clip_range.has_value();
  const float cmin = clip ? cfg.reward_clip_range->first : 0.0f;
  const float cmax = clip ? cfg.reward_clip_range->second : 0.0f;
  const float beta = cfg.beta;
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        float x = clip && r[i] == r[i] ? math::clamp(r[i], cmin, cmax) : r[i];
        float kl = 0.0f;
        double msum = 0.0;  // a count: exact in double past 2^24
        if (use_kl) {
          for (index_t t = 0; t < tl; ++t) {
            const float w = mk[i * tl + t];
            if (w != 0.0f) {
              kl += w * (old[i * tl + t] - ref[i * tl + t]);
              msum += w;
            }
          }
          x -= beta * kl;
        }
        o[i] = x;
        rs[0 * n + i] = kl;
        rs[1 * n + i] = static_cast<float>(msum);
      });
  const std::vector<float> row_sums = ops::row_sums_to_host<B>(row_stats);
  m.has_kl = use_kl;
  if (use_kl) m.kl = row_sums[0] / (row_sums[1] > 1.0f ? row_sums[1] : 1.0f);

  // Pass 2, per group: the nanstd flag and the leave-one-out advantages (in place; NaN
  // where undefined).
  tensor zero_std(shape{groups});
  float* zs = B::data(zero_std);
  const float nan = std::nanf("");
  B::parallel_for(
      groups, RLHF_LAMBDA(index_t g) {
        float* x = o + g * k;
        float s = 0.0f, c = 0.0f;
        for (index_t j = 0; j < k; ++j) {
          if (x[j] == x[j]) s += x[j], c += 1.0f;
        }
        const float mean = c > 0.0f ? s / c : nan;
        float ss = 0.0f;
        for (index_t j = 0; j < k; ++j) {
          if (x[j] == x[j]) ss += (x[j] - mean) * (x[j] - mean);
        }
        // k = 1 (TRL's num_generations_eval = 1): std 0 and advantage 0, unscorable or not.
        const float sd = k == 1 ? 0.0f : (c > 1.0f ? std::sqrt(ss / (c - 1.0f)) : nan);
        zs[g] = sd <= 1e-8f ? 1.0f : 0.0f;  // false for NaN
        for (index_t j = 0; j < k; ++j) {
          x[j] = k == 1 ? 0.0f : (c > 1.0f ? x[j] - (s - x[j]) / (c - 1.0f) : nan);
        }
      });
  m.frac_reward_zero_std = ops::sum<B>(zero_std) / static_cast<float>(groups);

  if (cfg.normalize_advantages) {
    const detail::nan_moments a = detail::nan_moments_of<B>(out);
    const float mean = a.mean, inv = 1.0f / (a.std + 1e-4f);  // NaN with < 2 defined
    B::parallel_for(
        n, RLHF_LAMBDA(index_t i) { o[i] = (o[i] - mean) * inv; });
  }
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) { o[i] = o[i] == o[i] ? o[i] : 0.0f; });
  return m;
}

// --- Loss ------------------------------------------------------------------------------

/// The tensors the RLOO loss reads.
template <class B>
struct rloo_inputs {
  const typename B::tensor& per_token_logps;  ///< (N, T)
  const typename B::tensor& advantages;       ///< (N,)
  const typename B::tensor& completion_mask;  ///< (N, T) weights >= 0
  /// (N,) Σ_t m·logp under the sampling policy (TRL's "old_logps"); nullptr = on-policy
  /// (old = the current sums detached: ratio 1).
  const typename B::tensor* old_logps = nullptr;
};

/// TRL's RLOO loss metrics: the fractions of clipped sequences.
struct rloo_metrics {
  float clip_ratio_low_mean = 0;     ///< fraction of sequences with coef < 1-ε_low and A < 0
  float clip_ratio_high_mean = 0;    ///< the same fraction with coef > 1+ε_high and A > 0
  float clip_ratio_region_mean = 0;  ///< the fraction in either of the two
  /// TRL 1.16: min over sequences of the 0/1 low-clipped flag (1 only if every sequence is).
  float clip_ratio_low_min = 0;
  /// TRL 1.16: max over sequences of the 0/1 high-clipped flag (1 if any sequence is).
  float clip_ratio_high_max = 0;
  /// TRL's names.
  [[nodiscard]] named_metrics named() const {
    return {{"clip_ratio/low_mean", clip_ratio_low_mean},
            {"clip_ratio/low_min", clip_ratio_low_min},
            {"clip_ratio/high_mean", clip_ratio_high_mean},
            {"clip_ratio/high_max", clip_ratio_high_max},
            {"clip_ratio/region_mean", clip_ratio_region_mean}};
  }
};

/// What the RLOO loss returns.
template <class B>
struct rloo_result {
  float loss = 0;                           ///< mean(losses), as a host value
  typename B::tensor losses;                ///< (N,) per-sequence clipped surrogate
  typename B::tensor grad_per_token_logps;  ///< (N, T), 0 where the mask is 0
  rloo_metrics metrics;                     ///< TRL's metrics of the batch
};

/// RLOO's sequence-level clipped loss, its gradient and TRL's metrics.
template <class B>
rloo_result<B> rloo_loss(const rloo_inputs<B>& in, const rloo_config& cfg = {}) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "rloo_loss";
  assert_tensor_backend<B>();
  check_rank(fn, "per_token_logps", in.per_token_logps.shape(), 2, 2);
  const index_t n = in.per_token_logps.shape()[0], t_len = in.per_token_logps.shape()[1];
  check_same_shape(fn, "completion_mask", in.completion_mask.shape(), "per_token_logps",
                   in.per_token_logps.shape());
  check_shape(fn, "advantages", in.advantages.shape(), shape{n}, "one per sequence");
  if (in.old_logps)
    check_shape(fn, "old_logps", in.old_logps->shape(), shape{n}, "one per sequence");
  if (n == 0) throw shape_error("rloo_loss: batch is empty (per_token_logps has 0 sequences)");
  if (t_len == 0) {
    throw shape_error("rloo_loss: completions are empty (per_token_logps has 0 tokens per row)");
  }
  const float lo = 1.0f - cfg.epsilon;
  const float hi = 1.0f + detail::check_clip_epsilons(fn, cfg.epsilon, cfg.epsilon_high);
  ops::check_finite<B>(fn, "per_token_logps", in.per_token_logps);
  ops::check_finite<B>(fn, "advantages", in.advantages);
  ops::check_mask<B>(fn, "completion_mask", in.completion_mask);
  if (in.old_logps) ops::check_finite<B>(fn, "old_logps", *in.old_logps);

  rloo_result<B> r{0.0f, tensor(shape{n}), tensor(shape{n, t_len}), {}};
  tensor stats(shape{3, n});  // loss, low, high
  const float* lp = B::data(in.per_token_logps);
  const float* adv = B::data(in.advantages);
  const float* mk = B::data(in.completion_mask);
  const float* old = in.old_logps ? B::data(*in.old_logps) : nullptr;
  float* losses_p = B::data(r.losses);
  float* grad = B::data(r.grad_per_token_logps);
  float* st = B::data(stats);
  const float inv_n = 1.0f / static_cast<float>(n);
  const index_t tl = t_len;
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        const index_t base = i * tl;
        float x = 0.0f;
        if (old) {
          float s = 0.0f;
          for (index_t t = 0; t < tl; ++t) {
            const float m = mk[base + t];
            if (m != 0.0f) s += m * lp[base + t];
          }
          x = s - old[i];
        }
        const auto sur = losses::detail::clipped_surrogate(x, adv[i], lo, hi, false, 0.0f);
        losses_p[i] = sur.loss;
        const float g = inv_n * sur.dloss_dx;
        for (index_t t = 0; t < tl; ++t) {
          const float m = mk[base + t];
          grad[base + t] = m != 0.0f ? g * m : 0.0f;
        }
        st[0 * n + i] = sur.loss;
        st[1 * n + i] = sur.low_clipped ? 1.0f : 0.0f;
        st[2 * n + i] = sur.high_clipped ? 1.0f : 0.0f;
      });
  const std::vector<float> sums = ops::row_sums_to_host<B>(stats);
  r.loss = sums[0] * inv_n;
  r.metrics.clip_ratio_low_mean = sums[1] * inv_n;
  r.metrics.clip_ratio_high_mean = sums[2] * inv_n;
  r.metrics.clip_ratio_region_mean = (sums[1] + sums[2]) * inv_n;
  r.metrics.clip_ratio_low_min = sums[1] >= static_cast<float>(n) ? 1.0f : 0.0f;
  r.metrics.clip_ratio_high_max = sums[2] > 0.0f ? 1.0f : 0.0f;
  return r;
}

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
