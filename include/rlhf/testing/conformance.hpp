// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The backend conformance kit: one templated doctest suite that checks every op of the
// tensor-backend concept against rlhf/testing/reference.hpp on random and edge-case
// inputs. A backend author runs it with one line in a doctest test file:
//
//   #include <rlhf/testing/conformance.hpp>
//   RLHF_CONFORMANCE_SUITE(my_backend);
//
// Include this header in exactly one translation unit per test binary.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "rlhf/core/functors.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/gather.hpp"
#include "rlhf/ops/gemm.hpp"
#include "rlhf/ops/random.hpp"
#include "rlhf/ops/reductions.hpp"
#include "rlhf/ops/scan.hpp"
#include "rlhf/ops/softmax.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/testing/reference.hpp"

namespace rlhf {
inline namespace v0 {
namespace testing {
namespace conformance {

namespace ref = reference;
using ref::vec;

/// Row shapes every row-wise op is tried on: 1x1, single row/column, sizes that are not a
/// multiple of the SIMD width, a vocabulary-sized row, empty rows and zero rows.
inline std::vector<shape> row_shapes() {
  return {shape{1, 1},  shape{1, 7},   shape{7, 1},    shape{3, 17},  shape{5, 33},
          shape{37, 129}, shape{64, 1000}, shape{2, 3, 17}, shape{2, 0}, shape{0, 5},
          shape{9}};
}

inline std::vector<float> random_values(std::size_t n, std::uint32_t seed, float lo = -3.0f,
                                        float hi = 3.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

/// Compares element by element: NaN must match NaN, infinities must match exactly, finite
/// values within rtol * scale[i] + atol. Reports the first mismatch.
inline void expect_close(const std::vector<float>& got, const vec& want, const vec& scale,
                         double rtol, double atol, const std::string& what) {
  REQUIRE_MESSAGE(got.size() == want.size(), what << ": size " << got.size() << " vs "
                                                  << want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    bool ok;
    if (std::isnan(w)) ok = std::isnan(g);
    else if (std::isinf(w)) ok = g == w;
    else ok = std::isfinite(g) && std::fabs(g - w) <= rtol * scale[i] + atol;
    if (!ok) {
      FAIL_CHECK(what << ": element " << i << " is " << g << ", expected " << w
                      << " (tolerance " << rtol * (std::isfinite(w) ? scale[i] : 0) + atol
                      << ")");
      return;
    }
  }
}

inline vec abs_of(const vec& v) {
  vec a(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(v[i]);
  return a;
}

template <class B>
typename B::tensor tensor_of(const std::vector<float>& v, const shape& s) {
  return ops::from_host<B>(std::span<const float>(v), s);
}

inline std::string label(const char* op, const shape& s) { return std::string(op) + s.str(); }

constexpr double rtol = 2e-6;   // float32 against a float64 reference, relative to the scale
constexpr double atol = 1e-30;

// ---- tensors and copies -----------------------------------------------------------------

TEST_CASE_TEMPLATE_DEFINE("tensor: shape, reshape and host round trip", B, rlhf_conf_tensor) {
  for (const shape& s : row_shapes()) {
    const auto values = random_values(static_cast<std::size_t>(s.numel()), 1);
    typename B::tensor t(s);
    CHECK(t.shape() == s);
    CHECK(t.size() == s.numel());
    ops::copy_from_host<B>(std::span<const float>(values), t);
    CHECK(ops::to_host<B>(t) == values);
    typename B::tensor moved = std::move(t);
    CHECK(ops::to_host<B>(moved) == values);
  }
  typename B::tensor t(shape{2, 3, 4});
  t.reshape(shape{6, 4});
  CHECK(t.shape() == shape{6, 4});
  CHECK_THROWS_AS(t.reshape(shape{5, 5}), shape_error);
  std::vector<float> wrong(5);
  CHECK_THROWS_AS(ops::copy_from_host<B>(std::span<const float>(wrong), t), shape_error);

  const std::vector<std::int32_t> ids{0, -1, 2147483647, 31999, 7};
  auto it = ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{5});
  CHECK(ops::to_host<B>(it) == ids);
}

TEST_CASE_TEMPLATE_DEFINE("fill", B, rlhf_conf_fill) {
  for (const shape& s : {shape{1, 1}, shape{3, 17}, shape{1000, 70}, shape{0, 3}}) {
    typename B::tensor t(s);
    for (float v : {0.0f, -2.5f, std::numeric_limits<float>::infinity()}) {
      ops::fill<B>(t, v);
      CHECK(ops::to_host<B>(t) == std::vector<float>(static_cast<std::size_t>(s.numel()), v));
    }
  }
}

// ---- elementwise ------------------------------------------------------------------------

namespace detail {
/// A 4-ary functor for transform (at namespace scope: nvcc cannot launch a kernel on a
/// function-local type).
struct weighted_sum {
  RLHF_HD float operator()(float p, float q, float r, float t) const {
    return p + 2.0f * q + 3.0f * r + 4.0f * t;
  }
};
}  // namespace detail

TEST_CASE_TEMPLATE_DEFINE("transform: 1 to 4 inputs, in place", B, rlhf_conf_transform) {
  for (const shape& s : {shape{1, 1}, shape{3, 17}, shape{257, 129}}) {
    const std::size_t n = static_cast<std::size_t>(s.numel());
    const auto av = random_values(n, 2), bv = random_values(n, 3), cv = random_values(n, 4);
    auto a = tensor_of<B>(av, s), b = tensor_of<B>(bv, s), c = tensor_of<B>(cv, s);
    typename B::tensor out(s);

    ops::transform<B>(out, fn::exp{}, a);
    vec want(n), scale(n);
    for (std::size_t i = 0; i < n; ++i) want[i] = std::exp(double(av[i]));
    expect_close(ops::to_host<B>(out), want, abs_of(want), 4e-7, 0, label("exp", s));

    ops::transform<B>(out, fn::minus{}, a, b);
    for (std::size_t i = 0; i < n; ++i) want[i] = double(av[i]) - bv[i];
    for (std::size_t i = 0; i < n; ++i) scale[i] = std::fabs(av[i]) + std::fabs(bv[i]);
    expect_close(ops::to_host<B>(out), want, scale, 1e-7, 0, label("minus", s));

    ops::transform<B>(out, fn::fma{}, a, b, c);
    for (std::size_t i = 0; i < n; ++i) want[i] = double(av[i]) * bv[i] + cv[i];
    for (std::size_t i = 0; i < n; ++i) scale[i] = std::fabs(av[i] * bv[i]) + std::fabs(cv[i]);
    expect_close(ops::to_host<B>(out), want, scale, 2e-7, 0, label("fma", s));

    ops::transform<B>(out, detail::weighted_sum{}, a, b, c, a);
    for (std::size_t i = 0; i < n; ++i) want[i] = 5.0 * av[i] + 2.0 * bv[i] + 3.0 * cv[i];
    for (std::size_t i = 0; i < n; ++i)
      scale[i] = 5 * std::fabs(av[i]) + 2 * std::fabs(bv[i]) + 3 * std::fabs(cv[i]);
    expect_close(ops::to_host<B>(out), want, scale, 4e-7, 0, label("4-ary", s));

    ops::transform<B>(a, fn::scale{-2.0f}, a);  // in place
    for (std::size_t i = 0; i < n; ++i) want[i] = -2.0 * av[i];
    expect_close(ops::to_host<B>(a), want, abs_of(want), 0, 0, label("in-place scale", s));
  }
  typename B::tensor x(shape{3, 4}), y(shape{4, 3});
  CHECK_THROWS_AS(ops::transform<B>(x, fn::plus{}, x, y), shape_error);
}

namespace detail {
/// Two outputs and two inputs in one pass (the shape of an AdamW update).
struct two_outputs {
  RLHF_HD void operator()(float& sum, float& prod, const float& a, const float& b) const {
    sum = a + b;
    prod = a * b;
  }
};
}  // namespace detail

TEST_CASE_TEMPLATE_DEFINE("for_each: several outputs in one pass", B, rlhf_conf_for_each) {
  const shape s{33, 65};
  const std::size_t n = static_cast<std::size_t>(s.numel());
  const auto av = random_values(n, 5), bv = random_values(n, 6);
  const auto a = tensor_of<B>(av, s), b = tensor_of<B>(bv, s);
  typename B::tensor sum(s), prod(s);
  ops::for_each<B>(detail::two_outputs{}, sum, prod, a, b);
  const auto hs = ops::to_host<B>(sum), hp = ops::to_host<B>(prod);
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(hs[i] == av[i] + bv[i]);
    REQUIRE(hp[i] == av[i] * bv[i]);
  }
  typename B::tensor other(shape{2, 2});
  CHECK_THROWS_AS(ops::for_each<B>(detail::two_outputs{}, sum, other, a, b), shape_error);
}

TEST_CASE_TEMPLATE_DEFINE("transform_rows and transform_cols broadcast", B,
                          rlhf_conf_broadcast) {
  for (const shape& s : {shape{1, 1}, shape{7, 1}, shape{1, 7}, shape{2, 5, 33}, shape{300, 129}}) {
    const index_t rows = s.rows(), cols = s.cols();
    const std::size_t n = static_cast<std::size_t>(s.numel());
    const auto xv = random_values(n, 7);
    const auto rv = random_values(static_cast<std::size_t>(rows), 8);
    const auto cv = random_values(static_cast<std::size_t>(cols), 9);
    const auto x = tensor_of<B>(xv, s);
    const auto r = tensor_of<B>(rv, shape{rows});
    const auto c = tensor_of<B>(cv, shape{cols});
    typename B::tensor out(s);
    ops::transform_rows<B>(out, fn::minus{}, x, r);
    auto h = ops::to_host<B>(out);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(h[i] == xv[i] - rv[i / cols]);
    ops::transform_cols<B>(out, fn::multiplies{}, x, c);
    h = ops::to_host<B>(out);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(h[i] == xv[i] * cv[i % cols]);
  }
  typename B::tensor x(shape{3, 4}), v(shape{5});
  CHECK_THROWS_AS(ops::transform_rows<B>(x, fn::plus{}, x, v), shape_error);
  CHECK_THROWS_AS(ops::transform_cols<B>(x, fn::plus{}, x, v), shape_error);
}

// ---- row reductions ---------------------------------------------------------------------

TEST_CASE_TEMPLATE_DEFINE("row_sum", B, rlhf_conf_row_sum) {
  for (const shape& s : row_shapes()) {
    const auto xv = random_values(static_cast<std::size_t>(s.numel()), 10);
    const auto x = tensor_of<B>(xv, s);
    typename B::tensor out(shape{s.rows()});
    ops::row_sum<B>(x, out);
    const vec want = ref::row_sum(ref::widen(xv), s.rows(), s.cols());
    const vec scale = ref::row_sum(abs_of(ref::widen(xv)), s.rows(), s.cols());
    expect_close(ops::to_host<B>(out), want, scale, rtol, atol, label("row_sum", s));
  }
  typename B::tensor x(shape{4, 3}), bad(shape{3});
  CHECK_THROWS_AS(ops::row_sum<B>(x, bad), shape_error);
}

/// Rows with the special values whose handling the concept fixes (see reductions.hpp).
inline std::vector<float> special_rows(index_t& rows, index_t& cols) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  rows = 7;
  cols = 4;
  return {
      1000.0f, -1000.0f, 999.0f, 0.0f,     // +-1e3: exp would overflow without the max
      -1000.0f, -1001.0f, -1002.0f, -999.f,  // all very negative
      -inf, -inf, -inf, -inf,              // all -inf
      -inf, 0.5f, -inf, -inf,              // one finite
      1.0f, inf, 2.0f, 3.0f,               // +inf
      1.0f, nan, 2.0f, 3.0f,               // NaN propagates
      nan, -inf, inf, 0.0f,                // NaN first
  };
}

TEST_CASE_TEMPLATE_DEFINE("row_max: NaN propagates, empty rows give -inf", B, rlhf_conf_row_max) {
  for (const shape& s : row_shapes()) {
    const auto xv = random_values(static_cast<std::size_t>(s.numel()), 11, -1e3f, 1e3f);
    typename B::tensor out(shape{s.rows()});
    ops::row_max<B>(tensor_of<B>(xv, s), out);
    const vec want = ref::row_max(ref::widen(xv), s.rows(), s.cols());
    expect_close(ops::to_host<B>(out), want, abs_of(want), 0, 0, label("row_max", s));
  }
  index_t rows, cols;
  const auto xv = special_rows(rows, cols);
  typename B::tensor out(shape{rows});
  ops::row_max<B>(tensor_of<B>(xv, shape{rows, cols}), out);
  const vec want = ref::row_max(ref::widen(xv), rows, cols);
  expect_close(ops::to_host<B>(out), want, abs_of(want), 0, 0, "row_max special values");
}

TEST_CASE_TEMPLATE_DEFINE("row_logsumexp: stable at +-1e3, inf and NaN rules", B,
                          rlhf_conf_row_lse) {
  for (const shape& s : row_shapes()) {
    for (float range : {3.0f, 1000.0f}) {
      const auto xv = random_values(static_cast<std::size_t>(s.numel()), 12, -range, range);
      typename B::tensor out(shape{s.rows()});
      ops::row_logsumexp<B>(tensor_of<B>(xv, s), out);
      const vec want = ref::row_logsumexp(ref::widen(xv), s.rows(), s.cols());
      // The error of log-sum-exp is bounded by the largest |x| (the subtracted max) plus
      // the log of the row length.
      vec scale(want.size());
      for (std::size_t i = 0; i < scale.size(); ++i) scale[i] = range + std::fabs(want[i]) + 1;
      expect_close(ops::to_host<B>(out), want, scale, rtol, atol, label("row_logsumexp", s));
    }
  }
  index_t rows, cols;
  const auto xv = special_rows(rows, cols);
  typename B::tensor out(shape{rows});
  ops::row_logsumexp<B>(tensor_of<B>(xv, shape{rows, cols}), out);
  const vec want = ref::row_logsumexp(ref::widen(xv), rows, cols);
  expect_close(ops::to_host<B>(out), want, vec(want.size(), 1e3), rtol, 0,
               "row_logsumexp special values");
}

TEST_CASE_TEMPLATE_DEFINE("row_masked_mean: weights, all-zero rows, NaN under the mask", B,
                          rlhf_conf_masked_mean) {
  for (const shape& s : row_shapes()) {
    const std::size_t n = static_cast<std::size_t>(s.numel());
    const auto xv = random_values(n, 13);
    auto mv = random_values(n, 14, 0.0f, 1.0f);
    for (std::size_t i = 0; i < n; ++i) mv[i] = mv[i] < 0.4f ? 0.0f : (mv[i] < 0.8f ? 1.0f : mv[i]);
    typename B::tensor out(shape{s.rows()});
    ops::row_masked_mean<B>(tensor_of<B>(xv, s), tensor_of<B>(mv, s), out);
    const vec want = ref::row_masked_mean(ref::widen(xv), ref::widen(mv), s.rows(), s.cols());
    expect_close(ops::to_host<B>(out), want, vec(want.size(), 3.0), 4 * rtol, atol,
                 label("row_masked_mean", s));
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> xv{1, 2, 3, nan, 5, 6, 7, 8, 9};
  const std::vector<float> mv{1, 1, 0, 0, 1, 1, 0, 0, 0};  // NaN masked out; last row empty
  typename B::tensor out(shape{3});
  ops::row_masked_mean<B>(tensor_of<B>(xv, shape{3, 3}), tensor_of<B>(mv, shape{3, 3}), out);
  CHECK(ops::to_host<B>(out) == std::vector<float>{1.5f, 5.5f, 0.0f});
  typename B::tensor x(shape{3, 3}), m(shape{3, 4});
  CHECK_THROWS_AS(ops::row_masked_mean<B>(x, m, out), shape_error);
}

TEST_CASE_TEMPLATE_DEFINE("col_sum", B, rlhf_conf_col_sum) {
  for (const shape& s : row_shapes()) {
    const auto xv = random_values(static_cast<std::size_t>(s.numel()), 15);
    typename B::tensor out(shape{s.cols()});
    ops::col_sum<B>(tensor_of<B>(xv, s), out);
    const vec want = ref::col_sum(ref::widen(xv), s.rows(), s.cols());
    const vec scale = ref::col_sum(abs_of(ref::widen(xv)), s.rows(), s.cols());
    expect_close(ops::to_host<B>(out), want, scale, rtol, atol, label("col_sum", s));
  }
  typename B::tensor x(shape{4, 3}), bad(shape{4});
  CHECK_THROWS_AS(ops::col_sum<B>(x, bad), shape_error);
}

// ---- softmax ----------------------------------------------------------------------------

TEST_CASE_TEMPLATE_DEFINE("softmax_rows and log_softmax_rows", B, rlhf_conf_softmax) {
  for (const shape& s : row_shapes()) {
    for (float range : {3.0f, 1000.0f}) {
      const auto xv = random_values(static_cast<std::size_t>(s.numel()), 16, -range, range);
      const auto x = tensor_of<B>(xv, s);
      typename B::tensor out(s);
      ops::softmax_rows<B>(x, out);
      const vec want = ref::softmax_rows(ref::widen(xv), s.rows(), s.cols());
      expect_close(ops::to_host<B>(out), want, abs_of(want), 8 * rtol, 1e-7,
                   label("softmax_rows", s));
      ops::log_softmax_rows<B>(x, out);
      const vec want_log = ref::log_softmax_rows(ref::widen(xv), s.rows(), s.cols());
      vec scale(want_log.size());
      for (std::size_t i = 0; i < scale.size(); ++i) scale[i] = std::fabs(want_log[i]) + range;
      expect_close(ops::to_host<B>(out), want_log, scale, rtol, atol,
                   label("log_softmax_rows", s));
    }
  }
  index_t rows, cols;
  const auto xv = special_rows(rows, cols);
  auto x = tensor_of<B>(xv, shape{rows, cols});
  typename B::tensor out(shape{rows, cols});
  ops::log_softmax_rows<B>(x, out);
  const vec want_log = ref::log_softmax_rows(ref::widen(xv), rows, cols);
  expect_close(ops::to_host<B>(out), want_log, vec(want_log.size(), 2e3), rtol, 0,
               "log_softmax_rows special values");
  ops::softmax_rows<B>(x, x);  // in place
  const vec want = ref::softmax_rows(ref::widen(xv), rows, cols);
  expect_close(ops::to_host<B>(x), want, abs_of(want), 8 * rtol, 1e-7,
               "softmax_rows special values, in place");
  typename B::tensor y(shape{cols, rows});
  CHECK_THROWS_AS(ops::softmax_rows<B>(x, y), shape_error);
}

// ---- gather -----------------------------------------------------------------------------

TEST_CASE_TEMPLATE_DEFINE("gather_last: picks x[r, index[r]], NaN out of range", B,
                          rlhf_conf_gather) {
  for (const shape& s : {shape{1, 1}, shape{5, 33}, shape{2, 3, 1000}, shape{0, 4}}) {
    const auto xv = random_values(static_cast<std::size_t>(s.numel()), 17);
    std::vector<std::int32_t> idx(static_cast<std::size_t>(s.rows()));
    std::mt19937 gen(18);
    for (auto& i : idx) i = static_cast<std::int32_t>(gen() % static_cast<unsigned>(s.cols()));
    if (idx.size() > 2) {
      idx[0] = 0;
      idx[1] = static_cast<std::int32_t>(s.cols() - 1);
    }
    typename B::tensor out(shape{s.rows()});
    ops::gather_last<B>(tensor_of<B>(xv, s),
                        ops::index_from_host<B>(std::span<const std::int32_t>(idx),
                                                shape{s.rows()}),
                        out);
    const vec want = ref::gather_last(ref::widen(xv), idx, s.rows(), s.cols());
    expect_close(ops::to_host<B>(out), want, abs_of(want), 0, 0, label("gather_last", s));
  }
  const std::vector<float> xv{1, 2, 3, 4, 5, 6};
  const std::vector<std::int32_t> idx{-1, 3};
  typename B::tensor out(shape{2});
  ops::gather_last<B>(tensor_of<B>(xv, shape{2, 3}),
                      ops::index_from_host<B>(std::span<const std::int32_t>(idx), shape{2}), out);
  const auto h = ops::to_host<B>(out);
  CHECK(std::isnan(h[0]));
  CHECK(std::isnan(h[1]));
  typename B::index_tensor short_idx(shape{1});
  CHECK_THROWS_AS(ops::gather_last<B>(tensor_of<B>(xv, shape{2, 3}), short_idx, out),
                  shape_error);
}

// ---- GEMM -------------------------------------------------------------------------------

namespace detail {
template <class B>
void check_gemm(const gemm_desc& d, index_t a_size, index_t b_size, index_t c_size,
                std::uint32_t seed, bool nan_in_c = false) {
  const auto av = random_values(static_cast<std::size_t>(a_size), seed);
  const auto bv = random_values(static_cast<std::size_t>(b_size), seed + 1);
  auto cv = random_values(static_cast<std::size_t>(c_size), seed + 2);
  if (nan_in_c) cv.assign(cv.size(), std::numeric_limits<float>::quiet_NaN());
  const auto a = tensor_of<B>(av, shape{a_size}), b = tensor_of<B>(bv, shape{b_size});
  auto c = tensor_of<B>(cv, shape{c_size});
  ops::gemm_strided<B>(d, a, b, c);
  vec magnitude;
  const vec want = ref::gemm(d, ref::widen(av), ref::widen(bv), ref::widen(cv), &magnitude);
  // Elements of C outside the product have magnitude 0: they must stay as they were.
  expect_close(ops::to_host<B>(c), want, magnitude, 4e-6, 1e-6,
               rlhf::detail::concat("gemm m=", d.m, " n=", d.n, " k=", d.k, " batch=", d.batch,
                                    " ta=", d.trans_a, " tb=", d.trans_b, " alpha=", d.alpha,
                                    " beta=", d.beta));
}
}  // namespace detail

TEST_CASE_TEMPLATE_DEFINE("gemm: every transpose, alpha/beta, odd sizes", B, rlhf_conf_gemm) {
  struct mnk {
    index_t m, n, k;
  };
  std::uint32_t seed = 100;
  for (mnk s : {mnk{1, 1, 1}, mnk{1, 7, 3}, mnk{7, 1, 5}, mnk{17, 33, 9}, mnk{64, 48, 130},
                mnk{129, 65, 257}, mnk{3, 4, 0}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{-0.5f, 1.0f},
                                   std::pair{2.0f, 0.25f}}) {
          gemm_desc d;
          d.trans_a = ta;
          d.trans_b = tb;
          d.m = s.m;
          d.n = s.n;
          d.k = s.k;
          d.alpha = alpha;
          d.beta = beta;
          d.a.ld = ta ? s.m : s.k;
          d.b.ld = tb ? s.k : s.n;
          d.c.ld = s.n;
          detail::check_gemm<B>(d, s.m * s.k, s.k * s.n, s.m * s.n, seed++);
        }
      }
    }
  }
  // Padded leading dimensions and offsets on a single (unbatched) product, large enough
  // that a backend may hand it to a BLAS.
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      gemm_desc d;
      d.trans_a = ta;
      d.trans_b = tb;
      d.m = 150;
      d.n = 140;
      d.k = 130;
      d.alpha = 1.5f;
      d.beta = -1.0f;
      d.a = {3, (ta ? d.m : d.k) + 5, 0};
      d.b = {7, (tb ? d.k : d.n) + 2, 0};
      d.c = {1, d.n + 9, 0};
      detail::check_gemm<B>(d, 3 + (ta ? d.k : d.m) * d.a.ld, 7 + (tb ? d.n : d.k) * d.b.ld,
                            1 + d.m * d.c.ld, seed++);
    }
  }
  // beta = 0: C is not read, so NaN in C must not leak.
  gemm_desc d;
  d.m = 5;
  d.n = 6;
  d.k = 7;
  d.a.ld = 7;
  d.b.ld = 6;
  d.c.ld = 6;
  detail::check_gemm<B>(d, 35, 42, 30, 7, /*nan_in_c=*/true);

  // The 2-D wrapper on (B, T, C) activations times a transposed (C_out, C) weight.
  const auto xv = random_values(2 * 3 * 8, 20), wv = random_values(5 * 8, 21);
  const auto x = tensor_of<B>(xv, shape{2, 3, 8}), w = tensor_of<B>(wv, shape{5, 8});
  typename B::tensor y(shape{2, 3, 5});
  ops::gemm<B>(transpose::no, transpose::yes, 1.0f, x, w, 0.0f, y);
  gemm_desc d2;
  d2.trans_b = true;
  d2.m = 6;
  d2.n = 5;
  d2.k = 8;
  d2.a.ld = 8;
  d2.b.ld = 8;
  d2.c.ld = 5;
  vec mag;
  const vec want = ref::gemm(d2, ref::widen(xv), ref::widen(wv), vec(30, 0.0), &mag);
  expect_close(ops::to_host<B>(y), want, mag, 4e-6, 1e-6, "gemm linear layer");

  typename B::tensor bad(shape{2, 3, 4});
  CHECK_THROWS_AS(ops::gemm<B>(transpose::no, transpose::yes, 1.0f, x, w, 0.0f, bad),
                  shape_error);
  CHECK_THROWS_AS(ops::gemm<B>(transpose::no, transpose::no, 1.0f, x, w, 0.0f, y), shape_error);
}

TEST_CASE_TEMPLATE_DEFINE("gemm_batched and gemm_strided (attention-head views)", B,
                          rlhf_conf_gemm_batched) {
  const index_t batch = 6, m = 9, n = 11, k = 13;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const auto av = random_values(static_cast<std::size_t>(batch * m * k), 30);
      const auto bv = random_values(static_cast<std::size_t>(batch * k * n), 31);
      const auto a = tensor_of<B>(av, ta ? shape{batch, k, m} : shape{batch, m, k});
      const auto b = tensor_of<B>(bv, tb ? shape{batch, n, k} : shape{batch, k, n});
      const auto cv = random_values(static_cast<std::size_t>(batch * m * n), 32);
      auto c = tensor_of<B>(cv, shape{batch, m, n});
      const float alpha = ta ? -1.0f : 1.0f, beta = tb ? 0.5f : 0.0f;
      ops::gemm_batched<B>(ta ? transpose::yes : transpose::no,
                           tb ? transpose::yes : transpose::no, alpha, a, b, beta, c);
      gemm_desc d;
      d.trans_a = ta;
      d.trans_b = tb;
      d.m = m;
      d.n = n;
      d.k = k;
      d.batch = batch;
      d.a = {0, ta ? m : k, m * k};
      d.b = {0, tb ? k : n, k * n};
      d.c = {0, n, m * n};
      d.alpha = alpha;
      d.beta = beta;
      vec mag;
      const vec want = ref::gemm(d, ref::widen(av), ref::widen(bv), ref::widen(cv), &mag);
      expect_close(ops::to_host<B>(c), want, mag, 4e-6, 1e-6, "gemm_batched");
    }
  }
  // Attention scores for one sequence: packed qkv (T, 3C) with H heads of size D; for
  // head h, Q_h is at offset h*D with ld 3C, K_h at C + h*D; S_h = Q_h K_h^T (T, T).
  const index_t T = 7, H = 3, D = 4, C = H * D;
  gemm_desc d;
  d.trans_b = true;
  d.m = T;
  d.n = T;
  d.k = D;
  d.batch = H;
  d.alpha = 0.5f;
  d.a = {0, 3 * C, D};
  d.b = {C, 3 * C, D};
  d.c = {0, T, T * T};
  detail::check_gemm<B>(d, T * 3 * C, T * 3 * C, H * T * T, 40);
  // Writing into a larger C with an offset leaves the rest untouched.
  d.c = {5, T + 2, T * (T + 2)};
  detail::check_gemm<B>(d, T * 3 * C, T * 3 * C, 5 + H * T * (T + 2), 41);

  typename B::tensor small(shape{10});
  d.c = {0, T, T * T};
  CHECK_THROWS_AS(ops::gemm_strided<B>(d, small, small, small), shape_error);
}

// ---- scan -------------------------------------------------------------------------------

TEST_CASE_TEMPLATE_DEFINE("reverse_linear_scan_rows", B, rlhf_conf_scan) {
  for (const shape& s : {shape{1, 1}, shape{1, 9}, shape{4, 1}, shape{7, 33}, shape{256, 1024}}) {
    const std::size_t n = static_cast<std::size_t>(s.numel());
    auto av = random_values(n, 50, 0.0f, 1.0f);
    const auto bv = random_values(n, 51);
    for (std::size_t i = 0; i < n; i += 7) av[i] = 0.0f;  // sequence ends reset the carry
    const auto a = tensor_of<B>(av, s);
    auto b = tensor_of<B>(bv, s);
    typename B::tensor y(s);
    ops::reverse_linear_scan_rows<B>(a, b, y);
    const vec want = ref::reverse_linear_scan_rows(ref::widen(av), ref::widen(bv), s.rows(),
                                                   s.cols());
    // |y| <= sum |b| of the rest of the row since 0 <= a <= 1; that bounds the rounding.
    const vec scale = ref::reverse_linear_scan_rows(ref::widen(av), abs_of(ref::widen(bv)),
                                                    s.rows(), s.cols());
    expect_close(ops::to_host<B>(y), want, scale, 1e-5, 1e-7, label("scan", s));
    ops::reverse_linear_scan_rows<B>(a, b, b);  // in place
    expect_close(ops::to_host<B>(b), want, scale, 1e-5, 1e-7, label("scan in place", s));
  }
  typename B::tensor a(shape{2, 3}), b(shape{3, 2});
  CHECK_THROWS_AS(ops::reverse_linear_scan_rows<B>(a, b, a), shape_error);
}

// ---- random numbers ---------------------------------------------------------------------

TEST_CASE_TEMPLATE_DEFINE("random_uniform: the Philox stream, bit for bit", B,
                          rlhf_conf_uniform) {
  random_stream rs{0x1234'5678'9abc'def0ull, 3, 0};
  typename B::tensor t(shape{13, 7});  // 91 values: not a multiple of 4
  ops::random_uniform<B>(t, rs);
  CHECK(rs.next_block == 23);
  const auto h = ops::to_host<B>(t);
  for (std::size_t i = 0; i < h.size(); ++i) {
    const philox_block blk = philox_draw(0x1234'5678'9abc'def0ull, 3, i / 4);
    REQUIRE(h[i] == static_cast<float>(blk.w[i % 4] >> 8) / 16777216.0f);
  }
  // The next fill continues the stream instead of repeating it.
  ops::random_uniform<B>(t, rs);
  const auto h2 = ops::to_host<B>(t);
  const philox_block next = philox_draw(0x1234'5678'9abc'def0ull, 3, 23);
  CHECK(h2[0] == static_cast<float>(next.w[0] >> 8) / 16777216.0f);
  // Moments of a large draw.
  typename B::tensor big(shape{1 << 16});
  ops::random_uniform<B>(big, rs);
  double sum = 0, lo = 1, hi = 0;
  for (float v : ops::to_host<B>(big)) {
    sum += v;
    lo = std::min(lo, double(v));
    hi = std::max(hi, double(v));
  }
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  CHECK(sum / static_cast<double>(big.size()) == doctest::Approx(0.5).epsilon(0.01));
}

TEST_CASE_TEMPLATE_DEFINE("random_normal: the Philox stream through Box-Muller", B,
                          rlhf_conf_normal) {
  random_stream rs{42, 7, 5};
  typename B::tensor t(shape{1 << 16});
  ops::random_normal<B>(t, rs);
  CHECK(rs.next_block == 5 + (1 << 15));
  const auto h = ops::to_host<B>(t);
  double sum = 0, sq = 0;
  for (std::size_t i = 0; i < h.size(); ++i) {
    const float want = philox_normal(42, 7, 5, i);
    if (i < 4096) REQUIRE(h[i] == doctest::Approx(want).epsilon(1e-6));
    sum += h[i];
    sq += double(h[i]) * h[i];
  }
  const double count = static_cast<double>(h.size());
  const double mean = sum / count, var = sq / count - mean * mean;
  CHECK(std::fabs(mean) < 0.02);
  CHECK(var == doctest::Approx(1.0).epsilon(0.02));
  random_stream other{42, 8, 5};  // another stream: different numbers
  typename B::tensor u(shape{16});
  ops::random_normal<B>(u, other, 1.0f, 2.0f);
  const auto hu = ops::to_host<B>(u);
  CHECK(hu[0] != doctest::Approx(h[0]));
  CHECK(hu[0] == doctest::Approx(1.0f + 2.0f * philox_normal(42, 8, 5, 0)).epsilon(1e-6));
}

// ---- input checks -----------------------------------------------------------------------

TEST_CASE_TEMPLATE_DEFINE("check_finite: names the first NaN or Inf, at any size", B,
                          rlhf_conf_check_finite) {
  // Sizes around the device pass's 4096 values per flag; the culprit first, in the middle
  // and last, and a second culprit after it that must not be the one named.
  for (const index_t n : {index_t{0}, index_t{1}, index_t{4095}, index_t{4097}, index_t{10000}}) {
    CAPTURE(n);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = philox_normal(5, 0, 0, i) * 1e30f;
    CHECK_NOTHROW(ops::check_finite<B>("op", "x", tensor_of<B>(v, shape{n})));
    for (const index_t at : {index_t{0}, n / 2, n - 1}) {
      if (n == 0) break;
      for (const float bad : {std::numeric_limits<float>::quiet_NaN(),
                              -std::numeric_limits<float>::infinity()}) {
        auto w = v;
        w[static_cast<std::size_t>(at)] = bad;
        if (at + 1 < n) w[static_cast<std::size_t>(n - 1)] = bad;
        const std::string want = "op: x must be finite, got " +
                                 std::string(std::isnan(bad) ? "nan" : "-inf") +
                                 " at flat index " + std::to_string(at);
        CHECK_THROWS_WITH_AS(ops::check_finite<B>("op", "x", tensor_of<B>(w, shape{n})),
                             want.c_str(), data_error);
      }
    }
  }
}

}  // namespace conformance
}  // namespace testing
}  // namespace v0
}  // namespace rlhf

/// Runs the whole conformance kit on each backend type given (at namespace scope).
#define RLHF_CONFORMANCE_SUITE(...)                                                         \
  namespace rlhf::inline v0::testing::conformance {                                         \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_tensor, __VA_ARGS__);                                 \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_fill, __VA_ARGS__);                                   \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_transform, __VA_ARGS__);                              \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_for_each, __VA_ARGS__);                               \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_broadcast, __VA_ARGS__);                              \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_row_sum, __VA_ARGS__);                                \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_row_max, __VA_ARGS__);                                \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_row_lse, __VA_ARGS__);                                \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_masked_mean, __VA_ARGS__);                            \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_col_sum, __VA_ARGS__);                                \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_softmax, __VA_ARGS__);                                \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_gather, __VA_ARGS__);                                 \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_gemm, __VA_ARGS__);                                   \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_gemm_batched, __VA_ARGS__);                           \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_scan, __VA_ARGS__);                                   \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_uniform, __VA_ARGS__);                                \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_normal, __VA_ARGS__);                                 \
  TEST_CASE_TEMPLATE_INVOKE(rlhf_conf_check_finite, __VA_ARGS__);                           \
  }                                                                                          \
  static_assert(true, "")
