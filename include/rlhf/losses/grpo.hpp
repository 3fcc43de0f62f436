// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// GRPO (Shao et al. 2024) with TRL GRPOTrainer's options: group-relative advantages
// (scale_rewards group / batch / none = Dr. GRPO; or GDPO's normalize_then_sum of several
// reward functions), token- or sequence-level (GSPO) importance weights, DAPO's asymmetric
// clipping, two-sided clipping (delta), the k3 KL penalty (bias-corrected by the ratio),
// TRL 1.16's eight loss types, entropy masking, off-policy sequence masking and the entropy
// bonus. docs/algorithms/grpo.md.
//
//   A_i   = (r_i - nanmean_group(r)) / (std + 1e-4)     (nanstd: group or batch; none: no division;
//                                                       NaN = unscorable reward → A_i = 0)
//   normalize_then_sum: z_ik = per-group z-score of function k; s_i = nansum_k w_k·z_ik;
//                       A_i = (s_i - nanmean(s)) / (nanstd(s) + 1e-4) over the batch
//   x_it  = logp_it - old_it                            (token)   or
//   x_i   = Σ_t m·(logp - old) / max(Σ_t m, 1)          (sequence, broadcast over the row)
//   c1    = e^x (then min(c1, delta) when delta is set),  c2 = clamp(e^x, 1 - ε_low, 1 + ε_high)
//   p_it  = -min(c1·A_i, c2·A_i)                       grpo, bnpo, dr_grpo, dapo, luspo
//           -sg(min(e^x, ε_high))·A_i·logp_it           cispo (MiniMax-M1)
//           -(4/τ)·σ(τ·(e^x - 1))·A_i, τ by A_i > 0     sapo
//           -sg(φ_i)·A_i·logp_it                        vespo (φ: Gamma weight of Σ_t log ρ)
//   l_it  = p_it·keep_i·E_it·is_it + β·k3_it·[e^x]      (sg = detached; keep: OPSM; E: entropy
//                                                       mask; is: vLLM ratio; [·]: bias corr.)
//   loss  = grpo, sapo: mean_i(Σ_t m·l / max(Σ_t m, 1))    bnpo: Σ m·l / max(Σ m, 1)
//           dr_grpo: Σ m·l / (N·max_completion_length)  luspo: mean_i(Σ_t m·l)
//           dapo, cispo, vespo: Σ m·l / num_items_in_batch
//           [- entropy_coef · Σ m·E·h / max(Σ m·E, 1)]   (h: the entropies)
//
// Groups are contiguous blocks of G completions (TRL repeats each prompt G times in a
// row), so the rewards of prompt p are rewards[p·G .. p·G + G - 1].
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/math.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/core/validation.hpp"
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
/// GRPOConfig.loss_type; TRL's default is "dapo". grpo .. dapo and luspo use the clipped
/// surrogate; cispo, sapo and vespo re-weight it (docs/algorithms/grpo.md).
enum class grpo_loss_type { grpo, bnpo, dr_grpo, dapo, cispo, sapo, luspo, vespo };
/// GRPOConfig.multi_objective_aggregation: how several reward functions become advantages.
/// sum_then_normalize (default): weighted sum, then the scale_rewards normalisation;
/// normalize_then_sum (GDPO, arXiv 2601.05242): each function normalised per group, weighted
/// sum, then one batch-level normalisation (scale_rewards ignored).
enum class grpo_multi_objective_aggregation { sum_then_normalize, normalize_then_sum };

namespace detail::grpo {

/// The policy term l_it of a loss type (formulas in the file header).
enum class policy_term : std::uint8_t {
  clipped,  ///< -min(c1·A, c2·A); reports the clip_ratio metrics; takes delta
  sapo,     ///< SAPO's soft gate
  cispo,    ///< -sg(min(e^x, ε_high))·A·logp; reports cispo_clip_ratio
  vespo,    ///< -sg(φ_i)·A·logp; reports vespo/phi_seq_mean
};

/// How the per-token losses l_it become the loss.
enum class aggregation : std::uint8_t {
  row_mean,      ///< mean_i(Σ_t m·l / max(Σ_t m, 1))
  token_mean,    ///< Σ m·l / max(Σ m, 1)
  fixed_length,  ///< Σ m·l / (N·max_completion_length)
  items,         ///< Σ m·l / num_items_in_batch (default Σ m)
  row_sum_mean,  ///< mean_i(Σ_t m·l)
};

/// One row of grpo_types: what grpo_loss does for a loss type.
struct type_traits {
  grpo_loss_type type;    ///< entry i of grpo_types is value i
  std::string_view name;  ///< TRL's spelling (a string literal)
  policy_term term;       ///< the policy term
  aggregation agg;        ///< the reduction to the loss
};

/// Every GRPO loss type.
inline constexpr auto grpo_types = std::to_array<type_traits>({
    {grpo_loss_type::grpo, "grpo", policy_term::clipped, aggregation::row_mean},
    {grpo_loss_type::bnpo, "bnpo", policy_term::clipped, aggregation::token_mean},
    {grpo_loss_type::dr_grpo, "dr_grpo", policy_term::clipped, aggregation::fixed_length},
    {grpo_loss_type::dapo, "dapo", policy_term::clipped, aggregation::items},
    {grpo_loss_type::cispo, "cispo", policy_term::cispo, aggregation::items},
    {grpo_loss_type::sapo, "sapo", policy_term::sapo, aggregation::row_mean},
    {grpo_loss_type::luspo, "luspo", policy_term::clipped, aggregation::row_sum_mean},
    {grpo_loss_type::vespo, "vespo", policy_term::vespo, aggregation::items},
});

/// True when entry i of grpo_types is the enumerator i.
constexpr bool grpo_types_in_enum_order() {
  for (std::size_t i = 0; i < grpo_types.size(); ++i) {
    if (static_cast<std::size_t>(grpo_types[i].type) != i) return false;
  }
  return true;
}
static_assert(grpo_types_in_enum_order(), "entry i of grpo_types must be grpo_loss_type value i");
static_assert(grpo_types.size() == static_cast<std::size_t>(grpo_loss_type::vespo) + 1,
              "one grpo_types entry per grpo_loss_type (vespo is the last enumerator)");

/// The row of a loss type (a value outside the enum is refused before this is asked).
constexpr const type_traits& traits(grpo_loss_type t) {
  return grpo_types[static_cast<std::size_t>(t)];
}

}  // namespace detail::grpo

}  // namespace losses

/// TRL's names of GRPOConfig.scale_rewards (TRL also accepts the booleans: aliases).
template <>
struct enum_names<losses::grpo_scale_rewards> {
  /// Every value with its name, in declaration order.
  static constexpr std::array<enum_name<losses::grpo_scale_rewards>, 3> values{{
      {losses::grpo_scale_rewards::group, "group"},
      {losses::grpo_scale_rewards::batch, "batch"},
      {losses::grpo_scale_rewards::none, "none"},
  }};
  /// True is group, False is none.
  static constexpr std::array<enum_name<losses::grpo_scale_rewards>, 4> aliases{{
      {losses::grpo_scale_rewards::group, "true"},
      {losses::grpo_scale_rewards::group, "True"},
      {losses::grpo_scale_rewards::none, "false"},
      {losses::grpo_scale_rewards::none, "False"},
  }};
};
static_assert(enum_table_covers<losses::grpo_scale_rewards>(3));

/// TRL's names of GRPOConfig.importance_sampling_level.
template <>
struct enum_names<losses::grpo_importance_sampling_level> {
  /// Every value with its name, in declaration order.
  static constexpr std::array<enum_name<losses::grpo_importance_sampling_level>, 2> values{{
      {losses::grpo_importance_sampling_level::token, "token"},
      {losses::grpo_importance_sampling_level::sequence, "sequence"},
  }};
};
static_assert(enum_table_covers<losses::grpo_importance_sampling_level>(2));

/// TRL's names of GRPOConfig.loss_type, from detail::grpo::grpo_types.
template <>
struct enum_names<losses::grpo_loss_type> {
  /// Every loss type with its name, in declaration order.
  static constexpr auto values = enum_names_from<losses::grpo_loss_type>(
      losses::detail::grpo::grpo_types);
};
static_assert(enum_table_covers<losses::grpo_loss_type>(losses::detail::grpo::grpo_types.size()));

/// TRL's names of GRPOConfig.multi_objective_aggregation.
template <>
struct enum_names<losses::grpo_multi_objective_aggregation> {
  /// Every value with its name, in declaration order.
  static constexpr std::array<enum_name<losses::grpo_multi_objective_aggregation>, 2> values{{
      {losses::grpo_multi_objective_aggregation::sum_then_normalize, "sum_then_normalize"},
      {losses::grpo_multi_objective_aggregation::normalize_then_sum, "normalize_then_sum"},
  }};
};
static_assert(enum_table_covers<losses::grpo_multi_objective_aggregation>(2));

namespace losses {

/// TRL's name of a scale_rewards value.
inline const char* to_string(grpo_scale_rewards v) { return rlhf::to_string(v).data(); }
/// TRL's name of an importance sampling level.
inline const char* to_string(grpo_importance_sampling_level v) { return rlhf::to_string(v).data(); }
/// TRL's name of a loss type.
inline const char* to_string(grpo_loss_type v) { return rlhf::to_string(v).data(); }
/// TRL's name of a multi-objective aggregation.
inline const char* to_string(grpo_multi_objective_aggregation v) {
  return rlhf::to_string(v).data();
}

/// "group" / "true", "batch", "none" / "false" (TRL accepts the booleans too).
inline grpo_scale_rewards parse_grpo_scale_rewards(std::string_view s) {
  return rlhf::enum_from_string<grpo_scale_rewards>(s, "parse_grpo_scale_rewards", "scale_rewards");
}
/// "token" or "sequence"; anything else is a config_error.
inline grpo_importance_sampling_level parse_grpo_importance_sampling_level(std::string_view s) {
  return rlhf::enum_from_string<grpo_importance_sampling_level>(
      s, "parse_grpo_importance_sampling_level", "importance_sampling_level");
}
/// One of TRL's eight loss_type names; anything else is a config_error.
inline grpo_loss_type parse_grpo_loss_type(std::string_view s) {
  return rlhf::enum_from_string<grpo_loss_type>(s, "parse_grpo_loss_type", "loss_type");
}
/// "sum_then_normalize" or "normalize_then_sum"; anything else is a config_error.
inline grpo_multi_objective_aggregation parse_grpo_multi_objective_aggregation(std::string_view s) {
  return rlhf::enum_from_string<grpo_multi_objective_aggregation>(
      s, "parse_grpo_multi_objective_aggregation", "multi_objective_aggregation");
}

/// TRL GRPOConfig's loss options, names and defaults as TRL has them (TRL >= 0.22/1.x).
struct grpo_config {
  /// G, completions per prompt (TRL default 8; grpo_advantages only). 1 is TRL's
  /// num_generations_eval = 1 case: every advantage is 0.
  index_t num_generations = 8;
  /// How grpo_advantages scales r - mean_group (TRL default "group"); ignored under
  /// normalize_then_sum.
  grpo_scale_rewards scale_rewards = grpo_scale_rewards::group;
  /// How grpo_advantages combines several reward functions (TRL default
  /// sum_then_normalize); normalize_then_sum requires grpo_advantage_inputs::rewards_per_func.
  grpo_multi_objective_aggregation multi_objective_aggregation =
      grpo_multi_objective_aggregation::sum_then_normalize;
  /// KL coefficient; TRL's default 0.0 (no reference model). > 0 requires
  /// ref_per_token_logps.
  float beta = 0.0f;
  /// ε_low: lower clip bound 1 - epsilon; in (0, 1).
  float epsilon = 0.2f;
  /// ε_high: upper clip bound 1 + epsilon_high; unset = epsilon (DAPO recommends 0.28).
  /// For loss_type cispo it is the cap ε_max of the ratio itself, not 1 + ε (ScaleRL
  /// recommends 5.0; TRL's fallback to epsilon makes the default cap 0.2).
  std::optional<float> epsilon_high;
  /// Two-sided clipping (INTELLECT-2): caps coef1 at delta; unset = off. Must be finite and
  /// > 1 + epsilon_high (TRL's documented range): a lower cap would cut the ratio inside the
  /// clip range and silently zero the gradient there, so it is a config_error. Only the
  /// clipped loss types (grpo, bnpo, dr_grpo, dapo, luspo) read it (and check it).
  std::optional<float> delta;
  /// SAPO's gate temperature τ for A > 0 (TRL default 1.0); finite, > 0.
  float sapo_temperature_pos = 1.0f;
  /// SAPO's gate temperature τ for A <= 0 (TRL default 1.05); finite, > 0.
  float sapo_temperature_neg = 1.05f;
  /// VESPO's power k for A >= 0 (TRL default 2.0); finite.
  float vespo_k_pos = 2.0f;
  /// VESPO's decay λ for A >= 0 (TRL default 3.0); finite, used as max(λ, 1e-4).
  float vespo_lambda_pos = 3.0f;
  /// VESPO's power k for A < 0 (TRL default 3.0); finite.
  float vespo_k_neg = 3.0f;
  /// VESPO's decay λ for A < 0 (TRL default 2.0); finite, used as max(λ, 1e-4).
  float vespo_lambda_neg = 2.0f;
  /// ρ of "Beyond the 80/20 rule" (Wang et al. 2025): the policy term keeps only tokens
  /// whose entropy is at least the (1 - ρ) quantile of the batch's; in [0, 1], 1 = off
  /// (TRL default). < 1 requires grpo_inputs::entropies.
  float top_entropy_quantile = 1.0f;
  /// δ of DeepSeek-V3.2's off-policy sequence masking: a sequence with A < 0 whose mean
  /// log(π_sampler / π) exceeds δ gets no policy term; unset = off (TRL default). Finite.
  std::optional<float> off_policy_mask_threshold;
  /// Multiply the k3 term by the (differentiable) importance ratio, DeepSeek-V3.2's unbiased
  /// KL gradient (TRL >= 1.x default true; false = the k3 term of earlier TRL).
  bool use_bias_correction_kl = true;
  /// Entropy bonus: loss -= entropy_coef · (mean entropy over the policy term's tokens)
  /// (TRL default 0.0 = off); finite. Non-zero requires grpo_inputs::entropies.
  float entropy_coef = 0.0f;
  /// Token-level ratios (GRPO) or one length-normalised ratio per sequence (GSPO).
  grpo_importance_sampling_level importance_sampling_level = grpo_importance_sampling_level::token;
  /// How the masked per-token losses are aggregated into the loss (see the file header).
  grpo_loss_type loss_type = grpo_loss_type::dapo;
  /// The dr_grpo constant (TRL default 512).
  index_t max_completion_length = 512;
};

// --- Advantages ------------------------------------------------------------------------
//
// TRL 1.16's definitions (_generate_and_score_completions). A NaN reward marks an
// unscorable completion (TRL: every reward function returned None): it is left out of every
// mean and std and its advantage is 0.

namespace detail {

/// ±Inf in t is a data_error naming arg; NaN (an unscorable completion) is allowed.
template <class B>
void check_finite_or_nan(std::string_view fn, std::string_view arg, const typename B::tensor& t) {
  if (!validating(validation::full)) return;
  ops::detail::with_host_values<B>(t, [&](std::span<const float> v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (std::isinf(v[i])) {
        throw data_error(rlhf::detail::concat(fn, ": ", arg, " must be finite or NaN, got ", v[i],
                                              " at flat index ", i));
      }
    }
  });
}

/// TRL's nanmean and nanstd of every entry of x (trainer/utils.py): NaN entries are skipped,
/// the std is Bessel-corrected; the mean of no values and the std of fewer than 2 are NaN.
struct nan_moments {
  float mean = 0;     ///< nanmean
  float std = 0;      ///< nanstd
  index_t count = 0;  ///< the non-NaN entries
};

/// nan_moments of the (any shape) tensor x: two passes on B, two small host copies.
template <class B>
nan_moments nan_moments_of(const typename B::tensor& x) {
  using tensor = typename B::tensor;
  const index_t n = x.size();
  const float nan = std::nanf("");
  nan_moments m{nan, nan, 0};
  if (n == 0) return m;
  tensor stats(shape{2, n});  // value (0 where NaN), 1 where not NaN
  const float* xp = B::data(x);
  float* st = B::data(stats);
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        const float v = xp[i];
        st[i] = v == v ? v : 0.0f;
        st[n + i] = v == v ? 1.0f : 0.0f;
      });
  const std::vector<float> sums = ops::row_sums_to_host<B>(stats);
  m.count = static_cast<index_t>(sums[1]);
  if (m.count == 0) return m;
  m.mean = sums[0] / sums[1];
  if (m.count < 2) return m;
  tensor dev(shape{n});
  float* d = B::data(dev);
  const float mean = m.mean;
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        const float v = xp[i];
        d[i] = v == v ? (v - mean) * (v - mean) : 0.0f;
      });
  m.std = std::sqrt(ops::sum<B>(dev) / (sums[1] - 1.0f));
  return m;
}

}  // namespace detail

/// The tensor grpo_advantages reads.
template <class B>
struct grpo_advantage_inputs {
  /// (N,) one reward per completion; NaN = unscorable. Under normalize_then_sum: the
  /// grpo_combine_rewards output of rewards_per_func (the raw weighted sum TRL logs).
  const typename B::tensor& rewards;
  /// (N, F) the reward functions' scores (NaN = that function does not apply), for
  /// normalize_then_sum only (required there, ignored otherwise).
  const typename B::tensor* rewards_per_func = nullptr;
  /// One weight per reward function (host values, TRL's reward_weights), empty = all 1;
  /// normalize_then_sum only.
  std::span<const float> reward_weights = {};
};

/// What TRL 1.16 logs when it computes the advantages, plus rlhf++'s count of unscorable
/// completions. A statistic over no values is NaN, as in TRL (whose log() drops NaN).
struct grpo_advantage_metrics {
  float reward = 0;      ///< nanmean of the rewards (NaN if every completion is unscorable)
  float reward_std = 0;  ///< nanstd of all N rewards (NaN with fewer than 2 scorable)
  /// Fraction of completions whose std (group's, or batch's under scale_rewards batch) is 0
  /// (torch.isclose: <= 1e-8; a NaN std is not 0).
  float frac_reward_zero_std = 0;
  index_t num_unscorable = 0;        ///< rlhf++'s (not TRL's): completions with reward NaN
  float frac_reward_unscorable = 0;  ///< rlhf++'s (not TRL's): num_unscorable / N
  /// TRL's names, then rlhf++'s frac_reward_unscorable.
  [[nodiscard]] named_metrics named() const {
    return {{"reward", reward},
            {"reward_std", reward_std},
            {"frac_reward_zero_std", frac_reward_zero_std},
            {"frac_reward_unscorable", frac_reward_unscorable}};
  }
};

namespace detail {

/// normalize_then_sum's aggregated rewards (TRL 1.16), into r (N,): per function k and
/// group g, z_ik = (R_ik - nanmean_g(R_k)) / (nanstd_g(R_k) + 1e-4) (NaN stays NaN; the
/// nanstd is 0 when G = 1), then r_i = nansum_k(w_k · z_ik), NaN where rewards_i is NaN.
template <class B>
void grpo_normalized_sum(const typename B::tensor& rewards, const typename B::tensor& per_func,
                         std::span<const float> weights, index_t g, typename B::tensor& r) {
  using tensor = typename B::tensor;
  const index_t n = per_func.shape()[0], f = per_func.shape()[1], groups = n / g;
  std::vector<float> w(static_cast<std::size_t>(f), 1.0f);
  if (!weights.empty()) w.assign(weights.begin(), weights.end());
  const tensor wt = ops::from_host<B>(std::span<const float>(w), shape{f});
  tensor z(shape{n, f});
  const float* x = B::data(per_func);
  const float* wp = B::data(wt);
  const float* raw = B::data(rewards);
  float* zp = B::data(z);
  float* rp = B::data(r);
  const float nan = std::nanf("");
  B::parallel_for(
      groups * f, RLHF_LAMBDA(index_t q) {
        const index_t k = q / f, j = q % f;  // group, function
        float s = 0.0f, c = 0.0f;
        for (index_t u = 0; u < g; ++u) {
          const float v = x[(k * g + u) * f + j];
          if (v == v) s += v, c += 1.0f;
        }
        const float mean = c > 0.0f ? s / c : nan;
        float ss = 0.0f;
        for (index_t u = 0; u < g; ++u) {
          const float v = x[(k * g + u) * f + j];
          if (v == v) ss += (v - mean) * (v - mean);
        }
        const float sd = g == 1 ? 0.0f : (c > 1.0f ? std::sqrt(ss / (c - 1.0f)) : nan);
        for (index_t u = 0; u < g; ++u) {
          const index_t e = (k * g + u) * f + j;
          zp[e] = (x[e] - mean) / (sd + 1e-4f);  // NaN in, or NaN sd: NaN
        }
      });
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        float s = 0.0f;
        for (index_t j = 0; j < f; ++j) {
          const float v = zp[i * f + j];
          if (v == v) s += wp[j] * v;  // nansum
        }
        rp[i] = raw[i] == raw[i] ? s : nan;  // unscorable stays NaN
      });
}

}  // namespace detail

/// Group-relative advantages (TRL 1.16) of N = prompts × G rewards in contiguous groups of
/// G = cfg.num_generations, into `out` (N,), which may be `in.rewards` itself. Reads
/// cfg.num_generations, cfg.scale_rewards and cfg.multi_objective_aggregation only.
///
/// sum_then_normalize (TRL's default), on r = in.rewards:
///   A_i = (r_i - nanmean_group(r)) / (σ + 1e-4)     group: σ = nanstd of the group
///                                                   batch: σ = nanstd of all N rewards
///   A_i =  r_i - nanmean_group(r)                    none
/// normalize_then_sum (GDPO), on R = in.rewards_per_func (N, F) and w = in.reward_weights:
///   z_ik = (R_ik - nanmean_group(R_k)) / (nanstd_group(R_k) + 1e-4)   (NaN stays NaN)
///   s_i  = nansum_k(w_k · z_ik)   (NaN if unscorable: in.rewards_i is NaN)
///   A_i  = (s_i - nanmean(s)) / (nanstd(s) + 1e-4)   over the whole batch; scale_rewards
///                                                     is ignored
/// then A_i = 0 wherever that is NaN (TRL's nan_to_num): unscorable completions, groups
/// with no scorable completion, and under group scaling groups with exactly one (the
/// nanstd of one value is NaN). G = 1 (or N = 1 for a batch std) uses σ = 0. The metrics
/// are of in.rewards either way (TRL logs the raw weighted sum).
template <class B>
grpo_advantage_metrics grpo_advantages(const grpo_advantage_inputs<B>& in, const grpo_config& cfg,
                                       typename B::tensor& out) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "grpo_advantages";
  assert_tensor_backend<B>();
  check_rank(fn, "rewards", in.rewards.shape(), 1, 1);
  const index_t n = in.rewards.size();
  if (n == 0) throw shape_error("grpo_advantages: batch is empty (rewards has 0 completions)");
  check_config(cfg.num_generations >= 1, fn, "num_generations", ">= 1", cfg.num_generations);
  check_enum(fn, "scale_rewards", cfg.scale_rewards);
  if (n % cfg.num_generations != 0) {
    throw shape_error(rlhf::detail::concat(fn, ": num_generations (", cfg.num_generations,
                                           ") must divide the number of rewards (", n, ")"));
  }
  check_enum(fn, "multi_objective_aggregation", cfg.multi_objective_aggregation);
  check_dim(fn, "out's element count (one per reward)", out.size(), n);
  detail::check_finite_or_nan<B>(fn, "rewards", in.rewards);

  // Batch statistics before anything is written: `out` may alias the rewards.
  const detail::nan_moments batch = detail::nan_moments_of<B>(in.rewards);
  grpo_advantage_metrics m;
  m.reward = batch.mean;
  m.reward_std = batch.std;
  m.num_unscorable = n - batch.count;
  m.frac_reward_unscorable = static_cast<float>(m.num_unscorable) / static_cast<float>(n);
  if (cfg.multi_objective_aggregation == grpo_multi_objective_aggregation::normalize_then_sum) {
    if (in.rewards_per_func == nullptr) {
      throw config_error(
          "grpo_advantages: rewards_per_func is required when multi_objective_aggregation is "
          "normalize_then_sum, got none");
    }
    const tensor& per_func = *in.rewards_per_func;
    check_rank(fn, "rewards_per_func", per_func.shape(), 2, 2);
    check_dim(fn, "rewards_per_func rows (one per reward)", per_func.shape()[0], n);
    const index_t f = per_func.shape()[1];
    check_config(f >= 1, fn, "rewards_per_func columns (reward functions)", ">= 1", f);
    if (!in.reward_weights.empty()) {
      check_dim(fn, "reward_weights' element count (one per reward function)",
                static_cast<index_t>(in.reward_weights.size()), f);
      rlhf::check_finite(fn, "reward_weights", in.reward_weights);
    }
    detail::check_finite_or_nan<B>(fn, "rewards_per_func", per_func);
    // rewards must be what grpo_combine_rewards makes of rewards_per_func: NaN exactly on
    // the rows no function scored.
    ops::detail::with_host_values<B>(per_func, [&](std::span<const float> v) {
      ops::detail::with_host_values<B>(in.rewards, [&](std::span<const float> r) {
        for (index_t i = 0; i < n; ++i) {
          bool scored = false;
          for (index_t j = 0; j < f; ++j) {
            scored = scored || !std::isnan(v[static_cast<std::size_t>(i * f + j)]);
          }
          if (scored == std::isnan(r[static_cast<std::size_t>(i)])) {
            throw data_error(rlhf::detail::concat(
                fn, ": rewards[", i, "] = ", r[static_cast<std::size_t>(i)],
                " disagrees with rewards_per_func row ", i, ", which ",
                scored ? "has a score" : "is all NaN (unscorable)",
                "; pass grpo_combine_rewards' output of rewards_per_func as rewards"));
          }
        }
      });
    });
    tensor s(shape{n});
    detail::grpo_normalized_sum<B>(in.rewards, per_func, in.reward_weights, cfg.num_generations, s);
    const detail::nan_moments sm = detail::nan_moments_of<B>(s);
    const float sd = n > 1 ? sm.std : 0.0f;              // NaN with < 2 scorable
    m.frac_reward_zero_std = sd <= 1e-8f ? 1.0f : 0.0f;  // isclose, false for NaN
    const float mean = sm.mean, den = sd + 1e-4f;
    const float* sp = B::data(s);
    float* o = B::data(out);
    B::parallel_for(
        n, RLHF_LAMBDA(index_t i) {
          const float a = (sp[i] - mean) / den;
          o[i] = a == a ? a : 0.0f;
        });
    return m;
  }

  const index_t g = cfg.num_generations, groups = n / g;
  tensor group_mean(shape{groups}), group_std(shape{groups}), zero_std(shape{groups});
  const float* r = B::data(in.rewards);
  float* gm = B::data(group_mean);
  float* gs = B::data(group_std);
  float* zs = B::data(zero_std);
  const float nan = std::nanf("");
  B::parallel_for(
      groups, RLHF_LAMBDA(index_t k) {
        const float* x = r + k * g;
        float s = 0.0f, c = 0.0f;
        for (index_t j = 0; j < g; ++j) {
          if (x[j] == x[j]) s += x[j], c += 1.0f;
        }
        const float mean = c > 0.0f ? s / c : nan;
        float ss = 0.0f;
        for (index_t j = 0; j < g; ++j) {
          if (x[j] == x[j]) ss += (x[j] - mean) * (x[j] - mean);
        }
        const float sd = g == 1 ? 0.0f : (c > 1.0f ? std::sqrt(ss / (c - 1.0f)) : nan);
        gm[k] = mean;
        gs[k] = sd;
        zs[k] = sd <= 1e-8f ? 1.0f : 0.0f;  // false for NaN
      });

  const float batch_std = n > 1 ? batch.std : 0.0f;
  if (cfg.scale_rewards == grpo_scale_rewards::batch) {
    m.frac_reward_zero_std = batch_std <= 1e-8f ? 1.0f : 0.0f;
  } else {
    m.frac_reward_zero_std = ops::sum<B>(zero_std) / static_cast<float>(groups);
  }

  float* o = B::data(out);
  const int mode = static_cast<int>(cfg.scale_rewards);
  constexpr int by_group = static_cast<int>(grpo_scale_rewards::group);
  constexpr int by_batch = static_cast<int>(grpo_scale_rewards::batch);
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        const index_t k = i / g;
        float a = r[i] - gm[k];
        if (mode == by_group) a /= gs[k] + 1e-4f;
        if (mode == by_batch) a /= batch_std + 1e-4f;
        o[i] = a == a ? a : 0.0f;
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

/// Several reward functions into one reward per completion, as TRL 1.16 does:
/// out_i = nansum_j(w_j · rewards_per_func[i, j]). NaN marks "this function does not apply
/// to this completion" (TRL: it returned None) and counts as 0, except that a row of NaN
/// (no function scored the completion) gives NaN: unscorable, which grpo_advantages and
/// rloo_advantages then leave out and give advantage 0. ±Inf is a data_error.
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
  if (n == 0)
    throw shape_error("grpo_combine_rewards: batch is empty (rewards_per_func has 0 rows)");
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
  const float nan = std::nanf("");
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        float s = 0.0f;
        bool scored = false;
        for (index_t j = 0; j < f; ++j) {
          const float v = x[i * f + j];
          if (v == v) s += wp[j] * v, scored = true;  // skip NaN
        }
        o[i] = scored ? s : nan;  // no function scored it: unscorable
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
  /// (clamped to >= 1). Also cispo's and vespo's.
  std::optional<float> num_items_in_batch = std::nullopt;
  /// (N, T) per-token entropies of the current policy (ops/logprobs); required when
  /// top_entropy_quantile < 1 or entropy_coef != 0; when given, the `entropy` metric is
  /// reported.
  const typename B::tensor* entropies = nullptr;
  /// (N, T) log-probs of the sampler (vLLM), for off_policy_mask_threshold only; nullptr =
  /// old_per_token_logps (TRL's fallback). NaN = a token the sampler could not score (no
  /// evidence: counts 0).
  const typename B::tensor* sampling_per_token_logps = nullptr;
  /// TRL's vLLM importance-sampling ratio (N, T) (token_* modes) or (N, 1) (sequence_*
  /// modes), finite and >= 0: multiplies the policy term; for vespo it enters the sequence
  /// weight instead ((N, T) only). nullptr = none (no vLLM correction).
  const typename B::tensor* importance_sampling_ratio = nullptr;
};

/// TRL's GRPO loss metrics: clip fractions (or cispo's / vespo's), KL, entropy.
struct grpo_metrics {
  float clip_ratio_low_mean = 0;     ///< fraction of tokens (sequences) with c1 < 1-ε_low, A < 0
  float clip_ratio_high_mean = 0;    ///< the same fraction with c1 > 1+ε_high, A > 0
  float clip_ratio_region_mean = 0;  ///< the fraction in either of the two
  /// TRL 1.16: min over sequences of each sequence's low-clipped fraction (Σ_t m·low / Σ_t m;
  /// the 0/1 flag at sequence level); rows without tokens are skipped, NaN if all are.
  float clip_ratio_low_min = 0;
  /// TRL 1.16: max over sequences of each sequence's high-clipped fraction (as low_min).
  float clip_ratio_high_max = 0;
  float kl = 0;         ///< masked token mean of k3 (·ratio with bias correction)
  bool has_kl = false;  ///< whether kl was computed (beta > 0) and is reported
  /// cispo: fraction of tokens (sequences) with c1 > ε_high and A > 0.
  float cispo_clip_ratio = 0;
  /// vespo: mean over the N sequences of the Gamma weight φ.
  float vespo_phi_seq_mean = 0;
  float entropy = 0;             ///< masked token mean of the entropies (when given)
  bool has_entropy = false;      ///< whether entropies were given and entropy is reported
  float policy_loss = 0;         ///< the loss before the entropy bonus (entropy_coef != 0)
  bool has_policy_loss = false;  ///< whether entropy_coef != 0 and policy_loss is reported
  /// The loss type the metrics belong to: TRL logs the clip_ratio family for grpo, bnpo,
  /// dr_grpo, dapo and luspo, cispo_clip_ratio for cispo, vespo/phi_seq_mean for vespo and
  /// neither for sapo.
  grpo_loss_type loss_type = grpo_loss_type::dapo;
  /// TRL's names.
  [[nodiscard]] named_metrics named() const {
    named_metrics m;
    const auto type_index = static_cast<std::size_t>(loss_type);
    const auto term = type_index < detail::grpo::grpo_types.size()
                          ? detail::grpo::grpo_types[type_index].term
                          : detail::grpo::policy_term::sapo;  // none of the policy metrics
    switch (term) {
      case detail::grpo::policy_term::cispo:
        m.emplace_back("cispo_clip_ratio", cispo_clip_ratio);
        break;
      case detail::grpo::policy_term::vespo:
        m.emplace_back("vespo/phi_seq_mean", vespo_phi_seq_mean);
        break;
      case detail::grpo::policy_term::clipped:
        m = {{"clip_ratio/low_mean", clip_ratio_low_mean},
             {"clip_ratio/low_min", clip_ratio_low_min},
             {"clip_ratio/high_mean", clip_ratio_high_mean},
             {"clip_ratio/high_max", clip_ratio_high_max},
             {"clip_ratio/region_mean", clip_ratio_region_mean}};
        break;
      case detail::grpo::policy_term::sapo: break;
    }
    if (has_kl) m.emplace_back("kl", kl);
    if (has_entropy) m.emplace_back("entropy", entropy);
    if (has_policy_loss) m.emplace_back("policy_loss", policy_loss);
    return m;
  }
};

/// What the GRPO loss returns.
template <class B>
struct grpo_result {
  /// The per-token losses aggregated by loss_type, minus the entropy bonus, as a host value.
  float loss = 0;
  /// (N, T) l_it = (policy term)·(masks, IS ratio) + β·k3[·c1] on completion tokens, 0 where
  /// the mask is 0 (docs/algorithms/grpo.md).
  typename B::tensor per_token_loss;
  /// (N, T) d loss / d per_token_logps (0 where the mask is 0).
  typename B::tensor grad_per_token_logps;
  grpo_metrics metrics;  ///< TRL's metrics of the batch
  /// (N, T) d loss / d entropies when entropy_coef != 0; otherwise empty (0 elements).
  typename B::tensor grad_entropies;
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

/// TRL's get_high_entropy_mask threshold (one process): torch.quantile of the entropies of
/// the tokens with m != 0 at q = 1 - ρ, in float32 as torch computes it (rank q·(n - 1),
/// linear interpolation by torch's lerp between the order statistics around it); +inf when
/// no token has m != 0 (TRL's all-false mask). Runs on the host.
template <class B>
float entropy_quantile_threshold(const typename B::tensor& entropies,
                                 const typename B::tensor& mask, float q) {
  std::vector<float> vals;
  ops::detail::with_host_values<B>(mask, [&](std::span<const float> m) {
    ops::detail::with_host_values<B>(entropies, [&](std::span<const float> h) {
      for (std::size_t k = 0; k < m.size(); ++k) {
        if (m[k] != 0.0f) vals.push_back(h[k]);
      }
    });
  });
  if (vals.empty()) return INFINITY;
  const float rank = q * static_cast<float>(vals.size() - 1);
  const auto below = static_cast<std::size_t>(rank);
  const float weight = rank - static_cast<float>(below);
  const auto at = [&](std::size_t j) { return static_cast<std::ptrdiff_t>(j); };
  std::nth_element(vals.begin(), vals.begin() + at(below), vals.end());
  const float v0 = vals[below];
  const float v1 = weight > 0.0f ? *std::min_element(vals.begin() + at(below) + 1, vals.end()) : v0;
  return weight < 0.5f ? v0 + weight * (v1 - v0) : v1 - (v1 - v0) * (1.0f - weight);
}
}  // namespace detail

namespace detail {
/// The data_error of a batch whose loss or gradient is not finite (grpo_loss never returns
/// one: an optimizer can do nothing with it). Names the first such token, its log-ratio,
/// advantage and the cause: an overflowing ratio (log-ratio > ~88) unclipped with A < 0 and
/// no delta, or multiplying the k3 term under use_bias_correction_kl.
template <class B>
[[noreturn]] void grpo_throw_non_finite(const grpo_inputs<B>& in, const grpo_result<B>& r,
                                        const grpo_config& cfg, float loss) {
  const auto l = ops::to_host<B>(r.per_token_loss);
  const auto g = ops::to_host<B>(r.grad_per_token_logps);
  const auto lp = ops::to_host<B>(in.per_token_logps);
  const auto adv = ops::to_host<B>(in.advantages);
  const auto mask = ops::to_host<B>(in.completion_mask);
  const std::vector<float> old = in.old_per_token_logps ? ops::to_host<B>(*in.old_per_token_logps)
                                                        : lp;
  const index_t t_len = in.per_token_logps.shape()[1];
  std::size_t k = 0;
  while (k < l.size() && (mask[k] == 0.0f || (std::isfinite(l[k]) && std::isfinite(g[k])))) ++k;
  if (k == l.size()) {
    throw data_error(
        rlhf::detail::concat("grpo_loss: the loss is ", loss,
                             ": the sum of the per-token losses is beyond float's range"));
  }
  const auto i = static_cast<index_t>(k) / t_len, t = static_cast<index_t>(k) % t_len;
  const float a = adv[static_cast<std::size_t>(i)];
  const bool kl = cfg.beta > 0.0f && cfg.use_bias_correction_kl;
  const std::string what = std::isfinite(l[k])
                               ? rlhf::detail::concat("the gradient of sequence ", i, " token ", t,
                                                      " is ", g[k], " (loss ", l[k], ")")
                               : rlhf::detail::concat("the loss of sequence ", i, " token ", t,
                                                      " is ", l[k]);
  throw data_error(rlhf::detail::concat(
      "grpo_loss: ", what, " (TRL returns inf): log-ratio logp - old ", lp[k] - old[k],
      ", advantage ", a, "; an importance ratio e^x beyond float's range (x > 88.7) is unbounded ",
      kl ? "in the bias-corrected KL term β·k3·ratio (use_bias_correction_kl) and " : "",
      "in the clipped surrogate when A < 0 (set delta to cap it); keep the policy closer to the "
      "sampling policy"));
}
}  // namespace detail

namespace detail::grpo {

// ---- validate

/// The shapes: (N, T) per-token inputs, (N,) advantages, N and T >= 1. Returns whether
/// importance_sampling_ratio is one per sequence (N, 1) rather than per token.
template <class B>
bool check_shapes(const char* fn, const grpo_inputs<B>& in) {
  using tensor = typename B::tensor;
  check_rank(fn, "per_token_logps", in.per_token_logps.shape(), 2, 2);
  const index_t n = in.per_token_logps.shape()[0], t_len = in.per_token_logps.shape()[1];
  check_same_shape(fn, "completion_mask", in.completion_mask.shape(), "per_token_logps",
                   in.per_token_logps.shape());
  check_shape(fn, "advantages", in.advantages.shape(), shape{n}, "one per sequence");
  const std::pair<const char*, const tensor*> per_token_inputs[] = {
      {"old_per_token_logps", in.old_per_token_logps},
      {"ref_per_token_logps", in.ref_per_token_logps},
      {"entropies", in.entropies},
      {"sampling_per_token_logps", in.sampling_per_token_logps}};
  for (const auto& [name, t] : per_token_inputs) {
    if (t) check_same_shape(fn, name, t->shape(), "per_token_logps", in.per_token_logps.shape());
  }
  // The vLLM ratio: per token (token_* modes) or one per sequence (sequence_* modes).
  const bool is_per_row = in.importance_sampling_ratio &&
                          in.importance_sampling_ratio->shape() == shape{n, 1} && t_len != 1;
  if (in.importance_sampling_ratio && !is_per_row) {
    check_same_shape(fn, "importance_sampling_ratio", in.importance_sampling_ratio->shape(),
                     "per_token_logps", in.per_token_logps.shape());
  }
  if (n == 0) throw shape_error("grpo_loss: batch is empty (per_token_logps has 0 sequences)");
  if (t_len == 0) {
    throw shape_error("grpo_loss: completions are empty (per_token_logps has 0 tokens per row)");
  }
  return is_per_row;
}

/// The options, each against its documented range. Returns ε_high.
inline float check_options(const char* fn, const grpo_config& cfg) {
  check_config(std::isfinite(cfg.beta) && cfg.beta >= 0.0f, fn, "beta", "finite and >= 0",
               cfg.beta);
  check_enum(fn, "importance_sampling_level", cfg.importance_sampling_level);
  check_enum(fn, "loss_type", cfg.loss_type);
  const type_traits& row = traits(cfg.loss_type);
  const float eps_high = losses::detail::check_clip_epsilons(fn, cfg.epsilon, cfg.epsilon_high);
  const float hi = 1.0f + eps_high;
  if (cfg.delta && row.term == policy_term::clipped) {
    check_config(std::isfinite(*cfg.delta) && *cfg.delta > hi, fn, "delta",
                 rlhf::detail::concat("finite and > 1 + epsilon_high = ", hi), *cfg.delta);
  }
  check_config(std::isfinite(cfg.sapo_temperature_pos) && cfg.sapo_temperature_pos > 0.0f, fn,
               "sapo_temperature_pos", "finite and > 0", cfg.sapo_temperature_pos);
  check_config(std::isfinite(cfg.sapo_temperature_neg) && cfg.sapo_temperature_neg > 0.0f, fn,
               "sapo_temperature_neg", "finite and > 0", cfg.sapo_temperature_neg);
  const std::pair<const char*, float> finite_options[] = {
      {"vespo_k_pos", cfg.vespo_k_pos},
      {"vespo_lambda_pos", cfg.vespo_lambda_pos},
      {"vespo_k_neg", cfg.vespo_k_neg},
      {"vespo_lambda_neg", cfg.vespo_lambda_neg},
      {"entropy_coef", cfg.entropy_coef}};
  for (const auto& [name, v] : finite_options) {
    check_config(std::isfinite(v), fn, name, "finite", v);
  }
  check_config(cfg.top_entropy_quantile >= 0.0f && cfg.top_entropy_quantile <= 1.0f, fn,
               "top_entropy_quantile", "in [0, 1]", cfg.top_entropy_quantile);
  if (cfg.off_policy_mask_threshold) {
    check_config(std::isfinite(*cfg.off_policy_mask_threshold), fn, "off_policy_mask_threshold",
                 "finite", *cfg.off_policy_mask_threshold);
  }
  if (row.agg == aggregation::fixed_length) {
    check_config(cfg.max_completion_length >= 1, fn, "max_completion_length",
                 rlhf::detail::concat(">= 1 (loss_type ", row.name, " divides by it)"),
                 cfg.max_completion_length);
  }
  return eps_high;
}

/// The optional inputs the options ask for, and num_items_in_batch.
template <class B>
void check_requirements(const char* fn, const grpo_inputs<B>& in, const grpo_config& cfg,
                        bool is_per_row) {
  if (cfg.beta > 0.0f && !in.ref_per_token_logps) {
    throw config_error(rlhf::detail::concat(
        fn, ": ref_per_token_logps is required when beta > 0, got beta = ", cfg.beta,
        " and no ref_per_token_logps"));
  }
  if ((cfg.top_entropy_quantile < 1.0f || cfg.entropy_coef != 0.0f) && !in.entropies) {
    throw config_error(rlhf::detail::concat(
        fn,
        ": entropies are required when top_entropy_quantile < 1 or entropy_coef != 0, got "
        "top_entropy_quantile = ",
        cfg.top_entropy_quantile, ", entropy_coef = ", cfg.entropy_coef, " and no entropies"));
  }
  if (traits(cfg.loss_type).term == policy_term::vespo && is_per_row) {
    throw config_error(rlhf::detail::concat(
        "grpo_loss: importance_sampling_ratio of shape (N, 1) (a sequence_* vLLM mode) cannot "
        "be used with loss_type ",
        traits(cfg.loss_type).name,
        ", which sums per-token ratios (TRL requires token_truncate or token_mask)"));
  }
  if (in.num_items_in_batch) {
    check_config(std::isfinite(*in.num_items_in_batch) && *in.num_items_in_batch > 0.0f, fn,
                 "num_items_in_batch", "finite and > 0", *in.num_items_in_batch);
  }
}

/// The values: finite log-probs, advantages and entropies; 0/1 masks; the sampler's
/// log-probs finite or NaN.
template <class B>
void check_values(const char* fn, const grpo_inputs<B>& in) {
  ops::check_finite<B>(fn, "per_token_logps", in.per_token_logps);
  ops::check_finite<B>(fn, "advantages", in.advantages);
  ops::check_mask<B>(fn, "completion_mask", in.completion_mask);
  if (in.old_per_token_logps)
    ops::check_finite<B>(fn, "old_per_token_logps", *in.old_per_token_logps);
  if (in.ref_per_token_logps)
    ops::check_finite<B>(fn, "ref_per_token_logps", *in.ref_per_token_logps);
  if (in.entropies) ops::check_finite<B>(fn, "entropies", *in.entropies);
  if (in.sampling_per_token_logps) {
    losses::detail::check_finite_or_nan<B>(fn, "sampling_per_token_logps",
                                           *in.sampling_per_token_logps);
  }
  if (in.importance_sampling_ratio) {
    ops::check_mask<B>(fn, "importance_sampling_ratio", *in.importance_sampling_ratio);
  }
}

// ---- plan

/// The batch-level numbers the token pass reads.
struct grpo_plan {
  const type_traits* row = nullptr;    ///< the loss type's row
  bool is_per_row = false;             ///< importance_sampling_ratio is (N, 1)
  float lo = 0, hi = 0, eps_high = 0;  ///< clip bounds 1 - ε, 1 + ε_high, and ε_high
  float total1 = 1;                    ///< max(Σ m, 1)
  /// Weight of one unit of mask in the loss for the aggregations with a global divisor
  /// (0 for row_mean, whose weight is per row).
  float inv_global = 0;
  bool entropy_mask = false, entropy_bonus = false;
  float entropy_threshold = 0;  ///< keep tokens with H·m >= it (+inf: keep none)
};

template <class B>
grpo_plan make_plan(const grpo_inputs<B>& in, const grpo_config& cfg, bool is_per_row,
                    float eps_high) {
  grpo_plan p;
  p.row = &traits(cfg.loss_type);
  p.is_per_row = is_per_row;
  p.lo = 1.0f - cfg.epsilon;
  p.eps_high = eps_high;
  p.hi = 1.0f + eps_high;
  const float total_tokens = ops::sum<B>(in.completion_mask);
  p.total1 = total_tokens > 1.0f ? total_tokens : 1.0f;  // TRL's clamp(min=1)
  const float fn_ = static_cast<float>(in.per_token_logps.shape()[0]);
  switch (p.row->agg) {
    case aggregation::row_mean: break;  // per row: 1 / (N · max(Σ_t m, 1))
    case aggregation::token_mean: p.inv_global = 1.0f / p.total1; break;
    case aggregation::fixed_length:
      p.inv_global = 1.0f / (fn_ * static_cast<float>(cfg.max_completion_length));
      break;
    case aggregation::items: p.inv_global = 1.0f / in.num_items_in_batch.value_or(p.total1); break;
    case aggregation::row_sum_mean: p.inv_global = 1.0f / fn_; break;  // mean_i(Σ_t m·l)
  }
  p.entropy_mask = cfg.top_entropy_quantile < 1.0f;
  p.entropy_bonus = cfg.entropy_coef != 0.0f;
  // top_entropy_quantile: keep tokens with H·m >= the (1 - ρ) quantile (+inf: keep none).
  p.entropy_threshold = p.entropy_mask
                            ? losses::detail::entropy_quantile_threshold<B>(
                                  *in.entropies, in.completion_mask,
                                  static_cast<float>(1.0 -
                                                     static_cast<double>(cfg.top_entropy_quantile)))
                            : 0.0f;
  return p;
}

// ---- kernels

/// The entropy bonus: loss -= c · Σ m_eff·H / max(Σ m_eff, 1) with m_eff = m·(entropy mask),
/// and d loss / d H = -c·m_eff / max(Σ m_eff, 1), from the token pass's statistics.
template <class B>
void add_entropy_bonus(const grpo_inputs<B>& in, const grpo_config& cfg, const grpo_plan& plan,
                       float h_eff_sum, float m_eff_sum, grpo_result<B>& r) {
  const index_t n = in.per_token_logps.shape()[0], tl = in.per_token_logps.shape()[1];
  const float* mk = B::data(in.completion_mask);
  const float* ent = B::data(*in.entropies);
  const bool entropy_mask = plan.entropy_mask;
  const float entropy_threshold = plan.entropy_threshold;
  const float den = m_eff_sum > 1.0f ? m_eff_sum : 1.0f;
  r.metrics.has_policy_loss = true;
  r.metrics.policy_loss = r.loss;
  r.loss -= cfg.entropy_coef * h_eff_sum / den;
  const float scale = -cfg.entropy_coef / den;
  float* ge = B::data(r.grad_entropies);
  B::parallel_for(
      n * tl, RLHF_LAMBDA(index_t k) {
        const float m = mk[k];
        const bool kept_h = !entropy_mask || ent[k] * m >= entropy_threshold;
        ge[k] = m != 0.0f && kept_h ? scale * m : 0.0f;
      });
}

/// The token pass: per row, the row sums (pass 1), then every token's loss and gradient
/// (pass 2), with the statistics of the metrics; then the metrics. The entropy bonus is
/// added by add_entropy_bonus.
template <class B>
grpo_result<B> token_pass(const grpo_inputs<B>& in, const grpo_config& cfg, const grpo_plan& plan) {
  using tensor = typename B::tensor;
  using losses::detail::surrogate_term;
  const index_t n = in.per_token_logps.shape()[0], t_len = in.per_token_logps.shape()[1];
  const grpo_loss_type type = cfg.loss_type;
  const float fn_ = static_cast<float>(n);
  const float lo = plan.lo, hi = plan.hi, eps_high = plan.eps_high, total1 = plan.total1;
  const float inv_global = plan.inv_global;
  const bool is_per_row = plan.is_per_row, entropy_mask = plan.entropy_mask;
  const float entropy_threshold = plan.entropy_threshold;
  const shape bonus_shape = plan.entropy_bonus ? shape{n, t_len} : shape{0};
  grpo_result<B> r{0.0f, tensor(shape{n, t_len}), tensor(shape{n, t_len}), {}, tensor(bonus_shape)};
  // loss, low, high, region, Σ m·kl, cispo clipped, φ, Σ m·H, Σ m_eff·H, Σ m_eff, and the
  // count of tokens whose loss or gradient is not finite
  tensor stats(shape{11, n});
  // Per row: -(low fraction), high fraction; -inf for a row TRL's masked_seq_mean makes NaN.
  tensor extremes(shape{2, n});
  const float* lp = B::data(in.per_token_logps);
  const float* adv = B::data(in.advantages);
  const float* mk = B::data(in.completion_mask);
  const float* old = in.old_per_token_logps ? B::data(*in.old_per_token_logps) : nullptr;
  const bool use_kl = cfg.beta > 0.0f;
  const float* ref = use_kl ? B::data(*in.ref_per_token_logps) : nullptr;
  const float* ent = in.entropies ? B::data(*in.entropies) : nullptr;
  const bool opsm = cfg.off_policy_mask_threshold.has_value();
  const float opsm_threshold = cfg.off_policy_mask_threshold.value_or(0.0f);
  // OPSM's sampler log-probs: the sampler's, else old (else logp itself: KL 0, keep all).
  const float* samp = in.sampling_per_token_logps ? B::data(*in.sampling_per_token_logps) : old;
  const float* isr = in.importance_sampling_ratio ? B::data(*in.importance_sampling_ratio)
                                                  : nullptr;
  float* ptl = B::data(r.per_token_loss);
  float* grad = B::data(r.grad_per_token_logps);
  float* st = B::data(stats);
  float* ex = B::data(extremes);
  const float no_row = -INFINITY;
  const bool per_row = plan.row->agg == aggregation::row_mean;
  const bool sequence = cfg.importance_sampling_level == grpo_importance_sampling_level::sequence;
  const bool is_cispo = plan.row->term == policy_term::cispo;
  const bool is_sapo = plan.row->term == policy_term::sapo;
  const bool is_vespo = plan.row->term == policy_term::vespo;
  const bool has_delta = cfg.delta.has_value();
  const float delta = cfg.delta.value_or(0.0f);
  const float beta = cfg.beta;
  const bool bias_kl = cfg.use_bias_correction_kl;
  const float tau_pos = cfg.sapo_temperature_pos, tau_neg = cfg.sapo_temperature_neg;
  const float k_pos = cfg.vespo_k_pos, lam_pos = cfg.vespo_lambda_pos;
  const float k_neg = cfg.vespo_k_neg, lam_neg = cfg.vespo_lambda_neg;
  const index_t tl = t_len;
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        const index_t base = i * tl;
        const float a = adv[i];
        // Pass 1, row sums: Σ m, Σ m·x, VESPO's Σ m·clamp(x), OPSM's Σ m·(sampler - logp),
        // Σ m·keep_t (the entropy mask and IS ratio: what the sequence term is multiplied by
        // before it is summed), Σ m·k3 (the sequence-level bias-corrected KL's gradient).
        double mcount = 0.0;  // Σ m in double: a float count stops growing at 2^24
        float xsum = 0.0f, vsum = 0.0f, osum = 0.0f, msum_kept = 0.0f, k3sum = 0.0f;
        for (index_t t = 0; t < tl; ++t) {
          const index_t k = base + t;
          const float m = mk[k];
          if (is_vespo && isr) vsum += losses::detail::vespo_log_is_ratio(isr[k]);  // all T
          if (m == 0.0f) continue;
          mcount += m;
          const float x = old ? lp[k] - old[k] : 0.0f;
          xsum += m * x;
          if (is_vespo) vsum += m * losses::detail::vespo_log_ratio(x);
          if (opsm && samp) {
            const float d = samp[k] - lp[k];
            osum += d == d ? m * d : 0.0f;  // NaN: no evidence
          }
          const bool kept_h = !entropy_mask || ent[k] * m >= entropy_threshold;
          const float is_t = isr && !is_vespo ? (is_per_row ? isr[i] : isr[k]) : 1.0f;
          msum_kept += kept_h ? m * is_t : 0.0f;
          if (use_kl && sequence && bias_kl)
            k3sum += m * losses::detail::k3_kl(lp[k], ref[k]).value;
        }
        const float msum = static_cast<float>(mcount);
        const float msum1 = msum > 1.0f ? msum : 1.0f;
        const float w = per_row ? 1.0f / (fn_ * msum1) : inv_global;  // d loss / d (m·l)
        // DeepSeek-V3.2 OPSM: drop the policy term of a row with A < 0 and mean KL > δ.
        const float keep = !opsm || a >= 0.0f || osum / msum1 <= opsm_threshold ? 1.0f : 0.0f;
        // Sequence level (GSPO): one log-ratio per row; token t moves it by m_t / max(Σ m, 1).
        const float xseq = xsum / msum1;
        const float c1_seq = std::exp(xseq);
        surrogate_term seq{0.0f, 0.0f, c1_seq, false, false};
        if (sequence && !is_cispo && !is_vespo) {
          seq = is_sapo ? losses::detail::sapo_surrogate(xseq, a, tau_pos, tau_neg)
                        : losses::detail::clipped_surrogate(xseq, a, lo, hi, has_delta, delta);
        }
        const float seq_grad = w * keep * msum_kept * seq.dloss_dx / msum1;
        const float kl_seq_grad = use_kl && sequence && bias_kl ? w * beta * k3sum * c1_seq / msum1
                                                                : 0.0f;
        // VESPO's Gamma weight and CISPO's capped ratio at sequence level (both detached).
        const float phi = is_vespo
                              ? losses::detail::vespo_phi(vsum, a, k_pos, lam_pos, k_neg, lam_neg)
                              : 0.0f;
        float row_loss = 0.0f, low = 0.0f, high = 0.0f, kl_sum = 0.0f, cispo_clipped = 0.0f;
        float h_sum = 0.0f, h_eff = 0.0f, m_eff = 0.0f, non_finite = 0.0f;
        if (sequence) {
          low = seq.low_clipped ? 1.0f : 0.0f;
          high = seq.high_clipped ? 1.0f : 0.0f;
          cispo_clipped = c1_seq > eps_high && a > 0.0f ? 1.0f : 0.0f;
        }
        for (index_t t = 0; t < tl; ++t) {
          const index_t k = base + t;
          const float m = mk[k];
          if (m == 0.0f) {
            ptl[k] = 0.0f;
            grad[k] = 0.0f;
            continue;
          }
          const float x = old ? lp[k] - old[k] : 0.0f;
          const bool kept_h = !entropy_mask || ent[k] * m >= entropy_threshold;
          const float is_t = isr && !is_vespo ? (is_per_row ? isr[i] : isr[k]) : 1.0f;
          const float mult = kept_h ? keep * is_t : 0.0f;  // OPSM · entropy mask · IS ratio
          // Policy term l and its derivative dl/dlogp_t through this token alone.
          float l, dl;
          if (is_cispo || is_vespo) {
            // REINFORCE form: -(detached weight)·A·logp.
            float wt = phi;
            if (is_cispo) {
              const float c1 = sequence ? c1_seq : std::exp(x);
              wt = c1 < eps_high ? c1 : eps_high;
              if (!sequence) cispo_clipped += c1 > eps_high && a > 0.0f ? m : 0.0f;
            }
            l = -wt * a * lp[k];
            dl = -wt * a;
          } else if (sequence) {
            l = seq.loss;
            dl = 0.0f;  // through the row's ratio: seq_grad below
          } else {
            const auto s = is_sapo
                               ? losses::detail::sapo_surrogate(x, a, tau_pos, tau_neg)
                               : losses::detail::clipped_surrogate(x, a, lo, hi, has_delta, delta);
            l = s.loss;
            dl = s.dloss_dx;
            low += s.low_clipped ? m : 0.0f;
            high += s.high_clipped ? m : 0.0f;
          }
          l *= mult;
          float g = w * m * mult * dl + seq_grad * m;
          if (use_kl) {
            const auto kl = losses::detail::k3_kl(lp[k], ref[k]);
            // Bias correction: β·k3·c1 with c1 differentiable (token: dc1/dlogp_t = c1).
            const float c1 = !bias_kl ? 1.0f : (sequence ? c1_seq : std::exp(x));
            const float klv = kl.value * c1;
            l += beta * klv;
            g += w * m * beta * (kl.dvalue_dlogp * c1 + (bias_kl && !sequence ? klv : 0.0f)) +
                 kl_seq_grad * m;
            kl_sum += m * klv;
          }
          row_loss += w * m * l;
          ptl[k] = l;
          grad[k] = g;
          non_finite += l - l == 0.0f && g - g == 0.0f ? 0.0f : 1.0f;  // x - x: NaN for ±inf, NaN
          if (ent) {
            h_sum += m * ent[k];
            h_eff += kept_h ? m * ent[k] : 0.0f;
            m_eff += kept_h ? m : 0.0f;
          }
        }
        st[0 * n + i] = row_loss;
        st[1 * n + i] = low;
        st[2 * n + i] = high;
        // Low needs A < 0 and high A > 0, so a token is never both: region = low + high.
        st[3 * n + i] = low + high;
        st[4 * n + i] = kl_sum;
        st[5 * n + i] = cispo_clipped;
        st[6 * n + i] = phi;
        st[7 * n + i] = h_sum;
        st[8 * n + i] = h_eff;
        st[9 * n + i] = m_eff;
        st[10 * n + i] = non_finite;
        // TRL's per-sequence clip fractions: the flag itself at sequence level, Σ m·flag / Σ m
        // at token level (an empty row is 0/0 = NaN there, which nanmin / nanmax skip).
        const bool no_tokens = !sequence && !(mcount > 0.0);
        ex[0 * n + i] = no_tokens ? no_row : (sequence ? -low : -low / msum);
        ex[1 * n + i] = no_tokens ? no_row : (sequence ? high : high / msum);
      });
  const std::vector<float> sums = ops::row_sums_to_host<B>(stats);
  if (validating(validation::cheap) && (sums[10] != 0.0f || !std::isfinite(sums[0]))) {
    detail::grpo_throw_non_finite<B>(in, r, cfg, sums[0]);
  }
  r.loss = sums[0];
  r.metrics.loss_type = type;
  // TRL's masked_batch_mean: over tokens (token level) or over sequences (sequence level).
  const float clip_den = sequence ? fn_ : total1;
  r.metrics.clip_ratio_low_mean = sums[1] / clip_den;
  r.metrics.clip_ratio_high_mean = sums[2] / clip_den;
  r.metrics.clip_ratio_region_mean = sums[3] / clip_den;
  tensor maxima(shape{2});
  ops::row_max<B>(extremes, maxima);
  const std::vector<float> extreme = ops::to_host<B>(maxima);  // -nanmin(low), nanmax(high)
  r.metrics.clip_ratio_low_min = extreme[0] == no_row ? std::nanf("") : -extreme[0];
  r.metrics.clip_ratio_high_max = extreme[1] == no_row ? std::nanf("") : extreme[1];
  r.metrics.has_kl = use_kl;
  r.metrics.kl = use_kl ? sums[4] / total1 : 0.0f;
  r.metrics.cispo_clip_ratio = sums[5] / clip_den;
  r.metrics.vespo_phi_seq_mean = sums[6] / fn_;  // φ is one value per row
  r.metrics.has_entropy = ent != nullptr;
  r.metrics.entropy = ent ? sums[7] / total1 : 0.0f;
  if (plan.entropy_bonus) add_entropy_bonus(in, cfg, plan, sums[8], sums[9], r);
  return r;
}

}  // namespace detail::grpo

/// GRPO loss, d loss / d per_token_logps and TRL's metrics. Throws a data_error when the
/// loss or a gradient is not finite (grpo_throw_non_finite).
template <class B>
grpo_result<B> grpo_loss(const grpo_inputs<B>& in, const grpo_config& cfg = {}) {
  constexpr const char* fn = "grpo_loss";
  assert_tensor_backend<B>();
  const bool is_per_row = detail::grpo::check_shapes(fn, in);
  const float eps_high = detail::grpo::check_options(fn, cfg);
  detail::grpo::check_requirements(fn, in, cfg, is_per_row);
  detail::grpo::check_values(fn, in);
  const detail::grpo::grpo_plan plan = detail::grpo::make_plan(in, cfg, is_per_row, eps_high);
  return detail::grpo::token_pass(in, cfg, plan);
}

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
