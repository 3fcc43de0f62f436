// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The few x86 vector operations of the host AdamW update (model/optim.hpp,
// adamw_update_span): one register type per ISA, partial vectors through masked loads and
// stores. Compiled only where the compiler targets AVX-512F or AVX, and never under nvcc;
// RLHF_X86_SIMD says whether it was.
#pragma once

#include <cstdint>

#include "rlhf/core/config.hpp"

#if !defined(__CUDACC__) && (defined(__AVX512F__) || defined(__AVX__))
#include <immintrin.h>
#define RLHF_X86_SIMD 1
#endif

#if defined(RLHF_X86_SIMD)
namespace rlhf {
inline namespace v0 {
namespace model {
namespace detail {

#if defined(__AVX512F__)
/// 16 floats a register; the live lanes of a partial vector are a bit mask.
struct simd_x86 {
  using reg = __m512;
  using lanes = __mmask16;
  static constexpr index_t width = 16;
  static lanes live(index_t n) {
    return n >= width ? lanes(0xFFFF) : static_cast<lanes>((1u << n) - 1u);
  }
  static reg load(lanes l, const float* x) { return _mm512_maskz_loadu_ps(l, x); }
  static void store(lanes l, float* x, reg r) { _mm512_mask_storeu_ps(x, l, r); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  static reg sqrt(reg a) { return _mm512_sqrt_ps(a); }
  /// if_nonzero where x != 0 (NaN included, as the scalar `x != 0.0f`), else otherwise.
  static reg select_nonzero(reg x, reg if_nonzero, reg otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NEQ_UQ),
                                otherwise, if_nonzero);
  }
};
#else
/// 8 floats a register; the live lanes of a partial vector are sign bits (AVX maskload).
struct simd_x86 {
  using reg = __m256;
  using lanes = __m256i;
  static constexpr index_t width = 8;
  static lanes live(index_t n) {
    alignas(32) static constexpr std::int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                          0,  0,  0,  0,  0,  0,  0,  0};
    const std::int32_t* first = bits + (n >= width ? 0 : width - n);
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(first));
  }
  static reg load(lanes l, const float* x) { return _mm256_maskload_ps(x, l); }
  static void store(lanes l, float* x, reg r) { _mm256_maskstore_ps(x, l, r); }
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm256_div_ps(a, b); }
  static reg sqrt(reg a) { return _mm256_sqrt_ps(a); }
  static reg select_nonzero(reg x, reg if_nonzero, reg otherwise) {
    return _mm256_blendv_ps(otherwise, if_nonzero,
                            _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ));
  }
};
#endif

}  // namespace detail
}  // namespace model
}  // namespace v0
}  // namespace rlhf
#endif
