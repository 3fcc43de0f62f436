// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::eigen_backend: the default CPU backend. Tensors are rlhf::host_tensor; the hot
// ops (GEMM, row reductions, softmax) are Eigen expressions (SIMD), parallel with OpenMP
// over rows or chunks when the work is large enough. Ops not overridden here use the
// generic implementations in rlhf/ops/.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>

#include <Eigen/Core>

#if defined(RLHF_EIGEN_USE_CBLAS)
#include <cblas.h>
#endif

#include "rlhf/backends/detail/host_primitives.hpp"
#include "rlhf/backends/detail/onednn_sgemm.hpp"
#include "rlhf/backends/detail/openmp_parallel.hpp"
#include "rlhf/backends/eigen/gemm_provider.hpp"
#include "rlhf/core/host_tensor.hpp"
#include "rlhf/core/overrides.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/ops/gemm.hpp"

namespace rlhf {
inline namespace v0 {

/// The default CPU backend: host_tensor storage, Eigen kernels for GEMM, row reductions and
/// softmax, OpenMP over rows or chunks; every other op is the generic one of rlhf/ops/.
struct eigen_backend
    : detail::openmp::host_primitives<host_tensor<float>, host_tensor<std::int32_t>> {
  using backend_category = tensor_backend_tag;     ///< opts in to the tensor_backend concept
  using tensor = host_tensor<float>;               ///< float32 host tensor
  using index_tensor = host_tensor<std::int32_t>;  ///< int32 host tensor (ids, indices)
  static constexpr const char* name = "eigen";     ///< the backend's name in logs and benchmarks

  // The required primitives (data, host copies, parallel_for) and the elementwise
  // transforms come from detail::openmp::host_primitives.

  // ---- overrides -----------------------------------------------------------------------

  /// Every element of t set to value, in parallel chunks.
  static void fill(tensor& t, float value) {
    float* p = t.data();
    detail::openmp::run_chunks(t.size(),
                               [&](index_t b, index_t e) { std::fill(p + b, p + e, value); });
  }

  // transform, transform_rows, transform_cols: detail::openmp::host_primitives.

  /// out[r] = Σ_c x[r, c] for x seen as (R, C); out has R elements.
  static void row_sum(const tensor& x, tensor& out) {
    for_rows(x, [&](index_t r, const auto& row) { out.data()[r] = row.sum(); });
  }

  /// out[r] = max_c x[r, c] for x (R, C), NaN propagating; -inf for C = 0.
  static void row_max(const tensor& x, tensor& out) {
    for_rows(x, [&](index_t r, const auto& row) { out.data()[r] = max_of(row); });
  }

  /// out[r] = log Σ_c exp x[r, c] for x (R, C), max-subtracted.
  static void row_logsumexp(const tensor& x, tensor& out) {
    for_rows(x, [&](index_t r, const auto& row) { out.data()[r] = logsumexp_of(row); });
  }

  /// out[r] = Σ_c m·x / Σ_c m over x and mask (R, C), skipping m == 0; 0 when Σ_c m = 0.
  static void row_masked_mean(const tensor& x, const tensor& mask, tensor& out) {
    const index_t cols = x.shape().cols();
    for_rows(x, [&](index_t r, const auto& row) {
      const Eigen::Map<const Eigen::ArrayXf> m(mask.data() + r * cols, cols);
      // select() keeps a NaN at a masked-out position from reaching the sum.
      const float num = (m != 0.0f).select(m * row, 0.0f).sum();
      const float den = m.sum();
      out.data()[r] = den != 0.0f ? num / den : 0.0f;
    });
  }

  /// out[c] = Σ_r x[r, c] for x (R, C); out has C elements, summed in column blocks.
  static void col_sum(const tensor& x, tensor& out) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    constexpr index_t block = 256;
    const index_t blocks = (cols + block - 1) / block;
    detail::openmp::run_parallel(blocks, rows * cols, [&](index_t bi) {
      const index_t c0 = bi * block;
      const index_t w = std::min(block, cols - c0);
      Eigen::Map<Eigen::ArrayXf> acc(out.data() + c0, w);
      acc.setZero();
      for (index_t r = 0; r < rows; ++r) {
        acc += Eigen::Map<const Eigen::ArrayXf>(x.data() + r * cols + c0, w);
      }
    });
  }

  /// Softmax of each row of x (R, C) into out (R, C), max-subtracted.
  static void softmax_rows(const tensor& x, tensor& out) {
    const index_t cols = x.shape().cols();
    for_rows(x, [&](index_t r, const auto& row) {
      Eigen::Map<Eigen::ArrayXf> o(out.data() + r * cols, cols);
      const float m = max_of(row);
      o = (row - m).exp();
      o *= 1.0f / o.sum();
    });
  }

  /// Log-softmax of each row of x (R, C) into out (R, C): x[r, c] - row_logsumexp.
  static void log_softmax_rows(const tensor& x, tensor& out) {
    const index_t cols = x.shape().cols();
    for_rows(x, [&](index_t r, const auto& row) {
      Eigen::Map<Eigen::ArrayXf> o(out.data() + r * cols, cols);
      const float lse = logsumexp_of(row);
      o = row - lse;
    });
  }

  /// True when oneDNN is the GEMM provider: its sgemm runs x·W with W stored (K, N) at
  /// 1.1–2.7× the speed of x·Wᵀ with W stored (N, K) on a GPT's linear layers (most for a
  /// decode step's 16–64 rows and for K = 4C), so the model's layers multiply by transposed
  /// copies of their weights (ops::gemm_prefers_kn_weights, docs/backends.md). OpenBLAS and
  /// Eigen's kernel run both layouts about as fast.
  [[nodiscard]] static bool gemm_prefers_kn_weights() {
    return eigen_gemm_provider() == gemm_provider::onednn;
  }

#if !defined(RLHF_EIGEN_USE_CBLAS) || defined(RLHF_CBLAS_OPENMP)
  /// f(i) for i in [0, n), in parallel (OpenMP, static schedule); f may call gemm, which
  /// then runs on f's thread: inside a parallel region the batch and the tiles of a product
  /// run one after another, the same tiles as outside, so the same bits
  /// (ops::has_gemm_tasks). Not declared with a pthreads BLAS, which would start threads of
  /// its own under each task.
  template <class F>
  static void gemm_tasks(index_t n, F&& f) {
    detail::openmp::run_parallel(n, n > 1 ? detail::openmp::parallel_grain : 0, f);
  }
#endif

  /// C_q = alpha·op(A_q)·op(B_q) + beta·C_q for each of d.batch products, through
  /// eigen_gemm_provider() (gemm_provider.hpp: oneDNN, a CBLAS or Eigen).
  static void gemm(const gemm_desc& d, const tensor& a, const tensor& b, tensor& c) {
    if (d.m == 0 || d.n == 0) return;
    // K = 0 only scales C: Eigen's path does that without calling a library.
    const gemm_provider provider = d.k > 0 ? eigen_gemm_provider() : gemm_provider::eigen;
    // Small products of a batch run one per thread; large ones use the library's (or
    // Eigen's) own threads.
    const index_t flops = d.m * d.n * d.k;
    if (d.batch > 1 && flops < 128 * 128 * 128) {
#if defined(RLHF_EIGEN_USE_CBLAS) && !defined(RLHF_CBLAS_OPENMP)
      // A pthreads BLAS inside our parallel region would start threads of its own.
      const gemm_provider inner = provider == gemm_provider::cblas ? gemm_provider::eigen
                                                                   : provider;
#else
      const gemm_provider inner = provider;
#endif
      detail::openmp::run_parallel(d.batch, d.batch * flops,
                                   [&](index_t q) { gemm_one(inner, d, q, a, b, c); });
      return;
    }
    for (index_t q = 0; q < d.batch; ++q) gemm_one(provider, d, q, a, b, c);
  }

  /// C (m, n) = alpha·op(A)·op(B) + c_row (n,) in every row, one product (d.batch and
  /// d.beta are not read): each tile of C is set to its columns of c_row just before its
  /// product accumulates onto it, while the tile is in cache, instead of a pass over all of
  /// C first. The same bits as filling C and calling gemm with beta = 1 (ops::gemm_bias).
  static void gemm_bias(const gemm_desc& d, const tensor& a, const tensor& b, tensor& c,
                        const float* c_row) {
    if (d.m == 0 || d.n == 0) return;
    gemm_desc one = d;
    one.batch = 1;
    one.beta = 1.0f;
    gemm_one(d.k > 0 ? eigen_gemm_provider() : gemm_provider::eigen, one, 0, a, b, c, c_row);
  }

 private:
  using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using const_matrix_map = Eigen::Map<const row_major, Eigen::Unaligned, Eigen::OuterStride<>>;
  using matrix_map = Eigen::Map<row_major, Eigen::Unaligned, Eigen::OuterStride<>>;

  /// body(r, row) with row an Eigen array map over row r of x, rows in parallel.
  template <class F>
  static void for_rows(const tensor& x, F&& body) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    const float* xp = x.data();
    detail::openmp::run_parallel(rows, rows * cols, [&](index_t r) {
      const Eigen::Map<const Eigen::ArrayXf> row(xp + r * cols, cols);
      body(r, row);
    });
  }

  template <class Row>
  static float max_of(const Row& row) {
    if (row.size() == 0) return -std::numeric_limits<float>::infinity();
    return row.template maxCoeff<Eigen::PropagateNaN>();
  }

  template <class Row>
  static float logsumexp_of(const Row& row) {
    const float m = max_of(row);
    if (std::isnan(m) || std::isinf(m)) return m;
    return m + std::log((row - m).exp().sum());
  }

  /// Product q of d through `provider` (one of the linked ones); with c_row, C_q is first
  /// set to c_row in every row (gemm_bias: beta = 1).
  static void gemm_one(gemm_provider provider, const gemm_desc& d, index_t q, const tensor& a,
                       const tensor& b, tensor& c, const float* c_row = nullptr) {
    switch (provider) {
#if defined(RLHF_EIGEN_USE_ONEDNN)
      case gemm_provider::onednn:
        detail::onednn::sgemm(d.trans_a, d.trans_b, d.m, d.n, d.k, d.alpha,
                              {a.data() + d.a.offset + q * d.a.batch_stride, d.a.ld},
                              {b.data() + d.b.offset + q * d.b.batch_stride, d.b.ld}, d.beta,
                              c.data() + d.c.offset + q * d.c.batch_stride, d.c.ld, c_row);
        return;
#endif
#if defined(RLHF_EIGEN_USE_CBLAS)
      case gemm_provider::cblas:
        if (c_row != nullptr) {  // the BLAS tiles C itself: the rows first, in parallel
          float* cq = c.data() + d.c.offset + q * d.c.batch_stride;
          detail::openmp::run_parallel(d.m, d.m * d.n, [&](index_t r) {
            detail::openmp::fill_tile_rows(cq + r * d.c.ld, d.c.ld, 1, d.n, c_row);
          });
        }
        gemm_one_cblas(d, q, a, b, c);
        return;
#endif
      default: gemm_one_eigen(d, q, a, b, c, c_row); return;
    }
  }

  /// Product q through Eigen's kernel, on the tiles of C of run_gemm_tiles (Eigen's
  /// own threads would block K by the thread count and change the result's last bits).
  static void gemm_one_eigen(const gemm_desc& d, index_t q, const tensor& a, const tensor& b,
                             tensor& c, const float* c_row) {
    const float* aq = a.data() + d.a.offset + q * d.a.batch_stride;
    const float* bq = b.data() + d.b.offset + q * d.b.batch_stride;
    float* cq = c.data() + d.c.offset + q * d.c.batch_stride;
    detail::openmp::run_gemm_tiles(
        d.m, d.n, d.m * d.n * d.k, [&](index_t i0, index_t j0, index_t rows, index_t cols) {
          if (c_row != nullptr) {
            detail::openmp::fill_tile_rows(cq + i0 * d.c.ld + j0, d.c.ld, rows, cols, c_row + j0);
          }
          // Rows i0.. of op(A) and columns j0.. of op(B); A stored (k, m) when trans_a, B
          // stored (n, k) when trans_b.
          const const_matrix_map A(d.trans_a ? aq + i0 : aq + i0 * d.a.ld, d.trans_a ? d.k : rows,
                                   d.trans_a ? rows : d.k, Eigen::OuterStride<>(d.a.ld));
          const const_matrix_map B(d.trans_b ? bq + j0 * d.b.ld : bq + j0, d.trans_b ? cols : d.k,
                                   d.trans_b ? d.k : cols, Eigen::OuterStride<>(d.b.ld));
          matrix_map C(cq + i0 * d.c.ld + j0, rows, cols, Eigen::OuterStride<>(d.c.ld));
          auto product = [&](const auto& opA, const auto& opB) {
            if (d.k == 0) {
              if (d.beta == 0.0f) C.setZero();
              else C *= d.beta;
            } else if (d.beta == 0.0f) {
              C.noalias() = d.alpha * opA * opB;  // C is not read
            } else {
              if (d.beta != 1.0f) C *= d.beta;
              C.noalias() += d.alpha * opA * opB;
            }
          };
          if (!d.trans_a && !d.trans_b) product(A, B);
          else if (d.trans_a && !d.trans_b) product(A.transpose(), B);
          else if (!d.trans_a && d.trans_b) product(A, B.transpose());
          else product(A.transpose(), B.transpose());
        });
  }

#if defined(RLHF_EIGEN_USE_CBLAS)
  using blasint_t = int;  // CBLAS dimensions

  /// Row-major cblas_sgemm on the same operands (the target rlhf::eigen defines
  /// RLHF_EIGEN_USE_CBLAS when CMake finds a CBLAS such as OpenBLAS; -DRLHF_EIGEN_BLAS=OFF
  /// keeps Eigen's own kernel). beta == 0 overwrites C as the BLAS standard specifies.
  static void gemm_one_cblas(const gemm_desc& d, index_t q, const tensor& a, const tensor& b,
                             tensor& c) {
    cblas_sgemm(CblasRowMajor, d.trans_a ? CblasTrans : CblasNoTrans,
                d.trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint_t>(d.m),
                static_cast<blasint_t>(d.n), static_cast<blasint_t>(d.k), d.alpha,
                a.data() + d.a.offset + q * d.a.batch_stride, static_cast<blasint_t>(d.a.ld),
                b.data() + d.b.offset + q * d.b.batch_stride, static_cast<blasint_t>(d.b.ld),
                d.beta, c.data() + d.c.offset + q * d.c.batch_stride,
                static_cast<blasint_t>(d.c.ld));
  }
#endif
};

// Every override above (and those inherited from host_primitives) is the one the ops call.
RLHF_BACKEND_OVERRIDES(eigen_backend, fill, transform, transform_rows, transform_cols, row_sum,
                       row_max, row_logsumexp, row_masked_mean, col_sum, softmax_rows,
                       log_softmax_rows, gemm);

}  // namespace v0
}  // namespace rlhf
