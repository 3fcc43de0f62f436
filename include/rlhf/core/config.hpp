// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Compiler and platform glue shared by every header. Every public header includes this one
// before anything else, so that an older language mode gets the sentence below first.
/// \file
/// Compiler and platform glue: the C++20 check, rlhf::index_t and the RLHF_* macros.
#pragma once

// rlhf++ is C++20 (concepts, std::span, ...). MSVC keeps __cplusplus at 199711L unless
// /Zc:__cplusplus is given; _MSVC_LANG holds its real language mode.
#if defined(_MSVC_LANG) && _MSVC_LANG > __cplusplus
#define RLHF_CPLUSPLUS _MSVC_LANG
#else
/// The language mode in effect (__cplusplus, or _MSVC_LANG where MSVC reports more there).
#define RLHF_CPLUSPLUS __cplusplus
#endif
#if RLHF_CPLUSPLUS < 202002L
static_assert(false,
              "rlhf++ needs C++20: compile with -std=c++20 (CMake: "
              "target_compile_features(<target> PUBLIC cxx_std_20), MSVC: /std:c++20, "
              "nvcc: -std=c++20)");
#endif

#include <cstdint>

// Functions and lambdas that must run on a GPU as well as on the host.
// Under nvcc they are __host__ __device__; elsewhere the macros vanish.
#if defined(__CUDACC__) || defined(__HIPCC__)
#define RLHF_HD __host__ __device__
#else
/// `__host__ __device__` under nvcc/hipcc, nothing elsewhere.
#define RLHF_HD
#endif

// For tiny functions inside vectorised loops: a call the inliner declines (its unit-growth
// budget runs out in large translation units) turns a SIMD loop into a scalar one.
#if defined(__GNUC__) || defined(__clang__)
#define RLHF_ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define RLHF_ALWAYS_INLINE __forceinline
#else
/// `inline` plus the compiler's always-inline attribute where it has one.
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
/// `#pragma omp simd reduction(a) reduction(b)` under OpenMP SIMD, nothing elsewhere.
#define RLHF_SIMD_REDUCE2(a, b)
/// `#pragma omp simd reduction(...)` under OpenMP SIMD, nothing elsewhere.
#define RLHF_SIMD_REDUCE(...)
/// `#pragma omp simd` under OpenMP SIMD, nothing elsewhere.
#define RLHF_SIMD
#endif

// RLHF_SIMD_REDUCE2 for a loop with a *floating-point* max or min reduction. GCC vectorises
// those under `omp simd`; Clang (14 at least) cannot without -ffast-math, and then reports
// the ignored request as a warning (-Wpass-failed=transform-warning) at whatever function
// the loop was inlined into. Under Clang such loops therefore carry no pragma: they run
// scalar there, as they would with it. (Integer max/min reductions vectorise everywhere.)
#if (defined(RLHF_OPENMP_SIMD) || defined(_OPENMP)) && !defined(__clang__)
#define RLHF_SIMD_REDUCE2_FMINMAX(a, b) RLHF_SIMD_REDUCE2(a, b)
#else
/// RLHF_SIMD_REDUCE2 for float max/min reductions under GCC; nothing under Clang.
#define RLHF_SIMD_REDUCE2_FMINMAX(a, b)
#endif

// A by-value lambda usable inside B::parallel_for on every backend
// (nvcc needs --extended-lambda, which the rlhf::cuda target adds).
/// A by-value lambda introducer, `[=] RLHF_HD`, for bodies passed to B::parallel_for.
#define RLHF_LAMBDA [=] RLHF_HD

namespace rlhf {
inline namespace v0 {

/// Sizes and indices. Signed so that loops counting down and differences are safe.
using index_t = std::int64_t;

}  // namespace v0
}  // namespace rlhf
