// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// KTO: Kahneman–Tversky optimisation on unpaired binary feedback (Ethayarajh et al. 2024),
// TRL's KTOTrainer semantics, and its unpaired APO-zero variant. docs/algorithms/kto.md.
//
//   per example i with label y_i (1 desirable, 0 undesirable):
//     r_i = logp_i - ref_logp_i                       (log-ratio; reward = β·r_i)
//     z0  = max(0, mean_j(kl_logp_j - ref_kl_logp_j)) (no gradient; the KL pairs are
//           mismatched: example j's prompt with example (j-1)'s completion, see
//           kto_kl_pair_indices)
//   kto:               desirable 1 - σ(β(r - z0)),  undesirable 1 - σ(β(z0 - r))
//   apo_zero_unpaired: desirable 1 - σ(β·r),        undesirable σ(β·r)        (z0 unused)
//   loss = (1/N) Σ_i λ_i L_i,  λ = desirable_weight / undesirable_weight (divide by the
//          example count N, not by the weight sum, as TRL's nanmean over the batch)
//
// Gradients are returned for policy_logps only: z0 is detached, so the KL-pair log-probs get
// none (as in TRL, which computes them under no_grad), and the reference is frozen.
#pragma once

#include <array>
#include <cmath>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/math.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/core/validation.hpp"
#include "rlhf/losses/detail/unpaired_metrics.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/reductions.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {

/// The per-example loss: KTO (against the KL baseline z0) or the unpaired APO-zero.
enum class kto_loss_type { kto, apo_zero_unpaired };

}  // namespace losses

/// TRL's names of KTOConfig.loss_type.
template <>
struct enum_names<losses::kto_loss_type> {
  /// Every value with its name, in declaration order.
  static constexpr std::array<enum_name<losses::kto_loss_type>, 2> values{{
      {losses::kto_loss_type::kto, "kto"},
      {losses::kto_loss_type::apo_zero_unpaired, "apo_zero_unpaired"},
  }};
};
static_assert(enum_table_covers<losses::kto_loss_type>(2));

namespace losses {

/// TRL's name of a loss type, the inverse of parse_kto_loss_type.
inline const char* to_string(kto_loss_type t) { return rlhf::to_string(t).data(); }

/// TRL's names; anything else is a config_error listing them.
inline kto_loss_type parse_kto_loss_type(std::string_view name) {
  return enum_from_string<kto_loss_type>(name, "parse_kto_loss_type", "loss_type");
}

/// TRL KTOConfig's loss options (names and defaults).
struct kto_config {
  float beta = 0.1f;                             ///< > 0
  float desirable_weight = 1.0f;                 ///< λD >= 0
  float undesirable_weight = 1.0f;               ///< λU >= 0
  kto_loss_type loss_type = kto_loss_type::kto;  ///< kto or apo_zero_unpaired
};

/// The tensors the KTO loss reads.
template <class B>
struct kto_inputs {
  const typename B::tensor& policy_logps;     ///< (N,) Σ completion token log-probs, policy
  const typename B::tensor& reference_logps;  ///< (N,) the same under the reference model
  const typename B::tensor& labels;           ///< (N,) 1 = desirable, 0 = undesirable
  ///@{
  /// (N,) log-probs of the mismatched KL pairs (prompt i, completion kl_index[i]) under the
  /// policy and the reference; required for loss_type kto, ignored by apo_zero_unpaired.
  const typename B::tensor* policy_kl_logps = nullptr;
  const typename B::tensor* reference_kl_logps = nullptr;
  ///@}
};

/// KTO's metrics: sums and counts per class, and the detached KL estimate z0.
struct kto_metrics : detail::unpaired_class_sums {
  float kl = 0;  ///< z0 (0 for apo_zero_unpaired, as TRL)
  /// The metrics as TRL 1.16's KTOTrainer logs them per batch: kl, then the class means
  /// rewards/chosen, logps/chosen, rewards/rejected, logps/rejected and rewards/margins
  /// (each only when its classes are in the batch).
  [[nodiscard]] named_metrics named() const { return means_with({{"kl", kl}}); }
  /// kl and the class sums and counts (rewards/chosen_sum, ..., count/rejected), for a sum
  /// across processes before dividing.
  [[nodiscard]] named_metrics sums() const { return named_with({{"kl", kl}}); }
};

/// What the KTO loss returns.
template <class B>
struct kto_result {
  float loss = 0;                        ///< (1/N) Σ_i λ_i · L_i, as a host value
  typename B::tensor losses;             ///< (N,) λ_i · L_i
  typename B::tensor grad_policy_logps;  ///< (N,) d loss / d policy_logps
  kto_metrics metrics;                   ///< TRL's metrics of the batch
};

/// The KL pairs of a batch of n examples: pair i takes example i's prompt and example
/// kl_index[i] = (i - 1) mod n's completion, i.e. [n-1, 0, 1, ..., n-2] (TRL rotates the
/// completions of each batch by one). n >= 2: with one example the "mismatched" pair is the
/// matched one and z0 is the implied reward itself (TRL refuses batch size 1 for KTO).
inline std::vector<index_t> kto_kl_pair_indices(index_t n) {
  check_config(n >= 2, "kto_kl_pair_indices", "n (batch size)", ">= 2", n);
  std::vector<index_t> idx(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) idx[static_cast<std::size_t>(i)] = (i + n - 1) % n;
  return idx;
}

/// KTO paper eq. 8 / TRL's check: the weights should make λD·nD / (λU·nU) lie in [1, 4/3].
/// Returns a warning (the caller logs it; the library prints nothing) or nullopt.
/// num_desirable / num_undesirable count the training set (or a batch).
inline std::optional<std::string> kto_class_balance_warning(index_t num_desirable,
                                                            index_t num_undesirable,
                                                            const kto_config& cfg = {}) {
  constexpr const char* fn = "kto_class_balance_warning";
  check_config(num_desirable >= 0, fn, "num_desirable", ">= 0", num_desirable);
  check_config(num_undesirable >= 0, fn, "num_undesirable", ">= 0", num_undesirable);
  check_config(std::isfinite(cfg.desirable_weight) && cfg.desirable_weight >= 0.0f, fn,
               "desirable_weight", "finite and >= 0", cfg.desirable_weight);
  check_config(std::isfinite(cfg.undesirable_weight) && cfg.undesirable_weight >= 0.0f, fn,
               "undesirable_weight", "finite and >= 0", cfg.undesirable_weight);
  if (num_desirable == 0 || num_undesirable == 0) {
    return rlhf::detail::concat(
        "KTO: the data has ", num_desirable, " desirable and ", num_undesirable,
        " undesirable examples; with one class absent the weights cannot balance them");
  }
  const double nd = static_cast<double>(num_desirable), nu = static_cast<double>(num_undesirable);
  const double wd = cfg.desirable_weight, wu = cfg.undesirable_weight;
  const double num = wd * nd, den = wu * nu;
  if (den > 0.0 && num >= den && num <= den * (4.0 / 3.0)) return std::nullopt;
  return rlhf::detail::concat(
      "KTO: desirable_weight * num_desirable / (undesirable_weight * num_undesirable) = ",
      den > 0.0 ? num / den : INFINITY, " is outside [1, 4/3] (", num_desirable,
      " desirable, ", num_undesirable, " undesirable); set EITHER desirable_weight in [",
      wu * nu / nd, ", ", wu * nu / nd * (4.0 / 3.0), "] OR undesirable_weight in [",
      wd * nd / nu * 0.75, ", ", wd * nd / nu, "]");
}

/// KTO loss, its gradient and TRL's metrics.
template <class B>
kto_result<B> kto_loss(const kto_inputs<B>& in, const kto_config& cfg = {}) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "kto_loss";
  assert_tensor_backend<B>();
  const index_t n = in.policy_logps.size();
  const shape& s0 = in.policy_logps.shape();
  check_rank(fn, "policy_logps", s0, 1, 1);
  check_same_shape(fn, "policy_logps", s0, "reference_logps", in.reference_logps.shape());
  check_same_shape(fn, "policy_logps", s0, "labels", in.labels.shape());
  const bool use_kl = cfg.loss_type == kto_loss_type::kto;
  if (use_kl) {
    if (in.policy_kl_logps == nullptr || in.reference_kl_logps == nullptr) {
      throw config_error(
          "kto_loss: policy_kl_logps and reference_kl_logps are required for loss_type kto");
    }
    check_same_shape(fn, "policy_kl_logps", in.policy_kl_logps->shape(), "policy_logps", s0);
    check_same_shape(fn, "reference_kl_logps", in.reference_kl_logps->shape(), "policy_logps",
                     s0);
  }
  if (n == 0) throw shape_error("kto_loss: batch is empty (policy_logps has 0 examples)");
  check_config(std::isfinite(cfg.beta) && cfg.beta > 0.0f, fn, "beta", "finite and > 0",
               cfg.beta);
  check_config(std::isfinite(cfg.desirable_weight) && cfg.desirable_weight >= 0.0f, fn,
               "desirable_weight", "finite and >= 0", cfg.desirable_weight);
  check_config(std::isfinite(cfg.undesirable_weight) && cfg.undesirable_weight >= 0.0f, fn,
               "undesirable_weight", "finite and >= 0", cfg.undesirable_weight);
  check_enum(fn, "loss_type", cfg.loss_type);
  ops::check_finite<B>(fn, "policy_logps", in.policy_logps);
  ops::check_finite<B>(fn, "reference_logps", in.reference_logps);
  ops::check_binary<B>(fn, "labels", in.labels);

  // z0 = max(0, mean(kl - ref_kl)): differences per example first (no cancellation between
  // two large sums), then one reduction.
  float z0 = 0.0f;
  if (use_kl) {
    ops::check_finite<B>(fn, "policy_kl_logps", *in.policy_kl_logps);
    ops::check_finite<B>(fn, "reference_kl_logps", *in.reference_kl_logps);
    tensor diff(shape{n});
    const float* pk = B::data(*in.policy_kl_logps);
    const float* rk = B::data(*in.reference_kl_logps);
    float* d = B::data(diff);
    B::parallel_for(n, RLHF_LAMBDA(index_t i) { d[i] = pk[i] - rk[i]; });
    const float mean_kl = ops::sum<B>(diff) / static_cast<float>(n);
    z0 = mean_kl > 0.0f ? mean_kl : 0.0f;
  }

  kto_result<B> r{0.0f, tensor(shape{n}), tensor(shape{n}), {}};
  // Statistics per example: λL, desirable, β·r·desirable, logp·desirable, β·r·undesirable,
  // logp·undesirable.
  constexpr index_t k_stats = 6;
  tensor stats(shape{k_stats, n});
  const float* lp = B::data(in.policy_logps);
  const float* rp = B::data(in.reference_logps);
  const float* lab = B::data(in.labels);
  float* loss = B::data(r.losses);
  float* g = B::data(r.grad_policy_logps);
  float* st = B::data(stats);
  const float beta = cfg.beta, wd = cfg.desirable_weight, wu = cfg.undesirable_weight;
  const float ref_point = use_kl ? z0 : 0.0f;
  const float inv_n = 1.0f / static_cast<float>(n);
  B::parallel_for(n, RLHF_LAMBDA(index_t i) {
    const float ratio = lp[i] - rp[i];
    const bool desirable = lab[i] != 0.0f;
    float l, dl;  // L_i and dL_i / d ratio (before λ and 1/N)
    if (desirable) {
      // 1 - σ(u) = σ(-u), u = β(r - z0); d/dr = -β σ(u) σ(-u).
      const float u = beta * (ratio - ref_point);
      l = math::sigmoid(-u);
      dl = -beta * math::sigmoid(u) * l;
    } else if (use_kl) {
      // 1 - σ(v) = σ(-v), v = β(z0 - r); d/dr = +β σ(v) σ(-v).
      const float v = beta * (ref_point - ratio);
      l = math::sigmoid(-v);
      dl = beta * math::sigmoid(v) * l;
    } else {
      // apo_zero_unpaired: σ(v), v = β r; d/dr = β σ(v) σ(-v).
      const float v = beta * ratio;
      l = math::sigmoid(v);
      dl = beta * l * math::sigmoid(-v);
    }
    const float w = desirable ? wd : wu;
    loss[i] = w * l;
    g[i] = w * dl * inv_n;
    const float reward = beta * ratio;
    st[0 * n + i] = w * l;
    detail::write_class_stats(st, n, i, desirable, reward, lp[i]);
  });
  const std::vector<float> s = ops::row_sums_to_host<B>(stats);
  r.loss = s[0] * inv_n;
  auto& m = r.metrics;
  m.kl = z0;
  m.set_from_row_sums(s, n);
  return r;
}

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
