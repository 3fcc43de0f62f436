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
#include <span>
#include <vector>

#include "fixture.hpp"
#include "random_data.hpp"
#include "rlhf/model/layers.hpp"

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
  // N = 6 rows runs matmul_forward's dot-product path (N <= skinny_rows), N = 21 the GEMM.
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
  for (const auto& fc : rlhf_test::load_fixture("layers.json")) {
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
}
