// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// KL estimators, the full KL, KL controllers and PPO's per-token rewards
// (rlhf/rl/kl.hpp, kl_controller.hpp, rewards.hpp).
#include <cmath>
#include <limits>
#include <optional>

#include "fixture.hpp"
#include "rlhf/rl/kl.hpp"
#include "rlhf/rl/kl_controller.hpp"
#include "rlhf/rl/rewards.hpp"

namespace test_kl_cases {

using namespace rlhf_test;
namespace rl = rlhf::rl;

TEST_CASE_TEMPLATE("KL estimators, the full KL and PPO rewards match the PyTorch reference", B,
                   RLHF_TEST_BACKENDS) {
  int token_cases = 0, full_cases = 0, reward_cases = 0;
  for (const auto& c : load_fixture("kl.json")) {
    CAPTURE(c.name());
    const auto kind = c.config().at("kind").get<std::string>();
    if (kind == "token") {
      ++token_cases;
      const auto est = rl::parse_kl_estimator(c.config().at("estimator").get<std::string>());
      const auto lp = c.tensor<B>("logp"), rp = c.tensor<B>("ref_logp");
      const auto mask = c.tensor<B>("mask");
      typename B::tensor out(lp.shape()), grad(lp.shape());
      rl::kl_penalty<B>(lp, rp, est, out);
      rl::kl_penalty_grad<B>(lp, rp, est, grad);
      check_close(host<B>(out), c.output("kl"), "kl");
      check_close(host<B>(grad), c.output("grad"), "d kl / d logp");
      // Sums of up to 7 terms of magnitude <= 1e6 (extreme mse): float32 round-off of the sum.
      check_close(rl::mean_sequence_kl<B>(out, mask), c.output_scalar("mean_sequence_kl"),
                  "mean_sequence_kl", 1e-5, 1e-5);
    } else if (kind == "full") {
      ++full_cases;
      const auto z = c.tensor<B>("logits"), zr = c.tensor<B>("ref_logits");
      typename B::tensor out(rlhf::shape{z.shape().rows()});
      rl::full_kl<B>(z, zr, out);
      check_close(host<B>(out), c.output("kl"), "full kl");
    } else {
      ++reward_cases;
      REQUIRE(kind == "rewards");
      const auto lp = c.tensor<B>("logprobs"), rp = c.tensor<B>("ref_logprobs");
      const auto mask = c.tensor<B>("mask"), scores = c.tensor<B>("scores");
      std::optional<typename B::tensor> has_eos;
      rl::ppo_reward_config cfg;
      cfg.kl_coef = c.config().at("kl_coef").get<float>();
      cfg.estimator = rl::parse_kl_estimator(c.config().at("estimator").get<std::string>());
      if (c.has_input("has_eos")) {
        has_eos = c.tensor<B>("has_eos");
        cfg.missing_eos_penalty = c.config().at("missing_eos_penalty").get<float>();
      }
      const auto r = rl::ppo_token_rewards<B>(
          {.logprobs = lp, .ref_logprobs = rp, .mask = mask, .scores = scores,
           .has_eos = has_eos ? &*has_eos : nullptr},
          cfg);
      check_close(host<B>(r.rewards), c.output("rewards"), "rewards");
      check_close(host<B>(r.kl), c.output("kl"), "kl");
      check_close(host<B>(r.scores), c.output("scores"), "scores");
      for (const auto& [name, value] : r.metrics.named()) {
        check_close(value, c.output_scalar(name), name);
      }
    }
  }
  CHECK(token_cases == 8);
  CHECK(full_cases == 3);
  CHECK(reward_cases == 4);
}

TEST_CASE_TEMPLATE("full_kl: the spec's literal reference values", B, RLHF_TEST_BACKENDS) {
  // logits = log p, so each row is a distribution already.
  const std::vector<float> p{0.98f, 0.01f, 0.01f, 0.49f, 0.02f, 0.49f, 0.3f, 0.3f, 0.4f};
  const std::vector<float> q{0.01f, 0.01f, 0.98f, 0.01f, 0.98f, 0.01f, 0.3f, 0.3f, 0.4f};
  std::vector<float> lp, lq;
  for (float v : p) lp.push_back(std::log(v));
  for (float v : q) lq.push_back(std::log(v));
  const auto z = make<B>(lp, rlhf::shape{3, 3}), zr = make<B>(lq, rlhf::shape{3, 3});
  typename B::tensor out(rlhf::shape{3});
  rl::full_kl<B>(z, zr, out);
  const auto kl = host<B>(out);
  CHECK(kl[0] == doctest::Approx(4.4474).epsilon(1e-4));
  CHECK(kl[1] == doctest::Approx(3.7361).epsilon(1e-4));
  CHECK(kl[2] == 0.0f);
  // A shift of the logits does not change the distribution.
  std::vector<float> shifted = lp;
  for (float& v : shifted) v += 123.0f;
  const auto zs = make<B>(shifted, rlhf::shape{3, 3});
  typename B::tensor out2(rlhf::shape{3});
  rl::full_kl<B>(zs, zr, out2);
  check_close(host<B>(out2), kl, "full kl after shifting the logits", 1e-4, 1e-5);
}

TEST_CASE_TEMPLATE("KL estimator invariants and gradients", B, RLHF_TEST_BACKENDS) {
  std::vector<float> lp, rp;
  for (int i = 0; i < 40; ++i) {
    lp.push_back(-0.1f * static_cast<float>(i % 13) - 0.05f);
    rp.push_back(-0.17f * static_cast<float>((i * 7) % 11));
  }
  const rlhf::shape s{4, 10};
  const auto lpt = make<B>(lp, s), rpt = make<B>(rp, s);
  typename B::tensor out(s), grad(s);
  rl::kl_penalty<B>(lpt, rpt, rl::kl_estimator::k3, out);
  for (float v : host<B>(out)) CHECK(v >= 0.0f);  // k3 is non-negative
  rl::kl_penalty<B>(lpt, lpt, rl::kl_estimator::k3, out);
  for (float v : host<B>(out)) CHECK(v == 0.0f);  // and 0 at policy = reference
  // Finite differences of Σ_t kl_t (smooth estimators; abs away from Δ = 0, which the
  // inputs above avoid).
  for (auto est : {rl::kl_estimator::k1, rl::kl_estimator::abs, rl::kl_estimator::mse,
                   rl::kl_estimator::k3}) {
    CAPTURE(rl::to_string(est));
    rl::kl_penalty_grad<B>(lpt, rpt, est, grad);
    auto f = [&](const std::vector<float>& x) {
      const auto xt = make<B>(x, s);
      typename B::tensor o(s);
      rl::kl_penalty<B>(xt, rpt, est, o);
      double sum = 0.0;
      for (float v : host<B>(o)) sum += v;
      return sum;
    };
    check_gradient_fd(f, lp, host<B>(grad), "d kl / d logp", 1e-3f);
  }
  // k3 overflows to +inf for Δ < -88.7, as in TRL (documented).
  const auto a = make<B>({-1000.0f}, rlhf::shape{1, 1}), b = make<B>({0.0f}, rlhf::shape{1, 1});
  typename B::tensor one(rlhf::shape{1, 1});
  rl::kl_penalty<B>(a, b, rl::kl_estimator::k3, one);
  CHECK(host<B>(one)[0] == std::numeric_limits<float>::infinity());
}

TEST_CASE_TEMPLATE("KL functions reject bad input", B, RLHF_TEST_BACKENDS) {
  const auto a = make<B>({-1.0f, -2.0f, -0.5f, -0.1f}, rlhf::shape{2, 2});
  const auto b3 = make<B>({-1.0f, -2.0f, -0.5f}, rlhf::shape{3});
  typename B::tensor out(rlhf::shape{2, 2});
  CHECK_THROWS_WITH_AS(rl::kl_penalty<B>(a, a, static_cast<rl::kl_estimator>(17), out),
                       "kl_penalty: estimator must be one of its 5 enumerators (0..4), got 17",
                       rlhf::config_error);
  CHECK_THROWS_AS(rl::kl_penalty_grad<B>(a, a, static_cast<rl::kl_estimator>(5), out),
                  rlhf::config_error);
  {
    const auto ones = make<B>({1.0f, 1.0f, 1.0f, 1.0f}, rlhf::shape{2, 2});
    const auto scores = make<B>({1.0f, 2.0f}, rlhf::shape{2});
    rl::ppo_reward_config bad;
    bad.estimator = static_cast<rl::kl_estimator>(17);
    CHECK_THROWS_AS(rl::ppo_token_rewards<B>(
                        {.logprobs = a, .ref_logprobs = a, .mask = ones, .scores = scores}, bad),
                    rlhf::config_error);
  }
  CHECK_THROWS_WITH_AS(rl::kl_penalty<B>(a, a, rl::kl_estimator::full, out),
                       "kl_penalty: estimator must be k1, abs, mse or k3 (per-token log-probs), "
                       "got full; the full KL needs the logits: use rl::full_kl",
                       rlhf::config_error);
  CHECK_THROWS_WITH_AS(rl::kl_penalty<B>(a, b3, rl::kl_estimator::k1, out),
                       "kl_penalty: logp has shape (2, 2) but ref_logp has shape (3); they "
                       "must match",
                       rlhf::shape_error);
  const auto nan_t = make<B>({-1.0f, NAN, 0.0f, 0.0f}, rlhf::shape{2, 2});
  CHECK_THROWS_WITH_AS(rl::kl_penalty<B>(a, nan_t, rl::kl_estimator::k3, out),
                       "kl_penalty: ref_logp must be finite, got nan at flat index 1",
                       rlhf::data_error);
  const typename B::tensor empty(rlhf::shape{0, 4});
  typename B::tensor empty_out(rlhf::shape{0, 4});
  CHECK_THROWS_AS(rl::kl_penalty<B>(empty, empty, rl::kl_estimator::k1, empty_out),
                  rlhf::shape_error);
  CHECK_THROWS_WITH_AS((void)rl::parse_kl_estimator("kl2"),
                       "parse_kl_estimator: unknown estimator 'kl2'; accepted: k1 (kl), abs, "
                       "mse (k2), k3, full",
                       rlhf::config_error);
  CHECK(rl::parse_kl_estimator("kl") == rl::kl_estimator::k1);
  CHECK(rl::parse_kl_estimator("k2") == rl::kl_estimator::mse);
  typename B::tensor out1(rlhf::shape{1});
  CHECK_THROWS_AS(rl::full_kl<B>(a, a, out1), rlhf::shape_error);  // 2 rows, 1 output
}

TEST_CASE("KL controllers: fixed and adaptive (hand-derived sequence)") {
  rl::fixed_kl_controller fixed;
  CHECK(fixed.value == 0.05);
  fixed.update(100.0, 256.0);
  CHECK(fixed.value == 0.05);
  CHECK(rl::fixed_kl_controller(rl::fixed_kl_controller::classic_trl_default).value == 0.2);

  rl::adaptive_kl_controller ctl;  // 0.2, target 6, horizon 10000
  // KL 9 → e = clip(0.5) = 0.2: β = 0.2·(1 + 0.2·256/1e4) = 0.201024
  CHECK(ctl.update(9.0, 256.0) == doctest::Approx(0.201024).epsilon(1e-12));
  // KL 3 → e = clip(-0.5) = -0.2: β·(1 - 0.00512) = 0.19999475712
  CHECK(ctl.update(3.0, 256.0) == doctest::Approx(0.19999475712).epsilon(1e-12));
  // KL 6.6 → e = 0.1 (inside the clip): β·(1 + 0.1·1000/1e4) = β·1.01
  CHECK(ctl.update(6.6, 1000.0) == doctest::Approx(0.19999475712 * 1.01).epsilon(1e-12));
  // KL on target → unchanged.
  CHECK(ctl.update(6.0, 5000.0) == doctest::Approx(0.19999475712 * 1.01).epsilon(1e-12));

  CHECK_THROWS_WITH_AS(rl::adaptive_kl_controller(0.2, 0.0, 10000.0),
                       "adaptive_kl_controller: target must be finite and > 0, got 0",
                       rlhf::config_error);
  CHECK_THROWS_AS(ctl.update(NAN, 1.0), rlhf::data_error);
  CHECK_THROWS_AS(ctl.update(1.0, -1.0), rlhf::config_error);
}

TEST_CASE_TEMPLATE("ppo_token_rewards: score position, empty rows and bad input", B,
                   RLHF_TEST_BACKENDS) {
  // Row 0: tokens 0..2 real; row 1: prompt zero then tokens 1..2; β = 0 isolates the score.
  const auto lp = make<B>({-1.0f, -2.0f, -3.0f, -1.0f, -1.0f, -1.0f, -1.0f, -1.0f},
                          rlhf::shape{2, 4});
  const auto mask = make<B>({1, 1, 1, 0, 0, 1, 1, 0}, rlhf::shape{2, 4});
  const auto scores = make<B>({5.0f, -2.0f}, rlhf::shape{2});
  rl::ppo_reward_config cfg;
  cfg.kl_coef = 0.0f;
  const auto r = rl::ppo_token_rewards<B>({lp, lp, mask, scores}, cfg);
  check_close(host<B>(r.rewards), std::vector<float>{0, 0, 5, 0, 0, 0, -2, 0},
              "score on the last real token");

  const auto empty_row = make<B>({1, 1, 1, 0, 0, 0, 0, 0}, rlhf::shape{2, 4});
  CHECK_THROWS_WITH_AS(rl::ppo_token_rewards<B>({lp, lp, empty_row, scores}),
                       "ppo_token_rewards: mask row 1 is all zero; the quantity is undefined "
                       "for an empty row",
                       rlhf::data_error);
  cfg.missing_eos_penalty = 1.0f;
  CHECK_THROWS_WITH_AS(rl::ppo_token_rewards<B>({lp, lp, mask, scores}, cfg),
                       "ppo_token_rewards: missing_eos_penalty is set but has_eos was not given",
                       rlhf::config_error);
  const auto bad_eos = make<B>({1.0f, 0.5f}, rlhf::shape{2});
  CHECK_THROWS_AS(rl::ppo_token_rewards<B>({lp, lp, mask, scores, &bad_eos}, cfg),
                  rlhf::data_error);
  const auto three = make<B>({1.0f, 2.0f, 3.0f}, rlhf::shape{3});
  CHECK_THROWS_WITH_AS(rl::ppo_token_rewards<B>({lp, lp, mask, three}),
                       "ppo_token_rewards: scores has shape (3), expected (2) (one score per "
                       "row of logprobs)",
                       rlhf::shape_error);
  rl::ppo_reward_config neg;
  neg.kl_coef = -0.1f;
  CHECK_THROWS_AS(rl::ppo_token_rewards<B>({lp, lp, mask, scores}, neg), rlhf::config_error);
  const auto bad_mask = make<B>({1, 1, 1, 0, 0, -1, 1, 0}, rlhf::shape{2, 4});
  CHECK_THROWS_WITH_AS(rl::ppo_token_rewards<B>({lp, lp, bad_mask, scores}),
                       "ppo_token_rewards: mask must hold finite weights >= 0, got -1 at flat "
                       "index 5",
                       rlhf::data_error);
}

}  // namespace test_kl_cases
