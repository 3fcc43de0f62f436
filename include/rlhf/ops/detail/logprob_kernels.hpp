// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Row kernels of rlhf/ops/logprobs.hpp: one logits row (V values) at a time, written so
// that GCC/Clang vectorise every inner loop (a polynomial exp, `omp simd` reductions) and
// usable from device code (RLHF_HD).
#pragma once

#include <cmath>
#include <climits>
#include <cstdint>
#include <cstring>
#include <limits>

#include "rlhf/core/config.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {
namespace detail {

RLHF_HD RLHF_ALWAYS_INLINE std::int32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(x);
#else
  std::int32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
#endif
}

RLHF_HD RLHF_ALWAYS_INLINE float bits_float(std::int32_t b) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(b);
#else
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
#endif
}

/// e^x for x <= 0 (the only arguments a max-shifted softmax produces; small positive
/// rounding excesses are fine). Cody–Waite reduction x = n·ln2 + r, |r| <= ln2/2, and the
/// degree-7 Taylor polynomial of e^r (truncation < 2e-9 relative, below float's 6e-8);
/// within 2 ulp of std::exp. Below -87 (e^x < 1.7e-38, subnormal territory) it returns 0.
/// No floating-point comparison or floor: GCC (whose default -ftrapping-math blocks
/// if-converting those) vectorises loops that call it. NaN is the caller's business (the
/// row kernels detect it beforehand).
RLHF_HD RLHF_ALWAYS_INLINE float exp_nonpositive(float x) {
  constexpr float log2e = 1.44269504088896341f;
  constexpr float ln2_hi = 0.693145751953125f;  // ln 2 split so that n·ln2_hi is exact
  constexpr float ln2_lo = 1.42860682030941723e-6f;
  constexpr float round_magic = 12582912.0f;    // 1.5·2^23: (y + M) - M rounds y to nearest
  constexpr std::int32_t limit = 0x42AE0000;    // bits of 87.0f
  const std::int32_t xb = float_bits(x);
  const std::int32_t mag = xb & 0x7fffffff;
  // max(x, -87) on the sign-magnitude bits, then whether x was below -87.
  const float xc = bits_float((xb & INT32_MIN) | (mag < limit ? mag : limit));
  const std::int32_t keep = mag > limit ? 0 : -1;
  const float n = (xc * log2e + round_magic) - round_magic;
  const float r = (xc - n * ln2_hi) - n * ln2_lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float scale = bits_float((static_cast<std::int32_t>(n) + 127) << 23);  // 2^n
  return bits_float(float_bits(p * scale) & keep);
}

/// What the forward pass knows about one row after reading it.
struct logprob_row {
  float logp;     // u_y - max - log_sum
  float max;      // max of the tempered row u = z / τ
  float log_sum;  // log Σ e^(u - max): logsumexp = max + log_sum, kept apart for precision
  float entropy;  // lse - Σ softmax(u)·u (only when asked)
  float correct;  // 1 when u_y is the row's maximum (the argmax, ties counted as hits)
};

/// Pass 1: max and a NaN/Inf probe (Σ u·0 is 0 exactly when every u is finite).
RLHF_HD inline void row_max_probe(const float* z, index_t v_count, float inv_tau, float& max_out,
                                  float& probe_out) {
  float m = -std::numeric_limits<float>::infinity();
  float probe = 0.0f;
  RLHF_SIMD_REDUCE2_FMINMAX(max : m, + : probe)  // float max: no pragma under Clang
  for (index_t v = 0; v < v_count; ++v) {
    const float u = z[v] * inv_tau;
    m = u > m ? u : m;
    probe += u * 0.0f;
  }
  max_out = m;
  probe_out = probe;
}

/// Forward statistics of one row. A row holding NaN/Inf gives NaN everywhere (reported by
/// the caller, never propagated silently). When `scratch` is non-null the unnormalised
/// e^(u - max) are left there for a following gradient pass (one exp per element in all);
/// `sum_out` receives their sum.
RLHF_HD inline logprob_row logprob_row_forward(const float* z, index_t v_count, float inv_tau,
                                               std::int32_t y, bool want_entropy,
                                               float* scratch, float& sum_out) {
  float m, probe;
  row_max_probe(z, v_count, inv_tau, m, probe);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  if (probe != 0.0f || !(m > -std::numeric_limits<float>::infinity())) {
    sum_out = nan;
    return {nan, nan, nan, nan, 0.0f};
  }
  float s = 0.0f, w = 0.0f;
  if (want_entropy && scratch != nullptr) {
    RLHF_SIMD_REDUCE2(+ : s, + : w)
    for (index_t v = 0; v < v_count; ++v) {
      const float d = z[v] * inv_tau - m;
      const float e = exp_nonpositive(d);
      scratch[v] = e;
      s += e;
      w += e * d;
    }
  } else if (want_entropy) {
    RLHF_SIMD_REDUCE2(+ : s, + : w)
    for (index_t v = 0; v < v_count; ++v) {
      const float d = z[v] * inv_tau - m;
      const float e = exp_nonpositive(d);
      s += e;
      w += e * d;
    }
  } else if (scratch != nullptr) {
    RLHF_SIMD_REDUCE(+ : s)
    for (index_t v = 0; v < v_count; ++v) {
      const float e = exp_nonpositive(z[v] * inv_tau - m);
      scratch[v] = e;
      s += e;
    }
  } else {
    RLHF_SIMD_REDUCE(+ : s)
    for (index_t v = 0; v < v_count; ++v) s += exp_nonpositive(z[v] * inv_tau - m);
  }
  const float log_s = std::log(s);
  const float uy = z[y] * inv_tau;
  sum_out = s;
  return {(uy - m) - log_s, m, log_s, want_entropy ? log_s - w / s : 0.0f,
          uy >= m ? 1.0f : 0.0f};
}

/// grad[v] (=|+=) c·(onehot_y - p_v) - ce·p_v·(log p_v + H), p = softmax(u) =
/// e^((u - max) - log_sum) from the saved statistics; c and ce already hold the upstream
/// gradient, the mask and 1/τ.
RLHF_HD inline void logprob_row_backward(const float* z, index_t v_count, float inv_tau,
                                         std::int32_t y, float max, float log_sum, float c,
                                         float ce, float entropy, bool accumulate,
                                         float* grad) {
  if (ce == 0.0f) {
    if (accumulate) {
      RLHF_SIMD
      for (index_t v = 0; v < v_count; ++v) {
        grad[v] -= c * exp_nonpositive((z[v] * inv_tau - max) - log_sum);
      }
    } else {
      RLHF_SIMD
      for (index_t v = 0; v < v_count; ++v) {
        grad[v] = -c * exp_nonpositive((z[v] * inv_tau - max) - log_sum);
      }
    }
  } else {
    const float shift = entropy - log_sum;
    RLHF_SIMD
    for (index_t v = 0; v < v_count; ++v) {
      const float d = z[v] * inv_tau - max;
      const float p = exp_nonpositive(d - log_sum);
      const float g = -c * p - ce * p * (d + shift);  // log p + H = d - log_sum + H
      grad[v] = accumulate ? grad[v] + g : g;
    }
  }
  grad[y] += c;
}

/// The fused gradient pass after logprob_row_forward left e^(u - max) in `grad`:
/// grad[v] = c·(onehot_y - e_v / s).
RLHF_HD inline void logprob_row_finish_fused(index_t v_count, std::int32_t y, float s, float c,
                                             float* grad) {
  const float k = -c / s;
  RLHF_SIMD
  for (index_t v = 0; v < v_count; ++v) grad[v] *= k;
  grad[y] += c;
}

RLHF_HD inline void zero_row(index_t v_count, float* grad) {
  RLHF_SIMD
  for (index_t v = 0; v < v_count; ++v) grad[v] = 0.0f;
}

}  // namespace detail
}  // namespace ops
}  // namespace v0
}  // namespace rlhf
