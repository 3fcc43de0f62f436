// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Reward modeling: the Bradley–Terry pairwise loss (Ouyang et al. 2022, eq. 1) with TRL's
// options, InstructGPT's K-way rankings as weighted pairs, reward ensembles and a length
// penalty against verbosity hacking. docs/algorithms/reward.md.
//
//   loss_i = -logσ(r_c,i - r_r,i - margin_i)                               (margin optional)
//   with soft labels p_i (optional): loss_i = -p_i·logσ(d_i) - (1-p_i)·logσ(-d_i), d_i the
//   argument above (the cross-entropy against a judge's probability that chosen is better)
//   loss   = Σ w_i loss_i / Σ w_i  (w optional, default 1: the batch mean)
//          + c · mean_i((r_c,i + r_r,i)^2)     (center_rewards_coefficient c; TRL squares the sum)
#pragma once

#include <algorithm>
#include <array>
#include <optional>
#include <span>
#include <vector>

#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/math.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/reductions.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {

/// TRL RewardConfig's loss options.
struct reward_config {
  /// c of the centering term (Eisenstein et al. 2023); TRL's default None = 0 (off);
  /// 0.01 is the recommended value when on.
  float center_rewards_coefficient = 0.0f;
};

/// The tensors the reward-model loss reads.
template <class B>
struct reward_inputs {
  const typename B::tensor& rewards_chosen;     ///< (N,) scalar head on the chosen response
  const typename B::tensor& rewards_rejected;   ///< (N,)
  const typename B::tensor* margin = nullptr;   ///< (N,) per-pair margin, optional
  const typename B::tensor* weights = nullptr;  ///< (N,) per-pair weight >= 0, optional
  /// (N,) soft labels in [0, 1], optional: the probability that the chosen response is the
  /// better one (1 everywhere is the plain loss).
  const typename B::tensor* labels = nullptr;
};

/// TRL's reward-model metrics of the batch.
struct reward_metrics {
  float accuracy = 0;     ///< mean(r_c > r_r), strict
  float margin = 0;       ///< mean(r_c - r_r)
  float min_reward = 0;   ///< over chosen and rejected together
  float mean_reward = 0;  ///< over chosen and rejected together
  float max_reward = 0;   ///< over chosen and rejected together
  /// The metrics under TRL's names.
  [[nodiscard]] named_metrics named() const {
    return {{"accuracy", accuracy},
            {"margin", margin},
            {"min_reward", min_reward},
            {"mean_reward", mean_reward},
            {"max_reward", max_reward}};
  }
};

/// What the reward-model loss returns.
template <class B>
struct reward_result {
  float loss = 0;             ///< weighted mean of losses plus the centering term, as a host value
  typename B::tensor losses;  ///< (N,) -logσ(r_c - r_r - margin) (with labels: the cross-entropy)
  typename B::tensor grad_rewards_chosen;    ///< (N,) d loss / d r_c
  typename B::tensor grad_rewards_rejected;  ///< (N,) d loss / d r_r
  reward_metrics metrics;                    ///< TRL's metrics of the batch
};

/// Bradley–Terry loss, its gradients and TRL's metrics.
template <class B>
reward_result<B> reward_loss(const reward_inputs<B>& in, const reward_config& cfg = {}) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "reward_loss";
  assert_tensor_backend<B>();
  const index_t n = in.rewards_chosen.size();
  check_rank(fn, "rewards_chosen", in.rewards_chosen.shape(), 1, 1);
  check_same_shape(fn, "rewards_chosen", in.rewards_chosen.shape(), "rewards_rejected",
                   in.rewards_rejected.shape());
  if (n == 0) throw shape_error("reward_loss: batch is empty (rewards_chosen has 0 pairs)");
  check_config(
      std::isfinite(cfg.center_rewards_coefficient) && cfg.center_rewards_coefficient >= 0.0f, fn,
      "center_rewards_coefficient", "finite and >= 0", cfg.center_rewards_coefficient);
  ops::check_finite<B>(fn, "rewards_chosen", in.rewards_chosen);
  ops::check_finite<B>(fn, "rewards_rejected", in.rewards_rejected);
  if (in.margin) {
    check_same_shape(fn, "margin", in.margin->shape(), "rewards_chosen", in.rewards_chosen.shape());
    ops::check_finite<B>(fn, "margin", *in.margin);
  }
  float weight_sum = static_cast<float>(n);
  if (in.weights) {
    check_same_shape(fn, "weights", in.weights->shape(), "rewards_chosen",
                     in.rewards_chosen.shape());
    ops::check_mask<B>(fn, "weights", *in.weights);
    weight_sum = ops::sum<B>(*in.weights);
    if (!(weight_sum > 0.0f)) throw data_error("reward_loss: weights sum to 0");
  }

  if (in.labels) {
    check_same_shape(fn, "labels", in.labels->shape(), "rewards_chosen", in.rewards_chosen.shape());
    ops::check_probabilities<B>(fn, "labels", *in.labels);
  }

  reward_result<B> r{0.0f, tensor(shape{n}), tensor(shape{n}), tensor(shape{n}), {}};
  // Statistics per pair: weighted loss, (r_c + r_r)^2, correct, margin, r_c + r_r.
  tensor stats(shape{5, n});
  const float* rc = B::data(in.rewards_chosen);
  const float* rr = B::data(in.rewards_rejected);
  const float* mg = in.margin ? B::data(*in.margin) : nullptr;
  const float* w = in.weights ? B::data(*in.weights) : nullptr;
  const float* lb = in.labels ? B::data(*in.labels) : nullptr;
  float* loss = B::data(r.losses);
  float* gc = B::data(r.grad_rewards_chosen);
  float* gr = B::data(r.grad_rewards_rejected);
  float* st = B::data(stats);
  const float inv_w = 1.0f / weight_sum;
  const float center = cfg.center_rewards_coefficient;
  const float center_scale = 2.0f * center / static_cast<float>(n);
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        const float d = rc[i] - rr[i] - (mg ? mg[i] : 0.0f);
        const float wi = w ? w[i] : 1.0f;
        // -p·logσ(d) - (1-p)·logσ(-d); d/dd = -p·σ(-d) + (1-p)·σ(d). The (1-p) term is
        // left out at p = 1, so that the plain loss stays exact (and 0·inf never arises).
        const float p = lb ? lb[i] : 1.0f;
        const float l = p == 1.0f ? -math::log_sigmoid(d)
                                  : -p * math::log_sigmoid(d) - (1.0f - p) * math::log_sigmoid(-d);
        loss[i] = l;
        // The centering term adds 2c(r_c + r_r)/N to both gradients.
        const float dl = p == 1.0f ? -math::sigmoid(-d)
                                   : -p * math::sigmoid(-d) + (1.0f - p) * math::sigmoid(d);
        const float g = dl * wi * inv_w;
        const float s = rc[i] + rr[i];
        gc[i] = g + center_scale * s;
        gr[i] = -g + center_scale * s;
        st[0 * n + i] = wi * l;
        st[1 * n + i] = s * s;
        st[2 * n + i] = rc[i] > rr[i] ? 1.0f : 0.0f;
        st[3 * n + i] = rc[i] - rr[i];
        st[4 * n + i] = s;
      });
  const std::vector<float> sums = ops::row_sums_to_host<B>(stats);
  const float fn_ = static_cast<float>(n);
  r.loss = sums[0] * inv_w + (center > 0.0f ? center * sums[1] / fn_ : 0.0f);
  r.metrics.accuracy = sums[2] / fn_;
  r.metrics.margin = sums[3] / fn_;
  r.metrics.mean_reward = sums[4] / (2.0f * fn_);
  // min/max: two small host reductions over the (N,) inputs.
  ops::detail::with_host_values<B>(in.rewards_chosen, [&](std::span<const float> c) {
    ops::detail::with_host_values<B>(in.rewards_rejected, [&](std::span<const float> j) {
      const auto [cmin, cmax] = std::minmax_element(c.begin(), c.end());
      const auto [jmin, jmax] = std::minmax_element(j.begin(), j.end());
      r.metrics.min_reward = std::min(*cmin, *jmin);
      r.metrics.max_reward = std::max(*cmax, *jmax);
    });
  });
  return r;
}

/// One ordered pair of a K-way ranking: `better` is preferred over `worse`; `weight`
/// makes every prompt count as one batch element (InstructGPT: 1 / (K(K-1)/2)).
struct ranked_pair {
  index_t better;  ///< position of the preferred response in the ranking
  index_t worse;   ///< position of the other response in the ranking
  float weight;    ///< 2 / (K(K-1)), the pair's share of its prompt
};

/// All K(K-1)/2 ordered pairs of a ranking given best first (indices into that list).
inline std::vector<ranked_pair> ranking_pairs(index_t k) {
  check_config(k >= 2, "ranking_pairs", "k (responses per ranking)", ">= 2", k);
  const float w = 2.0f / static_cast<float>(k * (k - 1));
  std::vector<ranked_pair> out;
  out.reserve(static_cast<std::size_t>(k * (k - 1) / 2));
  for (index_t a = 0; a < k; ++a) {
    for (index_t b = a + 1; b < k; ++b) out.push_back({a, b, w});
  }
  return out;
}

/// How an ensemble of reward models combines: `min` takes the most pessimistic score (a
/// guard against reward hacking: the policy must fool every member); `mean` is the plain
/// ensemble; `mean_minus_std` is mean − k·std over the members (population std), the
/// uncertainty-penalised ensemble of Coste et al. 2024 ("Reward model ensembles help
/// mitigate overoptimization").
enum class ensemble_reduction { mean, min, mean_minus_std };

}  // namespace losses

/// The names of the ensemble reductions: "mean", "min", "mean_minus_std".
template <>
struct enum_names<losses::ensemble_reduction> {
  /// Every reduction with its name, in declaration order.
  static constexpr std::array<enum_name<losses::ensemble_reduction>, 3> values{{
      {losses::ensemble_reduction::mean, "mean"},
      {losses::ensemble_reduction::min, "min"},
      {losses::ensemble_reduction::mean_minus_std, "mean_minus_std"},
  }};
};
static_assert(enum_table_covers<losses::ensemble_reduction>(3));

namespace losses {

/// scores (M, N) from M reward models → (N,) combined score; `k` is mean_minus_std's
/// weight of the std (finite, >= 0; ignored otherwise).
template <class B>
void reward_ensemble(const typename B::tensor& scores, typename B::tensor& out,
                     ensemble_reduction how, float k = 1.0f) {
  constexpr const char* fn = "reward_ensemble";
  assert_tensor_backend<B>();
  check_rank(fn, "scores", scores.shape(), 2, 2);
  const index_t m = scores.shape()[0], n = scores.shape()[1];
  check_config(m >= 1, fn, "scores rows (reward models)", ">= 1", m);
  check_enum(fn, "how", how);
  check_config(std::isfinite(k) && k >= 0.0f, fn, "k", "finite and >= 0", k);
  check_dim(fn, "out's element count (one per column of scores)", out.size(), n);
  ops::check_finite<B>(fn, "scores", scores);
  const float* s = B::data(scores);
  float* o = B::data(out);
  const int mode = static_cast<int>(how);
  constexpr int by_min = static_cast<int>(ensemble_reduction::min);
  constexpr int by_std = static_cast<int>(ensemble_reduction::mean_minus_std);
  B::parallel_for(
      n, RLHF_LAMBDA(index_t j) {
        float acc = s[j];
        for (index_t r = 1; r < m; ++r) {
          const float v = s[r * n + j];
          acc = mode == by_min ? (v < acc ? v : acc) : acc + v;
        }
        if (mode == by_min) {
          o[j] = acc;
          return;
        }
        const float mean = acc / static_cast<float>(m);
        float ss = 0.0f;
        if (mode == by_std) {
          for (index_t r = 0; r < m; ++r) ss += (s[r * n + j] - mean) * (s[r * n + j] - mean);
        }
        o[j] = mode == by_std ? mean - k * std::sqrt(ss / static_cast<float>(m)) : mean;
      });
}

/// Length penalty against over-long answers: score - coef · |len - optimal| / optimal, per example;
/// lengths in tokens or words (the caller's unit), optimal > 0. coef default 0.3.
template <class B>
void apply_length_penalty(typename B::tensor& scores, const typename B::tensor& lengths,
                          const typename B::tensor& optimal_lengths, float coef = 0.3f) {
  constexpr const char* fn = "apply_length_penalty";
  assert_tensor_backend<B>();
  check_same_shape(fn, "scores", scores.shape(), "lengths", lengths.shape());
  check_same_shape(fn, "scores", scores.shape(), "optimal_lengths", optimal_lengths.shape());
  check_config(std::isfinite(coef) && coef >= 0.0f, fn, "coef", "finite and >= 0", coef);
  ops::check_finite<B>(fn, "scores", scores);
  ops::check_mask<B>(fn, "lengths", lengths);
  ops::detail::with_host_values<B>(optimal_lengths, [&](std::span<const float> v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!(std::isfinite(v[i]) && v[i] > 0.0f)) {
        throw data_error(rlhf::detail::concat(fn, ": optimal_lengths must be finite and > 0, got ",
                                              v[i], " at index ", i));
      }
    }
  });
  float* s = B::data(scores);
  const float* len = B::data(lengths);
  const float* opt = B::data(optimal_lengths);
  B::parallel_for(
      scores.size(),
      RLHF_LAMBDA(index_t i) { s[i] -= coef * std::fabs(len[i] - opt[i]) / opt[i]; });
}

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
