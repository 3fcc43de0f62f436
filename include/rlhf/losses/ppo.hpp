// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// PPO's clipped surrogate and clipped value loss for RLHF (Schulman et al. 2017; TRL
// PPOTrainer). docs/algorithms/ppo.md.
//
//   ratio_t  = exp(logp_t - old_logp_t)
//   pg_loss  = masked_mean(max(-A_t·ratio_t, -A_t·clamp(ratio_t, 1-c, 1+c)))
//   vf_loss  = 0.5·masked_mean(max((v_t - R_t)², (clamp(v_t, v_old_t - cv, v_old_t + cv) - R_t)²))
//   loss     = pg_loss + vf_coef·vf_loss - entropy_coef·masked_mean(H_t)   (H optional)
// masked_mean(x) = Σ m·x / Σ m over every token of the batch (one global denominator).
// Gradients are d loss / d logprobs, d loss / d values and d loss / d entropy (old log-probs,
// advantages, old values and returns are constants, as TRL detaches them).
//
// Classic TRL 0.11 extras: a minibatch whose masked mean ratio exceeds ratio_threshold (10)
// is skipped (loss 0, gradients 0, `skipped` set, metrics still reported); PPO epochs stop
// early when the KL exceeds 1.5·target_kl (should_early_stop).
#pragma once

#include <array>
#include <cmath>
#include <optional>
#include <span>
#include <vector>

#include "rlhf/core/functors.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/losses/detail/ppo_kernels.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/reductions.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {

/// TRL PPOConfig's loss options (names and defaults of current TRL; classic extras optional).
struct ppo_config {
  static constexpr float classic_ratio_threshold = 10.0f;  ///< TRL 0.11 default
  static constexpr float classic_target_kl = 1.0f;         ///< TRL 0.11 default

  float cliprange = 0.2f;        ///< c of the policy ratio clip
  float cliprange_value = 0.2f;  ///< cv of the value clip (around the old values)
  float vf_coef = 0.1f;          ///< weight of the value loss
  /// Weight of the entropy bonus (not in TRL's PPO; 0 = off). Needs the entropy input.
  float entropy_coef = 0.0f;
  /// Skip the minibatch when the masked mean ratio exceeds this (TRL 0.11: 10; current TRL
  /// has no skip, hence unset by default).
  std::optional<float> ratio_threshold;
  /// Early stop of the PPO epochs when KL > 1.5·target_kl (TRL 0.11 early_stopping with
  /// target_kl 1; unset = never). See should_early_stop.
  std::optional<float> target_kl;
};

/// The tensors the PPO loss reads.
template <class B>
struct ppo_inputs {
  const typename B::tensor& logprobs;           ///< (N, T) new policy log-probs (differentiated)
  const typename B::tensor& old_logprobs;       ///< (N, T) log-probs at rollout time
  const typename B::tensor& advantages;         ///< (N, T) (whitened) advantages
  const typename B::tensor& values;             ///< (N, T) new value predictions (differentiated)
  const typename B::tensor& old_values;         ///< (N, T) values at rollout time
  const typename B::tensor& returns;            ///< (N, T) GAE returns
  const typename B::tensor& mask;               ///< (N, T) response mask (weights >= 0)
  const typename B::tensor* entropy = nullptr;  ///< (N, T) per-token entropy (differentiated)
};

/// TRL's PPO metrics of a minibatch, reported even when it is skipped.
struct ppo_metrics {
  float approxkl = 0;     ///< 0.5·masked_mean(Δ²), Δ = logp - old_logp  (policy/approxkl_avg)
  float policykl = 0;     ///< masked_mean(old_logp - logp)   (TRL 0.11 ppo/policy/policykl)
  float clipfrac = 0;     ///< masked_mean(pg2 > pg1)         (policy/clipfrac_avg)
  float pg_loss = 0;      ///< (loss/policy_avg), 0 when skipped
  float vf_loss = 0;      ///< (loss/value_avg), 0 when skipped
  float vf_clipfrac = 0;  ///< masked_mean(vf2 > vf1)         (val/clipfrac_avg)
  float entropy = 0;      ///< masked_mean(H) when given      (policy/entropy_avg)
  float ratio = 0;        ///< masked_mean(ratio)             (val/ratio)
  bool has_entropy = false;  ///< whether the entropy input was given and entropy is reported
  /// The metrics under TRL's names.
  [[nodiscard]] named_metrics named() const {
    named_metrics m{{"policy/approxkl_avg", approxkl},
                    {"policy/clipfrac_avg", clipfrac},
                    {"loss/policy_avg", pg_loss},
                    {"loss/value_avg", vf_loss},
                    {"val/clipfrac_avg", vf_clipfrac},
                    {"val/ratio", ratio},
                    {"ppo/policy/policykl", policykl}};
    if (has_entropy) m.emplace_back("policy/entropy_avg", entropy);
    return m;
  }
};

/// What the PPO loss returns.
template <class B>
struct ppo_result {
  float loss = 0;        ///< pg_loss + vf_coef·vf_loss - entropy_coef·entropy (0 when skipped)
  float pg_loss = 0;     ///< the clipped surrogate term (0 when skipped)
  float vf_loss = 0;     ///< the clipped value term, before vf_coef (0 when skipped)
  bool skipped = false;  ///< mean ratio > ratio_threshold: loss and gradients are 0
  typename B::tensor grad_logprobs;  ///< (N, T)
  typename B::tensor grad_values;    ///< (N, T)
  typename B::tensor grad_entropy;   ///< (N, T) when entropy was given, else shape (0)
  ppo_metrics metrics;               ///< TRL's metrics of the minibatch
};

/// TRL 0.11's early-stop rule: true when kl > 1.5·target_kl (TRL passes policykl); false
/// when target_kl is unset.
[[nodiscard]] inline bool should_early_stop(float kl, const ppo_config& cfg) {
  if (!cfg.target_kl) return false;
  return kl > 1.5f * *cfg.target_kl;
}

/// TRL's val/ratio_var: the (Bessel-corrected) variance of the val/ratio of every minibatch
/// of a step — an aggregate over calls, so computed by the trainer from their metrics.
/// Fewer than 2 values give 0.
[[nodiscard]] inline float ppo_ratio_var(std::span<const float> minibatch_ratios) {
  const std::size_t k = minibatch_ratios.size();
  if (k < 2) return 0.0f;
  double s = 0.0;
  for (float r : minibatch_ratios) s += r;
  const double mean = s / static_cast<double>(k);
  double ss = 0.0;
  for (float r : minibatch_ratios) ss += (r - mean) * (r - mean);
  return static_cast<float>(ss / static_cast<double>(k - 1));
}

namespace detail::ppo {

/// Rows of the per-row statistics token_pass writes: Σw, Σw·pg, Σw·vf, Σw·clipped,
/// Σw·vf_clipped, Σw·d², -Σw·d, Σw·ratio, Σw·entropy (d = logprobs - old_logprobs).
inline constexpr index_t k_stats = 9;

/// The shapes: every input (N, T) like logprobs, and not empty.
template <class B>
void check_shapes(const char* fn, const ppo_inputs<B>& in) {
  check_rank(fn, "logprobs", in.logprobs.shape(), 2, 2);
  const shape& s = in.logprobs.shape();
  check_same_shape(fn, "logprobs", s, "old_logprobs", in.old_logprobs.shape());
  check_same_shape(fn, "logprobs", s, "advantages", in.advantages.shape());
  check_same_shape(fn, "logprobs", s, "values", in.values.shape());
  check_same_shape(fn, "logprobs", s, "old_values", in.old_values.shape());
  check_same_shape(fn, "logprobs", s, "returns", in.returns.shape());
  check_same_shape(fn, "logprobs", s, "mask", in.mask.shape());
  if (in.entropy) check_same_shape(fn, "logprobs", s, "entropy", in.entropy->shape());
  if (s.numel() == 0) {
    throw shape_error(rlhf::detail::concat(fn, ": batch is empty (logprobs has shape ",
                                           s.str(), ")"));
  }
}

/// The options, each against its documented range, and the inputs they ask for.
template <class B>
void check_options(const char* fn, const ppo_inputs<B>& in, const ppo_config& cfg) {
  check_config(std::isfinite(cfg.cliprange) && cfg.cliprange > 0.0f, fn, "cliprange",
               "finite and > 0", cfg.cliprange);
  check_config(std::isfinite(cfg.cliprange_value) && cfg.cliprange_value > 0.0f, fn,
               "cliprange_value", "finite and > 0", cfg.cliprange_value);
  check_config(std::isfinite(cfg.vf_coef) && cfg.vf_coef >= 0.0f, fn, "vf_coef",
               "finite and >= 0", cfg.vf_coef);
  check_config(std::isfinite(cfg.entropy_coef) && cfg.entropy_coef >= 0.0f, fn, "entropy_coef",
               "finite and >= 0", cfg.entropy_coef);
  if (cfg.entropy_coef > 0.0f && !in.entropy) {
    throw config_error("ppo_loss: entropy_coef > 0 needs the entropy input");
  }
  if (cfg.ratio_threshold) {
    check_config(std::isfinite(*cfg.ratio_threshold) && *cfg.ratio_threshold > 0.0f, fn,
                 "ratio_threshold", "finite and > 0", *cfg.ratio_threshold);
  }
  if (cfg.target_kl) {
    check_config(std::isfinite(*cfg.target_kl) && *cfg.target_kl > 0.0f, fn, "target_kl",
                 "finite and > 0", *cfg.target_kl);
  }
}

/// The values: finite inputs, a 0/1 mask.
template <class B>
void check_values(const char* fn, const ppo_inputs<B>& in) {
  ops::check_finite<B>(fn, "logprobs", in.logprobs);
  ops::check_finite<B>(fn, "old_logprobs", in.old_logprobs);
  ops::check_finite<B>(fn, "advantages", in.advantages);
  ops::check_finite<B>(fn, "values", in.values);
  ops::check_finite<B>(fn, "old_values", in.old_values);
  ops::check_finite<B>(fn, "returns", in.returns);
  if (in.entropy) ops::check_finite<B>(fn, "entropy", *in.entropy);
  ops::check_mask<B>(fn, "mask", in.mask);
}

/// Pass 1: per token, the unscaled derivatives w·dℓ/dx into r's gradients; per row, the
/// masked sums (float64 within a row); returns their totals over the rows (k_stats values).
template <class B>
std::array<double, k_stats> token_pass(const ppo_inputs<B>& in, const ppo_config& cfg,
                                       ppo_result<B>& r) {
  using tensor = typename B::tensor;
  const shape& s = in.logprobs.shape();
  const index_t n = s[0], t = s[1];
  tensor stats(shape{k_stats, n});
  const float* lp = B::data(in.logprobs);
  const float* olp = B::data(in.old_logprobs);
  const float* adv = B::data(in.advantages);
  const float* v = B::data(in.values);
  const float* ov = B::data(in.old_values);
  const float* ret = B::data(in.returns);
  const float* m = B::data(in.mask);
  const float* ent = in.entropy ? B::data(*in.entropy) : nullptr;
  float* st = B::data(stats);
  const float c = cfg.cliprange, cv = cfg.cliprange_value;
  float* glp = B::data(r.grad_logprobs);
  float* gv = B::data(r.grad_values);
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        // Nine float64 sums over the row, one SIMD loop: a masked token (w = 0) computes on
        // neutral inputs (log-ratio 0, so nothing overflows) and adds 0 everywhere.
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0;
        const index_t row = i * t;
        RLHF_SIMD_REDUCE(+ : a0, a1, a2, a3, a4, a5, a6, a7, a8)
        for (index_t j = 0; j < t; ++j) {
          const index_t q = row + j;
          const float w = m[q];
          // All ones where w != 0 (w >= 0: its magnitude bits), else zero. Selected on bits:
          // with float comparisons here and in ratio_exp the loop ran ~3x slower (GCC 12).
          const std::int32_t on = (ops::detail::float_bits(w) & 0x7fffffff) != 0 ? -1 : 0;
          const float l = ops::detail::bits_float(ops::detail::float_bits(lp[q]) & on);
          const float ol = ops::detail::bits_float(ops::detail::float_bits(olp[q]) & on);
          const auto p = ppo_policy_token(l, ol, adv[q], c);
          const auto val = ppo_value_token(v[q], ov[q], ret[q], cv);
          glp[q] = w * p.dloss;
          gv[q] = w * val.dloss;
          const double wd = w, d = static_cast<double>(l) - static_cast<double>(ol);
          a0 += wd;
          a1 += wd * p.loss;
          a2 += wd * val.loss;
          a3 += wd * p.clipped;
          a4 += wd * val.clipped;
          a5 += wd * d * d;
          a6 += -wd * d;
          a7 += wd * p.ratio;
        }
        if (ent != nullptr) {
          RLHF_SIMD_REDUCE(+ : a8)
          for (index_t q = row; q < row + t; ++q) a8 += static_cast<double>(m[q]) * ent[q];
        }
        const double acc[k_stats] = {a0, a1, a2, a3, a4, a5, a6, a7, a8};
        for (index_t k = 0; k < k_stats; ++k) st[k * n + i] = static_cast<float>(acc[k]);
      });
  std::vector<float> sums(static_cast<std::size_t>(k_stats * n));
  B::copy_to_host(stats, std::span<float>(sums));
  std::array<double, k_stats> tot{};
  for (index_t k = 0; k < k_stats; ++k) {
    for (index_t i = 0; i < n; ++i) tot[k] += sums[static_cast<std::size_t>(k * n + i)];
  }
  return tot;
}

/// The metrics and losses from the totals, then pass 2: the gradients scaled by 1/Σw
/// (elementwise, vectorised by the backend), or zeroed when ratio_threshold skips the batch.
template <class B>
void finish(const ppo_inputs<B>& in, const ppo_config& cfg, const std::array<double, k_stats>& tot,
            ppo_result<B>& r) {
  const double weight = tot[0];
  if (!(weight > 0.0)) {
    throw data_error("ppo_loss: mask is all zero; the masked means are undefined");
  }
  auto& mt = r.metrics;
  mt.approxkl = static_cast<float>(0.5 * tot[5] / weight);
  mt.policykl = static_cast<float>(tot[6] / weight);
  mt.clipfrac = static_cast<float>(tot[3] / weight);
  mt.vf_clipfrac = static_cast<float>(tot[4] / weight);
  mt.ratio = static_cast<float>(tot[7] / weight);
  mt.has_entropy = in.entropy != nullptr;
  mt.entropy = in.entropy ? static_cast<float>(tot[8] / weight) : 0.0f;
  r.skipped = cfg.ratio_threshold.has_value() && mt.ratio > *cfg.ratio_threshold;
  if (r.skipped) {
    ops::fill<B>(r.grad_logprobs, 0.0f);
    ops::fill<B>(r.grad_values, 0.0f);
    if (in.entropy) ops::fill<B>(r.grad_entropy, 0.0f);
    return;  // loss, pg_loss, vf_loss stay 0
  }
  const double pg = tot[1] / weight, vf = 0.5 * tot[2] / weight;
  r.pg_loss = mt.pg_loss = static_cast<float>(pg);
  r.vf_loss = mt.vf_loss = static_cast<float>(vf);
  r.loss = static_cast<float>(pg + cfg.vf_coef * vf -
                              (in.entropy ? cfg.entropy_coef * tot[8] / weight : 0.0));

  // Pass 2: scale the gradients (elementwise, vectorised by the backend).
  const float inv_w = static_cast<float>(1.0 / weight);
  const float gv_scale = 0.5f * cfg.vf_coef * inv_w;
  const float ge = -cfg.entropy_coef * inv_w;
  ops::transform<B>(r.grad_logprobs, rlhf::fn::scale{inv_w}, r.grad_logprobs);
  ops::transform<B>(r.grad_values, rlhf::fn::scale{gv_scale}, r.grad_values);
  if (in.entropy) ops::transform<B>(r.grad_entropy, rlhf::fn::scale{ge}, in.mask);
}

}  // namespace detail::ppo

/// PPO loss, gradients and metrics.
template <class B>
ppo_result<B> ppo_loss(const ppo_inputs<B>& in, const ppo_config& cfg = {}) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "ppo_loss";
  assert_tensor_backend<B>();
  detail::ppo::check_shapes(fn, in);
  detail::ppo::check_options(fn, in, cfg);
  detail::ppo::check_values(fn, in);
  // The result's gradient tensors first hold the unscaled per-token derivatives w·dℓ/dx;
  // finish scales them by the global 1/Σw once it is known (no second exp per token).
  const shape& s = in.logprobs.shape();
  ppo_result<B> r{
      0.0f, 0.0f, 0.0f, false, tensor(s), tensor(s), in.entropy ? tensor(s) : tensor(shape{0}), {}};
  const std::array<double, detail::ppo::k_stats> tot = detail::ppo::token_pass(in, cfg, r);
  detail::ppo::finish(in, cfg, tot, r);
  return r;
}

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
