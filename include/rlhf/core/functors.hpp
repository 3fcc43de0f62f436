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
/// e^x.
struct exp {
  /// Returns e^x.
  RLHF_HD float operator()(float x) const { return std::exp(x); }
};
/// factor * x.
struct scale {
  float factor;  ///< The multiplier.
  /// Returns factor * x.
  RLHF_HD float operator()(float x) const { return factor * x; }
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
/// a * x + b
struct affine {
  /// a: the slope.
  float a, b;  ///< b: the offset.
  /// Returns a * x + b.
  RLHF_HD float operator()(float x) const { return a * x + b; }
};
/// a * b + c
struct fma {
  /// Returns a * b + c.
  RLHF_HD float operator()(float a, float b, float c) const { return a * b + c; }
};

}  // namespace fn
}  // namespace v0
}  // namespace rlhf
