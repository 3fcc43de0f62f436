// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// GAE and masked whitening (rlhf/rl/gae.hpp, rlhf/rl/whiten.hpp).
#include <algorithm>
#include <cmath>

#include "fixture.hpp"
#include "rlhf/core/overrides.hpp"
#include "rlhf/ops/scan.hpp"
#include "rlhf/rl/gae.hpp"
#include "rlhf/rl/whiten.hpp"

namespace test_gae_cases {

using namespace rlhf_test;
namespace rl = rlhf::rl;

namespace {

/// The minimal backend plus a reverse_linear_scan_rows override that counts its calls: GAE
/// must go through the scan when a backend has its own (a GPU backend's parallel scan). It
/// also runs the fixtures, so both of gae's paths (scan, and the fused CPU kernel of the
/// Eigen and minimal backends) are checked against the reference.
struct counting_scan_backend : rlhf::testing::minimal_backend {
  static inline int scans = 0;
  static void reverse_linear_scan_rows(const tensor& a, const tensor& b, tensor& y) {
    ++scans;
    rlhf::ops::detail::generic_reverse_linear_scan_rows<counting_scan_backend>(a, b, y);
  }
};
RLHF_BACKEND_OVERRIDES(counting_scan_backend, reverse_linear_scan_rows);

}  // namespace

TEST_CASE_TEMPLATE("gae and masked_whiten match the PyTorch reference", B, RLHF_TEST_BACKENDS,
                   counting_scan_backend) {
  int gae_cases = 0, whiten_cases = 0;
  for (const auto& c : load_fixture("gae.json")) {
    CAPTURE(c.name());
    const auto kind = c.config().at("kind").get<std::string>();
    if (kind == "gae") {
      ++gae_cases;
      const auto r = c.tensor<B>("rewards"), v = c.tensor<B>("values"), m = c.tensor<B>("mask");
      rl::gae_config cfg;
      cfg.gamma = c.config().at("gamma").get<float>();
      cfg.lam = c.config().at("lam").get<float>();
      const auto out = rl::gae<B>({r, v, m}, cfg);
      // Tolerance. The short cases meet rel 1e-5 / abs 1e-6. The T = 1024 rows do not need
      // the worst-case rounding bound (5 float32 operations per step, each off by <= ε·M with
      // M bounding |A|, |δ| and |V|, summed with weights (γλ)^k: 5ε·M·min(T, 1/(1 - γλ)),
      // ~1e-2 at γ = λ = 1): the rounding errors have random signs and mostly cancel.
      // Observed (2026-12-03; Eigen, minimal, generic-scan, xtensor, Thrust OMP and custom
      // backends, all alike): max |A - reference| = 6.0e-7 for long_1024 (γλ = 0.95,
      // |A| <= 3.4) and 2.4e-6 for long_1024_gamma1_lam1 (|A| <= 6.6). Allowed: abs 4e-6 and
      // 1e-5 (~7x and ~4x the observed), with no relative term, which alone would allow 6.6e-5.
      const auto adv_ref = c.output("advantages"), ret_ref = c.output("returns");
      const double gl = static_cast<double>(cfg.gamma) * static_cast<double>(cfg.lam);
      const bool long_rows = r.shape()[1] >= 1024;
      const double rel_tol = long_rows ? 0.0 : 1e-5;
      const double abs_tol = !long_rows ? 1e-6 : gl < 1.0 ? 4e-6 : 1e-5;
      const auto adv = host<B>(out.advantages), ret = host<B>(out.returns);
      check_close(adv, adv_ref, "advantages", rel_tol, abs_tol);
      check_close(ret, ret_ref, "returns", rel_tol, abs_tol);
      if (long_rows) {
        double worst_adv = 0.0, worst_ret = 0.0;
        for (std::size_t i = 0; i < adv.size(); ++i) {
          worst_adv = std::max(worst_adv, std::fabs(static_cast<double>(adv[i]) - adv_ref[i]));
          worst_ret = std::max(worst_ret, std::fabs(static_cast<double>(ret[i]) - ret_ref[i]));
        }
        MESSAGE(c.name() << ": max |A - reference| = " << worst_adv << ", max |returns - "
                         << "reference| = " << worst_ret << ", allowed " << abs_tol);
      }
    } else {
      ++whiten_cases;
      REQUIRE(kind == "whiten");
      const auto x = c.tensor<B>("x"), m = c.tensor<B>("mask");
      rl::whiten_config cfg;
      cfg.shift_mean = c.config().at("shift_mean").get<bool>();
      typename B::tensor out(x.shape());
      rl::masked_whiten<B>(x, m, out, cfg);
      check_close(host<B>(out), c.output("whitened"), "whitened");
      check_close(rl::masked_mean<B>(x, m), c.output_scalar("mean"), "masked_mean");
      check_close(rl::masked_var<B>(x, m), c.output_scalar("var"), "masked_var");
    }
  }
  CHECK(gae_cases == 8);
  CHECK(whiten_cases == 4);
}

TEST_CASE("gae goes through ops::reverse_linear_scan_rows") {
  using B = counting_scan_backend;
  const auto r = make<B>({1, 2, 3, 4, 5, 6}, rlhf::shape{2, 3});
  const auto v = make<B>({0.5f, 0.5f, 0.5f, 1, 1, 1}, rlhf::shape{2, 3});
  const auto contiguous = make<B>({1, 1, 0, 0, 1, 1}, rlhf::shape{2, 3});
  const auto with_hole = make<B>({1, 0, 1, 1, 1, 1}, rlhf::shape{2, 3});
  B::scans = 0;
  (void)rl::gae<B>({r, v, contiguous});
  CHECK(B::scans == 1);
  B::scans = 0;
  (void)rl::gae<B>({r, v, with_hole});
  CHECK(B::scans == 1);
}

TEST_CASE_TEMPLATE("gae invariants", B, RLHF_TEST_BACKENDS) {
  const rlhf::index_t n = 3, t = 6;
  std::vector<float> r, v;
  for (rlhf::index_t i = 0; i < n * t; ++i) {
    r.push_back(std::sin(0.7f * static_cast<float>(i)));
    v.push_back(std::cos(1.3f * static_cast<float>(i)) * 2.0f);
  }
  const std::vector<float> m{1, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 0, 0, 0, /**/ 0, 0, 1, 1, 1, 1};
  const auto rt = make<B>(r, rlhf::shape{n, t}), vt = make<B>(v, rlhf::shape{n, t});
  const auto mt = make<B>(m, rlhf::shape{n, t});

  // γ = λ = 1: returns_t = Σ_{k >= t, real} r_k (the values cancel), reverse cumsum.
  const auto out = rl::gae<B>({rt, vt, mt}, {.gamma = 1.0f, .lam = 1.0f});
  std::vector<float> expect(static_cast<std::size_t>(n * t), 0.0f);
  for (rlhf::index_t i = 0; i < n; ++i) {
    float acc = 0.0f;
    for (rlhf::index_t j = t - 1; j >= 0; --j) {
      const auto k = static_cast<std::size_t>(i * t + j);
      if (m[k] == 0.0f) continue;
      acc += r[k];
      expect[k] = acc;
    }
  }
  check_close(host<B>(out.returns), expect, "returns = reverse cumsum of rewards", 1e-5, 1e-5);

  // Padding gets A = 0 and returns = 0; a completion gives the same numbers wherever the
  // mask places it (row 2 = the last 4 tokens, compared with the same 4 tokens first).
  const auto d = rl::gae<B>({rt, vt, mt}, {.gamma = 0.9f, .lam = 0.8f});
  const auto adv = host<B>(d.advantages);
  const auto ret = host<B>(d.returns);
  for (std::size_t k = 0; k < m.size(); ++k) {
    if (m[k] == 0.0f) {
      CHECK(adv[k] == 0.0f);
      CHECK(ret[k] == 0.0f);
    }
  }
  std::vector<float> r2(r.begin() + 2 * t + 2, r.end()), v2(v.begin() + 2 * t + 2, v.end());
  r2.resize(static_cast<std::size_t>(t), 0.0f);
  v2.resize(static_cast<std::size_t>(t), 0.0f);
  const auto alone = rl::gae<B>({make<B>(r2, rlhf::shape{1, t}), make<B>(v2, rlhf::shape{1, t}),
                                 make<B>({1, 1, 1, 1, 0, 0}, rlhf::shape{1, t})},
                                {.gamma = 0.9f, .lam = 0.8f});
  const auto adv_alone = host<B>(alone.advantages);
  for (std::size_t j = 0; j < 4; ++j) {
    CHECK(adv[static_cast<std::size_t>(2 * t + 2) + j] == adv_alone[j]);
  }
  // Outputs written in place: the same numbers.
  typename B::tensor a2(rlhf::shape{n, t}), r3(rlhf::shape{n, t});
  rl::gae<B>({rt, vt, mt}, {.gamma = 0.9f, .lam = 0.8f}, a2, r3);
  CHECK(host<B>(a2) == adv);
  CHECK(host<B>(r3) == ret);
}

TEST_CASE_TEMPLATE("gae and whitening reject bad input", B, RLHF_TEST_BACKENDS) {
  const auto r = make<B>({1, 2, 3, 4}, rlhf::shape{2, 2});
  const auto m = make<B>({1, 1, 1, 0}, rlhf::shape{2, 2});
  const auto r3 = make<B>({1, 2, 3}, rlhf::shape{1, 3});
  CHECK_THROWS_WITH_AS((void)rl::gae<B>({r, r, m}, {.gamma = 1.5f, .lam = 0.95f}),
                       "gae: gamma must be in [0, 1], got 1.5", rlhf::config_error);
  CHECK_THROWS_AS((void)rl::gae<B>({r, r, m}, {.gamma = 1.0f, .lam = -0.1f}),
                  rlhf::config_error);
  CHECK_THROWS_WITH_AS((void)rl::gae<B>({r, r3, m}),
                       "gae: rewards has shape (2, 2) but values has shape (1, 3); they must "
                       "match",
                       rlhf::shape_error);
  const auto inf_v = make<B>({1, 2, INFINITY, 4}, rlhf::shape{2, 2});
  CHECK_THROWS_WITH_AS((void)rl::gae<B>({r, inf_v, m}),
                       "gae: values must be finite, got inf at flat index 2", rlhf::data_error);
  const auto bad_m = make<B>({1, NAN, 1, 0}, rlhf::shape{2, 2});
  CHECK_THROWS_AS((void)rl::gae<B>({r, r, bad_m}), rlhf::data_error);
  const typename B::tensor empty(rlhf::shape{0, 2});
  CHECK_THROWS_AS((void)rl::gae<B>({empty, empty, empty}), rlhf::shape_error);

  typename B::tensor out(rlhf::shape{2, 2});
  const auto one = make<B>({0, 1, 0, 0}, rlhf::shape{2, 2});
  CHECK_THROWS_WITH_AS(rl::masked_whiten<B>(r, one, out),
                       "masked_whiten: mask must cover at least 2 positions (sum of weights > "
                       "1) for the unbiased variance, got a sum of 1",
                       rlhf::data_error);
  const auto zero = make<B>({0, 0, 0, 0}, rlhf::shape{2, 2});
  CHECK_THROWS_WITH_AS((void)rl::masked_mean<B>(r, zero),
                       "masked_mean: mask is all zero; the masked mean is undefined",
                       rlhf::data_error);
  // Whitening: mean 0 and unbiased variance ~1 over the mask, zeros elsewhere.
  rl::masked_whiten<B>(r, m, out);
  const auto w = host<B>(out);
  CHECK(w[3] == 0.0f);
  CHECK(rl::masked_mean<B>(out, m) == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(rl::masked_var<B>(out, m) == doctest::Approx(1.0).epsilon(1e-5));
}

}  // namespace test_gae_cases
