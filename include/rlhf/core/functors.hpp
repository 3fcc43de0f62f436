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

struct identity {
  RLHF_HD float operator()(float x) const { return x; }
};
struct negate {
  RLHF_HD float operator()(float x) const { return -x; }
};
struct exp {
  RLHF_HD float operator()(float x) const { return std::exp(x); }
};
struct log {
  RLHF_HD float operator()(float x) const { return std::log(x); }
};
struct square {
  RLHF_HD float operator()(float x) const { return x * x; }
};
struct abs {
  RLHF_HD float operator()(float x) const { return std::fabs(x); }
};
struct sigmoid {
  RLHF_HD float operator()(float x) const { return math::sigmoid(x); }
};
/// log(sigmoid(x)) = -softplus(-x), stable for |x| large.
struct log_sigmoid {
  RLHF_HD float operator()(float x) const { return math::log_sigmoid(x); }
};
/// log(1 + exp(x)), stable.
struct softplus {
  RLHF_HD float operator()(float x) const { return math::softplus(x); }
};
struct relu {
  RLHF_HD float operator()(float x) const { return x > 0.0f ? x : 0.0f; }
};
struct scale {
  float factor;
  RLHF_HD float operator()(float x) const { return factor * x; }
};
struct add_scalar {
  float value;
  RLHF_HD float operator()(float x) const { return x + value; }
};

struct plus {
  RLHF_HD float operator()(float a, float b) const { return a + b; }
};
struct minus {
  RLHF_HD float operator()(float a, float b) const { return a - b; }
};
struct multiplies {
  RLHF_HD float operator()(float a, float b) const { return a * b; }
};
struct divides {
  RLHF_HD float operator()(float a, float b) const { return a / b; }
};
/// max/min that propagate NaN from either side (like torch.maximum).
struct maximum {
  RLHF_HD float operator()(float a, float b) const {
    return (a != a || b != b) ? a + b : (a > b ? a : b);
  }
};
struct minimum {
  RLHF_HD float operator()(float a, float b) const {
    return (a != a || b != b) ? a + b : (a < b ? a : b);
  }
};
/// a * x + b
struct affine {
  float a, b;
  RLHF_HD float operator()(float x) const { return a * x + b; }
};
/// a * x + y
struct axpy {
  float a;
  RLHF_HD float operator()(float x, float y) const { return a * x + y; }
};
/// a * b + c
struct fma {
  RLHF_HD float operator()(float a, float b, float c) const { return a * b + c; }
};
/// clamp(x, lo, hi), NaN stays NaN.
struct clamp {
  float lo, hi;
  RLHF_HD float operator()(float x) const { return x < lo ? lo : (x > hi ? hi : x); }
};

}  // namespace fn
}  // namespace v0
}  // namespace rlhf
