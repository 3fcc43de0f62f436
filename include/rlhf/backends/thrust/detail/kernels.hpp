// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Functors of rlhf::thrust_backend's ops. Named structs with RLHF_HD call operators rather
// than lambdas: they work in every Thrust system (nvcc's extended lambdas may not appear in
// private members or functions with deduced return types), and the OMP system tests the
// very code the CUDA system runs.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "rlhf/core/config.hpp"
#include "rlhf/ops/gemm.hpp"

namespace rlhf {
inline namespace v0 {
namespace detail {
namespace thrust_impl {

// Elementwise kernels holding the user's functor. Named class templates, not extended
// lambdas: nvcc rejects a function-local functor type (e.g. a struct defined inside a test)
// as a template argument of a function that defines an extended lambda.

/// out[i] = f(p0[i], ..., p_{N-1}[i]), N = 1..4.
template <int N, class F>
struct transform_kernel {
  F f;
  float* o;
  const float* p0;
  const float* p1;
  const float* p2;
  const float* p3;
  RLHF_HD void operator()(index_t i) const {
    if constexpr (N == 1) {
      o[i] = f(p0[i]);
    } else if constexpr (N == 2) {
      o[i] = f(p0[i], p1[i]);
    } else if constexpr (N == 3) {
      o[i] = f(p0[i], p1[i], p2[i]);
    } else {
      o[i] = f(p0[i], p1[i], p2[i], p3[i]);
    }
  }
};

/// f(p0[i], ..., p_{N-1}[i]) with float& or const float& per pointer, N = 1..5.
template <int N, class F, class P0, class P1, class P2, class P3, class P4>
struct for_each_kernel {
  F f;
  P0 p0;
  P1 p1;
  P2 p2;
  P3 p3;
  P4 p4;
  RLHF_HD void operator()(index_t i) const {
    if constexpr (N == 1) {
      f(p0[i]);
    } else if constexpr (N == 2) {
      f(p0[i], p1[i]);
    } else if constexpr (N == 3) {
      f(p0[i], p1[i], p2[i]);
    } else if constexpr (N == 4) {
      f(p0[i], p1[i], p2[i], p3[i]);
    } else {
      f(p0[i], p1[i], p2[i], p3[i], p4[i]);
    }
  }
};

/// out[r, c] = f(x[r, c], v[r]) (by_row) or f(x[r, c], v[c]).
template <bool ByRow, class F>
struct broadcast_kernel {
  F f;
  float* o;
  const float* x;
  const float* v;
  index_t cols;
  RLHF_HD void operator()(index_t i) const {
    o[i] = f(x[i], v[ByRow ? i / cols : i % cols]);
  }
};

/// Row of flat index i in a (rows, cols) view.
struct row_of {
  index_t cols;
  RLHF_HD index_t operator()(index_t i) const { return i / cols; }
};

/// Row of the i-th element counted from the end of an n-element (rows, cols) view.
struct reversed_row_of {
  index_t n, cols;
  RLHF_HD index_t operator()(index_t k) const { return (n - 1 - k) / cols; }
};

/// max that propagates NaN (the rule of ops::row_max), associative and commutative.
struct max_nan {
  RLHF_HD float operator()(float a, float b) const {
    if (a != a) return a;
    if (b != b) return b;
    return a > b ? a : b;
  }
};

struct plus_f {
  RLHF_HD float operator()(float a, float b) const { return a + b; }
};

/// e^(x[i] - m[row of i]).
struct exp_shifted {
  const float* x;
  const float* m;
  index_t cols;
  RLHF_HD float operator()(index_t i) const { return std::exp(x[i] - m[i / cols]); }
};

/// m·x where m != 0, else 0 (a NaN under a zero mask does not leak).
struct masked_product {
  const float* x;
  const float* m;
  RLHF_HD float operator()(index_t i) const { return m[i] != 0.0f ? m[i] * x[i] : 0.0f; }
};

struct masked_weight {
  const float* m;
  RLHF_HD float operator()(index_t i) const { return m[i] != 0.0f ? m[i] : 0.0f; }
};

/// Sets every element of a row to a constant (rows of an empty reduction).
struct fill_value {
  float* p;
  float value;
  RLHF_HD void operator()(index_t i) const { p[i] = value; }
};

/// lse[r] = m[r] + log s[r], or m[r] itself when it is NaN or infinite.
struct finish_logsumexp {
  float* lse;  // holds m on entry
  const float* s;
  RLHF_HD void operator()(index_t r) const {
    const float m = lse[r];
    if (m != m || std::isinf(m)) return;
    lse[r] = m + std::log(s[r]);
  }
};

/// num[r] / den[r], 0 where den is 0.
struct finish_masked_mean {
  float* out;  // holds the numerator on entry
  const float* den;
  RLHF_HD void operator()(index_t r) const {
    out[r] = den[r] != 0.0f ? out[r] / den[r] : 0.0f;
  }
};

/// out[i] = e^(x[i] - m[row]) (softmax, first pass).
struct softmax_exp {
  const float* x;
  const float* m;
  float* out;
  index_t cols;
  RLHF_HD void operator()(index_t i) const { out[i] = std::exp(x[i] - m[i / cols]); }
};

/// out[i] *= 1 / s[row] (softmax, last pass).
struct softmax_scale {
  float* out;
  const float* s;
  index_t cols;
  RLHF_HD void operator()(index_t i) const { out[i] *= 1.0f / s[i / cols]; }
};

/// out[i] = x[i] - lse[row] (log-softmax).
struct log_softmax_shift {
  const float* x;
  const float* lse;
  float* out;
  index_t cols;
  RLHF_HD void operator()(index_t i) const { out[i] = x[i] - lse[i / cols]; }
};

/// One step y = b + a·y_next of the reverse linear recurrence, as an affine map of y_next.
struct affine {
  float a;
  float b;
};

/// Loads element k of the reversed scan: (a, b) at flat index n-1-k.
struct load_affine_reversed {
  const float* a;
  const float* b;
  index_t n;
  RLHF_HD affine operator()(index_t k) const {
    const index_t i = n - 1 - k;
    return {a[i], b[i]};
  }
};

/// Composition in scan order: `acc` maps the carry past the row's end to y_{t+1} (the steps
/// already scanned), `next` is step t; the result maps it to y_t. Associative, not
/// commutative (Thrust's scans keep the operand order).
struct affine_compose {
  RLHF_HD affine operator()(const affine& acc, const affine& next) const {
    return {next.a * acc.a, next.b + next.a * acc.b};
  }
};

/// y[n-1-k] = scanned[k].b (the carry past a row's end is 0).
struct store_reversed {
  const affine* scanned;
  float* y;
  index_t n;
  RLHF_HD void operator()(index_t k) const { y[n - 1 - k] = scanned[k].b; }
};

/// C = beta·C on the described matrices (a product with k = 0); beta == 0 writes zeros.
struct gemm_scale_c {
  float* c;
  matrix_layout l;
  index_t m, n;
  float beta;
  RLHF_HD void operator()(index_t e) const {
    const index_t q = e / (m * n), i = (e / n) % m, j = e % n;
    float& v = c[l.offset + q * l.batch_stride + i * l.ld + j];
    v = beta == 0.0f ? 0.0f : beta * v;
  }
};

/// Host GEMM: one output row (q, i) per task. Without trans_b the row is accumulated as
/// C[i, :] += (alpha·A[i, p])·B[p, :] over p (unit-stride, vectorised); with trans_b each
/// element is a unit-stride dot product of A's row (or column) and B's row.
struct host_gemm_row {
  gemm_desc d;
  const float* a;
  const float* b;
  float* c;

  void operator()(index_t e) const {
    const index_t q = e / d.m, i = e % d.m;
    const float* aq = a + d.a.offset + q * d.a.batch_stride;
    const float* bq = b + d.b.offset + q * d.b.batch_stride;
    float* crow = c + d.c.offset + q * d.c.batch_stride + i * d.c.ld;
    const index_t n = d.n, k = d.k;
    const auto a_at = [&](index_t p) {
      return d.trans_a ? aq[p * d.a.ld + i] : aq[i * d.a.ld + p];
    };
    if (!d.trans_b) {
      if (d.beta == 0.0f) {
        for (index_t j = 0; j < n; ++j) crow[j] = 0.0f;  // C is not read
      } else if (d.beta != 1.0f) {
        for (index_t j = 0; j < n; ++j) crow[j] *= d.beta;
      }
      for (index_t p = 0; p < k; ++p) {
        const float av = d.alpha * a_at(p);
        const float* brow = bq + p * d.b.ld;
        RLHF_SIMD
        for (index_t j = 0; j < n; ++j) crow[j] += av * brow[j];
      }
    } else {
      for (index_t j = 0; j < n; ++j) {
        const float* brow = bq + j * d.b.ld;
        float acc = 0.0f;
        if (d.trans_a) {
          for (index_t p = 0; p < k; ++p) acc += aq[p * d.a.ld + i] * brow[p];
        } else {
          const float* arow = aq + i * d.a.ld;
          RLHF_SIMD_REDUCE(+ : acc)
          for (index_t p = 0; p < k; ++p) acc += arow[p] * brow[p];
        }
        crow[j] = d.beta == 0.0f ? d.alpha * acc : d.alpha * acc + d.beta * crow[j];
      }
    }
  }
};

}  // namespace thrust_impl
}  // namespace detail
}  // namespace v0
}  // namespace rlhf
