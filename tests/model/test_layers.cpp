// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The transformer layers (rlhf/model/layers.hpp): forward against naive host loops, backward
// against central finite differences of L = sum(w * out) with random w, accumulation
// (backward twice = twice the gradients), causality, LayerNorm normalisation, bad input.
//
// Finite differences are taken of float32 forwards (step h = 1e-2, fixture.hpp's default):
// the float32 rounding of L (~1e-7 |L|) divided by 2h is ~1e-5 and the O(h^2) truncation of
// the smooth layers (softmax, LayerNorm's rstd, tanh) ~1e-4, so 1e-2 relative / 1e-3
// absolute separates a correct gradient from a wrong one (a missing term is O(1)).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "fixture.hpp"
#include "random_data.hpp"
#include "rlhf/model/layers.hpp"

namespace test_layers_cases {

namespace model = rlhf::model;
using rlhf::index_t;
using rlhf::shape;
using rlhf_test::check_close;
using rlhf_test::host;
using rlhf_test::make;
using rlhf_test::randn;

namespace {

constexpr double fd_rel = 1e-2, fd_abs = 1e-3;
constexpr float fd_step = 1e-2f;

std::size_t numel(const shape& s) { return static_cast<std::size_t>(s.numel()); }

/// sum(w * out) in double.
double weighted(const std::vector<float>& out, const std::vector<float>& w) {
  double s = 0.0;
  for (std::size_t i = 0; i < out.size(); ++i) s += static_cast<double>(out[i]) * w[i];
  return s;
}

std::vector<float> twice(std::vector<float> v) {
  for (auto& x : v) x *= 2.0f;
  return v;
}

template <class B>
typename B::tensor zeros(const shape& s) {
  return make<B>(std::vector<float>(numel(s), 0.0f), s);
}

template <class B>
void fd_check(auto&& loss, const std::vector<float>& x, const std::vector<float>& analytic,
              const char* what) {
  rlhf_test::check_gradient_fd(loss, x, std::span<const float>(analytic), what, fd_step, fd_rel,
                               fd_abs);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("encoder: forward, finite-difference backward, accumulation, bad ids", B,
                   RLHF_TEST_BACKENDS) {
  const index_t Bn = 2, T = 3, C = 4, V = 7, maxT = 5;
  const index_t wte_off = 3, wpe_off = wte_off + V * C, P = wpe_off + maxT * C + 2;
  const std::vector<std::int32_t> ids = {1, 6, 1, 0, 3, 1};  // repeated ids: scatter-add
  auto tokens = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{Bn, T});
  const auto params = randn(static_cast<std::size_t>(P), 1);
  const auto w = randn(static_cast<std::size_t>(Bn * T * C), 2);

  auto forward = [&](const std::vector<float>& p) {
    auto arena = make<B>(p, shape{P});
    auto out = zeros<B>(shape{Bn, T, C});
    model::encoder_forward<B>(out, tokens, {&arena, wte_off}, {&arena, wpe_off}, V);
    return host<B>(out);
  };
  const auto out = forward(params);
  std::vector<float> expect(out.size());
  for (index_t r = 0; r < Bn * T; ++r) {
    for (index_t c = 0; c < C; ++c) {
      expect[static_cast<std::size_t>(r * C + c)] =
          params[static_cast<std::size_t>(wte_off + ids[static_cast<std::size_t>(r)] * C + c)] +
          params[static_cast<std::size_t>(wpe_off + (r % T) * C + c)];
    }
  }
  check_close(out, expect, "encoder out");

  auto grads = zeros<B>(shape{P});
  auto dout = make<B>(w, shape{Bn, T, C});
  model::encoder_backward<B>({&grads, wte_off}, {&grads, wpe_off}, dout, tokens, V);
  const auto g1 = host<B>(grads);
  fd_check<B>([&](const std::vector<float>& p) { return weighted(forward(p), w); }, params, g1,
              "encoder d params");
  model::encoder_backward<B>({&grads, wte_off}, {&grads, wpe_off}, dout, tokens, V);
  check_close(host<B>(grads), twice(g1), "encoder backward accumulates");

  auto arena = make<B>(params, shape{P});
  auto o = zeros<B>(shape{Bn, T, C});
  const std::vector<std::int32_t> bad_ids = {1, 2, 7, 0, 0, 0};
  auto bad = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(bad_ids), shape{Bn, T});
  CHECK_THROWS_WITH_AS(
      model::encoder_forward<B>(o, bad, {&arena, wte_off}, {&arena, wpe_off}, V),
      "encoder_forward: tokens must be in [0, 7), got 7 at flat index 2", rlhf::data_error);
  CHECK_THROWS_AS(model::encoder_forward<B>(o, tokens, {&arena, wte_off}, {&arena, P - 4}, V),
                  rlhf::shape_error);  // wpe runs past the arena
}

// ---------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("layernorm: normalises, finite-difference backward, accumulation", B,
                   RLHF_TEST_BACKENDS) {
  const index_t Bn = 2, T = 3, C = 4, N = Bn * T;
  const index_t w_off = 1, b_off = w_off + C, P = b_off + C + 1;
  const float eps = 1e-5f;
  auto x = randn(numel(shape{N * C}), 3, 2.0f);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] += static_cast<float>(i % 5);  // offsets
  auto params = randn(static_cast<std::size_t>(P), 4);
  const auto w = randn(x.size(), 5);

  auto forward = [&](const std::vector<float>& xi, const std::vector<float>& p,
                     std::vector<float>* mean_out = nullptr,
                     std::vector<float>* rstd_out = nullptr) {
    auto arena = make<B>(p, shape{P});
    auto inp = make<B>(xi, shape{Bn, T, C});
    auto out = zeros<B>(shape{Bn, T, C});
    auto mean = zeros<B>(shape{Bn, T});
    auto rstd = zeros<B>(shape{Bn, T});
    model::layernorm_forward<B>(out, mean, rstd, inp, {&arena, w_off}, {&arena, b_off}, eps);
    if (mean_out != nullptr) *mean_out = host<B>(mean);
    if (rstd_out != nullptr) *rstd_out = host<B>(rstd);
    return host<B>(out);
  };

  SUBCASE("mean 0 and variance 1 before the affine") {
    std::vector<float> unit(static_cast<std::size_t>(P), 0.0f);
    for (index_t c = 0; c < C; ++c) unit[static_cast<std::size_t>(w_off + c)] = 1.0f;
    const auto y = forward(x, unit);
    for (index_t r = 0; r < N; ++r) {
      double m = 0.0, v = 0.0;
      for (index_t c = 0; c < C; ++c) m += y[static_cast<std::size_t>(r * C + c)];
      m /= static_cast<double>(C);
      for (index_t c = 0; c < C; ++c) {
        const double d = y[static_cast<std::size_t>(r * C + c)] - m;
        v += d * d;
      }
      v /= static_cast<double>(C);
      CHECK(std::abs(m) < 1e-6);
      CHECK(std::abs(v - 1.0) < 1e-4);  // var / (var + eps) with var ~ 1..4
    }
  }

  SUBCASE("forward matches host loops; backward matches finite differences") {
    std::vector<float> mean, rstd;
    const auto y = forward(x, params, &mean, &rstd);
    std::vector<float> expect(y.size()), em(static_cast<std::size_t>(N)),
        er(static_cast<std::size_t>(N));
    for (index_t r = 0; r < N; ++r) {
      double m = 0.0, v = 0.0;
      for (index_t c = 0; c < C; ++c) m += x[static_cast<std::size_t>(r * C + c)];
      m /= static_cast<double>(C);
      for (index_t c = 0; c < C; ++c) {
        const double d = x[static_cast<std::size_t>(r * C + c)] - m;
        v += d * d;
      }
      v /= static_cast<double>(C);
      const double s = 1.0 / std::sqrt(v + eps);
      em[static_cast<std::size_t>(r)] = static_cast<float>(m);
      er[static_cast<std::size_t>(r)] = static_cast<float>(s);
      for (index_t c = 0; c < C; ++c) {
        const auto i = static_cast<std::size_t>(r * C + c);
        expect[i] = static_cast<float>((x[i] - m) * s * params[static_cast<std::size_t>(w_off + c)] +
                                       params[static_cast<std::size_t>(b_off + c)]);
      }
    }
    check_close(y, expect, "layernorm out", 1e-5, 1e-5);
    check_close(mean, em, "layernorm mean", 1e-5, 1e-6);
    check_close(rstd, er, "layernorm rstd", 1e-5, 1e-6);

    auto arena = make<B>(params, shape{P});
    auto inp = make<B>(x, shape{Bn, T, C});
    auto meant = make<B>(mean, shape{N});
    auto rstdt = make<B>(rstd, shape{N});
    auto dout = make<B>(w, shape{Bn, T, C});
    auto dinp = zeros<B>(shape{Bn, T, C});
    auto grads = zeros<B>(shape{P});
    auto backward = [&] {
      model::layernorm_backward<B>(dinp, {&grads, w_off}, {&grads, b_off}, dout, inp,
                                   {&arena, w_off}, meant, rstdt);
    };
    backward();
    const auto dx1 = host<B>(dinp), dp1 = host<B>(grads);
    fd_check<B>([&](const std::vector<float>& xi) { return weighted(forward(xi, params), w); }, x,
                dx1, "layernorm d inp");
    fd_check<B>([&](const std::vector<float>& p) { return weighted(forward(x, p), w); }, params,
                dp1, "layernorm d weight, d bias");
    backward();
    check_close(host<B>(dinp), twice(dx1), "layernorm dinp accumulates");
    check_close(host<B>(grads), twice(dp1), "layernorm dweight/dbias accumulate");
  }

  SUBCASE("bad input") {
    auto arena = make<B>(params, shape{P});
    auto inp = make<B>(x, shape{Bn, T, C});
    auto out = zeros<B>(shape{Bn, T, C});
    auto mean = zeros<B>(shape{N});
    auto rstd_short = zeros<B>(shape{N - 1});
    CHECK_THROWS_WITH_AS(model::layernorm_forward<B>(out, mean, rstd_short, inp, {&arena, w_off},
                                                     {&arena, b_off}, eps),
                         "layernorm_forward: rstd's element count (one per row of inp) must be "
                         "6, got 5",
                         rlhf::shape_error);
    auto rstd = zeros<B>(shape{N});
    CHECK_THROWS_AS(model::layernorm_forward<B>(out, mean, rstd, inp, {&arena, w_off},
                                                {&arena, P - 2}, eps),
                    rlhf::shape_error);  // bias view runs past the arena
    CHECK_THROWS_AS(model::layernorm_forward<B>(out, mean, rstd, inp, {&arena, w_off},
                                                {&arena, b_off}, 0.0f),
                    rlhf::config_error);
  }
}

// ---------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("matmul: forward, finite-difference backward, accumulation", B,
                   RLHF_TEST_BACKENDS) {
  // N = 6 rows runs matmul_forward's dot-product path (N <= skinny_rows; a GEMM with oneDNN,
  // which prefers that to dot products: the provider reruns of this binary cover both), N =
  // 21 the GEMM.
  for (const index_t Bn : {index_t{2}, index_t{7}}) {
    CAPTURE(Bn);
    const index_t T = 3, C = 4, OC = 5, N = Bn * T;
    const index_t w_off = 2, b_off = w_off + OC * C, P = b_off + OC + 3;
    const auto x = randn(static_cast<std::size_t>(N * C), 6);
    const auto params = randn(static_cast<std::size_t>(P), 7, 0.5f);
    const auto w = randn(static_cast<std::size_t>(N * OC), 8);

    for (const bool with_bias : {true, false}) {
      CAPTURE(with_bias);
      auto forward = [&](const std::vector<float>& xi, const std::vector<float>& p) {
        auto arena = make<B>(p, shape{P});
        auto inp = make<B>(xi, shape{Bn, T, C});
        auto out = make<B>(std::vector<float>(static_cast<std::size_t>(N * OC), NAN),
                           shape{Bn, T, OC});  // overwritten, never read
        model::matmul_forward<B>(out, inp, {&arena, w_off},
                                 with_bias ? model::param_view<B>{&arena, b_off}
                                           : model::param_view<B>{});
        return host<B>(out);
      };
      const auto y = forward(x, params);
      std::vector<float> expect(y.size());
      for (index_t r = 0; r < N; ++r) {
        for (index_t o = 0; o < OC; ++o) {
          double s = with_bias ? params[static_cast<std::size_t>(b_off + o)] : 0.0;
          for (index_t c = 0; c < C; ++c) {
            s += static_cast<double>(x[static_cast<std::size_t>(r * C + c)]) *
                 params[static_cast<std::size_t>(w_off + o * C + c)];
          }
          expect[static_cast<std::size_t>(r * OC + o)] = static_cast<float>(s);
        }
      }
      check_close(y, expect, "matmul out", 1e-5, 1e-5);

      auto arena = make<B>(params, shape{P});
      auto inp = make<B>(x, shape{Bn, T, C});
      auto dout = make<B>(w, shape{Bn, T, OC});
      auto dinp = zeros<B>(shape{Bn, T, C});
      auto grads = zeros<B>(shape{P});
      auto backward = [&] {
        model::matmul_backward<B>(
            dinp, {&grads, w_off},
            with_bias ? model::grad_view<B>{&grads, b_off} : model::grad_view<B>{}, dout, inp,
            {&arena, w_off});
      };
      backward();
      const auto dx1 = host<B>(dinp), dp1 = host<B>(grads);
      fd_check<B>([&](const std::vector<float>& xi) { return weighted(forward(xi, params), w); }, x,
                  dx1, "matmul d inp");
      fd_check<B>([&](const std::vector<float>& p) { return weighted(forward(x, p), w); }, params,
                  dp1, "matmul d weight, d bias");
      backward();
      check_close(host<B>(dinp), twice(dx1), "matmul dinp accumulates");
      check_close(host<B>(grads), twice(dp1), "matmul dweight/dbias accumulate");

      // grad_write::overwrite: dinp's old contents (NaN here) are never read.
      auto dinp_nan = make<B>(std::vector<float>(x.size(), NAN), shape{Bn, T, C});
      model::matmul_backward<B>(dinp_nan, {}, {}, dout, inp, {&arena, w_off},
                                model::grad_write::overwrite);
      check_close(host<B>(dinp_nan), dx1, "matmul dinp overwritten");
    }

    auto arena = make<B>(params, shape{P});
    auto inp = make<B>(x, shape{Bn, T, C});
    auto out_bad = zeros<B>(shape{Bn, T + 1, OC});
    CHECK_THROWS_WITH_AS(
        model::matmul_forward<B>(out_bad, inp, {&arena, w_off}, {&arena, b_off}),
        rlhf::detail::concat("matmul_forward: out has shape (", Bn,
                             ", 4, 5), expected ", N, " rows of 5 (any leading shape)")
            .c_str(),
        rlhf::shape_error);
    auto out = zeros<B>(shape{Bn, T, OC});
    CHECK_THROWS_AS(model::matmul_forward<B>(out, inp, {&arena, P - OC * C + 1}, {}),
                    rlhf::shape_error);  // weight runs past the arena
  }
}

TEST_CASE_TEMPLATE("matmul: the transposed-weight forward equals the stored-weight one", B,
                   RLHF_TEST_BACKENDS) {
  // transpose_weight copies W (OC, C) to (C, OC) exactly, in whole 8 × 8 register blocks and
  // ragged edges, and writes nothing before its offset; matmul_forward_kn multiplies by
  // the copy (x·W with no trans_b) and must give matmul_forward's result to float32
  // round-off, with and without bias, for a decode step's rows (N = 3) and a GEMM's (N = 70),
  // over sizes that are not multiples of the 32 × 32 transpose tiles.
  const index_t C = 37, OC = 45, w_off = 3, b_off = w_off + OC * C, P = b_off + OC;
  const auto params = randn(static_cast<std::size_t>(P), 17, 0.5f);
  auto arena = make<B>(params, shape{P});
  auto wt = make<B>(std::vector<float>(static_cast<std::size_t>(OC * C + 5), NAN),
                    shape{OC * C + 5});
  model::transpose_weight<B>(wt, 5, {&arena, w_off}, OC, C);
  const auto t = host<B>(wt);
  bool exact = true;
  for (index_t i = 0; i < 5; ++i) exact = exact && std::isnan(t[static_cast<std::size_t>(i)]);
  for (index_t o = 0; o < OC; ++o) {
    for (index_t c = 0; c < C; ++c) {
      exact = exact && t[static_cast<std::size_t>(5 + c * OC + o)] ==
                           params[static_cast<std::size_t>(w_off + o * C + c)];
    }
  }
  CHECK(exact);
  for (const index_t N : {index_t{3}, index_t{70}}) {
    CAPTURE(N);
    const auto x = randn(static_cast<std::size_t>(N * C), 18);
    auto inp = make<B>(x, shape{N, C});
    for (const bool with_bias : {true, false}) {
      CAPTURE(with_bias);
      const model::param_view<B> bias = with_bias ? model::param_view<B>{&arena, b_off}
                                                  : model::param_view<B>{};
      auto stored = make<B>(std::vector<float>(static_cast<std::size_t>(N * OC), NAN),
                            shape{N, OC});
      auto transposed = stored;
      model::matmul_forward<B>(stored, inp, {&arena, w_off}, bias);
      model::matmul_forward_kn<B>(transposed, inp, {&wt, 5}, bias);
      check_close(host<B>(transposed), host<B>(stored), "x·Wt vs x·W^T", 1e-5, 1e-6);
    }
  }
  auto out = zeros<B>(shape{3, OC});
  auto inp = zeros<B>(shape{3, C});
  CHECK_THROWS_WITH_AS(model::matmul_forward_kn<B>(out, inp, {&wt, 6}, {}),
                       rlhf::detail::concat("matmul_forward_kn: wt needs ", OC * C,
                                            " elements at arena offset 6 but its arena has ",
                                            OC * C + 5, " elements")
                           .c_str(),
                       rlhf::shape_error);
  CHECK_THROWS_AS(model::transpose_weight<B>(wt, 6, {&arena, w_off}, OC, C), rlhf::shape_error);
}

// ---------------------------------------------------------------------------------------------

namespace {

/// Naive causal attention in double: out (B, T, C) from qkv (B, T, 3C).
std::vector<float> attention_reference(const std::vector<float>& qkv, index_t Bn, index_t T,
                                       index_t C, index_t NH) {
  const index_t hs = C / NH;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hs));
  std::vector<float> out(static_cast<std::size_t>(Bn * T * C));
  auto at = [&](index_t b, index_t t, index_t c) {
    return static_cast<double>(qkv[static_cast<std::size_t>((b * T + t) * 3 * C + c)]);
  };
  for (index_t b = 0; b < Bn; ++b) {
    for (index_t h = 0; h < NH; ++h) {
      for (index_t t = 0; t < T; ++t) {
        std::vector<double> s(static_cast<std::size_t>(t + 1));
        double mx = -1e300, z = 0.0;
        for (index_t t2 = 0; t2 <= t; ++t2) {
          double d = 0.0;
          for (index_t i = 0; i < hs; ++i) d += at(b, t, h * hs + i) * at(b, t2, C + h * hs + i);
          s[static_cast<std::size_t>(t2)] = d * scale;
          mx = std::max(mx, d * scale);
        }
        for (auto& v : s) z += (v = std::exp(v - mx));
        for (index_t i = 0; i < hs; ++i) {
          double o = 0.0;
          for (index_t t2 = 0; t2 <= t; ++t2) {
            o += s[static_cast<std::size_t>(t2)] / z * at(b, t2, 2 * C + h * hs + i);
          }
          out[static_cast<std::size_t>((b * T + t) * C + h * hs + i)] = static_cast<float>(o);
        }
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("attention: causal forward, finite-difference backward, accumulation", B,
                   RLHF_TEST_BACKENDS) {
  const index_t Bn = 2, T = 3, C = 4, NH = 2;
  const shape qkv_s{Bn, T, 3 * C}, out_s{Bn, T, C}, att_s{Bn, NH, T, T};
  const auto x = randn(numel(qkv_s), 9);
  const auto w = randn(numel(out_s), 10);

  auto forward = [&](const std::vector<float>& xi, std::vector<float>* att_out = nullptr) {
    auto inp = make<B>(xi, qkv_s);
    auto out = zeros<B>(out_s);
    auto preatt = zeros<B>(att_s);
    auto att = zeros<B>(att_s);
    model::attention_forward<B>(out, preatt, att, inp);
    if (att_out != nullptr) *att_out = host<B>(att);
    return host<B>(out);
  };

  std::vector<float> att_h;
  const auto y = forward(x, &att_h);
  check_close(y, attention_reference(x, Bn, T, C, NH), "attention out", 1e-5, 1e-6);
  for (index_t row = 0; row < Bn * NH * T; ++row) {  // rows sum to 1, zero above the diagonal
    const index_t t = row % T;
    double s = 0.0;
    for (index_t t2 = 0; t2 < T; ++t2) {
      const float a = att_h[static_cast<std::size_t>(row * T + t2)];
      if (t2 > t) CHECK(a == 0.0f);
      s += a;
    }
    CHECK(std::abs(s - 1.0) < 1e-6);
  }

  SUBCASE("causal: a later token's q, k, v do not change earlier outputs") {
    auto x2 = x;
    for (index_t b = 0; b < Bn; ++b) {
      for (index_t c = 0; c < 3 * C; ++c) x2[static_cast<std::size_t>((b * T + T - 1) * 3 * C + c)] += 3.0f;
    }
    const auto y2 = forward(x2);
    for (index_t b = 0; b < Bn; ++b) {
      for (index_t t = 0; t < T; ++t) {
        for (index_t c = 0; c < C; ++c) {
          const auto i = static_cast<std::size_t>((b * T + t) * C + c);
          if (t < T - 1) {
            CHECK(y2[i] == y[i]);
          }
        }
      }
    }
    bool last_changed = false;
    for (index_t c = 0; c < C; ++c) {
      last_changed |= y2[static_cast<std::size_t>((T - 1) * C + c)] !=
                      y[static_cast<std::size_t>((T - 1) * C + c)];
    }
    CHECK(last_changed);
  }

  SUBCASE("backward") {
    auto inp = make<B>(x, qkv_s);
    auto att = make<B>(att_h, att_s);
    auto dout = make<B>(w, out_s);
    auto dinp = zeros<B>(qkv_s);
    auto dpreatt = make<B>(std::vector<float>(numel(att_s), NAN), att_s);  // scratch:
    auto datt = make<B>(std::vector<float>(numel(att_s), NAN), att_s);     // overwritten
    model::attention_backward<B>(dinp, dpreatt, datt, dout, inp, att);
    const auto dx1 = host<B>(dinp);
    fd_check<B>([&](const std::vector<float>& xi) { return weighted(forward(xi), w); }, x, dx1,
                "attention d qkv");
    model::attention_backward<B>(dinp, dpreatt, datt, dout, inp, att);
    check_close(host<B>(dinp), twice(dx1), "attention dinp accumulates");
    auto dinp_nan = make<B>(std::vector<float>(numel(qkv_s), NAN), qkv_s);
    model::attention_backward<B>(dinp_nan, dpreatt, datt, dout, inp, att, nullptr,
                                 model::grad_write::overwrite);
    check_close(host<B>(dinp_nan), dx1, "attention dinp overwritten");
  }

  SUBCASE("bad input") {
    auto inp = make<B>(x, qkv_s);
    auto out = zeros<B>(out_s);
    auto preatt3 = zeros<B>(shape{Bn, 3, T, T});  // 3 heads do not divide C = 4
    auto att3 = zeros<B>(shape{Bn, 3, T, T});
    CHECK_THROWS_WITH_AS(model::attention_forward<B>(out, preatt3, att3, inp),
                         "attention_forward: preatt has shape (2, 3, 3, 3); its head count "
                         "(dimension 1) must divide C = 4",
                         rlhf::shape_error);
    auto preatt = zeros<B>(att_s);
    auto att = zeros<B>(att_s);
    auto out_bad = zeros<B>(shape{Bn, T, C + 1});
    CHECK_THROWS_AS(model::attention_forward<B>(out_bad, preatt, att, inp), rlhf::shape_error);
  }
}

// ---------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("gelu: tanh approximation, finite-difference backward, accumulation", B,
                   RLHF_TEST_BACKENDS) {
  const shape s{2, 3, 4};
  auto x = randn(numel(s), 11, 1.5f);
  x[0] = 1.0f;
  x[1] = -1.0f;
  x[2] = 0.0f;
  const auto w = randn(numel(s), 12);
  auto forward = [&](const std::vector<float>& xi) {
    auto inp = make<B>(xi, s);
    auto out = zeros<B>(s);
    model::gelu_forward<B>(out, inp);
    return host<B>(out);
  };
  const auto y = forward(x);
  // torch.nn.functional.gelu(x, approximate="tanh") at 1, -1, 0.
  check_close(std::span<const float>(y.data(), 3),
              std::vector<float>{0.841191992f, -0.158808008f, 0.0f}, "gelu(1, -1, 0)", 1e-6,
              1e-7);
  auto inp = make<B>(x, s);
  auto dout = make<B>(w, s);
  auto dinp = zeros<B>(s);
  model::gelu_backward<B>(dinp, inp, dout);
  const auto dx1 = host<B>(dinp);
  fd_check<B>([&](const std::vector<float>& xi) { return weighted(forward(xi), w); }, x, dx1,
              "gelu d inp");
  model::gelu_backward<B>(dinp, inp, dout);
  check_close(host<B>(dinp), twice(dx1), "gelu dinp accumulates");
  auto dinp_nan = make<B>(std::vector<float>(numel(s), NAN), s);
  model::gelu_backward<B>(dinp_nan, inp, dout, model::grad_write::overwrite);
  check_close(host<B>(dinp_nan), dx1, "gelu dinp overwritten");

  auto short_out = zeros<B>(shape{2, 3, 3});
  CHECK_THROWS_WITH_AS(model::gelu_forward<B>(short_out, inp),
                       "gelu_forward: out has shape (2, 3, 3) but inp has shape (2, 3, 4); they "
                       "must match",
                       rlhf::shape_error);
}

// ---------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("residual: forward, finite-difference backward, accumulation", B,
                   RLHF_TEST_BACKENDS) {
  const shape s{2, 3, 4};
  const auto a = randn(numel(s), 13), b = randn(numel(s), 14), w = randn(numel(s), 15);
  auto forward = [&](const std::vector<float>& av, const std::vector<float>& bv) {
    auto at = make<B>(av, s);
    auto bt = make<B>(bv, s);
    auto out = zeros<B>(s);
    model::residual_forward<B>(out, at, bt);
    return host<B>(out);
  };
  std::vector<float> expect(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) expect[i] = a[i] + b[i];
  check_close(forward(a, b), expect, "residual out");

  auto dout = make<B>(w, s);
  auto da = zeros<B>(s);
  auto db = zeros<B>(s);
  model::residual_backward<B>(da, db, dout);
  const auto da1 = host<B>(da), db1 = host<B>(db);
  fd_check<B>([&](const std::vector<float>& av) { return weighted(forward(av, b), w); }, a, da1,
              "residual d a");
  fd_check<B>([&](const std::vector<float>& bv) { return weighted(forward(a, bv), w); }, b, db1,
              "residual d b");
  model::residual_backward<B>(da, db, dout);
  check_close(host<B>(da), twice(da1), "residual da accumulates");
  check_close(host<B>(db), twice(db1), "residual db accumulates");

  auto same = zeros<B>(s);  // the same tensor as both inputs' gradient gets 2 dout
  model::residual_backward<B>(same, same, dout);
  check_close(host<B>(same), twice(w), "residual backward with da == db");

  auto at = make<B>(a, s);
  auto bad = zeros<B>(shape{2, 4, 3});
  auto out = zeros<B>(s);
  CHECK_THROWS_AS(model::residual_forward<B>(out, at, bad), rlhf::shape_error);
}

// ---------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("attention: odd shapes (T = 5, 3 heads of 2) against loops and differences",
                   B, RLHF_TEST_BACKENDS) {
  const index_t Bn = 2, T = 5, C = 6, NH = 3;
  const shape qkv_s{Bn, T, 3 * C}, out_s{Bn, T, C}, att_s{Bn, NH, T, T};
  const auto x = randn(numel(qkv_s), 16);
  const auto w = randn(numel(out_s), 17);
  auto preatt = zeros<B>(att_s);
  auto att = zeros<B>(att_s);
  auto forward = [&](const std::vector<float>& xi) {
    auto inp = make<B>(xi, qkv_s);
    auto out = zeros<B>(out_s);
    model::attention_forward<B>(out, preatt, att, inp);
    return host<B>(out);
  };
  check_close(forward(x), attention_reference(x, Bn, T, C, NH), "attention out", 1e-5, 1e-6);
  auto inp = make<B>(x, qkv_s);
  auto dout = make<B>(w, out_s);
  auto dinp = zeros<B>(qkv_s);
  auto dpreatt = zeros<B>(att_s);
  auto datt = zeros<B>(att_s);
  model::attention_backward<B>(dinp, dpreatt, datt, dout, inp, att);  // att of x (last forward)
  const auto dx = host<B>(dinp);
  fd_check<B>([&](const std::vector<float>& xi) { return weighted(forward(xi), w); }, x, dx,
              "attention d qkv");
}

// ---------------------------------------------------------------------------------------------
// PyTorch reference (tools/reference/layers.py → tests/fixtures/layers.json): forward outputs
// and the gradients of sum(w * out), computed by torch in float64 from the same float32
// inputs. Tolerance 1e-5 relative plus 1e-5 absolute (float32 sums of a few dozen O(1) terms
// round to ~1e-6; the absolute part covers values that cancel to near zero).

namespace {

constexpr double ref_rel = 1e-5, ref_abs = 1e-5;

/// Host vectors concatenated into one (P,) arena after `lead` unused elements; returns the
/// offsets.
struct test_arena {
  std::vector<float> values;
  std::vector<index_t> offsets;
  explicit test_arena(const std::vector<std::vector<float>>& parts, index_t lead = 3) {
    values.assign(static_cast<std::size_t>(lead), 0.5f);
    for (const auto& p : parts) {
      offsets.push_back(static_cast<index_t>(values.size()));
      values.insert(values.end(), p.begin(), p.end());
    }
    values.push_back(-0.5f);  // trailing element: the views must not reach it
  }
  [[nodiscard]] index_t size() const { return static_cast<index_t>(values.size()); }
  /// The slice of a (P,) host vector that belongs to part i.
  [[nodiscard]] std::vector<float> part(const std::vector<float>& all, std::size_t i,
                                        std::size_t n) const {
    const auto o = static_cast<std::size_t>(offsets[i]);
    return {all.begin() + static_cast<std::ptrdiff_t>(o),
            all.begin() + static_cast<std::ptrdiff_t>(o + n)};
  }
};

}  // namespace

TEST_CASE_TEMPLATE("layers match the PyTorch reference", B, RLHF_TEST_BACKENDS) {
  int cases = 0;
  for (const auto& fc : rlhf_test::load_fixture("layers.json")) {
    ++cases;
    const std::string layer = fc.config().at("layer").get<std::string>();
    CAPTURE(fc.name());
    const auto w = fc.input("w");
    const shape out_s = fc.input_shape("w");
    auto dout = make<B>(w, out_s);
    if (layer == "encoder") {
      const auto V = fc.config().at("V").get<index_t>();
      const auto wte = fc.input("wte"), wpe = fc.input("wpe");
      const test_arena ta({wte, wpe});
      auto arena = make<B>(ta.values, shape{ta.size()});
      auto tokens = fc.index_tensor<B>("tokens");
      auto out = zeros<B>(out_s);
      model::encoder_forward<B>(out, tokens, {&arena, ta.offsets[0]}, {&arena, ta.offsets[1]}, V);
      check_close(host<B>(out), fc.output("out"), "encoder out", ref_rel, ref_abs);
      auto grads = zeros<B>(shape{ta.size()});
      model::encoder_backward<B>({&grads, ta.offsets[0]}, {&grads, ta.offsets[1]}, dout, tokens,
                                 V);
      const auto g = host<B>(grads);
      check_close(ta.part(g, 0, wte.size()), fc.output("dwte"), "dwte", ref_rel, ref_abs);
      check_close(ta.part(g, 1, wpe.size()), fc.output("dwpe"), "dwpe", ref_rel, ref_abs);
      CHECK(g.front() == 0.0f);
      CHECK(g.back() == 0.0f);
    } else if (layer == "layernorm") {
      const auto wt = fc.input("weight"), bs = fc.input("bias");
      const test_arena ta({wt, bs});
      auto arena = make<B>(ta.values, shape{ta.size()});
      auto inp = fc.tensor<B>("inp");
      const index_t N = inp.shape().rows();
      auto out = zeros<B>(out_s);
      auto mean = zeros<B>(shape{N});
      auto rstd = zeros<B>(shape{N});
      const auto eps = fc.config().at("eps").get<float>();
      model::layernorm_forward<B>(out, mean, rstd, inp, {&arena, ta.offsets[0]},
                                  {&arena, ta.offsets[1]}, eps);
      check_close(host<B>(out), fc.output("out"), "layernorm out", ref_rel, ref_abs);
      check_close(host<B>(mean), fc.output("mean"), "layernorm mean", ref_rel, ref_abs);
      check_close(host<B>(rstd), fc.output("rstd"), "layernorm rstd", ref_rel, ref_abs);
      auto dinp = zeros<B>(inp.shape());
      auto grads = zeros<B>(shape{ta.size()});
      model::layernorm_backward<B>(dinp, {&grads, ta.offsets[0]}, {&grads, ta.offsets[1]}, dout,
                                   inp, {&arena, ta.offsets[0]}, mean, rstd);
      const auto g = host<B>(grads);
      check_close(host<B>(dinp), fc.output("dinp"), "layernorm dinp", ref_rel, ref_abs);
      check_close(ta.part(g, 0, wt.size()), fc.output("dweight"), "dweight", ref_rel, ref_abs);
      check_close(ta.part(g, 1, bs.size()), fc.output("dbias"), "dbias", ref_rel, ref_abs);
    } else if (layer == "matmul") {
      const auto wt = fc.input("weight"), bs = fc.input("bias");
      const test_arena ta({wt, bs});
      auto arena = make<B>(ta.values, shape{ta.size()});
      auto inp = fc.tensor<B>("inp");
      auto out = zeros<B>(out_s);
      model::matmul_forward<B>(out, inp, {&arena, ta.offsets[0]}, {&arena, ta.offsets[1]});
      check_close(host<B>(out), fc.output("out"), "matmul out", ref_rel, ref_abs);
      auto dinp = zeros<B>(inp.shape());
      auto grads = zeros<B>(shape{ta.size()});
      model::matmul_backward<B>(dinp, {&grads, ta.offsets[0]}, {&grads, ta.offsets[1]}, dout,
                                inp, {&arena, ta.offsets[0]});
      const auto g = host<B>(grads);
      check_close(host<B>(dinp), fc.output("dinp"), "matmul dinp", ref_rel, ref_abs);
      check_close(ta.part(g, 0, wt.size()), fc.output("dweight"), "dweight", ref_rel, ref_abs);
      check_close(ta.part(g, 1, bs.size()), fc.output("dbias"), "dbias", ref_rel, ref_abs);
    } else if (layer == "attention") {
      const auto NH = fc.config().at("NH").get<index_t>();
      auto inp = fc.tensor<B>("inp");
      const shape att_s{out_s[0], NH, out_s[1], out_s[1]};
      auto out = zeros<B>(out_s);
      auto preatt = zeros<B>(att_s);
      auto att = zeros<B>(att_s);
      model::attention_forward<B>(out, preatt, att, inp);
      check_close(host<B>(out), fc.output("out"), "attention out", ref_rel, ref_abs);
      check_close(host<B>(att), fc.output("att"), "attention att", ref_rel, ref_abs);
      auto dinp = zeros<B>(inp.shape());
      auto dpreatt = zeros<B>(att_s);
      auto datt = zeros<B>(att_s);
      model::attention_backward<B>(dinp, dpreatt, datt, dout, inp, att);
      check_close(host<B>(dinp), fc.output("dinp"), "attention dinp", ref_rel, ref_abs);
    } else if (layer == "gelu") {
      auto inp = fc.tensor<B>("inp");
      auto out = zeros<B>(out_s);
      model::gelu_forward<B>(out, inp);
      check_close(host<B>(out), fc.output("out"), "gelu out", ref_rel, ref_abs);
      auto dinp = zeros<B>(out_s);
      model::gelu_backward<B>(dinp, inp, dout);
      check_close(host<B>(dinp), fc.output("dinp"), "gelu dinp", ref_rel, ref_abs);
    } else {
      FAIL("unknown layer in fixture: " << layer);
    }
  }
  CHECK(cases == 10);  // what tools/reference/layers.py writes: 2 sizes x 5 layers
}

// ---------------------------------------------------------------------------------------------
// Llama-family layers: RMSNorm, rotary embeddings, SwiGLU, grouped-query attention.

namespace {

/// RMSNorm in double: out = x / sqrt(mean(x²) + eps) · w per row of C; rstd per row.
void rmsnorm_reference(const std::vector<float>& x, const std::vector<float>& w, index_t C,
                       float eps, std::vector<float>& out, std::vector<float>& rstd) {
  const index_t N = static_cast<index_t>(x.size()) / C;
  out.assign(x.size(), 0.0f);
  rstd.assign(static_cast<std::size_t>(N), 0.0f);
  for (index_t r = 0; r < N; ++r) {
    double ss = 0.0;
    for (index_t c = 0; c < C; ++c) {
      const double v = x[static_cast<std::size_t>(r * C + c)];
      ss += v * v;
    }
    const double s = 1.0 / std::sqrt(ss / static_cast<double>(C) + eps);
    rstd[static_cast<std::size_t>(r)] = static_cast<float>(s);
    for (index_t c = 0; c < C; ++c) {
      const auto i = static_cast<std::size_t>(r * C + c);
      out[i] = static_cast<float>(x[i] * s * w[static_cast<std::size_t>(c)]);
    }
  }
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

}  // namespace

TEST_CASE_TEMPLATE("rmsnorm: forward against double, finite-difference backward, accumulation", B,
                   RLHF_TEST_BACKENDS) {
  const float eps = 1e-5f;
  // The weight is a view at offset w_off of a larger arena.
  auto run_forward = [&](const std::vector<float>& xi, const std::vector<float>& p, index_t C,
                         index_t w_off, std::vector<float>* rstd_out = nullptr) {
    const index_t N = static_cast<index_t>(xi.size()) / C;
    auto arena = make<B>(p, shape{static_cast<index_t>(p.size())});
    auto inp = make<B>(xi, shape{N, C});
    auto out = make<B>(std::vector<float>(xi.size(), NAN), shape{N, C});  // overwritten
    auto rstd = make<B>(std::vector<float>(static_cast<std::size_t>(N), NAN), shape{N});
    model::rmsnorm_forward<B>(out, rstd, inp, {&arena, w_off}, eps);
    if (rstd_out != nullptr) *rstd_out = host<B>(rstd);
    return host<B>(out);
  };
  auto weight_of = [](const std::vector<float>& p, index_t w_off, index_t C) {
    return std::vector<float>(p.begin() + w_off, p.begin() + w_off + C);
  };

  SUBCASE("forward: random rows, a row of zeros, a row of 1e18") {
    const index_t Bn = 2, T = 3, C = 5, N = Bn * T, w_off = 2, P = w_off + C + 1;
    auto x = randn(static_cast<std::size_t>(N * C), 21, 2.0f);
    for (index_t c = 0; c < C; ++c) {
      x[static_cast<std::size_t>(2 * C + c)] = 0.0f;                    // row 2: zeros
      x[static_cast<std::size_t>(4 * C + c)] *= 1e18f;                  // row 4: 1e18
      x[static_cast<std::size_t>(5 * C + c)] = c == 3 ? 1e-30f : 0.0f;  // row 5: tiny
    }
    const auto params = randn(static_cast<std::size_t>(P), 22);
    std::vector<float> rstd;
    const auto y = run_forward(x, params, C, w_off, &rstd);
    std::vector<float> ey, er;
    rmsnorm_reference(x, weight_of(params, w_off, C), C, eps, ey, er);
    CHECK(all_finite(y));
    CHECK(all_finite(rstd));
    check_close(y, ey, "rmsnorm out", 1e-5, 1e-6);
    check_close(rstd, er, "rmsnorm rstd", 1e-5, 0.0);
    for (index_t c = 0; c < C; ++c) CHECK(y[static_cast<std::size_t>(2 * C + c)] == 0.0f);
    check_close(rstd[2], static_cast<float>(1.0 / std::sqrt(static_cast<double>(eps))),
                "rstd of a zero row = 1/sqrt(eps)", 1e-6, 0.0);
    // The same rows as a (B, T, C) tensor: rows are rows, whatever the leading shape.
    auto arena = make<B>(params, shape{P});
    auto inp3 = make<B>(x, shape{Bn, T, C});
    auto out3 = zeros<B>(shape{Bn, T, C});
    auto rstd2 = zeros<B>(shape{Bn, T});
    model::rmsnorm_forward<B>(out3, rstd2, inp3, {&arena, w_off}, eps);
    CHECK(host<B>(out3) == y);
  }

  SUBCASE("forward: a row with a huge C (float sums of 8192 squares)") {
    const index_t C = 8192, N = 2, w_off = 1, P = w_off + C;
    auto x = randn(static_cast<std::size_t>(N * C), 23, 3.0f);
    for (index_t c = 0; c < C; ++c) x[static_cast<std::size_t>(C + c)] += 5.0f;  // an offset
    const auto params = randn(static_cast<std::size_t>(P), 24);
    std::vector<float> rstd;
    const auto y = run_forward(x, params, C, w_off, &rstd);
    std::vector<float> ey, er;
    rmsnorm_reference(x, weight_of(params, w_off, C), C, eps, ey, er);
    check_close(y, ey, "rmsnorm out, C = 8192", 1e-4, 1e-6);
    check_close(rstd, er, "rmsnorm rstd, C = 8192", 1e-4, 0.0);
  }

  SUBCASE("forward: 1e18 values in a row of C = 1024 (sum of squares past FLT_MAX)") {
    // mean(x²) = 1e36 is a float, but the float sum of 1024 such squares (1e39) is not: a
    // sum that overflows gives rstd = 0 and an all-zero row instead of x / rms(x) · w.
    const index_t C = 1024, N = 1, w_off = 0, P = C;
    auto x = randn(static_cast<std::size_t>(N * C), 25);
    for (auto& v : x) v = (v < 0.0f ? -1e18f : 1e18f) * (1.0f + 0.1f * std::abs(v));
    const auto params = randn(static_cast<std::size_t>(P), 26);
    std::vector<float> rstd;
    const auto y = run_forward(x, params, C, w_off, &rstd);
    std::vector<float> ey, er;
    rmsnorm_reference(x, weight_of(params, w_off, C), C, eps, ey, er);
    CHECK(all_finite(y));
    check_close(y, ey, "rmsnorm out of 1e18 values, C = 1024", 1e-5, 1e-6);
    check_close(rstd, er, "rmsnorm rstd of 1e18 values, C = 1024", 1e-5, 0.0);
  }

  SUBCASE("backward: finite differences for inp and weight, accumulation") {
    const index_t Bn = 2, T = 3, C = 5, N = Bn * T, w_off = 2, P = w_off + C + 1;
    auto x = randn(static_cast<std::size_t>(N * C), 27, 1.5f);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += static_cast<float>(i % 3);  // offsets
    const auto params = randn(static_cast<std::size_t>(P), 28);
    const auto w = randn(x.size(), 29);
    std::vector<float> rstd;
    (void)run_forward(x, params, C, w_off, &rstd);
    auto arena = make<B>(params, shape{P});
    auto inp = make<B>(x, shape{Bn, T, C});
    auto rstdt = make<B>(rstd, shape{Bn, T});
    auto dout = make<B>(w, shape{Bn, T, C});
    auto dinp = zeros<B>(shape{Bn, T, C});
    auto grads = zeros<B>(shape{P});
    auto backward = [&] {
      model::rmsnorm_backward<B>(dinp, {&grads, w_off}, dout, inp, {&arena, w_off}, rstdt);
    };
    backward();
    const auto dx1 = host<B>(dinp), dp1 = host<B>(grads);
    fd_check<B>(
        [&](const std::vector<float>& xi) {
          return weighted(run_forward(xi, params, C, w_off), w);
        },
        x, dx1, "rmsnorm d inp");
    fd_check<B>(
        [&](const std::vector<float>& p) { return weighted(run_forward(x, p, C, w_off), w); },
        params, dp1, "rmsnorm d weight");
    CHECK(dp1.front() == 0.0f);  // outside the weight view: untouched
    CHECK(dp1.back() == 0.0f);
    backward();
    check_close(host<B>(dinp), twice(dx1), "rmsnorm dinp accumulates");
    check_close(host<B>(grads), twice(dp1), "rmsnorm dweight accumulates");
    // No dweight (a frozen layer): dinp only, the same values.
    auto dinp2 = zeros<B>(shape{Bn, T, C});
    model::rmsnorm_backward<B>(dinp2, {}, dout, inp, {&arena, w_off}, rstdt);
    check_close(host<B>(dinp2), dx1, "rmsnorm dinp without dweight", 0.0, 0.0);
    // A row of zeros: d inp = rstd · dout · w (no second term).
    auto xz = x;
    for (index_t c = 0; c < C; ++c) xz[static_cast<std::size_t>(C + c)] = 0.0f;
    std::vector<float> rz;
    (void)run_forward(xz, params, C, w_off, &rz);
    auto inpz = make<B>(xz, shape{Bn, T, C});
    auto rzt = make<B>(rz, shape{Bn, T});
    auto dz = zeros<B>(shape{Bn, T, C});
    model::rmsnorm_backward<B>(dz, {}, dout, inpz, {&arena, w_off}, rzt);
    const auto dzh = host<B>(dz);
    for (index_t c = 0; c < C; ++c) {
      const auto i = static_cast<std::size_t>(C + c);
      check_close(dzh[i],
                  static_cast<float>(rz[1] * w[i] * params[static_cast<std::size_t>(w_off + c)]),
                  "rmsnorm dinp of a zero row", 1e-6, 0.0);
    }
  }

  SUBCASE("backward: C = 37 (dweight in three column blocks, the last partial)") {
    const index_t N = 3, C = 37, w_off = 1, P = w_off + C;
    const auto x = randn(static_cast<std::size_t>(N * C), 32, 1.5f);
    const auto params = randn(static_cast<std::size_t>(P), 33);
    const auto w = randn(x.size(), 34);
    std::vector<float> rstd;
    (void)run_forward(x, params, C, w_off, &rstd);
    auto arena = make<B>(params, shape{P});
    auto inp = make<B>(x, shape{N, C});
    auto rstdt = make<B>(rstd, shape{N});
    auto dout = make<B>(w, shape{N, C});
    auto dinp = zeros<B>(shape{N, C});
    auto grads = zeros<B>(shape{P});
    model::rmsnorm_backward<B>(dinp, {&grads, w_off}, dout, inp, {&arena, w_off}, rstdt);
    fd_check<B>(
        [&](const std::vector<float>& xi) {
          return weighted(run_forward(xi, params, C, w_off), w);
        },
        x, host<B>(dinp), "rmsnorm d inp, C = 37");
    fd_check<B>(
        [&](const std::vector<float>& p) { return weighted(run_forward(x, p, C, w_off), w); },
        params, host<B>(grads), "rmsnorm d weight, C = 37");
  }

  SUBCASE("bad input names the argument") {
    const index_t N = 6, C = 5, P = C + 3;
    const auto params = randn(static_cast<std::size_t>(P), 30);
    auto arena = make<B>(params, shape{P});
    auto inp = make<B>(randn(static_cast<std::size_t>(N * C), 31), shape{N, C});
    auto out = zeros<B>(shape{N, C});
    auto rstd = zeros<B>(shape{N});
    auto out_bad = zeros<B>(shape{N, C + 1});
    CHECK_THROWS_WITH_AS(model::rmsnorm_forward<B>(out_bad, rstd, inp, {&arena, 0}, 1e-5f),
                         "rmsnorm_forward: out has shape (6, 6) but inp has shape (6, 5); they "
                         "must match",
                         rlhf::shape_error);
    auto rstd_short = zeros<B>(shape{N - 1});
    CHECK_THROWS_WITH_AS(model::rmsnorm_forward<B>(out, rstd_short, inp, {&arena, 0}, 1e-5f),
                         "rmsnorm_forward: rstd's element count (one per row of inp) must be 6, "
                         "got 5",
                         rlhf::shape_error);
    CHECK_THROWS_WITH_AS(model::rmsnorm_forward<B>(out, rstd, inp, {&arena, 4}, 1e-5f),
                         doctest::Contains("rmsnorm_forward: weight needs 5 elements"),
                         rlhf::shape_error);  // runs past the arena
    CHECK_THROWS_WITH_AS(model::rmsnorm_forward<B>(out, rstd, inp, {}, 1e-5f),
                         doctest::Contains("rmsnorm_forward: weight"), rlhf::shape_error);
    CHECK_THROWS_AS(model::rmsnorm_forward<B>(out, rstd, inp, {&arena, 0}, 0.0f),
                    rlhf::config_error);
    auto dinp = zeros<B>(shape{N, C});
    auto grads = zeros<B>(shape{P});
    auto dinp_bad = zeros<B>(shape{N + 1, C});
    CHECK_THROWS_WITH_AS(
        model::rmsnorm_backward<B>(dinp_bad, {&grads, 0}, out, inp, {&arena, 0}, rstd),
        doctest::Contains("rmsnorm_backward: dinp has shape"), rlhf::shape_error);
    CHECK_THROWS_WITH_AS(
        model::rmsnorm_backward<B>(dinp, {&grads, 0}, out_bad, inp, {&arena, 0}, rstd),
        doctest::Contains("rmsnorm_backward: dout has shape"), rlhf::shape_error);
    CHECK_THROWS_WITH_AS(
        model::rmsnorm_backward<B>(dinp, {&grads, 0}, out, inp, {&arena, 0}, rstd_short),
        doctest::Contains("rmsnorm_backward: rstd's element count"), rlhf::shape_error);
    CHECK_THROWS_WITH_AS(model::rmsnorm_backward<B>(dinp, {&grads, 4}, out, inp, {&arena, 0}, rstd),
                         doctest::Contains("rmsnorm_backward: dweight needs 5 elements"),
                         rlhf::shape_error);
    for (float g : host<B>(grads)) CHECK(g == 0.0f);  // nothing written by rejected calls
    for (float g : host<B>(dinp)) CHECK(g == 0.0f);
  }
}

// ---------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("encoder: no position table (rotary models) embeds the tokens only", B,
                   RLHF_TEST_BACKENDS) {
  const index_t Bn = 2, T = 3, C = 4, V = 7, wte_off = 2, P = wte_off + V * C + 1;
  const std::vector<std::int32_t> ids = {1, 6, 1, 0, 3, 1};
  auto tokens = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{Bn, T});
  const auto params = randn(static_cast<std::size_t>(P), 35);
  const auto w = randn(static_cast<std::size_t>(Bn * T * C), 36);
  auto forward = [&](const std::vector<float>& p) {
    auto arena = make<B>(p, shape{P});
    auto out = make<B>(std::vector<float>(static_cast<std::size_t>(Bn * T * C), NAN),
                       shape{Bn, T, C});
    model::encoder_forward<B>(out, tokens, {&arena, wte_off}, model::param_view<B>{}, V);
    return host<B>(out);
  };
  std::vector<float> expect;
  for (const auto id : ids) {
    for (index_t c = 0; c < C; ++c)
      expect.push_back(params[static_cast<std::size_t>(wte_off + id * C + c)]);
  }
  check_close(forward(params), expect, "encoder out without wpe", 0.0, 0.0);
  auto grads = zeros<B>(shape{P});
  auto dout = make<B>(w, shape{Bn, T, C});
  model::encoder_backward<B>({&grads, wte_off}, model::grad_view<B>{}, dout, tokens, V);
  const auto g = host<B>(grads);
  fd_check<B>([&](const std::vector<float>& p) { return weighted(forward(p), w); }, params, g,
              "encoder d wte without wpe");
}

// ---------------------------------------------------------------------------------------------

namespace {

/// A rotary config of head_dim hs (n_head 2) with the given rope parameters.
model::gpt_config rope_config_of(index_t hs, model::rope_config r) {
  model::gpt_config c;
  c.n_head = 2;
  c.n_embd = 2 * hs;
  c.position = model::position_type::rotary;
  c.rope = r;
  return c;
}

/// rope_rotate in double from the same float angle float(p) · inv_freq[i].
std::vector<float> rope_reference(const std::vector<float>& x, index_t Bn, index_t T, index_t W,
                                  index_t hs, index_t heads, const std::vector<float>& inv_freq,
                                  const std::vector<std::int32_t>* start, bool inverse) {
  std::vector<float> out = x;
  const index_t half = hs / 2;
  for (index_t b = 0; b < Bn; ++b) {
    for (index_t t = 0; t < T; ++t) {
      const index_t p = (start != nullptr ? (*start)[static_cast<std::size_t>(b)] : 0) + t;
      for (index_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(p) * inv_freq[static_cast<std::size_t>(i)];
        const double c = std::cos(static_cast<double>(angle));
        const double s = (inverse ? -1.0 : 1.0) * std::sin(static_cast<double>(angle));
        for (index_t h = 0; h < heads; ++h) {
          const auto i0 = static_cast<std::size_t>((b * T + t) * W + h * hs + i);
          const auto i1 = i0 + static_cast<std::size_t>(half);
          const double a = x[i0], bb = x[i1];
          out[i0] = static_cast<float>(a * c - bb * s);
          out[i1] = static_cast<float>(bb * c + a * s);
        }
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("rope_rotate: against double, inverse, norms, frequencies, gradient", B,
                   RLHF_TEST_BACKENDS) {
  // Grouped-query layout: NH = 2 query heads and NKV = 1 key head of hs = 6 are rotated, the
  // value head is not. W = C + 2 · NKV · hs = 12 + 12.
  const index_t Bn = 2, T = 5, hs = 6, NH = 2, NKV = 1, W = NH * hs + 2 * NKV * hs;
  const index_t heads = NH + NKV;
  const shape s{Bn, T, W};
  const auto cfg = rope_config_of(hs, model::rope_config{});
  const auto inv_freq = model::rope_inverse_frequencies(cfg);
  REQUIRE(inv_freq.size() == static_cast<std::size_t>(hs / 2));
  auto freq = make<B>(inv_freq, shape{hs / 2});
  const auto x = randn(numel(s), 41);
  const std::vector<std::int32_t> start_h = {3, 997};
  auto start = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(start_h), shape{Bn});
  auto rotate = [&](const std::vector<float>& xi, bool with_start, bool inverse) {
    auto t = make<B>(xi, s);
    model::rope_rotate<B>(t, hs, heads, freq, with_start ? &start : nullptr, inverse);
    return host<B>(t);
  };

  SUBCASE("against double; inverse; pair norms; the gradient is the inverse rotation") {
    for (const bool with_start : {false, true}) {
      CAPTURE(with_start);
      const auto* st = with_start ? &start_h : nullptr;
      const auto y = rotate(x, with_start, false);
      check_close(y, rope_reference(x, Bn, T, W, hs, heads, inv_freq, st, false), "rope out", 1e-5,
                  1e-6);
      check_close(rotate(x, with_start, true),
                  rope_reference(x, Bn, T, W, hs, heads, inv_freq, st, true), "rope inverse out",
                  1e-5, 1e-6);
      // v (the channels past the rotated heads) is untouched; so is position 0 without start.
      for (index_t r = 0; r < Bn * T; ++r) {
        for (index_t c = heads * hs; c < W; ++c) {
          const auto i = static_cast<std::size_t>(r * W + c);
          CHECK(y[i] == x[i]);
        }
      }
      if (!with_start) {
        for (index_t c = 0; c < W; ++c)
          CHECK(y[static_cast<std::size_t>(c)] == x[static_cast<std::size_t>(c)]);
      }
      // The inverse undoes the rotation (to float rounding); each pair keeps its norm.
      check_close(rotate(y, with_start, true), x, "rope inverse(rotate(x))", 1e-5, 1e-6);
      for (index_t r = 0; r < Bn * T; ++r) {
        for (index_t h = 0; h < heads; ++h) {
          for (index_t i = 0; i < hs / 2; ++i) {
            const auto i0 = static_cast<std::size_t>(r * W + h * hs + i);
            const auto i1 = i0 + static_cast<std::size_t>(hs / 2);
            const double n0 = static_cast<double>(x[i0]) * x[i0] +
                              static_cast<double>(x[i1]) * x[i1];
            const double n1 = static_cast<double>(y[i0]) * y[i0] +
                              static_cast<double>(y[i1]) * y[i1];
            CHECK(std::abs(n1 - n0) <= 1e-5 * n0 + 1e-12);
          }
        }
      }
      // Backward: the gradient of L = sum(w · rotate(x)) is the inverse rotation of w.
      const auto w = randn(numel(s), 42);
      const auto g = rotate(w, with_start, true);
      fd_check<B>(
          [&](const std::vector<float>& xi) { return weighted(rotate(xi, with_start, false), w); },
          x, g, "rope d qkv (inverse rotation of dout)");
    }
  }

  SUBCASE("the start positions are the rows' offsets") {
    // Row b at start p equals a start-less rotation of a longer sequence at step p + t.
    const std::vector<std::int32_t> st = {2, 0};
    auto st_dev = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(st), shape{Bn});
    auto t1 = make<B>(x, s);
    model::rope_rotate<B>(t1, hs, heads, freq, &st_dev, false);
    const auto y1 = host<B>(t1);
    const index_t T2 = T + 2;
    std::vector<float> longer(static_cast<std::size_t>(T2 * W), 0.0f);
    std::copy(x.begin(), x.begin() + T * W, longer.begin() + 2 * W);  // row 0 at steps 2..6
    auto t2 = make<B>(longer, shape{1, T2, W});
    model::rope_rotate<B>(t2, hs, heads, freq, nullptr, false);
    const auto y2 = host<B>(t2);
    check_close(std::span<const float>(y1.data(), static_cast<std::size_t>(T * W)),
                std::span<const float>(y2.data() + 2 * W, static_cast<std::size_t>(T * W)),
                "rope with start 2 = rope at steps 2..", 0.0, 0.0);
  }

  SUBCASE("bad input") {
    auto t = make<B>(x, s);
    auto freq_bad = make<B>(std::vector<float>(4, 1.0f), shape{4});
    CHECK_THROWS_WITH_AS(model::rope_rotate<B>(t, hs, heads, freq_bad, nullptr, false),
                         doctest::Contains("rope_rotate: inv_freq's element count"),
                         rlhf::shape_error);
    const std::vector<std::int32_t> st3 = {0, 0, 0};
    auto start3 = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(st3), shape{3});
    CHECK_THROWS_WITH_AS(model::rope_rotate<B>(t, hs, heads, freq, &start3, false),
                         doctest::Contains("rope_rotate: start's element count"),
                         rlhf::shape_error);
    CHECK_THROWS_AS(model::rope_rotate<B>(t, hs, W / hs + 1, freq, nullptr, false),
                    rlhf::config_error);  // more heads than the row holds
    CHECK_THROWS_AS(model::rope_rotate<B>(t, 5, heads, freq, nullptr, false),
                    rlhf::config_error);  // odd head_dim
    auto flat = make<B>(x, shape{Bn * T, W});
    CHECK_THROWS_AS(model::rope_rotate<B>(flat, hs, heads, freq, nullptr, false),
                    rlhf::shape_error);  // rank 2
    CHECK(host<B>(t) == x);              // rejected calls leave the buffer alone
  }
}

TEST_CASE("rope_inverse_frequencies: none, linear and llama3 against their definitions") {
  constexpr double two_pi = 6.283185307179586476925286766559;
  const index_t hs = 16;
  model::rope_config r;
  r.theta = 500000.0f;
  auto base = [&](index_t i) {
    return std::pow(static_cast<double>(r.theta), -2.0 * static_cast<double>(i) / hs);
  };
  auto check_freqs = [&](const std::vector<float>& got, auto&& want, const char* what) {
    REQUIRE(got.size() == static_cast<std::size_t>(hs / 2));
    std::vector<float> w(got.size());
    for (index_t i = 0; i < hs / 2; ++i)
      w[static_cast<std::size_t>(i)] = static_cast<float>(want(i));
    check_close(got, w, what, 1e-6, 0.0);
  };
  r.scaling = model::rope_scaling_type::none;
  check_freqs(model::rope_inverse_frequencies(rope_config_of(hs, r)), base, "rope none");
  CHECK(model::rope_inverse_frequencies(rope_config_of(hs, r))[0] == 1.0f);
  r.scaling = model::rope_scaling_type::linear;
  r.factor = 4.0f;
  check_freqs(
      model::rope_inverse_frequencies(rope_config_of(hs, r)),
      [&](index_t i) { return base(i) / 4.0; }, "rope linear");
  // Llama 3.1's: factor 8, low 1, high 4, original 8192. With theta 5e5 and hs 16 the
  // wavelengths 2π·theta^(i/8) are 6.3, 33, 168, 873 (kept: < 8192/4), 4525 (the ramp),
  // 23440, ... (divided: > 8192/1); original 1024 moves the ramp to i = 3 (873).
  for (const index_t old : {index_t{8192}, index_t{1024}, index_t{100}}) {
    CAPTURE(old);
    r.scaling = model::rope_scaling_type::llama3;
    r.factor = 8.0f;
    r.low_freq_factor = 1.0f;
    r.high_freq_factor = 4.0f;
    r.original_max_seq_len = old;
    int kept = 0, ramp = 0, divided = 0;
    auto llama3 = [&](index_t i) {
      const double f = base(i), wavelen = two_pi / f, o = static_cast<double>(old);
      const double low = r.low_freq_factor, high = r.high_freq_factor;
      if (wavelen > o / low) {
        ++divided;
        return f / r.factor;
      }
      if (wavelen < o / high) {
        ++kept;
        return f;
      }
      ++ramp;
      const double smooth = (o / wavelen - low) / (high - low);
      return (1.0 - smooth) * f / r.factor + smooth * f;
    };
    check_freqs(model::rope_inverse_frequencies(rope_config_of(hs, r)), llama3, "rope llama3");
    CHECK(kept >= 1);
    CHECK(divided >= 1);
    if (old != 100) CHECK(ramp == 1);
  }
  // An odd head_dim cannot be rotated (pairs of channels): config_error.
  auto odd = rope_config_of(3, model::rope_config{});
  CHECK_THROWS_AS((void)model::rope_inverse_frequencies(odd), rlhf::config_error);
}

// ---------------------------------------------------------------------------------------------

namespace {

/// SwiGLU in double: out (N, H) = silu(gate) · up from inp (N, 2H) = [gate | up]; the
/// gradient [d gate | d up] of sum(dout · out) as well.
void swiglu_reference(const std::vector<float>& x, const std::vector<float>& dout, index_t H,
                      std::vector<float>& out, std::vector<float>& dx) {
  const index_t N = static_cast<index_t>(x.size()) / (2 * H);
  out.assign(static_cast<std::size_t>(N * H), 0.0f);
  dx.assign(x.size(), 0.0f);
  for (index_t r = 0; r < N; ++r) {
    for (index_t j = 0; j < H; ++j) {
      const auto ig = static_cast<std::size_t>(r * 2 * H + j),
                 iu = ig + static_cast<std::size_t>(H);
      const auto io = static_cast<std::size_t>(r * H + j);
      const double g = x[ig], u = x[iu], go = dout[io];
      const double sg = 1.0 / (1.0 + std::exp(-g));
      out[io] = static_cast<float>(g * sg * u);
      dx[ig] = static_cast<float>(go * u * sg * (1.0 + g * (1.0 - sg)));
      dx[iu] = static_cast<float>(go * g * sg);
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE("swiglu: forward against double, finite-difference backward, accumulation", B,
                   RLHF_TEST_BACKENDS) {
  const index_t Bn = 2, T = 3, H = 4;
  const shape in_s{Bn, T, 2 * H}, out_s{Bn, T, H};
  auto x = randn(numel(in_s), 51, 1.5f);
  x[0] = 0.0f;  // silu(0) = 0, silu'(0) = 1/2
  const auto w = randn(numel(out_s), 52);
  auto forward = [&](const std::vector<float>& xi) {
    auto inp = make<B>(xi, in_s);
    auto out = make<B>(std::vector<float>(numel(out_s), NAN), out_s);  // overwritten
    model::swiglu_forward<B>(out, inp);
    return host<B>(out);
  };
  std::vector<float> ey, edx;
  swiglu_reference(x, w, H, ey, edx);
  check_close(forward(x), ey, "swiglu out", 1e-5, 1e-6);

  auto inp = make<B>(x, in_s);
  auto dout = make<B>(w, out_s);
  auto dinp = zeros<B>(in_s);
  model::swiglu_backward<B>(dinp, inp, dout);
  const auto dx1 = host<B>(dinp);
  check_close(dx1, edx, "swiglu dinp against double", 1e-5, 1e-6);
  fd_check<B>([&](const std::vector<float>& xi) { return weighted(forward(xi), w); }, x, dx1,
              "swiglu d [gate | up]");
  model::swiglu_backward<B>(dinp, inp, dout);
  check_close(host<B>(dinp), twice(dx1), "swiglu dinp accumulates");
  auto dinp_nan = make<B>(std::vector<float>(numel(in_s), NAN), in_s);
  model::swiglu_backward<B>(dinp_nan, inp, dout, model::grad_write::overwrite);
  check_close(host<B>(dinp_nan), dx1, "swiglu dinp overwritten");

  SUBCASE("extreme inputs: no NaN, the limits silu(x) -> x and -> 0") {
    const std::vector<float> vals = {100.0f, -100.0f, 1e4f, -1e4f, 88.5f, -88.5f, 30.0f, -30.0f};
    const index_t N = static_cast<index_t>(vals.size() * vals.size()), Hx = 1;
    std::vector<float> xe;
    for (float g : vals) {
      for (float u : vals) xe.insert(xe.end(), {g, u});  // every (gate, up) pair
    }
    const auto we = randn(static_cast<std::size_t>(N), 53);
    auto ie = make<B>(xe, shape{N, 2 * Hx});
    auto oe = zeros<B>(shape{N, Hx});
    model::swiglu_forward<B>(oe, ie);
    auto de = zeros<B>(shape{N, 2 * Hx});
    auto ge = make<B>(we, shape{N, Hx});
    model::swiglu_backward<B>(de, ie, ge);
    const auto yo = host<B>(oe), yd = host<B>(de);
    CHECK(all_finite(yo));
    CHECK(all_finite(yd));
    std::vector<float> ro, rd;
    swiglu_reference(xe, we, Hx, ro, rd);
    check_close(yo, ro, "swiglu out of extreme inputs", 1e-5, 1e-6);
    check_close(yd, rd, "swiglu dinp of extreme inputs", 1e-5, 1e-6);
  }

  SUBCASE("bad input") {
    auto out = zeros<B>(out_s);
    auto inp_bad = zeros<B>(shape{Bn, T, 2 * H + 1});
    CHECK_THROWS_WITH_AS(model::swiglu_forward<B>(out, inp_bad),
                         "swiglu_forward: inp has shape (2, 3, 9), expected 6 rows of 8 (any "
                         "leading shape)",
                         rlhf::shape_error);
    auto inp_rows = zeros<B>(shape{Bn, T + 1, 2 * H});
    CHECK_THROWS_AS(model::swiglu_forward<B>(out, inp_rows), rlhf::shape_error);
    auto d_bad = zeros<B>(shape{Bn, T, 2 * H + 2});
    CHECK_THROWS_WITH_AS(model::swiglu_backward<B>(d_bad, inp, dout),
                         doctest::Contains("swiglu_backward: dinp has shape"), rlhf::shape_error);
    CHECK_THROWS_WITH_AS(model::swiglu_backward<B>(dinp, inp_bad, dout),
                         doctest::Contains("swiglu_backward: inp has shape"), rlhf::shape_error);
  }
}

// ---------------------------------------------------------------------------------------------

namespace {

/// Naive causal grouped-query attention in double: out (B, T, C) from a packed (B, T, W)
/// q|k|v, W = C + 2·NKV·hs; query head h reads key/value head h / (NH / NKV).
std::vector<float> gqa_reference(const std::vector<float>& qkv, index_t Bn, index_t T, index_t C,
                                 index_t NH, index_t NKV) {
  const index_t hs = C / NH, W = C + 2 * NKV * hs, G = NH / NKV;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hs));
  std::vector<float> out(static_cast<std::size_t>(Bn * T * C));
  auto at = [&](index_t b, index_t t, index_t c) {
    return static_cast<double>(qkv[static_cast<std::size_t>((b * T + t) * W + c)]);
  };
  for (index_t b = 0; b < Bn; ++b) {
    for (index_t h = 0; h < NH; ++h) {
      const index_t k0 = C + (h / G) * hs, v0 = C + NKV * hs + (h / G) * hs;
      for (index_t t = 0; t < T; ++t) {
        std::vector<double> s(static_cast<std::size_t>(t + 1));
        double mx = -1e300, z = 0.0;
        for (index_t t2 = 0; t2 <= t; ++t2) {
          double d = 0.0;
          for (index_t i = 0; i < hs; ++i) d += at(b, t, h * hs + i) * at(b, t2, k0 + i);
          s[static_cast<std::size_t>(t2)] = d * scale;
          mx = std::max(mx, d * scale);
        }
        for (auto& v : s) z += (v = std::exp(v - mx));
        for (index_t i = 0; i < hs; ++i) {
          double o = 0.0;
          for (index_t t2 = 0; t2 <= t; ++t2)
            o += s[static_cast<std::size_t>(t2)] / z * at(b, t2, v0 + i);
          out[static_cast<std::size_t>((b * T + t) * C + h * hs + i)] = static_cast<float>(o);
        }
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("attention: grouped-query (4 heads over 2 and 1 key/value heads, T = 5)", B,
                   RLHF_TEST_BACKENDS) {
  const index_t Bn = 2, T = 5, C = 8, NH = 4, hs = C / NH;
  const shape out_s{Bn, T, C}, att_s{Bn, NH, T, T};
  const auto w = randn(numel(out_s), 61);
  for (const index_t NKV : {index_t{2}, index_t{1}, index_t{4}}) {
    CAPTURE(NKV);
    const index_t W = C + 2 * NKV * hs;
    const shape qkv_s{Bn, T, W};
    const auto x = randn(numel(qkv_s), 62 + static_cast<unsigned>(NKV), 1.5f);
    auto preatt = zeros<B>(att_s);
    auto att = zeros<B>(att_s);
    auto forward = [&](const std::vector<float>& xi) {
      auto inp = make<B>(xi, qkv_s);
      auto out = make<B>(std::vector<float>(numel(out_s), NAN), out_s);  // overwritten
      model::attention_forward<B>(out, preatt, att, inp);
      return host<B>(out);
    };
    const auto y = forward(x);
    check_close(y, gqa_reference(x, Bn, T, C, NH, NKV), "GQA out", 1e-5, 1e-6);
    const auto att_h = host<B>(att);
    for (index_t row = 0; row < Bn * NH * T; ++row) {  // rows sum to 1, zero above the diagonal
      double s = 0.0;
      for (index_t t2 = 0; t2 < T; ++t2) {
        const float a = att_h[static_cast<std::size_t>(row * T + t2)];
        if (t2 > row % T) CHECK(a == 0.0f);
        s += a;
      }
      CHECK(std::abs(s - 1.0) < 1e-6);
    }
    // Query heads sharing a key/value head see the same keys: equal queries, equal outputs.
    if (NKV < NH) {
      auto xs = x;
      for (index_t r = 0; r < Bn * T; ++r) {
        for (index_t i = 0; i < hs; ++i) {
          xs[static_cast<std::size_t>(r * W + hs + i)] = xs[static_cast<std::size_t>(r * W + i)];
        }
      }
      const auto ys = forward(xs);
      for (index_t r = 0; r < Bn * T; ++r) {
        for (index_t i = 0; i < hs; ++i) {
          CHECK(ys[static_cast<std::size_t>(r * C + hs + i)] ==
                doctest::Approx(ys[static_cast<std::size_t>(r * C + i)]).epsilon(1e-6));
        }
      }
      (void)forward(x);  // att of x again for the backward
    }

    auto inp = make<B>(x, qkv_s);
    auto dout = make<B>(w, out_s);
    auto dinp = zeros<B>(qkv_s);
    auto dpreatt = make<B>(std::vector<float>(numel(att_s), NAN), att_s);  // scratch
    auto datt = make<B>(std::vector<float>(numel(att_s), NAN), att_s);
    model::attention_backward<B>(dinp, dpreatt, datt, dout, inp, att);
    const auto dx1 = host<B>(dinp);
    fd_check<B>([&](const std::vector<float>& xi) { return weighted(forward(xi), w); }, x, dx1,
                "GQA d qkv");
    (void)forward(x);
    model::attention_backward<B>(dinp, dpreatt, datt, dout, inp, att);
    check_close(host<B>(dinp), twice(dx1), "GQA dinp accumulates");
    auto dinp_nan = make<B>(std::vector<float>(numel(qkv_s), NAN), qkv_s);
    model::attention_backward<B>(dinp_nan, dpreatt, datt, dout, inp, att, nullptr,
                                 model::grad_write::overwrite);
    check_close(host<B>(dinp_nan), dx1, "GQA dinp overwritten (NaN before)");
    auto dinp_junk = make<B>(randn(numel(qkv_s), 70, 100.0f), qkv_s);
    model::attention_backward<B>(dinp_junk, dpreatt, datt, dout, inp, att, nullptr,
                                 model::grad_write::overwrite);
    check_close(host<B>(dinp_junk), dx1, "GQA dinp overwritten (values before)");
  }

  SUBCASE("a packed width that is not C + 2·k·hs with k dividing NH") {
    auto out = zeros<B>(out_s);
    auto preatt = zeros<B>(att_s);
    auto att = zeros<B>(att_s);
    // k = 3 (does not divide 4), k = 8 (more than NH), k = 0, k = 1/2, k = -1.
    for (const index_t W : {C + 6 * hs, C + 16 * hs, C, C + hs, C - 2 * hs, 3 * C + 1}) {
      CAPTURE(W);
      auto inp = zeros<B>(shape{Bn, T, W});
      CHECK_THROWS_WITH_AS(model::attention_forward<B>(out, preatt, att, inp),
                           doctest::Contains("attention_forward: inp has shape"),
                           rlhf::shape_error);
      auto dinp = zeros<B>(shape{Bn, T, W});
      auto dpre = zeros<B>(att_s);
      auto da = zeros<B>(att_s);
      CHECK_THROWS_WITH_AS(model::attention_backward<B>(dinp, dpre, da, out, inp, att),
                           doctest::Contains("attention_backward: inp has shape"),
                           rlhf::shape_error);
    }
    auto inp = zeros<B>(shape{Bn, T, C + 6 * hs});
    CHECK_THROWS_WITH_AS(model::attention_forward<B>(out, preatt, att, inp),
                         "attention_forward: inp has shape (2, 5, 20); its last dimension must "
                         "be C + 2 · NKV · hs (q, k, v; C = 8, hs = 2, NKV key/value heads "
                         "dividing NH = 4)",
                         rlhf::shape_error);
  }
}

#if !defined(RLHF_EIGEN_USE_CBLAS) || defined(RLHF_CBLAS_OPENMP)
namespace {
// The Eigen backend with gemm_tasks hidden: attention takes the generic path (each product
// batch its own call, the softmax over all rows at once).
struct eigen_without_gemm_tasks : rlhf::eigen_backend {
  template <class F>
  static void gemm_tasks(index_t, F&&) = delete;
};
static_assert(rlhf::ops::has_gemm_tasks<rlhf::eigen_backend>);
static_assert(!rlhf::ops::has_gemm_tasks<eigen_without_gemm_tasks>);

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

struct attention_run {
  std::vector<float> out, att, dropped, dinp_acc, dinp_over;
};

// Forward, then the backward accumulating onto ones and overwriting NaN, on backend BK.
template <class BK>
attention_run run_attention(index_t Bn, index_t T, index_t C, index_t NH, index_t NKV,
                            const model::attention_dropout<BK>* drop) {
  using E = rlhf::eigen_backend;  // BK's tensors are the Eigen backend's
  const index_t hs = C / NH, W = C + 2 * NKV * hs;
  const shape qkv_s{Bn, T, W}, out_s{Bn, T, C}, att_s{Bn, NH, T, T};
  auto inp = make<E>(randn(static_cast<std::size_t>(Bn * T * W), 91, 1.5f), qkv_s);
  auto dout = make<E>(randn(static_cast<std::size_t>(Bn * T * C), 92), out_s);
  const auto nan_of = [](const shape& s) {
    return make<E>(std::vector<float>(static_cast<std::size_t>(s.numel()), NAN), s);
  };
  auto out = nan_of(out_s), preatt = nan_of(att_s), att = nan_of(att_s);
  model::attention_forward<BK>(out, preatt, att, inp, drop);
  attention_run r{host<E>(out), host<E>(att), {}, {}, {}};
  if (drop != nullptr) r.dropped = host<E>(*drop->dropped);
  auto dpreatt = nan_of(att_s), datt = nan_of(att_s);
  auto dinp = make<E>(std::vector<float>(static_cast<std::size_t>(qkv_s.numel()), 1.0f), qkv_s);
  model::attention_backward<BK>(dinp, dpreatt, datt, dout, inp, att, drop);
  r.dinp_acc = host<E>(dinp);
  auto dinp_nan = nan_of(qkv_s);
  model::attention_backward<BK>(dinp_nan, dpreatt, datt, dout, inp, att, drop,
                                model::grad_write::overwrite);
  r.dinp_over = host<E>(dinp_nan);
  return r;
}
}  // namespace

// The Eigen backend runs each batch row of the attention as one task (gemm_tasks): its
// products, softmax and dropout together. The products and elementwise formulas are those
// of the generic path, so every output equals it bit for bit; and on 1 thread as on 2.
TEST_CASE("attention: one task per batch row equals the generic path bit for bit") {
  using E = rlhf::eigen_backend;
  using G = eigen_without_gemm_tasks;
  struct dims {
    index_t Bn, T, C, NH, NKV;
  };
  // Odd batch counts (uneven tasks), grouped-query heads, and T = 200 with hs = 64, whose
  // 200 × 200 × 64 products leave the small-batch path for one call per product.
  for (const dims d : {dims{3, 5, 16, 4, 4}, dims{5, 17, 24, 6, 2}, dims{2, 64, 32, 4, 1},
                       dims{2, 200, 128, 2, 2}}) {
    CAPTURE(d.Bn);
    CAPTURE(d.T);
    CAPTURE(d.NKV);
    for (const bool with_dropout : {false, true}) {
      CAPTURE(with_dropout);
      const shape att_s{d.Bn, d.NH, d.T, d.T};
      E::tensor dropped_e(att_s), dropped_g(att_s);
      const model::attention_dropout<E> drop_e{&dropped_e, 0.25f, {5, 9}};
      const model::attention_dropout<G> drop_g{&dropped_g, 0.25f, {5, 9}};
      const auto tasks = run_attention<E>(d.Bn, d.T, d.C, d.NH, d.NKV,
                                          with_dropout ? &drop_e : nullptr);
      const auto generic = run_attention<G>(d.Bn, d.T, d.C, d.NH, d.NKV,
                                            with_dropout ? &drop_g : nullptr);
      CHECK(same_bits(tasks.out, generic.out));
      CHECK(same_bits(tasks.att, generic.att));
      CHECK(same_bits(tasks.dropped, generic.dropped));
      CHECK(same_bits(tasks.dinp_acc, generic.dinp_acc));
      CHECK(same_bits(tasks.dinp_over, generic.dinp_over));
#if defined(_OPENMP)
      const int threads = omp_get_max_threads();
      omp_set_num_threads(1);
      const auto one = run_attention<E>(d.Bn, d.T, d.C, d.NH, d.NKV,
                                        with_dropout ? &drop_e : nullptr);
      omp_set_num_threads(threads);
      CHECK(same_bits(one.out, tasks.out));
      CHECK(same_bits(one.dinp_acc, tasks.dinp_acc));
      CHECK(same_bits(one.dinp_over, tasks.dinp_over));
#endif
    }
  }
}
#endif

// ---------------------------------------------------------------------------------------------

// The fused passes against the unfused layers they replace (each checked above against
// loops, finite differences and PyTorch): equal bit for bit where the operations are the
// same, within float round-off where the dropout's multiply may contract into the add.
TEST_CASE_TEMPLATE(
    "fused passes: residual + norm, GELU backward + bias gradient equal the "
    "unfused layers",
    B, RLHF_TEST_BACKENDS) {
  SUBCASE("residual_norm_forward: LayerNorm and RMSNorm, with and without dropout") {
    const index_t N = 6, C = 8, w_off = 1, nb_off = w_off + C, P = nb_off + C + 2;
    const float eps = 1e-5f;
    const auto xv = randn(static_cast<std::size_t>(N * C), 61, 2.0f);
    const auto bv = randn(xv.size(), 62, 3.0f);
    auto arena = make<B>(randn(static_cast<std::size_t>(P), 63), shape{P});
    auto x = make<B>(xv, shape{N, C});
    auto branch = make<B>(bv, shape{N, C});
    for (const auto norm_kind : {model::norm_type::layernorm, model::norm_type::rmsnorm}) {
      for (const float p : {0.0f, 0.25f}) {
        CAPTURE(static_cast<int>(norm_kind));
        CAPTURE(p);
        const model::branch_dropout drop{p, {5, 9}};
        const model::norm_params<B> norm{norm_kind, {&arena, w_off}, {&arena, nb_off}, eps};
        auto out = zeros<B>(shape{N, C}), ln = zeros<B>(shape{N, C});
        auto mean = zeros<B>(shape{N}), rstd = zeros<B>(shape{N});
        model::residual_norm_forward<B>(out, &ln, &mean, &rstd, x, branch,
                                        p > 0.0f ? &drop : nullptr, &norm);
        // Unfused: dropout, residual, norm.
        auto y = make<B>(bv, shape{N, C});
        if (p > 0.0f) model::dropout_forward<B>(y, y, p, drop.key);
        auto out_ref = zeros<B>(shape{N, C}), ln_ref = zeros<B>(shape{N, C});
        auto mean_ref = zeros<B>(shape{N}), rstd_ref = zeros<B>(shape{N});
        model::residual_forward<B>(out_ref, x, y);
        if (norm_kind == model::norm_type::layernorm) {
          model::layernorm_forward<B>(ln_ref, mean_ref, rstd_ref, out_ref, norm.weight, norm.bias,
                                      eps);
        } else {
          model::rmsnorm_forward<B>(ln_ref, rstd_ref, out_ref, norm.weight, eps);
        }
        const double tol = p > 0.0f ? 1e-6 : 0.0;
        check_close(host<B>(out), host<B>(out_ref), "out", tol, tol);
        check_close(host<B>(ln), host<B>(ln_ref), "ln", 10 * tol, 10 * tol);
        check_close(host<B>(rstd), host<B>(rstd_ref), "rstd", 10 * tol, 10 * tol);
        if (norm_kind == model::norm_type::layernorm) {
          check_close(host<B>(mean), host<B>(mean_ref), "mean", tol, tol);
        }
        auto out_only = zeros<B>(shape{N, C});  // no norm: the residual alone
        model::residual_norm_forward<B>(out_only, nullptr, nullptr, nullptr, x, branch,
                                        p > 0.0f ? &drop : nullptr, nullptr);
        check_close(host<B>(out_only), host<B>(out), "out without a norm", 0.0, 0.0);
      }
    }
    auto out = zeros<B>(shape{N, C});
    const model::norm_params<B> norm{
        model::norm_type::layernorm, {&arena, w_off}, {&arena, nb_off}, eps};
    CHECK_THROWS_WITH_AS(
        model::residual_norm_forward<B>(out, nullptr, nullptr, nullptr, x, branch, nullptr, &norm),
        "residual_norm_forward: ln, mean and rstd must be given with a norm (mean: with "
        "LayerNorm), got null",
        rlhf::config_error);
    auto short_branch = zeros<B>(shape{N, C - 1});
    CHECK_THROWS_AS(model::residual_norm_forward<B>(out, nullptr, nullptr, nullptr, x, short_branch,
                                                    nullptr, nullptr),
                    rlhf::shape_error);
    auto ln = zeros<B>(shape{N, C}), mean = zeros<B>(shape{N}), rstd = zeros<B>(shape{N});
    const model::norm_params<B> past_end{
        model::norm_type::layernorm, {&arena, w_off}, {&arena, P - 2}, eps};
    CHECK_THROWS_AS(
        model::residual_norm_forward<B>(out, &ln, &mean, &rstd, x, branch, nullptr, &past_end),
        rlhf::shape_error);  // a norm bias view past the arena's end
  }

  SUBCASE("column blocks: the widest that leaves 16 work items, down to 4 columns") {
    CHECK(model::detail::column_block_for(1024) == 16);
    CHECK(model::detail::column_block_for(256) == 16);
    CHECK(model::detail::column_block_for(255) == 16);  // 16 blocks, the last one partial
    CHECK(model::detail::column_block_for(128) == 8);   // not 8 blocks of 16
    CHECK(model::detail::column_block_for(70) == 4);
    CHECK(model::detail::column_block_for(8) == 4);
    CHECK(model::detail::column_block_for(1024, 64) == 64);
    CHECK(model::detail::column_block_for(512, 64) == 32);
    CHECK(model::detail::column_block_for(1030, 64) == 64);  // 17 blocks, the last of 6
  }

  SUBCASE("gelu_backward_bias: column blocks, the last one partial") {
    // OC = 70: blocks of 4 columns, the last of 2; OC = 1030: blocks of 64, the last of 6.
    for (const index_t OC : {index_t{70}, index_t{1030}}) {
      CAPTURE(OC);
      const index_t N = 5, b_off = 3, P = b_off + OC;
      auto inp = make<B>(randn(static_cast<std::size_t>(N * OC), 64, 2.0f), shape{N, OC});
      auto dout = make<B>(randn(static_cast<std::size_t>(N * OC), 66), shape{N, OC});
      auto dinp = make<B>(std::vector<float>(static_cast<std::size_t>(N * OC), NAN),
                          shape{N, OC});  // overwritten
      auto grads = make<B>(std::vector<float>(static_cast<std::size_t>(P), 0.5f), shape{P});
      model::gelu_backward_bias<B>(dinp, {&grads, b_off}, inp, dout);
      auto dinp_ref = zeros<B>(shape{N, OC});
      model::gelu_backward<B>(dinp_ref, inp, dout);
      const auto d = host<B>(dinp_ref);
      check_close(host<B>(dinp), d, "dinp = dout gelu'(inp)", 0.0, 0.0);
      // The bias gradient adds each column's sum, in row order, to what was there (0.5).
      std::vector<float> db_ref(static_cast<std::size_t>(P), 0.5f);
      for (index_t j = 0; j < OC; ++j) {
        float s = 0.0f;
        for (index_t r = 0; r < N; ++r) s += d[static_cast<std::size_t>(r * OC + j)];
        db_ref[static_cast<std::size_t>(b_off + j)] += s;
      }
      check_close(host<B>(grads), db_ref, "dbias += column sums, rows in order", 0.0, 0.0);
      auto dinp2 = zeros<B>(shape{N, OC});
      model::gelu_backward_bias<B>(dinp2, {}, inp, dout);  // no bias gradient
      check_close(host<B>(dinp2), d, "dinp without a bias gradient", 0.0, 0.0);
      CHECK_THROWS_AS(model::gelu_backward_bias<B>(dinp2, {&grads, b_off + 1}, inp, dout),
                      rlhf::shape_error);
    }
  }
}

}  // namespace test_layers_cases
