// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Compiler and platform glue shared by every header.
#pragma once

#include <cstdint>

// Functions and lambdas that must run on a GPU as well as on the host.
// Under nvcc they are __host__ __device__; elsewhere the macros vanish.
#if defined(__CUDACC__) || defined(__HIPCC__)
#define RLHF_HD __host__ __device__
#else
#define RLHF_HD
#endif

// For tiny functions inside vectorised loops: a call the inliner declines (its unit-growth
// budget runs out in large translation units) turns a SIMD loop into a scalar one.
#if defined(__GNUC__) || defined(__clang__)
#define RLHF_ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define RLHF_ALWAYS_INLINE __forceinline
#else
#define RLHF_ALWAYS_INLINE inline
#endif

// `#pragma omp simd` for loops whose reductions GCC/Clang only vectorise when told the
// order does not matter (no -ffast-math here). The rlhf::rlhf target adds -fopenmp-simd and
// defines RLHF_OPENMP_SIMD; no OpenMP runtime is involved. Elsewhere they vanish.
#if defined(RLHF_OPENMP_SIMD) || defined(_OPENMP)
#define RLHF_PRAGMA(x) _Pragma(#x)
#define RLHF_SIMD_REDUCE(...) RLHF_PRAGMA(omp simd reduction(__VA_ARGS__))
#define RLHF_SIMD_REDUCE2(a, b) RLHF_PRAGMA(omp simd reduction(a) reduction(b))
#define RLHF_SIMD RLHF_PRAGMA(omp simd)
#else
#define RLHF_SIMD_REDUCE2(a, b)
#define RLHF_SIMD_REDUCE(...)
#define RLHF_SIMD
#endif

// A by-value lambda usable inside B::parallel_for on every backend
// (nvcc needs --extended-lambda, which the rlhf::cuda target adds).
#define RLHF_LAMBDA [=] RLHF_HD

namespace rlhf {
inline namespace v0 {

/// Sizes and indices. Signed so that loops counting down and differences are safe.
using index_t = std::int64_t;

}  // namespace v0
}  // namespace rlhf
