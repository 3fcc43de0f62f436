// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// CUDA and cuBLAS glue of rlhf::thrust_backend (nvcc only): error checks that throw
// rlhf::backend_error with the API's own error name and string, a cuBLAS handle per host
// thread and device, and the row-major strided-batched SGEMM.
#pragma once

#if defined(__CUDACC__)

#include <climits>
#include <string_view>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/gemm.hpp"

namespace rlhf {
inline namespace v0 {
namespace detail {
namespace thrust_impl {

/// Throws backend_error "<what>: <cudaErrorName>: <description>" unless status is success.
inline void check_cuda(cudaError_t status, std::string_view what) {
  if (status != cudaSuccess) {
    throw backend_error(rlhf::detail::concat("thrust_backend: ", what, ": ",
                                             cudaGetErrorName(status), ": ",
                                             cudaGetErrorString(status)));
  }
}

/// Throws backend_error "<what>: <cuBLAS status string>" unless status is success.
inline void check_cublas(cublasStatus_t status, std::string_view what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw backend_error(rlhf::detail::concat("thrust_backend: ", what, ": ",
                                             cublasGetStatusString(status), " (status ",
                                             static_cast<int>(status), ")"));
  }
}

/// One cuBLAS handle per host thread, recreated when the thread's current device changes.
/// It runs on the legacy default stream, as Thrust's cuda::par does, so products and
/// Thrust algorithms are ordered.
inline cublasHandle_t cublas_handle() {
  struct holder {
    cublasHandle_t handle = nullptr;
    int device = -1;
    ~holder() {
      if (handle != nullptr) cublasDestroy(handle);  // errors at exit are not reportable
    }
  };
  thread_local holder h;
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  if (h.handle == nullptr || h.device != device) {
    if (h.handle != nullptr) {
      cublasDestroy(h.handle);
      h.handle = nullptr;
    }
    check_cublas(cublasCreate(&h.handle), "cublasCreate");
    h.device = device;
  }
  return h.handle;
}

inline int cublas_int(index_t v, std::string_view what) {
  if (v < 0 || v > INT_MAX) {
    throw backend_error(rlhf::detail::concat("thrust_backend: gemm: ", what, " = ", v,
                                             " exceeds cuBLAS's 32-bit int"));
  }
  return static_cast<int>(v);
}

/// Row-major C_q = alpha op(A_q) op(B_q) + beta C_q as the column-major product
/// C_q^T = op(B_q)^T op(A_q)^T (a row-major (r, c) matrix with leading dimension ld is the
/// column-major (c, r) matrix with the same ld). Needs k >= 1 (the caller scales C when
/// k == 0: cuBLAS would reject ld = 0). beta == 0: C is not read (cuBLAS's contract).
/// FP32 math (cuBLAS's default math mode: no TF32).
inline void cublas_gemm(const gemm_desc& d, const float* a, const float* b, float* c) {
  const cublasOperation_t op_a = d.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = d.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const float alpha = d.alpha, beta = d.beta;
  check_cublas(
      cublasSgemmStridedBatched(
          cublas_handle(), op_b, op_a, cublas_int(d.n, "n"), cublas_int(d.m, "m"),
          cublas_int(d.k, "k"), &alpha, b + d.b.offset, cublas_int(d.b.ld, "ld of b"),
          static_cast<long long>(d.b.batch_stride), a + d.a.offset,
          cublas_int(d.a.ld, "ld of a"), static_cast<long long>(d.a.batch_stride), &beta,
          c + d.c.offset, cublas_int(d.c.ld, "ld of c"),
          static_cast<long long>(d.c.batch_stride), cublas_int(d.batch, "batch")),
      "cublasSgemmStridedBatched");
}

}  // namespace thrust_impl
}  // namespace detail
}  // namespace v0
}  // namespace rlhf

#endif  // __CUDACC__
