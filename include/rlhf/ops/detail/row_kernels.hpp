// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Per-row scalar kernels shared by the generic ops (host and device code).
// NaN rules: a NaN anywhere in a row makes max, logsumexp and softmax of that row NaN.
#pragma once

#include <cmath>
#include <limits>

#include "rlhf/core/config.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {
namespace detail {

RLHF_HD inline float row_max_kernel(const float* x, index_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (index_t c = 0; c < n; ++c) {
    const float v = x[c];
    if (v != v) return v;  // NaN propagates
    if (v > m) m = v;
  }
  return m;
}

/// log(sum(exp(x))) with the max subtracted; all -inf gives -inf, any +inf gives +inf.
RLHF_HD inline float row_logsumexp_kernel(const float* x, index_t n) {
  const float m = row_max_kernel(x, n);
  if (m != m || std::isinf(m)) return m;
  float s = 0.0f;
  for (index_t c = 0; c < n; ++c) s += std::exp(x[c] - m);
  return m + std::log(s);
}

}  // namespace detail
}  // namespace ops
}  // namespace v0
}  // namespace rlhf
