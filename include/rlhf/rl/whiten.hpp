// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Masked statistics and whitening over every masked position of a tensor at once (all rows
// together), TRL's masked_mean / masked_var / masked_whiten. docs/algorithms/gae.md.
//
//   S = Σ m                         (mask weights; usually 0/1)
//   masked_mean = Σ m·x / S
//   masked_var  = Σ m·(x - mean)² / S · S/(S - 1)      (unbiased: Bessel with S; needs S > 1)
//   whiten(x)   = (x - mean) · rsqrt(var + eps)         eps = 1e-8
//                 + mean when shift_mean = false (TRL's reward whitening keeps the mean)
// Positions with m = 0 never enter a sum (a NaN there does not leak); by default they are set
// to 0 in the output, as TRL does right after whitening (masked_fill(padding_mask, 0)).
// Sums are accumulated in float64 per row, two passes (mean, then centred squares).
#pragma once

#include <cmath>
#include <vector>

#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/reductions.hpp"

namespace rlhf {
inline namespace v0 {
namespace rl {

/// Options of whiten (TRL masked_whiten).
struct whiten_config {
  /// false: add the mean back after scaling (TRL masked_whiten(shift_mean=False), used for
  /// rewards).
  bool shift_mean = true;
  float eps = 1e-8f;  ///< Added to the unbiased variance before the rsqrt.
  /// Set positions with mask 0 to 0 in the output (TRL masks them right after whitening).
  bool zero_masked = true;
};

namespace detail {

struct masked_moments {
  double weight = 0, mean = 0, var_unbiased = 0;
};

template <class B>
void check_masked_stat(std::string_view fn, const typename B::tensor& x,
                       const typename B::tensor& mask) {
  check_same_shape(fn, "x", x.shape(), "mask", mask.shape());
  if (x.size() == 0) {
    throw shape_error(rlhf::detail::concat(fn, ": batch is empty (x has shape ",
                                           x.shape().str(), ")"));
  }
  ops::check_finite<B>(fn, "x", x);
  ops::check_mask<B>(fn, "mask", mask);
}

/// Σ m and Σ m·x (or Σ m·(x - center)² when square) per row, summed on the host.
template <class B>
double masked_row_sums(const typename B::tensor& x, const typename B::tensor& mask,
                       bool square, double center, double* weight) {
  const index_t rows = x.shape().rows(), cols = x.shape().cols();
  typename B::tensor st(shape{2, rows});
  const float* xp = B::data(x);
  const float* mp = B::data(mask);
  float* s = B::data(st);
  const double c = center;
  B::parallel_for(rows, RLHF_LAMBDA(index_t i) {
    double acc = 0.0, w = 0.0;
    for (index_t j = 0; j < cols; ++j) {
      const float mv = mp[i * cols + j];
      if (mv != 0.0f) {
        const double d = static_cast<double>(xp[i * cols + j]) - (square ? c : 0.0);
        acc += static_cast<double>(mv) * (square ? d * d : d);
        w += mv;
      }
    }
    s[i] = static_cast<float>(w);
    s[rows + i] = static_cast<float>(acc);
  });
  // Host sum of the per-row partials in float64 (one copy of 2·rows floats).
  std::vector<float> host(static_cast<std::size_t>(2 * rows));
  B::copy_to_host(st, std::span<float>(host));
  double w = 0.0, acc = 0.0;
  for (index_t i = 0; i < rows; ++i) {
    w += host[static_cast<std::size_t>(i)];
    acc += host[static_cast<std::size_t>(rows + i)];
  }
  if (weight) *weight = w;
  return acc;
}

template <class B>
masked_moments moments_of(std::string_view fn, const typename B::tensor& x,
                          const typename B::tensor& mask, bool need_var) {
  masked_moments mm;
  const double sum = masked_row_sums<B>(x, mask, false, 0.0, &mm.weight);
  if (!(mm.weight > 0.0)) {
    throw data_error(rlhf::detail::concat(fn, ": mask is all zero; the masked mean is undefined"));
  }
  mm.mean = sum / mm.weight;
  if (need_var) {
    if (!(mm.weight > 1.0)) {
      throw data_error(rlhf::detail::concat(
          fn, ": mask must cover at least 2 positions (sum of weights > 1) for the unbiased "
              "variance, got a sum of ", mm.weight));
    }
    const double ss = masked_row_sums<B>(x, mask, true, mm.mean, nullptr);
    mm.var_unbiased = ss / mm.weight * (mm.weight / (mm.weight - 1.0));
  }
  return mm;
}

}  // namespace detail

/// Σ m·x / Σ m over every position; data_error when the mask is all zero.
template <class B>
float masked_mean(const typename B::tensor& x, const typename B::tensor& mask) {
  constexpr const char* fn = "masked_mean";
  assert_tensor_backend<B>();
  detail::check_masked_stat<B>(fn, x, mask);
  return static_cast<float>(detail::moments_of<B>(fn, x, mask, false).mean);
}

/// Masked variance, unbiased (Bessel, S/(S-1) with S = Σ m; needs S > 1) by default.
template <class B>
float masked_var(const typename B::tensor& x, const typename B::tensor& mask,
                 bool unbiased = true) {
  constexpr const char* fn = "masked_var";
  assert_tensor_backend<B>();
  detail::check_masked_stat<B>(fn, x, mask);
  const auto mm = detail::moments_of<B>(fn, x, mask, true);
  return static_cast<float>(unbiased ? mm.var_unbiased
                                     : mm.var_unbiased * (mm.weight - 1.0) / mm.weight);
}

/// out = (x - mean)·rsqrt(var_unbiased + eps) [+ mean], statistics over the whole masked
/// batch. out may be x itself.
template <class B>
void masked_whiten(const typename B::tensor& x, const typename B::tensor& mask,
                   typename B::tensor& out, const whiten_config& cfg = {}) {
  constexpr const char* fn = "masked_whiten";
  assert_tensor_backend<B>();
  check_same_shape(fn, "x", x.shape(), "out", out.shape());
  check_config(std::isfinite(cfg.eps) && cfg.eps >= 0.0f, fn, "eps", "finite and >= 0", cfg.eps);
  detail::check_masked_stat<B>(fn, x, mask);
  const auto mm = detail::moments_of<B>(fn, x, mask, true);
  const float mean = static_cast<float>(mm.mean);
  const float scale =
      static_cast<float>(1.0 / std::sqrt(mm.var_unbiased + static_cast<double>(cfg.eps)));
  const float add_back = cfg.shift_mean ? 0.0f : mean;
  const bool zero = cfg.zero_masked;
  ops::transform<B>(
      out,
      [=] RLHF_HD(float xv, float mv) {
        return (zero && mv == 0.0f) ? 0.0f : (xv - mean) * scale + add_back;
      },
      x, mask);
}

}  // namespace rl
}  // namespace v0
}  // namespace rlhf
