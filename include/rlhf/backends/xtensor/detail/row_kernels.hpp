// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Per-row reductions of rlhf::xtensor_backend on xsimd batches (the SIMD layer of xtensor;
// when xtensor is used without xsimd only the scalar tail loops run). xtensor's own full
// reductions (xt::sum, xt::amax) end in std::accumulate, which the compiler may not
// vectorise, hence these kernels; the elementwise halves of softmax and friends are
// xtensor expressions in the backend.
//
// NaN rules as in rlhf/ops/detail/row_kernels.hpp: a NaN anywhere in a row makes max and
// logsumexp NaN; an empty row has sum 0 and max -inf.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#if defined(XTENSOR_USE_XSIMD)
#include <xsimd/xsimd.hpp>
#endif

#include "rlhf/core/config.hpp"

namespace rlhf {
inline namespace v0 {
namespace detail {
namespace xtensor {

#if defined(XTENSOR_USE_XSIMD)
using batch = xsimd::batch<float>;
inline constexpr index_t simd_width = static_cast<index_t>(batch::size);

/// Σ of the lanes of b: xsimd 8 calls it hadd, xsimd 9 and later reduce_add.
template <class Batch>
inline auto batch_sum(const Batch& b) {
#if XSIMD_VERSION_MAJOR >= 9
  return xsimd::reduce_add(b);
#else
  return xsimd::hadd(b);
#endif
}

/// The largest lane of b (NaN-free by the callers' checks).
inline float lane_max(const batch& b) noexcept {
  alignas(64) float lanes[batch::size];
  b.store_aligned(lanes);
  return *std::max_element(lanes, lanes + batch::size);
}
#endif

/// Σ x[0..n)
inline float row_sum(const float* x, index_t n) noexcept {
  index_t c = 0;
  float s = 0.0f;
#if defined(XTENSOR_USE_XSIMD)
  if (n >= simd_width) {
    batch acc(0.0f);
    for (; c + simd_width <= n; c += simd_width) acc += batch::load_unaligned(x + c);
    s = batch_sum(acc);
  }
#endif
  for (; c < n; ++c) s += x[c];
  return s;
}

/// max x[0..n), NaN if any element is NaN, -inf for an empty row.
inline float row_max(const float* x, index_t n) noexcept {
  index_t c = 0;
  float m = -std::numeric_limits<float>::infinity();
#if defined(XTENSOR_USE_XSIMD)
  if (n >= simd_width) {
    batch acc(m);
    auto any_nan = batch(0.0f) != batch(0.0f);  // all false
    for (; c + simd_width <= n; c += simd_width) {
      const batch v = batch::load_unaligned(x + c);
      any_nan = any_nan | xsimd::isnan(v);
      acc = xsimd::max(acc, v);
    }
    if (xsimd::any(any_nan)) return std::numeric_limits<float>::quiet_NaN();
    m = lane_max(acc);
  }
#endif
  for (; c < n; ++c) {
    const float v = x[c];
    if (v != v) return v;
    m = v > m ? v : m;
  }
  return m;
}

/// Σ exp(x - m) for a finite m.
inline float row_sum_exp(const float* x, index_t n, float m) noexcept {
  index_t c = 0;
  float s = 0.0f;
#if defined(XTENSOR_USE_XSIMD)
  if (n >= simd_width) {
    const batch mb(m);
    batch acc(0.0f);
    for (; c + simd_width <= n; c += simd_width) {
      acc += xsimd::exp(batch::load_unaligned(x + c) - mb);
    }
    s = batch_sum(acc);
  }
#endif
  for (; c < n; ++c) s += std::exp(x[c] - m);
  return s;
}

/// m + log Σ exp(x - m) with m the row max; all -inf gives -inf, any +inf gives +inf.
inline float row_logsumexp(const float* x, index_t n) noexcept {
  const float m = row_max(x, n);
  if (std::isnan(m) || std::isinf(m)) return m;
  return m + std::log(row_sum_exp(x, n, m));
}

/// Σ_{w != 0} w·x / Σ w, 0 when Σ w is 0; x at w == 0 is never read into the sum.
inline float row_masked_mean(const float* x, const float* w, index_t n) noexcept {
  index_t c = 0;
  float num = 0.0f, den = 0.0f;
#if defined(XTENSOR_USE_XSIMD)
  if (n >= simd_width) {
    const batch zero(0.0f);
    batch acc_num(0.0f), acc_den(0.0f);
    for (; c + simd_width <= n; c += simd_width) {
      const batch wv = batch::load_unaligned(w + c);
      const batch xv = batch::load_unaligned(x + c);
      acc_num += xsimd::select(wv != zero, wv * xv, zero);  // a NaN under w = 0 is dropped
      acc_den += wv;
    }
    num = batch_sum(acc_num);
    den = batch_sum(acc_den);
  }
#endif
  for (; c < n; ++c) {
    if (w[c] != 0.0f) num += w[c] * x[c];
    den += w[c];
  }
  return den != 0.0f ? num / den : 0.0f;
}

}  // namespace xtensor
}  // namespace detail
}  // namespace v0
}  // namespace rlhf
