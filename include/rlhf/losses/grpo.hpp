// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// GRPO (Shao et al. 2024) with TRL GRPOTrainer's options: group-relative advantages
// (scale_rewards group / batch / none = Dr. GRPO), token- or sequence-level (GSPO)
// importance weights, DAPO's asymmetric clipping, two-sided clipping (delta), the k3 KL
// penalty and the four loss aggregations. docs/algorithms/grpo.md.
//
//   A_i   = (r_i - mean_group(r)) / (std + 1e-4)        (std: group or batch, Bessel; none: no division)
//   x_it  = logp_it - old_it                            (token)   or
//   x_i   = Σ_t m·(logp - old) / max(Σ_t m, 1)          (sequence, broadcast over the row)
//   c1    = e^x (then min(c1, delta) when delta is set),  c2 = clamp(e^x, 1 - ε_low, 1 + ε_high)
//   l_it  = -min(c1·A_i, c2·A_i) + β·(e^(ref-logp) - (ref-logp) - 1)
//   loss  = grpo: mean_i(Σ_t m·l / max(Σ_t m, 1))    bnpo: Σ m·l / max(Σ m, 1)
//           dr_grpo: Σ m·l / (N·max_completion_length)  dapo: Σ m·l / num_items_in_batch
//
// Groups are contiguous blocks of G completions (TRL repeats each prompt G times in a
// row), so the rewards of prompt p are rewards[p·G .. p·G + G - 1].
#pragma once

#include <cmath>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rlhf/core/math.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/losses/detail/grpo_kernels.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/reductions.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {

/// GRPOConfig.scale_rewards: "group" (default, also True), "batch", "none" (also False).
enum class grpo_scale_rewards { group, batch, none };
/// GRPOConfig.importance_sampling_level: "token" (default) or "sequence" (GSPO).
enum class grpo_importance_sampling_level { token, sequence };
/// GRPOConfig.loss_type; TRL's default is "dapo".
enum class grpo_loss_type { grpo, bnpo, dr_grpo, dapo };

/// TRL's name of a scale_rewards value.
inline const char* to_string(grpo_scale_rewards v) {
  switch (v) {
    case grpo_scale_rewards::group: return "group";
    case grpo_scale_rewards::batch: return "batch";
    case grpo_scale_rewards::none: return "none";
  }
  return "?";
}
/// TRL's name of an importance sampling level.
inline const char* to_string(grpo_importance_sampling_level v) {
  return v == grpo_importance_sampling_level::token ? "token" : "sequence";
}
/// TRL's name of a loss type.
inline const char* to_string(grpo_loss_type v) {
  switch (v) {
    case grpo_loss_type::grpo: return "grpo";
    case grpo_loss_type::bnpo: return "bnpo";
    case grpo_loss_type::dr_grpo: return "dr_grpo";
    case grpo_loss_type::dapo: return "dapo";
  }
  return "?";
}

/// "group" / "true", "batch", "none" / "false" (TRL accepts the booleans too).
inline grpo_scale_rewards parse_grpo_scale_rewards(std::string_view s) {
  if (s == "group" || s == "true" || s == "True") return grpo_scale_rewards::group;
  if (s == "batch") return grpo_scale_rewards::batch;
  if (s == "none" || s == "false" || s == "False") return grpo_scale_rewards::none;
  throw config_error(rlhf::detail::concat(
      "parse_grpo_scale_rewards: scale_rewards must be one of group, batch, none (or "
      "true/false), got '",
      s, "'"));
}
/// "token" or "sequence"; anything else is a config_error.
inline grpo_importance_sampling_level parse_grpo_importance_sampling_level(std::string_view s) {
  if (s == "token") return grpo_importance_sampling_level::token;
  if (s == "sequence") return grpo_importance_sampling_level::sequence;
  throw config_error(rlhf::detail::concat(
      "parse_grpo_importance_sampling_level: importance_sampling_level must be one of token, "
      "sequence, got '",
      s, "'"));
}
/// "grpo", "bnpo", "dr_grpo" or "dapo"; anything else is a config_error.
inline grpo_loss_type parse_grpo_loss_type(std::string_view s) {
  if (s == "grpo") return grpo_loss_type::grpo;
  if (s == "bnpo") return grpo_loss_type::bnpo;
  if (s == "dr_grpo") return grpo_loss_type::dr_grpo;
  if (s == "dapo") return grpo_loss_type::dapo;
  throw config_error(rlhf::detail::concat(
      "parse_grpo_loss_type: loss_type must be one of grpo, bnpo, dr_grpo, dapo, got '", s,
      "'"));
}

/// TRL GRPOConfig's loss options, names and defaults as TRL has them (TRL >= 0.22/1.x).
struct grpo_config {
  /// KL coefficient; TRL's default 0.0 (no reference model). > 0 requires
  /// ref_per_token_logps.
  float beta = 0.0f;
  /// ε_low: lower clip bound 1 - epsilon; in (0, 1).
  float epsilon = 0.2f;
  /// ε_high: upper clip bound 1 + epsilon_high; unset = epsilon (DAPO recommends 0.28).
  std::optional<float> epsilon_high;
  /// Two-sided clipping (INTELLECT-2): caps coef1 at delta; unset = off. Must be finite and
  /// > 1 + epsilon_high (TRL's documented range): a lower cap would cut the ratio inside the
  /// clip range and silently zero the gradient there, so it is a config_error.
  std::optional<float> delta;
  /// Token-level ratios (GRPO) or one length-normalised ratio per sequence (GSPO).
  grpo_importance_sampling_level importance_sampling_level = grpo_importance_sampling_level::token;
  /// How the masked per-token losses are aggregated into the loss (see the file header).
  grpo_loss_type loss_type = grpo_loss_type::dapo;
  /// The dr_grpo constant (TRL default 256).
  index_t max_completion_length = 256;
};

// --- Advantages ------------------------------------------------------------------------

/// What TRL logs when it computes the advantages.
struct grpo_advantage_metrics {
  float reward = 0;      ///< mean reward
  float reward_std = 0;  ///< mean over completions of the std used (group: mean group std)
  float frac_reward_zero_std = 0;  ///< fraction of completions whose std is 0 (isclose, atol 1e-8)
  /// The metrics under TRL's names.
  [[nodiscard]] named_metrics named() const {
    return {{"reward", reward}, {"reward_std", reward_std},
            {"frac_reward_zero_std", frac_reward_zero_std}};
  }
};

/// Group-relative advantages of N = (prompts × group_size) rewards laid out in contiguous
/// groups. `out` (N,) may be `rewards` itself. group_size 1 gives std 0 (TRL's eval case).
template <class B>
grpo_advantage_metrics grpo_advantages(const typename B::tensor& rewards, index_t group_size,
                                       grpo_scale_rewards scale_rewards,
                                       typename B::tensor& out) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "grpo_advantages";
  assert_tensor_backend<B>();
  check_rank(fn, "rewards", rewards.shape(), 1, 1);
  const index_t n = rewards.size();
  if (n == 0) throw shape_error("grpo_advantages: batch is empty (rewards has 0 completions)");
  check_config(group_size >= 1, fn, "group_size", ">= 1", group_size);
  check_enum(fn, "scale_rewards", scale_rewards, 3);
  if (n % group_size != 0) {
    throw shape_error(rlhf::detail::concat(fn, ": group_size (", group_size,
                                           ") must divide the number of rewards (", n, ")"));
  }
  check_dim(fn, "out's element count (one per reward)", out.size(), n);
  ops::check_finite<B>(fn, "rewards", rewards);

  const index_t g = group_size, groups = n / group_size;
  tensor group_mean(shape{groups}), group_std(shape{groups});
  tensor stats(shape{3, groups});  // Σ r, std, std == 0
  const float* r = B::data(rewards);
  float* gm = B::data(group_mean);
  float* gs = B::data(group_std);
  float* st = B::data(stats);
  B::parallel_for(groups, RLHF_LAMBDA(index_t k) {
    const float* x = r + k * g;
    float s = 0.0f;
    for (index_t j = 0; j < g; ++j) s += x[j];
    const float mean = s / static_cast<float>(g);
    float ss = 0.0f;
    for (index_t j = 0; j < g; ++j) ss += (x[j] - mean) * (x[j] - mean);
    const float sd = g > 1 ? std::sqrt(ss / static_cast<float>(g - 1)) : 0.0f;
    gm[k] = mean;
    gs[k] = sd;
    st[0 * groups + k] = s;
    st[1 * groups + k] = sd;
    st[2 * groups + k] = sd <= 1e-8f ? 1.0f : 0.0f;
  });
  const std::vector<float> sums = ops::row_sums_to_host<B>(stats);
  grpo_advantage_metrics m;
  m.reward = sums[0] / static_cast<float>(n);
  m.reward_std = sums[1] / static_cast<float>(groups);
  m.frac_reward_zero_std = sums[2] / static_cast<float>(groups);

  float batch_std = 0.0f;
  if (scale_rewards == grpo_scale_rewards::batch) {
    if (n > 1) {
      const float mean = m.reward;
      tensor dev(shape{n});
      float* d = B::data(dev);
      B::parallel_for(n, RLHF_LAMBDA(index_t i) { d[i] = (r[i] - mean) * (r[i] - mean); });
      batch_std = std::sqrt(ops::sum<B>(dev) / static_cast<float>(n - 1));
    }
    m.reward_std = batch_std;
    m.frac_reward_zero_std = batch_std <= 1e-8f ? 1.0f : 0.0f;
  }

  float* o = B::data(out);
  const int mode = static_cast<int>(scale_rewards);
  constexpr int by_group = static_cast<int>(grpo_scale_rewards::group);
  constexpr int by_batch = static_cast<int>(grpo_scale_rewards::batch);
  B::parallel_for(n, RLHF_LAMBDA(index_t i) {
    const index_t k = i / g;
    const float a = r[i] - gm[k];
    o[i] = mode == by_group ? a / (gs[k] + 1e-4f) : (mode == by_batch ? a / (batch_std + 1e-4f) : a);
  });
  return m;
}

/// Per-reward-function statistics TRL logs as `rewards/<name>/mean` and `rewards/<name>/std`
/// (NaN entries skipped; std Bessel-corrected, NaN with fewer than 2 values).
struct grpo_reward_function_metrics {
  std::vector<float> mean;  ///< per function j, the mean of its non-NaN rewards (NaN if none)
  std::vector<float> std;   ///< per function j, the Bessel std of its non-NaN rewards
  /// `{"rewards/<names[j]>/mean", ...}`; names default to func0, func1, ...
  [[nodiscard]] named_metrics named(std::span<const std::string> names = {}) const {
    named_metrics out;
    for (std::size_t j = 0; j < mean.size(); ++j) {
      const std::string name = j < names.size() ? names[j] : "func" + std::to_string(j);
      out.emplace_back("rewards/" + name + "/mean", mean[j]);
      out.emplace_back("rewards/" + name + "/std", std[j]);
    }
    return out;
  }
};

/// Several reward functions into one reward per completion, as TRL does:
/// out_i = nansum_j(w_j · rewards_per_func[i, j]). NaN marks "this function does not apply
/// to this completion" and counts as 0 (a row of NaN gives 0); ±Inf is a data_error.
/// weights: one per function (host values, GRPOConfig.reward_weights), empty = all 1.
template <class B>
grpo_reward_function_metrics grpo_combine_rewards(const typename B::tensor& rewards_per_func,
                                                  std::span<const float> weights,
                                                  typename B::tensor& out) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "grpo_combine_rewards";
  assert_tensor_backend<B>();
  check_rank(fn, "rewards_per_func", rewards_per_func.shape(), 2, 2);
  const index_t n = rewards_per_func.shape()[0], f = rewards_per_func.shape()[1];
  if (n == 0) throw shape_error("grpo_combine_rewards: batch is empty (rewards_per_func has 0 rows)");
  check_config(f >= 1, fn, "rewards_per_func columns (reward functions)", ">= 1", f);
  check_dim(fn, "out's element count (one per row of rewards_per_func)", out.size(), n);
  std::vector<float> w(static_cast<std::size_t>(f), 1.0f);
  if (!weights.empty()) {
    check_dim(fn, "weights' element count (one per reward function)",
              static_cast<index_t>(weights.size()), f);
    rlhf::check_finite(fn, "weights", weights);
    w.assign(weights.begin(), weights.end());
  }
  grpo_reward_function_metrics m;
  ops::detail::with_host_values<B>(rewards_per_func, [&](std::span<const float> v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (std::isinf(v[i])) {
        throw data_error(rlhf::detail::concat(fn, ": rewards_per_func must be finite or NaN, got ",
                                              v[i], " at flat index ", i));
      }
    }
    for (index_t j = 0; j < f; ++j) {
      double s = 0.0, ss = 0.0;
      index_t count = 0;
      for (index_t i = 0; i < n; ++i) {
        const float x = v[static_cast<std::size_t>(i * f + j)];
        if (!std::isnan(x)) s += x, ++count;
      }
      const double mean = count > 0 ? s / static_cast<double>(count) : std::nan("");
      for (index_t i = 0; i < n; ++i) {
        const float x = v[static_cast<std::size_t>(i * f + j)];
        if (!std::isnan(x)) ss += (x - mean) * (x - mean);
      }
      m.mean.push_back(static_cast<float>(mean));
      m.std.push_back(count > 1 ? static_cast<float>(std::sqrt(ss / static_cast<double>(count - 1)))
                                : std::nanf(""));
    }
  });
  const tensor wt = ops::from_host<B>(std::span<const float>(w), shape{f});
  const float* x = B::data(rewards_per_func);
  const float* wp = B::data(wt);
  float* o = B::data(out);
  B::parallel_for(n, RLHF_LAMBDA(index_t i) {
    float s = 0.0f;
    for (index_t j = 0; j < f; ++j) {
      const float v = x[i * f + j];
      if (!(v != v)) s += wp[j] * v;  // skip NaN
    }
    o[i] = s;
  });
  return m;
}

// --- Loss ------------------------------------------------------------------------------

/// The tensors the GRPO loss reads.
template <class B>
struct grpo_inputs {
  const typename B::tensor& per_token_logps;  ///< (N, T) policy log-probs of the completion tokens
  const typename B::tensor& advantages;       ///< (N,)
  const typename B::tensor& completion_mask;  ///< (N, T) weights >= 0 (0/1 in TRL)
  /// (N, T) log-probs under the policy that sampled; nullptr = on-policy (old = logp
  /// detached: ratio 1, the gradient still flows through logp).
  const typename B::tensor* old_per_token_logps = nullptr;
  /// (N, T) reference log-probs; required when beta > 0 (ignored, but checked, otherwise).
  const typename B::tensor* ref_per_token_logps = nullptr;
  /// dapo's normaliser: the completion tokens of the whole generation batch (TRL's
  /// num_items_in_batch / num_processes); unset = Σ completion_mask of this batch
  /// (clamped to >= 1).
  std::optional<float> num_items_in_batch = std::nullopt;
};

/// TRL's GRPO loss metrics: clip fractions and the KL.
struct grpo_metrics {
  float clip_ratio_low_mean = 0;     ///< fraction of tokens (sequences) with c1 < 1-ε_low, A < 0
  float clip_ratio_high_mean = 0;    ///< the same fraction with c1 > 1+ε_high, A > 0
  float clip_ratio_region_mean = 0;  ///< the fraction in either of the two
  float kl = 0;                      ///< masked token mean of k3 (only when beta > 0)
  bool has_kl = false;               ///< whether kl was computed (beta > 0) and is reported
  /// TRL's names. clip_ratio/low_min and clip_ratio/high_max are TRL's min / max over
  /// processes; for one process they equal the means.
  [[nodiscard]] named_metrics named() const {
    named_metrics m{{"clip_ratio/low_mean", clip_ratio_low_mean},
                    {"clip_ratio/low_min", clip_ratio_low_mean},
                    {"clip_ratio/high_mean", clip_ratio_high_mean},
                    {"clip_ratio/high_max", clip_ratio_high_mean},
                    {"clip_ratio/region_mean", clip_ratio_region_mean}};
    if (has_kl) m.emplace_back("kl", kl);
    return m;
  }
};

/// What the GRPO loss returns.
template <class B>
struct grpo_result {
  float loss = 0;  ///< the per-token losses aggregated by loss_type, as a host value
  /// (N, T) l_it = -min(c1·A, c2·A) + β·k3 on completion tokens, 0 where the mask is 0.
  typename B::tensor per_token_loss;
  /// (N, T) d loss / d per_token_logps (0 where the mask is 0).
  typename B::tensor grad_per_token_logps;
  grpo_metrics metrics;  ///< TRL's metrics of the batch
};

namespace detail {
/// ε checks shared by GRPO and RLOO; returns ε_high.
inline float check_clip_epsilons(std::string_view fn, float epsilon,
                                 const std::optional<float>& epsilon_high) {
  check_config(std::isfinite(epsilon) && epsilon > 0.0f && epsilon < 1.0f, fn, "epsilon",
               "in (0, 1)", epsilon);
  const float hi = epsilon_high.value_or(epsilon);
  check_config(std::isfinite(hi) && hi > 0.0f, fn, "epsilon_high", "finite and > 0", hi);
  return hi;
}
}  // namespace detail

/// GRPO loss, d loss / d per_token_logps and TRL's metrics.
template <class B>
grpo_result<B> grpo_loss(const grpo_inputs<B>& in, const grpo_config& cfg = {}) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "grpo_loss";
  assert_tensor_backend<B>();
  check_rank(fn, "per_token_logps", in.per_token_logps.shape(), 2, 2);
  const index_t n = in.per_token_logps.shape()[0], t_len = in.per_token_logps.shape()[1];
  check_same_shape(fn, "completion_mask", in.completion_mask.shape(), "per_token_logps",
                   in.per_token_logps.shape());
  check_shape(fn, "advantages", in.advantages.shape(), shape{n}, "one per sequence");
  if (in.old_per_token_logps) {
    check_same_shape(fn, "old_per_token_logps", in.old_per_token_logps->shape(),
                     "per_token_logps", in.per_token_logps.shape());
  }
  if (in.ref_per_token_logps) {
    check_same_shape(fn, "ref_per_token_logps", in.ref_per_token_logps->shape(),
                     "per_token_logps", in.per_token_logps.shape());
  }
  if (n == 0) throw shape_error("grpo_loss: batch is empty (per_token_logps has 0 sequences)");
  if (t_len == 0) {
    throw shape_error("grpo_loss: completions are empty (per_token_logps has 0 tokens per row)");
  }
  check_config(std::isfinite(cfg.beta) && cfg.beta >= 0.0f, fn, "beta", "finite and >= 0",
               cfg.beta);
  const float lo = 1.0f - cfg.epsilon;
  const float hi = 1.0f + detail::check_clip_epsilons(fn, cfg.epsilon, cfg.epsilon_high);
  if (cfg.delta) {
    check_config(std::isfinite(*cfg.delta) && *cfg.delta > hi, fn, "delta",
                 rlhf::detail::concat("finite and > 1 + epsilon_high = ", hi), *cfg.delta);
  }
  check_enum(fn, "importance_sampling_level", cfg.importance_sampling_level, 2);
  check_enum(fn, "loss_type", cfg.loss_type, 4);
  if (cfg.loss_type == grpo_loss_type::dr_grpo) {
    check_config(cfg.max_completion_length >= 1, fn, "max_completion_length",
                 ">= 1 (loss_type dr_grpo divides by it)", cfg.max_completion_length);
  }
  if (cfg.beta > 0.0f && !in.ref_per_token_logps) {
    throw config_error(rlhf::detail::concat(
        fn, ": ref_per_token_logps is required when beta > 0, got beta = ", cfg.beta,
        " and no ref_per_token_logps"));
  }
  if (in.num_items_in_batch) {
    check_config(std::isfinite(*in.num_items_in_batch) && *in.num_items_in_batch > 0.0f, fn,
                 "num_items_in_batch", "finite and > 0", *in.num_items_in_batch);
  }
  ops::check_finite<B>(fn, "per_token_logps", in.per_token_logps);
  ops::check_finite<B>(fn, "advantages", in.advantages);
  ops::check_mask<B>(fn, "completion_mask", in.completion_mask);
  if (in.old_per_token_logps) ops::check_finite<B>(fn, "old_per_token_logps", *in.old_per_token_logps);
  if (in.ref_per_token_logps) ops::check_finite<B>(fn, "ref_per_token_logps", *in.ref_per_token_logps);

  const float total_tokens = ops::sum<B>(in.completion_mask);
  const float total1 = total_tokens > 1.0f ? total_tokens : 1.0f;  // TRL's clamp(min=1)
  const float fn_ = static_cast<float>(n);
  // Weight of one unit of mask in the loss, for the aggregations with a global divisor.
  float inv_global = 0.0f;
  switch (cfg.loss_type) {
    case grpo_loss_type::grpo: break;  // per row: 1 / (N · max(Σ_t m, 1))
    case grpo_loss_type::bnpo: inv_global = 1.0f / total1; break;
    case grpo_loss_type::dr_grpo:
      inv_global = 1.0f / (fn_ * static_cast<float>(cfg.max_completion_length));
      break;
    case grpo_loss_type::dapo: inv_global = 1.0f / in.num_items_in_batch.value_or(total1); break;
  }

  grpo_result<B> r{0.0f, tensor(shape{n, t_len}), tensor(shape{n, t_len}), {}};
  tensor stats(shape{5, n});  // loss, low, high, region, Σ m·k3
  const float* lp = B::data(in.per_token_logps);
  const float* adv = B::data(in.advantages);
  const float* mk = B::data(in.completion_mask);
  const float* old = in.old_per_token_logps ? B::data(*in.old_per_token_logps) : nullptr;
  const bool use_kl = cfg.beta > 0.0f;
  const float* ref = use_kl ? B::data(*in.ref_per_token_logps) : nullptr;
  float* ptl = B::data(r.per_token_loss);
  float* grad = B::data(r.grad_per_token_logps);
  float* st = B::data(stats);
  const bool per_row = cfg.loss_type == grpo_loss_type::grpo;
  const bool sequence = cfg.importance_sampling_level == grpo_importance_sampling_level::sequence;
  const bool has_delta = cfg.delta.has_value();
  const float delta = cfg.delta.value_or(0.0f);
  const float beta = cfg.beta;
  const index_t tl = t_len;
  B::parallel_for(n, RLHF_LAMBDA(index_t i) {
    const index_t base = i * tl;
    double mcount = 0.0;  // Σ m in double: a float count stops growing at 2^24
    float xsum = 0.0f;
    for (index_t t = 0; t < tl; ++t) {
      const float m = mk[base + t];
      if (m != 0.0f) {
        mcount += m;
        if (sequence && old) xsum += m * (lp[base + t] - old[base + t]);
      }
    }
    const float msum = static_cast<float>(mcount);
    const float msum1 = msum > 1.0f ? msum : 1.0f;
    const float w = per_row ? 1.0f / (fn_ * msum1) : inv_global;  // d loss / d (m·l)
    const float a = adv[i];
    float row_loss = 0.0f, low = 0.0f, high = 0.0f, kl_sum = 0.0f;
    losses::detail::surrogate_term seq{};
    if (sequence) {
      seq = losses::detail::clipped_surrogate(xsum / msum1, a, lo, hi, has_delta, delta);
      row_loss = w * msum * seq.loss;
      low = seq.low_clipped ? 1.0f : 0.0f;
      high = seq.high_clipped ? 1.0f : 0.0f;
    }
    // Sequence level: every token's logp moves x_i by m_t / max(Σ m, 1).
    const float seq_grad = sequence ? w * msum * seq.dloss_dx / msum1 : 0.0f;
    for (index_t t = 0; t < tl; ++t) {
      const index_t k = base + t;
      const float m = mk[k];
      if (m == 0.0f) {
        ptl[k] = 0.0f;
        grad[k] = 0.0f;
        continue;
      }
      float l, g;
      if (sequence) {
        l = seq.loss;
        g = seq_grad * m;
      } else {
        const auto s = losses::detail::clipped_surrogate(old ? lp[k] - old[k] : 0.0f, a, lo, hi,
                                                         has_delta, delta);
        l = s.loss;
        g = w * m * s.dloss_dx;
        row_loss += w * m * l;
        low += s.low_clipped ? m : 0.0f;
        high += s.high_clipped ? m : 0.0f;
      }
      if (use_kl) {
        const auto kl = losses::detail::k3_kl(lp[k], ref[k]);
        l += beta * kl.value;
        g += w * m * beta * kl.dvalue_dlogp;
        row_loss += w * m * beta * kl.value;
        kl_sum += m * kl.value;
      }
      ptl[k] = l;
      grad[k] = g;
    }
    st[0 * n + i] = row_loss;
    st[1 * n + i] = low;
    st[2 * n + i] = high;
    // Low needs A < 0 and high A > 0, so a token is never both: region = low + high.
    st[3 * n + i] = low + high;
    st[4 * n + i] = kl_sum;
  });
  const std::vector<float> sums = ops::row_sums_to_host<B>(stats);
  r.loss = sums[0];
  // TRL's masked_batch_mean: over tokens (token level) or over sequences (sequence level).
  const float clip_den = sequence ? fn_ : total1;
  r.metrics.clip_ratio_low_mean = sums[1] / clip_den;
  r.metrics.clip_ratio_high_mean = sums[2] / clip_den;
  r.metrics.clip_ratio_region_mean = sums[3] / clip_den;
  r.metrics.has_kl = use_kl;
  r.metrics.kl = use_kl ? sums[4] / total1 : 0.0f;
  return r;
}

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
