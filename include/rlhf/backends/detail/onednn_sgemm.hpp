// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Row-major float GEMM through oneDNN's dnnl_sgemm, with results that do not depend on the
// thread count. Left to its own threads, dnnl_sgemm splits the inner dimension K across
// threads for some shapes (few rows and columns of C, a long K), so a sum's order, and its
// last bit, would change with OMP_NUM_THREADS. Here C is cut into tiles fixed by its shape
// (openmp::run_gemm_tiles), each tile is one single-threaded dnnl_sgemm, and OpenMP spreads
// the tiles over the threads: every element is always summed by the same call.
// Only with RLHF_EIGEN_USE_ONEDNN (the target rlhf::eigen defines it when CMake finds
// oneDNN built for GNU OpenMP, the runtime of the backends' parallel loops).
#pragma once

#if defined(RLHF_EIGEN_USE_ONEDNN)

#include <atomic>
#include <string>

#include <oneapi/dnnl/dnnl.h>

#include "rlhf/backends/detail/openmp_parallel.hpp"
#include "rlhf/core/config.hpp"
#include "rlhf/core/errors.hpp"

namespace rlhf {
inline namespace v0 {
namespace detail {
namespace onednn {

/// One operand of a row-major product: its first element and its leading dimension.
struct operand {
  const float* data;
  index_t ld;
};

/// C (m, n) = alpha·op(A)·op(B) + beta·C, all row-major, op = transpose when trans_*: one
/// single-threaded dnnl_sgemm per tile of openmp::run_gemm_tiles, the tiles in parallel (or
/// one after the other inside an enclosing parallel region). beta == 0 overwrites C.
/// With c_row (n,), each tile of C is first set to its columns of c_row in every row (a
/// bias), just before its product accumulates onto it (pass beta = 1).
/// backend_error if oneDNN refuses a call (it does not for the operands gemm_desc allows).
inline void sgemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha,
                  operand a, operand b, float beta, float* c, index_t ldc,
                  const float* c_row = nullptr) {
  std::atomic<int> failure{static_cast<int>(dnnl_success)};
  openmp::run_gemm_tiles(m, n, m * n * k, [&](index_t i0, index_t j0, index_t rows, index_t cols) {
    if (c_row != nullptr) openmp::fill_tile_rows(c + i0 * ldc + j0, ldc, rows, cols, c_row + j0);
    // Row i0 of op(A): row i0 of A, or column i0 of A stored (k, m); likewise column j0 of
    // op(B).
    const float* a_tile = trans_a ? a.data + i0 : a.data + i0 * a.ld;
    const float* b_tile = trans_b ? b.data + j0 * b.ld : b.data + j0;
    const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', rows, cols, k,
                                            alpha, a_tile, a.ld, b_tile, b.ld, beta,
                                            c + i0 * ldc + j0, ldc);
    if (status != dnnl_success) failure.store(static_cast<int>(status));
  });
  if (failure.load() != static_cast<int>(dnnl_success)) {
    throw backend_error("eigen_backend::gemm: dnnl_sgemm failed with oneDNN status " +
                        std::to_string(failure.load()) + " (m " + std::to_string(m) + ", n " +
                        std::to_string(n) + ", k " + std::to_string(k) + ")");
  }
}

}  // namespace onednn
}  // namespace detail
}  // namespace v0
}  // namespace rlhf

#endif  // RLHF_EIGEN_USE_ONEDNN
