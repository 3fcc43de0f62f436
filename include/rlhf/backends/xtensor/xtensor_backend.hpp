// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::xtensor_backend: a CPU backend on xtensor. Tensors hold their elements in an
// xt::xtensor container (detail::xtensor::dense_tensor); the hot ops are xtensor
// expressions on row adaptors (SIMD through xsimd when xtensor uses it) and xsimd row
// reductions, parallel with OpenMP over rows or chunks when the work is large enough;
// GEMM goes to cblas_sgemm (the CBLAS CMake links, OpenBLAS on Debian). Ops not overridden
// here use the generic implementations in rlhf/ops/.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "rlhf/backends/detail/host_primitives.hpp"
#include "rlhf/backends/detail/openmp_parallel.hpp"
#include "rlhf/backends/xtensor/detail/dense_tensor.hpp"
#include "rlhf/backends/xtensor/detail/row_kernels.hpp"
#include "rlhf/backends/xtensor/detail/views.hpp"
#include "rlhf/core/overrides.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/ops/gemm.hpp"

#if defined(RLHF_XTENSOR_USE_CBLAS)
#include "rlhf/backends/xtensor/detail/gemm.hpp"
#endif

namespace rlhf {
inline namespace v0 {

/// A CPU backend on xtensor: xt::xtensor storage, xtensor/xsimd row kernels, OpenMP over rows
/// or chunks, GEMM through CBLAS when built with it; other ops are the generic ones.
struct xtensor_backend
    : detail::openmp::host_primitives<detail::xtensor::dense_tensor<float>,
                                      detail::xtensor::dense_tensor<std::int32_t>> {
  using backend_category = tensor_backend_tag;          ///< opts in to the tensor_backend concept
  using tensor = detail::xtensor::dense_tensor<float>;  ///< float32 tensor over xt::xtensor
  /// int32 tensor over xt::xtensor (ids, indices).
  using index_tensor = detail::xtensor::dense_tensor<std::int32_t>;
  static constexpr const char* name = "xtensor";  ///< the backend's name in logs and benchmarks

  // The required primitives (data, host copies, parallel_for) and the elementwise
  // transforms come from detail::openmp::host_primitives.

  // ---- overrides -----------------------------------------------------------------------

  /// Every element of t set to value, in parallel chunks.
  static void fill(tensor& t, float value) {
    float* p = t.data();
    detail::openmp::run_chunks(t.size(), [&](index_t b, index_t e) {
      detail::xtensor::adapt_row(p + b, e - b).fill(value);
    });
  }

  // transform, transform_rows, transform_cols: detail::openmp::host_primitives.

  /// out[r] = Σ_c x[r, c] for x seen as (R, C); out has R elements.
  static void row_sum(const tensor& x, tensor& out) {
    for_rows(x, [&](index_t r, const float* row, index_t n) {
      out.data()[r] = detail::xtensor::row_sum(row, n);
    });
  }

  /// out[r] = max_c x[r, c] for x (R, C), as ops::row_max.
  static void row_max(const tensor& x, tensor& out) {
    for_rows(x, [&](index_t r, const float* row, index_t n) {
      out.data()[r] = detail::xtensor::row_max(row, n);
    });
  }

  /// out[r] = log Σ_c exp x[r, c] for x (R, C), as ops::row_logsumexp.
  static void row_logsumexp(const tensor& x, tensor& out) {
    for_rows(x, [&](index_t r, const float* row, index_t n) {
      out.data()[r] = detail::xtensor::row_logsumexp(row, n);
    });
  }

  /// out[r] = Σ_c m·x / Σ_c m over x and mask (R, C), as ops::row_masked_mean.
  static void row_masked_mean(const tensor& x, const tensor& mask, tensor& out) {
    const float* m = mask.data();
    for_rows(x, [&](index_t r, const float* row, index_t n) {
      out.data()[r] = detail::xtensor::row_masked_mean(row, m + r * n, n);
    });
  }

  /// out (cols,) = Σ_r x[r, :], in blocks of 256 columns (one block per task).
  static void col_sum(const tensor& x, tensor& out) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    constexpr index_t block = 256;
    const index_t blocks = (cols + block - 1) / block;
    const float* xp = x.data();
    float* op = out.data();
    detail::openmp::run_parallel(blocks, rows * cols, [&](index_t bi) {
      const index_t c0 = bi * block;
      const index_t w = std::min(block, cols - c0);
      auto acc = detail::xtensor::adapt_row(op + c0, w);  // (w,)
      acc.fill(0.0f);
      for (index_t r = 0; r < rows; ++r) {
        xt::noalias(acc) += detail::xtensor::adapt_row(xp + r * cols + c0, w);
      }
    });
  }

  /// out[r, :] = exp(x[r, :] - max) / Σ exp(x[r, :] - max); out may be x.
  static void softmax_rows(const tensor& x, tensor& out) {
    float* op = out.data();
    for_rows(x, [&](index_t r, const float* row, index_t n) {
      float* orow = op + r * n;
      auto o = detail::xtensor::adapt_row(orow, n);  // (n,)
      const float m = detail::xtensor::row_max(row, n);
      xt::noalias(o) = xt::exp(detail::xtensor::adapt_row(row, n) - m);
      xt::noalias(o) *= 1.0f / detail::xtensor::row_sum(orow, n);
    });
  }

  /// out[r, :] = x[r, :] - logsumexp(x[r, :]); out may be x.
  static void log_softmax_rows(const tensor& x, tensor& out) {
    float* op = out.data();
    for_rows(x, [&](index_t r, const float* row, index_t n) {
      auto o = detail::xtensor::adapt_row(op + r * n, n);  // (n,)
      const float lse = detail::xtensor::row_logsumexp(row, n);
      xt::noalias(o) = detail::xtensor::adapt_row(row, n) - lse;
    });
  }

#if defined(RLHF_XTENSOR_USE_CBLAS)
  /// Small products of a batch run one per thread (each BLAS call stays single-threaded:
  /// an OpenMP-threaded OpenBLAS inside our parallel region, a pthreads one below its
  /// threading threshold of 2^18 multiply-adds); larger ones in sequence, each on the
  /// BLAS's own threads.
  static void gemm(const gemm_desc& d, const tensor& a, const tensor& b, tensor& c) {
    const index_t flops = d.m * d.n * d.k;
    const float* ap = a.data();
    const float* bp = b.data();
    float* cp = c.data();
    if (d.batch > 1 && flops < (index_t{1} << 18)) {
      detail::openmp::run_parallel(d.batch, d.batch * flops,
                                   [&](index_t q) { detail::xtensor::gemm_one(d, q, ap, bp, cp); });
      return;
    }
    for (index_t q = 0; q < d.batch; ++q) detail::xtensor::gemm_one(d, q, ap, bp, cp);
  }
#endif

 private:
  /// body(r, row, cols) with row the first element of row r of x, rows in parallel.
  template <class F>
  static void for_rows(const tensor& x, F&& body) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    const float* xp = x.data();
    detail::openmp::run_parallel(rows, rows * cols,
                                 [&](index_t r) { body(r, xp + r * cols, cols); });
  }
};

// Every override above (and those inherited from host_primitives) is the one the ops call.
RLHF_BACKEND_OVERRIDES(xtensor_backend, fill, transform, transform_rows, transform_cols, row_sum,
                       row_max, row_logsumexp, row_masked_mean, col_sum, softmax_rows,
                       log_softmax_rows);
#if defined(RLHF_XTENSOR_USE_CBLAS)
RLHF_BACKEND_OVERRIDES(xtensor_backend, gemm);
#endif

}  // namespace v0
}  // namespace rlhf
