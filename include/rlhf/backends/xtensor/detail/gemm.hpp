// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// GEMM of rlhf::xtensor_backend: one strided product C_q = alpha op(A_q) op(B_q) + beta C_q
// of a gemm_desc through cblas_sgemm (the CBLAS CMake links: OpenBLAS on Debian).
//
// xtensor-blas's xt::blas::gemm cannot be used: it takes whole xtensor containers (no
// leading dimension into a packed buffer, no batch offset: view_eval copies such operands)
// and its bundled cxxblas redeclares the CBLAS enums, so it cannot share a translation unit
// with <cblas.h> (which the Eigen backend includes). The k == 0 case (C = beta C) is done
// here on xtensor row adaptors: BLAS implementations differ on it.
#pragma once

#include <cblas.h>

#include <xtensor/xnoalias.hpp>

#include "rlhf/backends/xtensor/detail/views.hpp"
#include "rlhf/ops/gemm.hpp"

namespace rlhf {
inline namespace v0 {
namespace detail {
namespace xtensor {

using blas_int = int;  // CBLAS dimensions

/// Product q of the batch described by d on the raw buffers a, b, c.
inline void gemm_one(const gemm_desc& d, index_t q, const float* a, const float* b, float* c) {
  float* cq = c + d.c.offset + q * d.c.batch_stride;
  if (d.k == 0) {  // C = beta C row by row (rows are ld apart); beta == 0 does not read C
    for (index_t i = 0; i < d.m; ++i) {
      auto row = adapt_row(cq + i * d.c.ld, d.n);  // (n,)
      if (d.beta == 0.0f) {
        row.fill(0.0f);
      } else {
        xt::noalias(row) *= d.beta;
      }
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, d.trans_a ? CblasTrans : CblasNoTrans,
              d.trans_b ? CblasTrans : CblasNoTrans, static_cast<blas_int>(d.m),
              static_cast<blas_int>(d.n), static_cast<blas_int>(d.k), d.alpha,
              a + d.a.offset + q * d.a.batch_stride, static_cast<blas_int>(d.a.ld),
              b + d.b.offset + q * d.b.batch_stride, static_cast<blas_int>(d.b.ld), d.beta,
              cq, static_cast<blas_int>(d.c.ld));
}

}  // namespace xtensor
}  // namespace detail
}  // namespace v0
}  // namespace rlhf
