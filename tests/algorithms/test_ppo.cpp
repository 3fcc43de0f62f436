// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// PPO clipped policy and value losses (rlhf/losses/ppo.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "fixture.hpp"
#include "rlhf/losses/ppo.hpp"

namespace test_ppo_cases {

using namespace rlhf_test;
namespace losses = rlhf::losses;

TEST_CASE_TEMPLATE("ppo_loss matches the PyTorch reference", B, RLHF_TEST_BACKENDS) {
  int cases = 0;
  for (const auto& c : load_fixture("ppo.json")) {
    CAPTURE(c.name());
    ++cases;
    const auto lp = c.tensor<B>("logprobs"), olp = c.tensor<B>("old_logprobs");
    const auto adv = c.tensor<B>("advantages"), v = c.tensor<B>("values");
    const auto ov = c.tensor<B>("old_values"), ret = c.tensor<B>("returns");
    const auto m = c.tensor<B>("mask");
    std::optional<typename B::tensor> ent;
    if (c.has_input("entropy")) ent = c.tensor<B>("entropy");
    losses::ppo_config cfg;
    cfg.cliprange = c.config().at("cliprange").get<float>();
    cfg.cliprange_value = c.config().at("cliprange_value").get<float>();
    cfg.vf_coef = c.config().at("vf_coef").get<float>();
    cfg.entropy_coef = c.config().at("entropy_coef").get<float>();
    if (c.config().contains("ratio_threshold")) {
      cfg.ratio_threshold = c.config().at("ratio_threshold").get<float>();
    }
    const auto r = losses::ppo_loss<B>({.logprobs = lp, .old_logprobs = olp, .advantages = adv,
                                        .values = v, .old_values = ov, .returns = ret,
                                        .mask = m, .entropy = ent ? &*ent : nullptr},
                                       cfg);
    CHECK(r.skipped == (c.j.at("outputs").at("skipped").get<int>() == 1));
    check_close(r.loss, c.output_scalar("loss"), "loss");
    check_close(r.pg_loss, c.output_scalar("pg_loss"), "pg_loss");
    check_close(r.vf_loss, c.output_scalar("vf_loss"), "vf_loss");
    check_close(host<B>(r.grad_logprobs), c.output("grad_logprobs"), "grad_logprobs");
    check_close(host<B>(r.grad_values), c.output("grad_values"), "grad_values");
    if (ent) {
      check_close(host<B>(r.grad_entropy), c.output("grad_entropy"), "grad_entropy");
    } else {
      CHECK(r.grad_entropy.size() == 0);
    }
    for (const auto& [name, value] : r.metrics.named()) {
      if (name == "loss/policy_avg" || name == "loss/value_avg") continue;  // = pg/vf above
      check_close(value, c.output_scalar(name), name);
    }
    CHECK(rlhf::metric_or(r.metrics.named(), "loss/policy_avg", NAN) == r.pg_loss);
  }
  CHECK(cases == 8);
}

namespace {

// Inputs away from every kink: ratios e^Δ at least 5% from 1 ± 0.2, new values at least
// 0.05 from old ± 0.2, and no tie between the two value terms.
const std::vector<float> k_old_lp{-1.0f, -2.0f, -0.5f, -3.0f, -1.5f, -0.7f, -2.2f, -0.9f};
const std::vector<float> k_delta{0.05f, -0.5f, 0.4f, -0.02f, 0.1f, 0.6f, -0.05f, -0.9f};
const std::vector<float> k_adv{0.8f, -1.2f, 0.5f, 1.5f, -0.7f, -0.4f, 1.1f, 0.3f};
const std::vector<float> k_old_v{0.2f, -0.5f, 1.0f, 0.0f, 0.3f, -1.0f, 0.5f, 2.0f};
const std::vector<float> k_dv{0.05f, 0.5f, -0.3f, 0.1f, -0.15f, 0.35f, 0.0f, -0.6f};
const std::vector<float> k_ret{0.6f, -2.0f, 1.4f, -0.4f, 0.1f, 0.5f, 0.2f, 2.9f};
const std::vector<float> k_mask{1, 1, 1, 1, 1, 1, 0.5f, 0};
const std::vector<float> k_ent{1.2f, 0.4f, 2.0f, 0.9f, 1.1f, 0.3f, 0.8f, 1.7f};

std::vector<float> plus(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> o(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) o[i] = a[i] + b[i];
  return o;
}

}  // namespace

TEST_CASE_TEMPLATE("ppo_loss gradients match finite differences", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{2, 4};
  const auto lp0 = plus(k_old_lp, k_delta), v0 = plus(k_old_v, k_dv);
  const auto olp = make<B>(k_old_lp, s), adv = make<B>(k_adv, s), ov = make<B>(k_old_v, s);
  const auto ret = make<B>(k_ret, s), m = make<B>(k_mask, s);
  losses::ppo_config cfg;
  cfg.vf_coef = 0.5f;
  cfg.entropy_coef = 0.03f;
  auto loss_of = [&](const std::vector<float>& lp, const std::vector<float>& v,
                     const std::vector<float>& e) {
    const auto lpt = make<B>(lp, s), vt = make<B>(v, s), et = make<B>(e, s);
    return static_cast<double>(losses::ppo_loss<B>({lpt, olp, adv, vt, ov, ret, m, &et}, cfg).loss);
  };
  const auto lpt = make<B>(lp0, s), vt = make<B>(v0, s), et = make<B>(k_ent, s);
  const auto r = losses::ppo_loss<B>({lpt, olp, adv, vt, ov, ret, m, &et}, cfg);
  // Both branches of both max() occur in these inputs.
  CHECK(r.metrics.clipfrac > 0.0f);
  CHECK(r.metrics.clipfrac < 1.0f);
  CHECK(r.metrics.vf_clipfrac > 0.0f);
  check_gradient_fd([&](const std::vector<float>& x) { return loss_of(x, v0, k_ent); }, lp0,
                    host<B>(r.grad_logprobs), "d loss / d logprobs", 1e-3f);
  check_gradient_fd([&](const std::vector<float>& x) { return loss_of(lp0, x, k_ent); }, v0,
                    host<B>(r.grad_values), "d loss / d values", 1e-3f);
  check_gradient_fd([&](const std::vector<float>& x) { return loss_of(lp0, v0, x); }, k_ent,
                    host<B>(r.grad_entropy), "d loss / d entropy", 1e-3f);
}

TEST_CASE_TEMPLATE("ppo_loss invariants, the classic skip and early stop", B,
                   RLHF_TEST_BACKENDS) {
  const rlhf::shape s{2, 4};
  const auto olp = make<B>(k_old_lp, s), adv = make<B>(k_adv, s), ov = make<B>(k_old_v, s);
  const auto ret = make<B>(k_ret, s), m = make<B>(k_mask, s);
  // ratio = 1 (logp = old_logp): nothing clipped, pg_loss = -masked_mean(A), approxkl 0,
  // d pg / d logp = -A·m/Σm.
  const auto r = losses::ppo_loss<B>({olp, olp, adv, ov, ov, ret, m});
  double sa = 0.0, sm = 0.0;
  for (std::size_t i = 0; i < k_adv.size(); ++i) {
    sa += static_cast<double>(k_mask[i]) * k_adv[i];
    sm += k_mask[i];
  }
  CHECK(r.metrics.clipfrac == 0.0f);
  CHECK(r.metrics.vf_clipfrac == 0.0f);
  CHECK(r.metrics.approxkl == 0.0f);
  CHECK(r.metrics.ratio == doctest::Approx(1.0));
  check_close(r.pg_loss, static_cast<float>(-sa / sm), "pg_loss at ratio 1");
  const auto g = host<B>(r.grad_logprobs);
  for (std::size_t i = 0; i < g.size(); ++i) {
    check_close(g[i], static_cast<float>(-k_adv[i] * k_mask[i] / sm), "grad at ratio 1");
  }

  // Δ = +1000 (ratio overflows to +inf) with A > 0 is clipped: finite loss, zero gradient;
  // with A < 0 the loss is +inf, as in TRL.
  const auto big = make<B>({1000.0f, 0.0f}, rlhf::shape{1, 2});
  const auto zeros = make<B>({0.0f, 0.0f}, rlhf::shape{1, 2});
  const auto ones = make<B>({1.0f, 1.0f}, rlhf::shape{1, 2});
  const auto pos = make<B>({2.0f, 1.0f}, rlhf::shape{1, 2});
  const auto x = losses::ppo_loss<B>({big, zeros, pos, zeros, zeros, zeros, ones});
  CHECK(x.pg_loss == doctest::Approx(-(2.0 * 1.2 + 1.0) / 2.0));
  CHECK(host<B>(x.grad_logprobs)[0] == 0.0f);
  CHECK(x.metrics.clipfrac == 0.5f);
  const auto neg = make<B>({-2.0f, 1.0f}, rlhf::shape{1, 2});
  CHECK(std::isinf(losses::ppo_loss<B>({big, zeros, neg, zeros, zeros, zeros, ones}).loss));

  // A masked token (w = 0) adds nothing, whatever its values: a log-ratio of +1000 there
  // (e^1000 overflows) leaves the result that of benign values, bit for bit, and its
  // gradients are 0. Fractional weights scale their tokens.
  const auto wm = make<B>({0.5f, 0.0f, 2.0f, 1.0f}, rlhf::shape{1, 4});
  const auto a4 = make<B>({1.0f, -3.0f, -0.5f, 0.25f}, rlhf::shape{1, 4});
  const auto v4 = make<B>({0.1f, 9.0f, -0.2f, 0.3f}, rlhf::shape{1, 4});
  const auto z4 = make<B>({0.0f, 0.0f, 0.0f, 0.0f}, rlhf::shape{1, 4});
  const auto wild = make<B>({-1.0f, 1000.0f, -2.0f, -0.5f}, rlhf::shape{1, 4});
  const auto tame = make<B>({-1.0f, -1.0f, -2.0f, -0.5f}, rlhf::shape{1, 4});
  const auto old4 = make<B>({-1.1f, -1.0f, -1.9f, -0.5f}, rlhf::shape{1, 4});
  const auto rw = losses::ppo_loss<B>({wild, old4, a4, v4, z4, z4, wm});
  const auto rt = losses::ppo_loss<B>({tame, old4, a4, v4, z4, z4, wm});
  CHECK(rw.loss == rt.loss);
  CHECK(rw.metrics.approxkl == rt.metrics.approxkl);
  CHECK(rw.metrics.ratio == rt.metrics.ratio);
  check_close(host<B>(rw.grad_logprobs), host<B>(rt.grad_logprobs), "grads, masked token", 0.0,
              0.0);
  CHECK(host<B>(rw.grad_logprobs)[1] == 0.0f);
  CHECK(host<B>(rw.grad_values)[1] == 0.0f);
  // The weights: Σw = 3.5; token 2 (w = 2, A = -0.5, ratio e^-0.1) is unclipped:
  // d pg / d logp = -A·ratio·w/Σw.
  check_close(host<B>(rt.grad_logprobs)[2], static_cast<float>(0.5 * std::exp(-0.1) * 2.0 / 3.5),
              "a weighted token's grad");

  // Classic ratio_threshold: mean ratio e^3 > 10 → skipped, loss and gradients 0.
  std::vector<float> far(k_old_lp);
  for (float& f : far) f += 3.0f;
  const auto far_t = make<B>(far, s);
  losses::ppo_config classic;
  classic.ratio_threshold = losses::ppo_config::classic_ratio_threshold;
  const auto sk = losses::ppo_loss<B>({far_t, olp, adv, ov, ov, ret, m}, classic);
  CHECK(sk.skipped);
  CHECK(sk.loss == 0.0f);
  for (float v : host<B>(sk.grad_logprobs)) CHECK(v == 0.0f);
  CHECK(sk.metrics.ratio == doctest::Approx(std::exp(3.0)).epsilon(1e-5));
  CHECK_FALSE(losses::ppo_loss<B>({olp, olp, adv, ov, ov, ret, m}, classic).skipped);

  // Early stop at KL > 1.5·target_kl; never without target_kl.
  losses::ppo_config es;
  CHECK_FALSE(losses::should_early_stop(100.0f, es));
  es.target_kl = losses::ppo_config::classic_target_kl;
  CHECK_FALSE(losses::should_early_stop(1.5f, es));
  CHECK(losses::should_early_stop(1.51f, es));
  // TRL's val/ratio_var over the minibatches of a step (Bessel-corrected).
  const std::vector<float> ratios{1.0f, 1.2f, 0.8f};
  CHECK(losses::ppo_ratio_var(ratios) == doctest::Approx(0.04).epsilon(1e-6));
  CHECK(losses::ppo_ratio_var(std::span<const float>(ratios.data(), 1)) == 0.0f);
}

TEST_CASE("ppo ratio: e^d within 3 ulp of std::exp, both signs, +inf past 87") {
  const auto ulps = [](float a, float b) {
    return std::abs(static_cast<double>(a) - static_cast<double>(b)) /
           static_cast<double>(std::nextafter(std::abs(b), INFINITY) - std::abs(b));
  };
  double worst = 0.0;
  for (float d = -86.5f; d <= 86.5f; d += 0.0137f) {
    worst = std::max(worst, ulps(losses::detail::ppo::ratio_exp(d), std::exp(d)));
  }
  for (const float d : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 0.5f, -0.5f, 20.0f}) {
    CAPTURE(d);
    worst = std::max(worst, ulps(losses::detail::ppo::ratio_exp(d), std::exp(d)));
  }
  CHECK(worst <= 3.0);
  CHECK(losses::detail::ppo::ratio_exp(0.0f) == 1.0f);
  CHECK(losses::detail::ppo::ratio_exp(-0.0f) == 1.0f);
  CHECK(std::isinf(losses::detail::ppo::ratio_exp(1000.0f)));
  CHECK(losses::detail::ppo::ratio_exp(-1000.0f) == 0.0f);
}

TEST_CASE_TEMPLATE("ppo_loss rejects bad input", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{2, 4};
  const auto a = make<B>(k_old_lp, s), m = make<B>(k_mask, s);
  const auto short_t = make<B>({1, 2, 3}, rlhf::shape{1, 3});
  CHECK_THROWS_WITH_AS(losses::ppo_loss<B>({a, a, a, a, a, short_t, m}),
                       "ppo_loss: logprobs has shape (2, 4) but returns has shape (1, 3); they "
                       "must match",
                       rlhf::shape_error);
  losses::ppo_config bad;
  bad.cliprange = 0.0f;
  CHECK_THROWS_WITH_AS(losses::ppo_loss<B>({a, a, a, a, a, a, m}, bad),
                       "ppo_loss: cliprange must be finite and > 0, got 0", rlhf::config_error);
  losses::ppo_config bad_v;
  bad_v.cliprange_value = -1.0f;
  CHECK_THROWS_AS(losses::ppo_loss<B>({a, a, a, a, a, a, m}, bad_v), rlhf::config_error);
  losses::ppo_config needs_entropy;
  needs_entropy.entropy_coef = 0.01f;
  CHECK_THROWS_WITH_AS(losses::ppo_loss<B>({a, a, a, a, a, a, m}, needs_entropy),
                       "ppo_loss: entropy_coef > 0 needs the entropy input", rlhf::config_error);
  std::vector<float> nan_v(k_old_lp);
  nan_v[5] = NAN;
  const auto nan_t = make<B>(nan_v, s);
  CHECK_THROWS_WITH_AS(losses::ppo_loss<B>({a, a, nan_t, a, a, a, m}),
                       "ppo_loss: advantages must be finite, got nan at flat index 5",
                       rlhf::data_error);
  // A large batch (600 x 128 = 76,800 values: the finiteness checks split it into blocks of
  // 4,096 across threads, the last block partial): the culprit is still named.
  {
    const rlhf::shape big{600, 128};
    const auto fine = make<B>(std::vector<float>(76800, 0.5f), big);
    for (const std::size_t at : {std::size_t{41000}, std::size_t{76799}}) {
      std::vector<float> wide_v(76800, 0.5f);
      wide_v[at] = -INFINITY;
      const auto wide_t = make<B>(wide_v, big);
      CHECK_THROWS_WITH_AS(
          losses::ppo_loss<B>({fine, wide_t, fine, fine, fine, fine, fine}),
          rlhf::detail::concat("ppo_loss: old_logprobs must be finite, got -inf at flat index ", at)
              .c_str(),
          rlhf::data_error);
    }
    CHECK(std::isfinite(losses::ppo_loss<B>({fine, fine, fine, fine, fine, fine, fine}).loss));
  }
  const auto zero = make<B>(std::vector<float>(8, 0.0f), s);
  CHECK_THROWS_WITH_AS(losses::ppo_loss<B>({a, a, a, a, a, a, zero}),
                       "ppo_loss: mask is all zero; the masked means are undefined",
                       rlhf::data_error);
  const typename B::tensor empty(rlhf::shape{0, 4});
  CHECK_THROWS_AS(losses::ppo_loss<B>({empty, empty, empty, empty, empty, empty, empty}),
                  rlhf::shape_error);
}

}  // namespace test_ppo_cases
