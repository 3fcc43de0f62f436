// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Scalar math shared by the losses, stable in float32 for any finite input and callable
// from host and device code (RLHF_HD).
#pragma once

#include <cmath>

#include "rlhf/core/config.hpp"

namespace rlhf {
inline namespace v0 {
namespace math {

/// 1 / (1 + e^-x); two branches so that exp never overflows.
RLHF_HD inline float sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
  const float e = std::exp(x);
  return e / (1.0f + e);
}

/// log(sigmoid(x)) = -softplus(-x), never log(sigmoid(x)) (which is -inf for x < -88).
RLHF_HD inline float log_sigmoid(float x) {
  return std::fmin(x, 0.0f) - std::log1p(std::exp(-std::fabs(x)));
}

/// log(1 + e^x).
RLHF_HD inline float softplus(float x) {
  return std::fmax(x, 0.0f) + std::log1p(std::exp(-std::fabs(x)));
}

/// log(1 - e^x) for x < 0 (Mächler 2012): log1p(-e^x) below -ln 2, log(-expm1(x)) above.
RLHF_HD inline float log1mexp(float x) {
  constexpr float ln2 = 0.693147180559945309f;
  return x < -ln2 ? std::log1p(-std::exp(x)) : std::log(-std::expm1(x));
}

/// max(x, 0); NaN gives 0.
RLHF_HD inline float relu(float x) { return x > 0.0f ? x : 0.0f; }

/// x limited to [lo, hi]; NaN stays NaN.
RLHF_HD inline float clamp(float x, float lo, float hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

}  // namespace math
}  // namespace v0
}  // namespace rlhf
