// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Row-wise reductions (and the column sum that bias gradients need).
// x is seen as (R, C) by the row convention of rlhf::shape; row outputs have R elements.
//
//   row_sum          out[r] = sum_c x[r, c]                           (C = 0 gives 0)
//   row_max          out[r] = max_c x[r, c], NaN propagates            (C = 0 gives -inf)
//   row_logsumexp    out[r] = log sum_c exp x[r, c], max-subtracted    (all -inf gives -inf)
//   row_masked_mean  out[r] = sum_c m x / sum_c m over m != 0; positions with m == 0 are
//                    skipped entirely (a NaN there does not leak); sum m == 0 gives 0
//   col_sum          out[c] = sum_r x[r, c]
//   sum, row_sums_to_host   totals returned to the host (loss values, metrics)
#pragma once

#include <span>
#include <vector>

#include "rlhf/core/overrides.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/detail/row_kernels.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {
namespace detail {

inline void check_row_output(std::string_view fn, const shape& x, const shape& out) {
  check_dim(fn, "out's element count (one per row of x)", out.numel(), x.rows());
}

template <class B>
void generic_row_sum(const typename B::tensor& x, typename B::tensor& out) {
  const float* xp = B::data(x);
  float* o = B::data(out);
  const index_t cols = x.shape().cols();
  B::parallel_for(x.shape().rows(), RLHF_LAMBDA(index_t r) {
    float s = 0.0f;
    for (index_t c = 0; c < cols; ++c) s += xp[r * cols + c];
    o[r] = s;
  });
}

template <class B>
void generic_row_max(const typename B::tensor& x, typename B::tensor& out) {
  const float* xp = B::data(x);
  float* o = B::data(out);
  const index_t cols = x.shape().cols();
  B::parallel_for(x.shape().rows(),
                  RLHF_LAMBDA(index_t r) { o[r] = row_max_kernel(xp + r * cols, cols); });
}

template <class B>
void generic_row_logsumexp(const typename B::tensor& x, typename B::tensor& out) {
  const float* xp = B::data(x);
  float* o = B::data(out);
  const index_t cols = x.shape().cols();
  B::parallel_for(x.shape().rows(), RLHF_LAMBDA(index_t r) {
    o[r] = row_logsumexp_kernel(xp + r * cols, cols);
  });
}

template <class B>
void generic_row_masked_mean(const typename B::tensor& x, const typename B::tensor& mask,
                             typename B::tensor& out) {
  const float* xp = B::data(x);
  const float* mp = B::data(mask);
  float* o = B::data(out);
  const index_t cols = x.shape().cols();
  B::parallel_for(
      x.shape().rows(), RLHF_LAMBDA(index_t r) {
        float num = 0.0f;
        double den = 0.0;  // a count: exact in double past 2^24
        for (index_t c = 0; c < cols; ++c) {
          const float m = mp[r * cols + c];
          if (m != 0.0f) {
            num += m * xp[r * cols + c];
            den += m;
          }
        }
        o[r] = den != 0.0 ? num / static_cast<float>(den) : 0.0f;
      });
}

template <class B>
void generic_col_sum(const typename B::tensor& x, typename B::tensor& out) {
  const float* xp = B::data(x);
  float* o = B::data(out);
  const index_t rows = x.shape().rows();
  const index_t cols = x.shape().cols();
  B::parallel_for(cols, RLHF_LAMBDA(index_t c) {
    float s = 0.0f;
    for (index_t r = 0; r < rows; ++r) s += xp[r * cols + c];
    o[c] = s;
  });
}

}  // namespace detail

/// out[r] = Σ_c x[r, c] for x seen as (R, C); out has R elements (C = 0 gives 0).
template <class B>
void row_sum(const typename B::tensor& x, typename B::tensor& out) {
  assert_tensor_backend<B>();
  detail::check_row_output("row_sum", x.shape(), out.shape());
  if constexpr (::rlhf::detail::has_row_sum_override<B>) {
    B::row_sum(x, out);
  } else {
    detail::generic_row_sum<B>(x, out);
  }
}

/// out[r] = max_c x[r, c] for x seen as (R, C); NaN propagates, C = 0 gives -inf.
template <class B>
void row_max(const typename B::tensor& x, typename B::tensor& out) {
  assert_tensor_backend<B>();
  detail::check_row_output("row_max", x.shape(), out.shape());
  if constexpr (::rlhf::detail::has_row_max_override<B>) {
    B::row_max(x, out);
  } else {
    detail::generic_row_max<B>(x, out);
  }
}

/// out[r] = log Σ_c exp x[r, c] for x seen as (R, C), max-subtracted; an all -inf row
/// gives -inf.
template <class B>
void row_logsumexp(const typename B::tensor& x, typename B::tensor& out) {
  assert_tensor_backend<B>();
  detail::check_row_output("row_logsumexp", x.shape(), out.shape());
  if constexpr (::rlhf::detail::has_row_logsumexp_override<B>) {
    B::row_logsumexp(x, out);
  } else {
    detail::generic_row_logsumexp<B>(x, out);
  }
}

/// out[r] = Σ_c m x / Σ_c m over the positions where mask m != 0 (x and mask of the same
/// shape, seen as (R, C)); masked-out positions are skipped (NaN there does not leak), and
/// a row with Σ m = 0 gives 0.
template <class B>
void row_masked_mean(const typename B::tensor& x, const typename B::tensor& mask,
                     typename B::tensor& out) {
  assert_tensor_backend<B>();
  check_same_shape("row_masked_mean", "x", x.shape(), "mask", mask.shape());
  detail::check_row_output("row_masked_mean", x.shape(), out.shape());
  if constexpr (::rlhf::detail::has_row_masked_mean_override<B>) {
    B::row_masked_mean(x, mask, out);
  } else {
    detail::generic_row_masked_mean<B>(x, mask, out);
  }
}

/// out[c] = Σ_r x[r, c] for x seen as (R, C); out has C elements.
template <class B>
void col_sum(const typename B::tensor& x, typename B::tensor& out) {
  assert_tensor_backend<B>();
  check_dim("col_sum", "out's element count (one per column of x)", out.size(),
            x.shape().cols());
  if constexpr (::rlhf::detail::has_col_sum_override<B>) {
    B::col_sum(x, out);
  } else {
    detail::generic_col_sum<B>(x, out);
  }
}

namespace detail {

/// Rows longer than this are summed in blocks of this many elements (a float32 running sum
/// is exact for counts only up to 2^24, and drifts on long rows of values).
inline constexpr index_t long_row_block = 4096;

/// Row sums of x seen as (rows, cols) with row-major data, to the host in double: rows of
/// at most long_row_block elements go through the backend's row_sum; longer rows are
/// summed in float blocks of long_row_block elements on the backend and the block sums
/// added in double on the host, so a count of ones stays exact past 2^24.
template <class B>
std::vector<double> row_sums_to_host_f64(const typename B::tensor& x, index_t rows, index_t cols) {
  std::vector<double> out(static_cast<std::size_t>(rows), 0.0);
  if (rows == 0) return out;
  if (cols <= long_row_block) {
    typename B::tensor sums(shape{rows});
    row_sum<B>(x, sums);
    std::vector<float> h(static_cast<std::size_t>(rows));
    B::copy_to_host(sums, std::span<float>(h));
    for (std::size_t r = 0; r < h.size(); ++r) out[r] = h[r];
    return out;
  }
  const index_t blocks = (cols + long_row_block - 1) / long_row_block;
  typename B::tensor partial(shape{rows * blocks});
  const float* xp = B::data(x);
  float* pp = B::data(partial);
  B::parallel_for(
      rows * blocks, RLHF_LAMBDA(index_t i) {
        const index_t r = i / blocks;
        const index_t c0 = (i % blocks) * long_row_block;
        const index_t c1 = c0 + long_row_block < cols ? c0 + long_row_block : cols;
        float s = 0.0f;
        for (index_t c = c0; c < c1; ++c) s += xp[r * cols + c];
        pp[i] = s;
      });
  std::vector<float> h(static_cast<std::size_t>(rows * blocks));
  B::copy_to_host(partial, std::span<float>(h));
  for (index_t r = 0; r < rows; ++r) {
    for (index_t b = 0; b < blocks; ++b) out[r] += h[r * blocks + b];
  }
  return out;
}

}  // namespace detail

/// Sum of every element, returned to the host (float32 accumulation in the backend's
/// row_sum order; past 4096 elements per row, float32 blocks of 4096 added in double, so
/// counts stay exact past 2^24). For loss values, metrics and token counts; a zero-element
/// tensor sums to 0.
template <class B>
float sum(const typename B::tensor& x) {
  assert_tensor_backend<B>();
  if (x.size() == 0) return 0.0f;
  if (x.shape().rank() > 1 && x.shape().cols() > detail::long_row_block) {
    return static_cast<float>(detail::row_sums_to_host_f64<B>(x, 1, x.size())[0]);
  }
  typename B::tensor total(shape{1});
  if (x.shape().rank() == 1) {
    if (x.size() > detail::long_row_block) {
      return static_cast<float>(detail::row_sums_to_host_f64<B>(x, 1, x.size())[0]);
    }
    row_sum<B>(x, total);  // a rank-1 tensor is one row
  } else {
    typename B::tensor per_row(shape{x.shape().rows()});
    row_sum<B>(x, per_row);
    if (per_row.size() > detail::long_row_block) {
      return static_cast<float>(detail::row_sums_to_host_f64<B>(per_row, 1, per_row.size())[0]);
    }
    row_sum<B>(per_row, total);
  }
  float out = 0.0f;
  B::copy_to_host(total, std::span<float>(&out, 1));
  return out;
}

/// Row sums of a (K, N) tensor of per-example statistics, returned to the host: one
/// device-to-host copy of K floats for all the metrics of a loss (past N = 4096, float32
/// blocks of 4096 added in double, so counts of tokens or rows stay exact past 2^24).
template <class B>
std::vector<float> row_sums_to_host(const typename B::tensor& stats) {
  assert_tensor_backend<B>();
  const index_t rows = stats.shape().rows(), cols = stats.shape().cols();
  if (cols > detail::long_row_block) {
    const std::vector<double> d = detail::row_sums_to_host_f64<B>(stats, rows, cols);
    return std::vector<float>(d.begin(), d.end());
  }
  typename B::tensor sums(shape{rows});
  row_sum<B>(stats, sums);
  std::vector<float> out(static_cast<std::size_t>(sums.size()));
  B::copy_to_host(sums, std::span<float>(out));
  return out;
}

}  // namespace ops
}  // namespace v0
}  // namespace rlhf
