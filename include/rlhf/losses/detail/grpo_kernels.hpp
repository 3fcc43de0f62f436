// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Per-element math of the clipped policy-gradient surrogate shared by GRPO and RLOO
// (rlhf/losses/grpo.hpp, rlhf/losses/rloo.hpp), and the k3 KL estimator.
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
