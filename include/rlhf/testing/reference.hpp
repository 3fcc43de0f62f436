// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Plain double-precision reference implementations of every op of the backend concept,
// on host vectors. The conformance kit compares backends against these; they share no
// code with rlhf/ops/ so a bug there cannot hide here.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "rlhf/ops/gemm.hpp"

namespace rlhf {
inline namespace v0 {
namespace testing {
namespace reference {

using vec = std::vector<double>;
inline constexpr double nan = std::numeric_limits<double>::quiet_NaN();
inline constexpr double inf = std::numeric_limits<double>::infinity();

inline vec widen(const std::vector<float>& v) { return vec(v.begin(), v.end()); }

inline vec row_sum(const vec& x, index_t rows, index_t cols) {
  vec out(static_cast<std::size_t>(rows), 0.0);
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) out[r] += x[r * cols + c];
  return out;
}

inline vec row_max(const vec& x, index_t rows, index_t cols) {
  vec out(static_cast<std::size_t>(rows), -inf);
  for (index_t r = 0; r < rows; ++r) {
    for (index_t c = 0; c < cols; ++c) {
      const double v = x[r * cols + c];
      if (std::isnan(v)) {
        out[r] = nan;
        break;
      }
      out[r] = std::max(out[r], v);
    }
  }
  return out;
}

inline vec row_logsumexp(const vec& x, index_t rows, index_t cols) {
  vec m = row_max(x, rows, cols);
  vec out(static_cast<std::size_t>(rows));
  for (index_t r = 0; r < rows; ++r) {
    if (std::isnan(m[r]) || std::isinf(m[r])) {
      out[r] = m[r];
      continue;
    }
    double s = 0;
    for (index_t c = 0; c < cols; ++c) s += std::exp(x[r * cols + c] - m[r]);
    out[r] = m[r] + std::log(s);
  }
  return out;
}

inline vec row_masked_mean(const vec& x, const vec& mask, index_t rows, index_t cols) {
  vec out(static_cast<std::size_t>(rows));
  for (index_t r = 0; r < rows; ++r) {
    double num = 0, den = 0;
    for (index_t c = 0; c < cols; ++c) {
      const double m = mask[r * cols + c];
      if (m != 0) {
        num += m * x[r * cols + c];
        den += m;
      }
    }
    out[r] = den != 0 ? num / den : 0.0;
  }
  return out;
}

inline vec col_sum(const vec& x, index_t rows, index_t cols) {
  vec out(static_cast<std::size_t>(cols), 0.0);
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) out[c] += x[r * cols + c];
  return out;
}

inline vec softmax_rows(const vec& x, index_t rows, index_t cols) {
  vec out(x.size());
  for (index_t r = 0; r < rows; ++r) {
    double m = -inf;
    bool has_nan = false;
    for (index_t c = 0; c < cols; ++c) {
      has_nan |= std::isnan(x[r * cols + c]);
      m = std::max(m, x[r * cols + c]);
    }
    double s = 0;
    for (index_t c = 0; c < cols; ++c) s += std::exp(x[r * cols + c] - m);
    for (index_t c = 0; c < cols; ++c) {
      out[r * cols + c] = has_nan ? nan : std::exp(x[r * cols + c] - m) / s;
    }
  }
  return out;
}

inline vec log_softmax_rows(const vec& x, index_t rows, index_t cols) {
  const vec lse = row_logsumexp(x, rows, cols);
  vec out(x.size());
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) out[r * cols + c] = x[r * cols + c] - lse[r];
  return out;
}

inline vec gather_last(const vec& x, const std::vector<std::int32_t>& idx, index_t rows,
                       index_t cols) {
  vec out(static_cast<std::size_t>(rows));
  for (index_t r = 0; r < rows; ++r) {
    const index_t j = idx[r];
    out[r] = (j >= 0 && j < cols) ? x[r * cols + j] : nan;
  }
  return out;
}

/// C after the product described by d; `c` holds C's initial contents. Also returns, in
/// `magnitude`, sum_p |a_ip b_pj| per element (the scale of the rounding error).
inline vec gemm(const gemm_desc& d, const vec& a, const vec& b, vec c, vec* magnitude) {
  if (magnitude) magnitude->assign(c.size(), 0.0);
  for (index_t q = 0; q < d.batch; ++q) {
    for (index_t i = 0; i < d.m; ++i) {
      for (index_t j = 0; j < d.n; ++j) {
        double acc = 0, mag = 0;
        for (index_t p = 0; p < d.k; ++p) {
          const double av = d.trans_a ? a[d.a.offset + q * d.a.batch_stride + p * d.a.ld + i]
                                      : a[d.a.offset + q * d.a.batch_stride + i * d.a.ld + p];
          const double bv = d.trans_b ? b[d.b.offset + q * d.b.batch_stride + j * d.b.ld + p]
                                      : b[d.b.offset + q * d.b.batch_stride + p * d.b.ld + j];
          acc += av * bv;
          mag += std::fabs(av * bv);
        }
        const std::size_t ci =
            static_cast<std::size_t>(d.c.offset + q * d.c.batch_stride + i * d.c.ld + j);
        const double old = d.beta == 0 ? 0.0 : c[ci];  // beta == 0: C is not read
        c[ci] = d.alpha * acc + d.beta * old;
        if (magnitude) (*magnitude)[ci] = std::fabs(d.alpha) * mag + std::fabs(d.beta * old);
      }
    }
  }
  return c;
}

inline vec reverse_linear_scan_rows(const vec& a, const vec& b, index_t rows, index_t cols) {
  vec y(a.size());
  for (index_t r = 0; r < rows; ++r) {
    double carry = 0;
    for (index_t t = cols - 1; t >= 0; --t) {
      carry = b[r * cols + t] + a[r * cols + t] * carry;
      y[r * cols + t] = carry;
    }
  }
  return y;
}

}  // namespace reference
}  // namespace testing
}  // namespace v0
}  // namespace rlhf
