// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// BCO: binary classifier optimisation on unpaired feedback (Jung et al. 2024), TRL's
// BCOTrainer semantics without the optional UDM density-ratio classifier.
// docs/algorithms/bco.md.
//
//   r_i = β·(logp_i - ref_logp_i)                            (implicit reward)
//   δ   = running mean of every r seen so far, updated with this batch's r *before* use
//         (Welford / Chan batch merge; no gradient)
//   desirable   L_i = -logσ(r_i - δ)
//   undesirable L_i = -logσ(-(r_i - δ))
//   loss = mean_i L_i
//
// The running mean lives with the caller (one per training run, like TRL's RunningMoments
// saved next to the checkpoint); evaluation passes update_running = false.
#pragma once

#include <cmath>
#include <span>
#include <vector>

#include "rlhf/core/math.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/core/validation.hpp"
#include "rlhf/losses/bco_running_mean.hpp"
#include "rlhf/losses/detail/unpaired_metrics.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/reductions.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {

/// TRL BCOConfig's loss option (the UDM options prompt_sample_size, min/max_density_ratio
/// belong to the density-ratio classifier, which is not part of rlhf++).
struct bco_config {
  float beta = 0.1f;  ///< > 0
};

/// The tensors the BCO loss reads.
template <class B>
struct bco_inputs {
  const typename B::tensor& policy_logps;     ///< (N,) Σ completion token log-probs, policy
  const typename B::tensor& reference_logps;  ///< (N,) the same under the reference model
  const typename B::tensor& labels;           ///< (N,) 1 = desirable, 0 = undesirable
};

/// TRL's BCO metrics: δ, and sums and counts per class (defined for any batch).
struct bco_metrics : detail::unpaired_class_sums {
  float delta = 0;  ///< δ used for this batch
  /// The metrics under TRL's names.
  [[nodiscard]] named_metrics named() const { return named_with({{"delta", delta}}); }
};

/// What the BCO loss returns.
template <class B>
struct bco_result {
  float loss = 0;                        ///< mean_i L_i, as a host value
  typename B::tensor losses;             ///< (N,) L_i
  typename B::tensor grad_policy_logps;  ///< (N,) d loss / d policy_logps (δ detached)
  bco_metrics metrics;                   ///< TRL's metrics of the batch
};

/// BCO loss, its gradient and TRL's metrics; updates `running` with this batch's rewards
/// first when update_running (training), then uses running.mean as δ.
template <class B>
bco_result<B> bco_loss(const bco_inputs<B>& in, bco_running_mean& running,
                       const bco_config& cfg = {}, bool update_running = true) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "bco_loss";
  assert_tensor_backend<B>();
  const index_t n = in.policy_logps.size();
  const shape& s0 = in.policy_logps.shape();
  check_rank(fn, "policy_logps", s0, 1, 1);
  check_same_shape(fn, "policy_logps", s0, "reference_logps", in.reference_logps.shape());
  check_same_shape(fn, "policy_logps", s0, "labels", in.labels.shape());
  if (n == 0) throw shape_error("bco_loss: batch is empty (policy_logps has 0 examples)");
  check_config(std::isfinite(cfg.beta) && cfg.beta > 0.0f, fn, "beta", "finite and > 0",
               cfg.beta);
  if (!(std::isfinite(running.mean) && std::isfinite(running.count) && running.count >= 0.0)) {
    throw data_error(rlhf::detail::concat(fn, ": running mean must be finite with count >= 0, "
                                              "got mean ", running.mean, ", count ",
                                          running.count));
  }
  ops::check_finite<B>(fn, "policy_logps", in.policy_logps);
  ops::check_finite<B>(fn, "reference_logps", in.reference_logps);
  ops::check_binary<B>(fn, "labels", in.labels);

  bco_result<B> r{0.0f, tensor(shape{n}), tensor(shape{n}), {}};
  const float* lp = B::data(in.policy_logps);
  const float* rp = B::data(in.reference_logps);
  const float* lab = B::data(in.labels);
  const float beta = cfg.beta;
  // Pass 1: the rewards, and δ from the running mean updated with them.
  tensor rewards(shape{n});
  float* rw = B::data(rewards);
  B::parallel_for(n, RLHF_LAMBDA(index_t i) { rw[i] = beta * (lp[i] - rp[i]); });
  if (update_running) {
    ops::detail::with_host_values<B>(rewards, [&](std::span<const float> v) { running.update(v); });
  }
  const float delta = static_cast<float>(running.mean);

  // Pass 2: losses, gradients and statistics: L, desirable, r·desirable, logp·desirable,
  // r·undesirable, logp·undesirable.
  constexpr index_t k_stats = 6;
  tensor stats(shape{k_stats, n});
  float* loss = B::data(r.losses);
  float* g = B::data(r.grad_policy_logps);
  float* st = B::data(stats);
  const float inv_n = 1.0f / static_cast<float>(n);
  B::parallel_for(n, RLHF_LAMBDA(index_t i) {
    const bool desirable = lab[i] != 0.0f;
    const float d = rw[i] - delta;
    // desirable -logσ(d): d/dd = -σ(-d); undesirable -logσ(-d): d/dd = σ(d); dd/dlogp = β.
    const float l = desirable ? -math::log_sigmoid(d) : -math::log_sigmoid(-d);
    const float dl = desirable ? -math::sigmoid(-d) : math::sigmoid(d);
    loss[i] = l;
    g[i] = dl * beta * inv_n;
    st[0 * n + i] = l;
    detail::write_class_stats(st, n, i, desirable, rw[i], lp[i]);
  });
  const std::vector<float> s = ops::row_sums_to_host<B>(stats);
  r.loss = s[0] * inv_n;
  auto& m = r.metrics;
  m.delta = delta;
  m.set_from_row_sums(s, n);
  return r;
}

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
