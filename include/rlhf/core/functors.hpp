// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Library functors for ops::transform and friends. Each is a plain struct with a
// RLHF_HD call operator, so the same object runs on the host and inside a GPU kernel.
#pragma once

#include <cmath>

#include "rlhf/core/config.hpp"
#include "rlhf/core/math.hpp"

namespace rlhf {
inline namespace v0 {
namespace fn {

/// x unchanged.
struct identity {
  /// Returns x.
  RLHF_HD float operator()(float x) const { return x; }
};
/// -x.
struct negate {
  /// Returns -x.
  RLHF_HD float operator()(float x) const { return -x; }
};
/// e^x.
struct exp {
  /// Returns e^x.
  RLHF_HD float operator()(float x) const { return std::exp(x); }
};
/// Natural logarithm.
struct log {
  /// Returns ln x.
  RLHF_HD float operator()(float x) const { return std::log(x); }
};
/// x * x.
struct square {
  /// Returns x * x.
  RLHF_HD float operator()(float x) const { return x * x; }
};
/// |x|.
struct abs {
  /// Returns |x|.
  RLHF_HD float operator()(float x) const { return std::fabs(x); }
};
/// 1 / (1 + e^-x), without overflow (math::sigmoid).
struct sigmoid {
  /// Returns sigmoid(x).
  RLHF_HD float operator()(float x) const { return math::sigmoid(x); }
};
/// log(sigmoid(x)) = -softplus(-x), stable for |x| large.
struct log_sigmoid {
  /// Returns log(sigmoid(x)).
  RLHF_HD float operator()(float x) const { return math::log_sigmoid(x); }
};
/// log(1 + exp(x)), stable.
struct softplus {
  /// Returns log(1 + e^x).
  RLHF_HD float operator()(float x) const { return math::softplus(x); }
};
/// max(x, 0); NaN gives 0.
struct relu {
  /// Returns x when x > 0, else 0.
  RLHF_HD float operator()(float x) const { return x > 0.0f ? x : 0.0f; }
};
/// factor * x.
struct scale {
  float factor;  ///< The multiplier.
  /// Returns factor * x.
  RLHF_HD float operator()(float x) const { return factor * x; }
};
/// x + value.
struct add_scalar {
  float value;  ///< The constant added.
  /// Returns x + value.
  RLHF_HD float operator()(float x) const { return x + value; }
};

/// a + b.
struct plus {
  /// Returns a + b.
  RLHF_HD float operator()(float a, float b) const { return a + b; }
};
/// a - b.
struct minus {
  /// Returns a - b.
  RLHF_HD float operator()(float a, float b) const { return a - b; }
};
/// a * b.
struct multiplies {
  /// Returns a * b.
  RLHF_HD float operator()(float a, float b) const { return a * b; }
};
/// a / b.
struct divides {
  /// Returns a / b.
  RLHF_HD float operator()(float a, float b) const { return a / b; }
};
/// max/min that propagate NaN from either side (like torch.maximum).
struct maximum {
  /// Returns the larger of a and b, or NaN when either is NaN.
  RLHF_HD float operator()(float a, float b) const {
    return (a != a || b != b) ? a + b : (a > b ? a : b);
  }
};
/// The smaller of a and b; NaN from either side propagates (see maximum).
struct minimum {
  /// Returns the smaller of a and b, or NaN when either is NaN.
  RLHF_HD float operator()(float a, float b) const {
    return (a != a || b != b) ? a + b : (a < b ? a : b);
  }
};
/// a * x + b
struct affine {
  /// a: the slope.
  float a, b;  ///< b: the offset.
  /// Returns a * x + b.
  RLHF_HD float operator()(float x) const { return a * x + b; }
};
/// a * x + y
struct axpy {
  float a;  ///< The factor on x.
  /// Returns a * x + y.
  RLHF_HD float operator()(float x, float y) const { return a * x + y; }
};
/// a * b + c
struct fma {
  /// Returns a * b + c.
  RLHF_HD float operator()(float a, float b, float c) const { return a * b + c; }
};
/// clamp(x, lo, hi), NaN stays NaN.
struct clamp {
  /// lo: the lower bound.
  float lo, hi;  ///< hi: the upper bound.
  /// Returns x limited to [lo, hi].
  RLHF_HD float operator()(float x) const { return x < lo ? lo : (x > hi ? hi : x); }
};

}  // namespace fn
}  // namespace v0
}  // namespace rlhf
