// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Per-token terms of the PPO clipped losses and their derivatives (host and device code).
// Derivatives follow PyTorch's autograd of TRL's expressions exactly, ties included:
// torch.max splits the gradient evenly between equal arguments and torch.clamp passes it
// through on [lo, hi] (inclusive), so
//   d pg / d logp = -A·ratio        when pg1 >= pg2 (the unclipped term is the max or ties
//                                    with it: then the ratio is inside the range), else 0
//   d vf / d v    = 2(v - R)        when vf1 > vf2, or vf1 = vf2 with v inside the clip range
//                 = (v - R)         when vf1 = vf2 with v outside (half through vf1 only)
//                 = 0               when vf2 > vf1 (v was clipped)
#pragma once

#include <cmath>
#include <cstdint>

#include "rlhf/core/config.hpp"
#include "rlhf/core/math.hpp"
#include "rlhf/ops/detail/logprob_kernels.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {
namespace detail::ppo {

struct ppo_policy_terms {
  float ratio;     // exp(logp - old_logp)
  float loss;      // max(-A·ratio, -A·clamp(ratio, 1-c, 1+c))
  float clipped;   // 1 when the clipped term is strictly larger (TRL's clipfrac), else 0
  float dloss;     // d loss / d logp
};

/// e^d for any finite d, on the vectorisable exp of the log-prob kernels: e^-|d| for d <= 0,
/// its reciprocal above (within 3 ulp of std::exp; +inf from d > 87 on). The sign is picked
/// on bits: ppo_loss's token loop with float comparisons instead ran ~3x slower (GCC 12).
RLHF_HD RLHF_ALWAYS_INLINE float ratio_exp(float d) {
  const float e = ops::detail::exp_nonpositive(-std::fabs(d));
  const std::int32_t negative = ops::detail::float_bits(d) >> 31;  // -1 when d < 0 (or -0)
  return ops::detail::bits_float((ops::detail::float_bits(e) & negative) |
                                 (ops::detail::float_bits(1.0f / e) & ~negative));
}

RLHF_HD RLHF_ALWAYS_INLINE ppo_policy_terms ppo_policy_token(float logp, float old_logp, float adv,
                                                             float cliprange) {
  ppo_policy_terms o;
  o.ratio = ratio_exp(logp - old_logp);
  const float pg1 = -adv * o.ratio;
  const float pg2 = -adv * math::clamp(o.ratio, 1.0f - cliprange, 1.0f + cliprange);
  o.loss = pg1 >= pg2 ? pg1 : pg2;
  o.clipped = pg2 > pg1 ? 1.0f : 0.0f;
  o.dloss = pg1 >= pg2 ? -adv * o.ratio : 0.0f;
  return o;
}

struct ppo_value_terms {
  float loss;     // max((v - R)², (clamp(v, v_old - cv, v_old + cv) - R)²), before the 0.5
  float clipped;  // 1 when the clipped term is strictly larger (TRL's vf_clipfrac)
  float dloss;    // d loss / d v
};

RLHF_HD RLHF_ALWAYS_INLINE ppo_value_terms ppo_value_token(float v, float old_v, float ret,
                                                           float cliprange_value) {
  ppo_value_terms o;
  const float lo = old_v - cliprange_value, hi = old_v + cliprange_value;
  const float vc = math::clamp(v, lo, hi);
  const float e1 = v - ret, e2 = vc - ret;
  const float vf1 = e1 * e1, vf2 = e2 * e2;
  o.loss = vf1 >= vf2 ? vf1 : vf2;
  o.clipped = vf2 > vf1 ? 1.0f : 0.0f;
  const bool inside = v >= lo && v <= hi;
  o.dloss = vf1 > vf2 ? 2.0f * e1 : (vf1 < vf2 ? 0.0f : (inside ? 2.0f * e1 : e1));
  return o;
}

}  // namespace detail::ppo
}  // namespace losses
}  // namespace v0
}  // namespace rlhf
