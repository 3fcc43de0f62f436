// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Per-token rewards of PPO-based RLHF (Ziegler et al. 2019; Ouyang et al. 2022):
// a KL penalty on every response token plus the reward model's score on the last one.
// docs/algorithms/ppo.md.
//
//   kl_t      = estimator(logp_t - ref_logp_t)             on real tokens (mask ≠ 0), else 0
//   reward_t  = -kl_coef · kl_t                             on real tokens, else 0
//   reward_L += score - [no EOS] · missing_eos_penalty      L = the LAST real token of the row
//
// Score position: InstructGPT's definition and TRL 0.11's (`reward[last_non_masked_index] +=
// score`). Current TRL (PPOTrainer since 0.12) adds the score one position *past* the last
// real token when there is room (its issues #1893 / #3750); to reproduce that, extend each
// row's mask by one token before calling. A row whose mask is all zero has nowhere to put its
// score: a data_error (the score would be lost silently otherwise).
//
// The mask is a selector here: a position is a real token when its weight is non-zero, and
// weights do not scale the penalty.
#pragma once

#include <cmath>
#include <optional>
#include <span>
#include <vector>

#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/reductions.hpp"
#include "rlhf/rl/kl.hpp"

namespace rlhf {
inline namespace v0 {
namespace rl {

/// Options named as TRL's PPOConfig names them.
struct ppo_reward_config {
  /// β of the penalty (current TRL kl_coef 0.05; the adaptive controller's value when used).
  float kl_coef = 0.05f;
  /// Per-token estimator (current TRL kl_estimator "k1"; "k3" allowed; 0.11 also abs/mse).
  kl_estimator estimator = kl_estimator::k1;
  /// Subtracted from the score of rows without an EOS token (TRL missing_eos_penalty,
  /// default None = off). Needs `has_eos`.
  std::optional<float> missing_eos_penalty;
};

/// The tensors ppo_token_rewards reads.
template <class B>
struct ppo_reward_inputs {
  const typename B::tensor& logprobs;           ///< (N, T) policy log-probs of the sampled tokens
  const typename B::tensor& ref_logprobs;       ///< (N, T) reference model's log-probs
  const typename B::tensor& mask;               ///< (N, T) response mask (non-zero = real token)
  const typename B::tensor& scores;             ///< (N,) reward-model scores
  const typename B::tensor* has_eos = nullptr;  ///< (N,) 1 if the row generated EOS, else 0
};

/// TRL's objective/* metrics of the step.
struct ppo_reward_metrics {
  float kl = 0;                ///< mean_i Σ_t kl_t            (objective/kl)
  float non_score_reward = 0;  ///< mean_i Σ_t -β·kl_t         (objective/non_score_reward)
  float scores = 0;            ///< mean_i score_i after the EOS penalty (objective/scores)
  float rlhf_reward = 0;       ///< scores + non_score_reward  (objective/rlhf_reward)
  /// The metrics under TRL's names.
  [[nodiscard]] named_metrics named() const {
    return {{"objective/kl", kl},
            {"objective/non_score_reward", non_score_reward},
            {"objective/scores", scores},
            {"objective/rlhf_reward", rlhf_reward}};
  }
};

/// What ppo_token_rewards returns.
template <class B>
struct ppo_reward_result {
  typename B::tensor rewards;  ///< (N, T) per-token rewards
  typename B::tensor kl;       ///< (N, T) per-token estimate, 0 on padding
  typename B::tensor scores;   ///< (N,) the scores as added (after the missing-EOS penalty)
  ppo_reward_metrics metrics;  ///< TRL's objective metrics
};

/// Per-token rewards, the per-token KL and TRL's objective metrics.
template <class B>
ppo_reward_result<B> ppo_token_rewards(const ppo_reward_inputs<B>& in,
                                       const ppo_reward_config& cfg = {}) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "ppo_token_rewards";
  assert_tensor_backend<B>();
  check_rank(fn, "logprobs", in.logprobs.shape(), 2, 2);
  check_same_shape(fn, "logprobs", in.logprobs.shape(), "ref_logprobs",
                   in.ref_logprobs.shape());
  check_same_shape(fn, "logprobs", in.logprobs.shape(), "mask", in.mask.shape());
  const index_t n = in.logprobs.shape()[0], t = in.logprobs.shape()[1];
  check_shape(fn, "scores", in.scores.shape(), shape{n}, "one score per row of logprobs");
  if (n == 0) throw shape_error("ppo_token_rewards: batch is empty (logprobs has 0 rows)");
  check_config(std::isfinite(cfg.kl_coef) && cfg.kl_coef >= 0.0f, fn, "kl_coef",
               "finite and >= 0", cfg.kl_coef);
  detail::check_per_token_estimator(fn, cfg.estimator);
  if (cfg.missing_eos_penalty) {
    check_config(std::isfinite(*cfg.missing_eos_penalty), fn, "missing_eos_penalty", "finite",
                 *cfg.missing_eos_penalty);
    if (!in.has_eos) {
      throw config_error(
          "ppo_token_rewards: missing_eos_penalty is set but has_eos was not given");
    }
  }
  ops::check_finite<B>(fn, "logprobs", in.logprobs);
  ops::check_finite<B>(fn, "ref_logprobs", in.ref_logprobs);
  ops::check_finite<B>(fn, "scores", in.scores);
  ops::check_mask<B>(fn, "mask", in.mask);
  ops::check_mask_rows_nonempty<B>(fn, "mask", in.mask);
  if (in.has_eos) {
    check_shape(fn, "has_eos", in.has_eos->shape(), shape{n}, "one flag per row");
    ops::detail::with_host_values<B>(*in.has_eos, [&](std::span<const float> v) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (!(v[i] == 0.0f || v[i] == 1.0f)) {
          throw data_error(rlhf::detail::concat(fn, ": has_eos must hold 0 or 1, got ", v[i],
                                                " at index ", i));
        }
      }
    });
  }

  ppo_reward_result<B> r{tensor(shape{n, t}), tensor(shape{n, t}), tensor(shape{n}), {}};
  tensor stats(shape{2, n});  // Σ_t kl, final score
  const float* lp = B::data(in.logprobs);
  const float* rp = B::data(in.ref_logprobs);
  const float* m = B::data(in.mask);
  const float* sc = B::data(in.scores);
  const float* eos = in.has_eos ? B::data(*in.has_eos) : nullptr;
  float* rw = B::data(r.rewards);
  float* kl = B::data(r.kl);
  float* so = B::data(r.scores);
  float* st = B::data(stats);
  const float beta = cfg.kl_coef;
  const kl_estimator est = cfg.estimator;
  const float penalty = cfg.missing_eos_penalty ? *cfg.missing_eos_penalty : 0.0f;
  const bool apply_penalty = cfg.missing_eos_penalty.has_value();
  B::parallel_for(n, RLHF_LAMBDA(index_t i) {
    const index_t base = i * t;
    index_t last = -1;
    float kl_sum = 0.0f;
    for (index_t j = 0; j < t; ++j) {
      const bool real = m[base + j] != 0.0f;
      const float k = real ? detail::kl_token(lp[base + j] - rp[base + j], est) : 0.0f;
      kl[base + j] = k;
      rw[base + j] = -beta * k;
      kl_sum += k;
      last = real ? j : last;
    }
    float s = sc[i];
    if (apply_penalty && eos[i] == 0.0f) s -= penalty;
    so[i] = s;
    if (last >= 0) rw[base + last] += s;  // every row has one (checked above)
    st[i] = kl_sum;
    st[n + i] = s;
  });
  const std::vector<float> sums = ops::row_sums_to_host<B>(stats);
  const float fn_ = static_cast<float>(n);
  r.metrics.kl = sums[0] / fn_;
  r.metrics.non_score_reward = -beta * sums[0] / fn_;
  r.metrics.scores = sums[1] / fn_;
  r.metrics.rlhf_reward = r.metrics.scores + r.metrics.non_score_reward;
  return r;
}

}  // namespace rl
}  // namespace v0
}  // namespace rlhf
