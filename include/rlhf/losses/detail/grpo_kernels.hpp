// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Per-element math of the clipped policy-gradient surrogate shared by GRPO and RLOO
// (rlhf/losses/grpo.hpp, rlhf/losses/rloo.hpp), GRPO's soft (SAPO) and Gamma (VESPO)
// weights, and the k3 KL estimator.
#pragma once

#include <cmath>

#include "rlhf/core/config.hpp"
#include "rlhf/core/math.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {
namespace detail {

/// One clipped-surrogate term and its derivative with respect to the log importance
/// weight x (log ρ). coef1 is ρ after the optional two-sided cap (TRL logs its clip
/// ratios from it); low/high are TRL's is_low_clipped / is_high_clipped.
struct surrogate_term {
  float loss;
  float dloss_dx;
  float coef1;
  bool low_clipped;
  bool high_clipped;
};

/// l = -min(c1·A, c2·A) with ρ = e^x, c1 = min(ρ, δ) (δ only when has_delta), c2 =
/// clamp(ρ, lo, hi). The derivative is the one autograd gives: through c1 where ρ <= δ,
/// through c2 where lo <= ρ <= hi (both bounds inclusive), half through each branch where
/// c1·A == c2·A. A == 0 gives l = 0 and no gradient without forming 0·∞ for huge ρ; a
/// clipped branch never multiplies by ρ, so a ratio that overflows (x > 88) still gives
/// the exact clipped value and a zero gradient. Only an unclipped branch with A < 0 and
/// ρ = ∞ overflows, as the objective itself does.
RLHF_HD inline surrogate_term clipped_surrogate(float x, float a, float lo, float hi,
                                                bool has_delta, float delta) {
  const float rho = std::exp(x);
  const bool capped = has_delta && rho > delta;
  const float c1 = capped ? delta : rho;
  surrogate_term r{0.0f, 0.0f, c1, c1 < lo && a < 0.0f, c1 > hi && a > 0.0f};
  if (a == 0.0f) return r;
  const float c2 = math::clamp(rho, lo, hi);
  const float d1 = capped ? 0.0f : rho;
  const float d2 = (rho >= lo && rho <= hi) ? rho : 0.0f;
  const float u1 = c1 * a, u2 = c2 * a;
  if (u1 < u2) {
    r.loss = -u1;
    r.dloss_dx = -a * d1;
  } else if (u2 < u1) {
    r.loss = -u2;
    r.dloss_dx = -a * d2;
  } else {
    r.loss = -u1;
    r.dloss_dx = -a * 0.5f * (d1 + d2);
  }
  return r;
}

/// SAPO's soft gate (Gao et al. 2025, arXiv 2511.20347) as TRL writes it:
/// l = -(4/τ)·σ(τ(ρ - 1))·A with ρ = e^x, τ = τ_pos if A > 0 else τ_neg (A == 0 takes
/// τ_neg; it contributes 0 either way). dl/dx = -4·σ(1 - σ)·ρ·A, which is -A at ρ = 1.
/// Where ρ overflows σ(1 - σ) is 0 and so is the derivative (autograd would form 0·∞).
RLHF_HD inline surrogate_term sapo_surrogate(float x, float a, float tau_pos, float tau_neg) {
  surrogate_term r{0.0f, 0.0f, 0.0f, false, false};
  const float rho = std::exp(x);
  r.coef1 = rho;
  if (a == 0.0f) return r;
  const float tau = a > 0.0f ? tau_pos : tau_neg;
  const float z = tau * (rho - 1.0f);
  const float s = math::sigmoid(z), sc = math::sigmoid(-z);
  r.loss = -(4.0f / tau) * s * a;
  const float ds = s * sc;  // σ'(z); 0 once z is past ~104
  r.dloss_dx = ds == 0.0f ? 0.0f : -4.0f * ds * rho * a;
  return r;
}

/// VESPO's sequence weight (arXiv 2602.10693) as TRL's get_gamma_weights computes it, from
/// s = Σ_t m·clamp(log ρ_t, -20, 20) (+ the summed log vLLM ratios): L = clamp(s, log 1e-8,
/// 20), w = e^L, (k, λ) = (k_pos, λ_pos) if A >= 0 else (k_neg, λ_neg), λ = max(λ, 1e-4),
/// φ = exp(λ + k·L - λ·w) = e^λ·w^k·e^(-λw) (φ(1) = 1); a non-finite φ is 0.
RLHF_HD inline float vespo_phi(float s, float a, float k_pos, float lambda_pos, float k_neg,
                               float lambda_neg) {
  constexpr float log_floor = -18.420680743952367f;  // log(1e-8)
  const float l = math::clamp(s, log_floor, 20.0f);
  const float w = std::exp(l);
  const bool nonneg = a >= 0.0f;
  const float k = nonneg ? k_pos : k_neg;
  const float lam_raw = nonneg ? lambda_pos : lambda_neg;
  const float lam = lam_raw > 1e-4f ? lam_raw : 1e-4f;
  const float phi = std::exp(lam + k * l - lam * w);
  return phi - phi == 0.0f ? phi : 0.0f;  // NaN and ±inf -> 0 (x - x is NaN for both)
}

/// One token's log-ratio for VESPO's sum: clamp(x, -20, 20).
RLHF_HD inline float vespo_log_ratio(float x) { return math::clamp(x, -20.0f, 20.0f); }

/// One vLLM importance-sampling ratio for VESPO's sum: clamp(log r, log 1e-8, 20); r = 0
/// (a masked-out ratio) gives log 1e-8.
RLHF_HD inline float vespo_log_is_ratio(float r) {
  constexpr float log_floor = -18.420680743952367f;
  return r > 0.0f ? math::clamp(std::log(r), log_floor, 20.0f) : log_floor;
}

/// k3 = e^d - d - 1 with d = ref - logp (Schulman's unbiased, non-negative estimator),
/// as expm1(d) - d to keep small values accurate; d k3 / d logp = -expm1(d).
struct k3_term {
  float value;
  float dvalue_dlogp;
};

RLHF_HD inline k3_term k3_kl(float logp, float ref) {
  const float d = ref - logp;
  const float e = std::expm1(d);
  return {e - d, -e};
}

}  // namespace detail
}  // namespace losses
}  // namespace v0
}  // namespace rlhf
