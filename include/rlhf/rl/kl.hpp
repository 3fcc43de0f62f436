// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// KL estimators between the policy and the frozen reference model (Schulman 2020,
// "Approximating KL divergence"; TRL's `kl_penalty` / `kl_estimator`). docs/algorithms/kl.md.
//
// Per token, with Δ = logp - ref_logp (log-probs of the sampled token):
//   k1   Δ                       unbiased, can be negative (TRL "kl", current default "k1")
//   abs  |Δ|                     (TRL "abs")
//   mse  0.5·Δ²                  "k2" (TRL "mse")
//   k3   exp(-Δ) - 1 + Δ         non-negative, unbiased (TRL "k3"; GRPO's penalty)
//   full Σ_v p_v (log p_v - log ref_v)  the exact KL over the vocabulary, from logits
//
// k3 is computed as expm1(-Δ) + Δ (no cancellation near Δ = 0); like TRL it overflows to
// +inf for Δ < -88.7 (exp(88.7) is the float32 limit).
#pragma once

#include <array>
#include <cmath>
#include <string>
#include <string_view>

#include "rlhf/core/config.hpp"
#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/detail/row_kernels.hpp"
#include "rlhf/ops/reductions.hpp"

namespace rlhf {
inline namespace v0 {
namespace rl {

/// Which per-token estimate of KL(policy || reference) a penalty uses.
enum class kl_estimator { k1, abs, mse, k3, full };

}  // namespace rl

/// The names of the KL estimators; TRL 0.11's "kl" and "k2" are aliases of k1 and mse.
template <>
struct enum_names<rl::kl_estimator> {
  /// Every estimator with its name, in declaration order.
  static constexpr std::array<enum_name<rl::kl_estimator>, 5> values{{
      {rl::kl_estimator::k1, "k1"},
      {rl::kl_estimator::abs, "abs"},
      {rl::kl_estimator::mse, "mse"},
      {rl::kl_estimator::k3, "k3"},
      {rl::kl_estimator::full, "full"},
  }};
  /// TRL 0.11's spellings.
  static constexpr std::array<enum_name<rl::kl_estimator>, 2> aliases{{
      {rl::kl_estimator::k1, "kl"},
      {rl::kl_estimator::mse, "k2"},
  }};
};
static_assert(enum_table_covers<rl::kl_estimator>(5));

namespace rl {

/// The estimator's name: "k1", "abs", "mse", "k3" or "full".
[[nodiscard]] inline std::string_view to_string(kl_estimator e) { return rlhf::to_string(e); }

/// "k1" (also TRL 0.11's "kl"), "abs", "mse" (also "k2"), "k3", "full".
[[nodiscard]] inline kl_estimator parse_kl_estimator(std::string_view s) {
  return enum_from_string<kl_estimator>(s, "parse_kl_estimator", "estimator");
}

namespace detail {

/// One token's estimate from Δ = logp - ref_logp (est is not `full`).
RLHF_HD inline float kl_token(float d, kl_estimator est) {
  switch (est) {
    case kl_estimator::k1: return d;
    case kl_estimator::abs: return std::fabs(d);
    case kl_estimator::mse: return 0.5f * d * d;
    case kl_estimator::k3: return std::expm1(-d) + d;
    default: return d;
  }
}

/// d kl_token / d logp (the reference is frozen): k1 1, abs sign(Δ) (0 at 0), mse Δ,
/// k3 1 - exp(-Δ) = -expm1(-Δ).
RLHF_HD inline float kl_token_grad(float d, kl_estimator est) {
  switch (est) {
    case kl_estimator::k1: return 1.0f;
    case kl_estimator::abs: return d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f);
    case kl_estimator::mse: return d;
    case kl_estimator::k3: return -std::expm1(-d);
    default: return 1.0f;
  }
}

inline void check_per_token_estimator(std::string_view fn, kl_estimator est) {
  check_enum(fn, "estimator", est);
  if (est == kl_estimator::full) {
    throw config_error(rlhf::detail::concat(
        fn, ": estimator must be k1, abs, mse or k3 (per-token log-probs), got full; "
            "the full KL needs the logits: use rl::full_kl"));
  }
}

template <class B>
void check_kl_inputs(std::string_view fn, const typename B::tensor& logp,
                     const typename B::tensor& ref_logp, const typename B::tensor& out) {
  check_same_shape(fn, "logp", logp.shape(), "ref_logp", ref_logp.shape());
  check_same_shape(fn, "logp", logp.shape(), "out", out.shape());
  if (logp.size() == 0) {
    throw shape_error(rlhf::detail::concat(fn, ": batch is empty (logp has shape ",
                                           logp.shape().str(), ")"));
  }
  ops::check_finite<B>(fn, "logp", logp);
  ops::check_finite<B>(fn, "ref_logp", ref_logp);
}

}  // namespace detail

/// out = the per-token estimate (any shape, usually (N, T)); no mask is applied here (the
/// PPO rewards of rl/rewards.hpp zero the padding). `full` is a config_error: use full_kl.
template <class B>
void kl_penalty(const typename B::tensor& logp, const typename B::tensor& ref_logp,
                kl_estimator estimator, typename B::tensor& out) {
  constexpr const char* fn = "kl_penalty";
  assert_tensor_backend<B>();
  detail::check_per_token_estimator(fn, estimator);
  detail::check_kl_inputs<B>(fn, logp, ref_logp, out);
  const float* lp = B::data(logp);
  const float* rp = B::data(ref_logp);
  float* o = B::data(out);
  const kl_estimator est = estimator;
  B::parallel_for(out.size(),
                  RLHF_LAMBDA(index_t i) { o[i] = detail::kl_token(lp[i] - rp[i], est); });
}

/// out = d kl_penalty / d logp per token (for losses that backpropagate through the
/// penalty, e.g. GRPO's β·k3: 1 - exp(-Δ)).
template <class B>
void kl_penalty_grad(const typename B::tensor& logp, const typename B::tensor& ref_logp,
                     kl_estimator estimator, typename B::tensor& out) {
  constexpr const char* fn = "kl_penalty_grad";
  assert_tensor_backend<B>();
  detail::check_per_token_estimator(fn, estimator);
  detail::check_kl_inputs<B>(fn, logp, ref_logp, out);
  const float* lp = B::data(logp);
  const float* rp = B::data(ref_logp);
  float* o = B::data(out);
  const kl_estimator est = estimator;
  B::parallel_for(out.size(), RLHF_LAMBDA(index_t i) {
    o[i] = detail::kl_token_grad(lp[i] - rp[i], est);
  });
}

/// The exact KL(p || ref) = Σ_v p_v (log p_v - log ref_v) per row of logits (R, V) (or
/// (N, T, V): rows are every axis but the last), from unnormalised logits: each row is
/// log-softmaxed first (max-subtracted), so logits = log p gives the KL of p and ref.
/// out has one value per row. TRL 0.11: F.kl_div(ref_logp, logp, log_target=True).sum(-1).
template <class B>
void full_kl(const typename B::tensor& logits, const typename B::tensor& ref_logits,
             typename B::tensor& out) {
  constexpr const char* fn = "full_kl";
  assert_tensor_backend<B>();
  check_rank(fn, "logits", logits.shape(), 2, 4);
  check_same_shape(fn, "logits", logits.shape(), "ref_logits", ref_logits.shape());
  const index_t rows = logits.shape().rows(), vocab = logits.shape().cols();
  check_dim(fn, "out's element count (one per row of logits)", out.size(), rows);
  if (rows == 0) throw shape_error("full_kl: batch is empty (logits has 0 rows)");
  check_config(vocab >= 1, fn, "the vocabulary size (last axis of logits)", ">= 1", vocab);
  ops::check_finite<B>(fn, "logits", logits);
  ops::check_finite<B>(fn, "ref_logits", ref_logits);
  const float* z = B::data(logits);
  const float* zr = B::data(ref_logits);
  float* o = B::data(out);
  B::parallel_for(rows, RLHF_LAMBDA(index_t r) {
    const float* zrow = z + r * vocab;
    const float* rrow = zr + r * vocab;
    // log p_v = (z_v - max) - log Σ exp(z - max): z_v - max is exact near the max, so the
    // log-probs of the likely tokens keep float32's relative precision even for logits of
    // magnitude 1e3 (z_v - logsumexp would round to the ulp of 1e3, ~6e-5).
    const float zmax = ops::detail::row_max_kernel(zrow, vocab);
    const float rmax = ops::detail::row_max_kernel(rrow, vocab);
    float sz = 0.0f, sr = 0.0f;
    for (index_t v = 0; v < vocab; ++v) {
      sz += std::exp(zrow[v] - zmax);
      sr += std::exp(rrow[v] - rmax);
    }
    const float lz = std::log(sz), lr = std::log(sr);
    float acc = 0.0f;
    for (index_t v = 0; v < vocab; ++v) {
      const float logp = (zrow[v] - zmax) - lz;
      const float logq = (rrow[v] - rmax) - lr;
      acc += std::exp(logp) * (logp - logq);
    }
    // Σ p (log p - log q) >= 0 exactly; round-off can leave -1e-8 for equal rows.
    o[r] = acc > 0.0f ? acc : 0.0f;
  });
}

/// KL_now of the adaptive controller: the batch mean of per-sequence Σ_t mask·kl_t
/// (TRL: kl.sum(1).mean()). kl and mask (N, T); the mean is over all N rows.
template <class B>
float mean_sequence_kl(const typename B::tensor& kl, const typename B::tensor& mask) {
  constexpr const char* fn = "mean_sequence_kl";
  assert_tensor_backend<B>();
  check_rank(fn, "kl", kl.shape(), 2, 2);
  check_same_shape(fn, "kl", kl.shape(), "mask", mask.shape());
  const index_t n = kl.shape()[0], t = kl.shape()[1];
  if (n == 0) throw shape_error("mean_sequence_kl: batch is empty (kl has 0 rows)");
  ops::check_finite<B>(fn, "kl", kl);
  ops::check_mask<B>(fn, "mask", mask);
  typename B::tensor per_row(shape{1, n});
  const float* k = B::data(kl);
  const float* m = B::data(mask);
  float* s = B::data(per_row);
  B::parallel_for(n, RLHF_LAMBDA(index_t i) {
    float acc = 0.0f;
    for (index_t j = 0; j < t; ++j) acc += m[i * t + j] * k[i * t + j];
    s[i] = acc;
  });
  return ops::row_sums_to_host<B>(per_row)[0] / static_cast<float>(n);
}

}  // namespace rl
}  // namespace v0
}  // namespace rlhf
