// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The few x86 vector operations of the host AdamW update (model/optim.hpp,
// adamw_update_span): one register type per ISA, partial vectors through masked loads and
// stores; and the 8 × 8 block transpose of transpose_weight (model/layers.hpp). Compiled
// only where the compiler targets AVX-512F or AVX, and never under nvcc; RLHF_X86_SIMD says
// whether it was.
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

/// dst[c·ld_dst + j] = src[j·ld_src + c] for j, c in [0, 8): one 8 × 8 block transposed in
/// registers (eight row loads, three rounds of unpack/shuffle/permute, eight row stores)
/// instead of 64 strided scalar copies. A copy: the values are moved, never rounded.
inline void transpose_8x8(const float* src, index_t ld_src, float* dst, index_t ld_dst) {
  __m256 r[8];
  for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src + j * ld_src);
  // Pairs of rows interleaved: t0 = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5], …
  __m256 t[8];
  for (int j = 0; j < 4; ++j) {
    t[2 * j] = _mm256_unpacklo_ps(r[2 * j], r[2 * j + 1]);
    t[2 * j + 1] = _mm256_unpackhi_ps(r[2 * j], r[2 * j + 1]);
  }
  // Quads: u0 = r0[0] r1[0] r2[0] r3[0] | r0[4] r1[4] r2[4] r3[4], …
  __m256 u[8];
  for (int h = 0; h < 2; ++h) {
    const __m256 lo = t[4 * h], hi = t[4 * h + 1], lo2 = t[4 * h + 2], hi2 = t[4 * h + 3];
    u[4 * h] = _mm256_shuffle_ps(lo, lo2, 0x44);
    u[4 * h + 1] = _mm256_shuffle_ps(lo, lo2, 0xEE);
    u[4 * h + 2] = _mm256_shuffle_ps(hi, hi2, 0x44);
    u[4 * h + 3] = _mm256_shuffle_ps(hi, hi2, 0xEE);
  }
  // 128-bit halves: column c of the block from rows 0–3 (u[c % 4]) and rows 4–7 (u[4 + c % 4]).
  for (int c = 0; c < 4; ++c) {
    _mm256_storeu_ps(dst + c * ld_dst, _mm256_permute2f128_ps(u[c], u[4 + c], 0x20));
    _mm256_storeu_ps(dst + (c + 4) * ld_dst, _mm256_permute2f128_ps(u[c], u[4 + c], 0x31));
  }
}

}  // namespace detail
}  // namespace model
}  // namespace v0
}  // namespace rlhf
#endif
