// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Bradley–Terry reward loss, rankings, ensembles, length penalty (rlhf/losses/reward.hpp).
#include <cmath>

#include "fixture.hpp"
#include "rlhf/losses/reward.hpp"

namespace test_reward_cases {

using namespace rlhf_test;
namespace losses = rlhf::losses;

TEST_CASE_TEMPLATE("reward_loss matches the PyTorch reference", B, RLHF_TEST_BACKENDS) {
  int cases = 0;
  for (const auto& c : load_fixture("reward.json")) {
    ++cases;
    CAPTURE(c.name());
    const auto rc = c.tensor<B>("rewards_chosen");
    const auto rr = c.tensor<B>("rewards_rejected");
    std::optional<typename B::tensor> margin, weights;
    if (c.has_input("margin")) margin = c.tensor<B>("margin");
    if (c.has_input("weights")) weights = c.tensor<B>("weights");
    std::optional<typename B::tensor> labels;
    if (c.has_input("labels")) labels = c.tensor<B>("labels");
    losses::reward_config cfg;
    cfg.center_rewards_coefficient = c.config().at("center_rewards_coefficient").get<float>();
    const auto r = losses::reward_loss<B>({.rewards_chosen = rc,
                                           .rewards_rejected = rr,
                                           .margin = margin ? &*margin : nullptr,
                                           .weights = weights ? &*weights : nullptr,
                                           .labels = labels ? &*labels : nullptr},
                                          cfg);
    check_close(r.loss, c.output_scalar("loss"), "loss");
    check_close(host<B>(r.losses), c.output("losses"), "losses");
    check_close(host<B>(r.grad_rewards_chosen), c.output("grad_rewards_chosen"),
                "grad_rewards_chosen");
    check_close(host<B>(r.grad_rewards_rejected), c.output("grad_rewards_rejected"),
                "grad_rewards_rejected");
    check_close(r.metrics.accuracy, c.output_scalar("accuracy"), "accuracy");
    check_close(r.metrics.margin, c.output_scalar("margin"), "margin");
    check_close(r.metrics.min_reward, c.output_scalar("min_reward"), "min_reward");
    check_close(r.metrics.mean_reward, c.output_scalar("mean_reward"), "mean_reward");
    check_close(r.metrics.max_reward, c.output_scalar("max_reward"), "max_reward");
    CHECK(rlhf::metric_or(r.metrics.named(), "accuracy", -1.0f) == r.metrics.accuracy);
  }
  CHECK(cases == 9);  // what tools/reference/reward.py writes
}

TEST_CASE_TEMPLATE("reward_loss gradients match finite differences", B, RLHF_TEST_BACKENDS) {
  const std::vector<float> rc{0.3f, -1.2f, 2.0f, 0.7f}, rr{-0.4f, 0.9f, 1.5f, 0.7f};
  const std::vector<float> margin{0.1f, 0.0f, 0.5f, 0.2f}, weights{1.0f, 0.5f, 2.0f, 0.25f};
  losses::reward_config cfg;
  cfg.center_rewards_coefficient = 0.05f;
  const auto mt = make<B>(margin, rlhf::shape{4});
  const auto wt = make<B>(weights, rlhf::shape{4});
  auto loss_of = [&](const std::vector<float>& c, const std::vector<float>& j) {
    const auto ct = make<B>(c, rlhf::shape{4}), jt = make<B>(j, rlhf::shape{4});
    return static_cast<double>(losses::reward_loss<B>({ct, jt, &mt, &wt}, cfg).loss);
  };
  const auto ct = make<B>(rc, rlhf::shape{4}), jt = make<B>(rr, rlhf::shape{4});
  const auto r = losses::reward_loss<B>({ct, jt, &mt, &wt}, cfg);
  check_gradient_fd([&](const std::vector<float>& x) { return loss_of(x, rr); }, rc,
                    host<B>(r.grad_rewards_chosen), "d loss / d rewards_chosen");
  check_gradient_fd([&](const std::vector<float>& x) { return loss_of(rc, x); }, rr,
                    host<B>(r.grad_rewards_rejected), "d loss / d rewards_rejected");
  // Soft labels.
  const auto lt = make<B>({1.0f, 0.25f, 0.5f, 0.0f}, rlhf::shape{4});
  auto soft_of = [&](const std::vector<float>& c, const std::vector<float>& j) {
    const auto ct2 = make<B>(c, rlhf::shape{4}), jt2 = make<B>(j, rlhf::shape{4});
    return static_cast<double>(losses::reward_loss<B>({ct2, jt2, &mt, &wt, &lt}, cfg).loss);
  };
  const auto s = losses::reward_loss<B>({ct, jt, &mt, &wt, &lt}, cfg);
  check_gradient_fd([&](const std::vector<float>& x) { return soft_of(x, rr); }, rc,
                    host<B>(s.grad_rewards_chosen), "soft labels: d loss / d rewards_chosen");
  check_gradient_fd([&](const std::vector<float>& x) { return soft_of(rc, x); }, rr,
                    host<B>(s.grad_rewards_rejected), "soft labels: d loss / d rewards_rejected");
}

TEST_CASE_TEMPLATE("reward_loss invariants and bad input", B, RLHF_TEST_BACKENDS) {
  const auto a = make<B>({1.0f, 2.0f, -3.0f}, rlhf::shape{3});
  // Equal rewards: loss ln 2, accuracy 0 (strict), gradients ∓1/(2N).
  const auto r = losses::reward_loss<B>({a, a});
  check_close(r.loss, std::log(2.0f), "loss at equal rewards");
  CHECK(r.metrics.accuracy == 0.0f);
  check_close(host<B>(r.grad_rewards_chosen), std::vector<float>(3, -1.0f / 6.0f), "grad");

  const auto short_t = make<B>({1.0f, 2.0f}, rlhf::shape{2});
  CHECK_THROWS_WITH_AS(losses::reward_loss<B>({a, short_t}),
                       "reward_loss: rewards_chosen has shape (3) but rewards_rejected has "
                       "shape (2); they must match",
                       rlhf::shape_error);
  const auto nan_t = make<B>({1.0f, NAN, 0.0f}, rlhf::shape{3});
  CHECK_THROWS_WITH_AS(losses::reward_loss<B>({a, nan_t}),
                       "reward_loss: rewards_rejected must be finite, got nan at flat index 1",
                       rlhf::data_error);
  const typename B::tensor empty(rlhf::shape{0});
  CHECK_THROWS_AS(losses::reward_loss<B>({empty, empty}), rlhf::shape_error);
  losses::reward_config bad;
  bad.center_rewards_coefficient = -1.0f;
  CHECK_THROWS_AS(losses::reward_loss<B>({a, a}, bad), rlhf::config_error);
  const auto neg_w = make<B>({1.0f, -1.0f, 1.0f}, rlhf::shape{3});
  CHECK_THROWS_AS(losses::reward_loss<B>({a, a, nullptr, &neg_w}), rlhf::data_error);
  const auto bad_p = make<B>({1.0f, -0.5f, 1.0f}, rlhf::shape{3});
  CHECK_THROWS_WITH_AS(losses::reward_loss<B>({a, a, nullptr, nullptr, &bad_p}),
                       "reward_loss: labels must hold values in [0, 1], got -0.5 at index 1",
                       rlhf::data_error);
  // A soft label swaps with the pair: (c, r, p) and (r, c, 1 - p) give the same losses.
  const auto b = make<B>({0.5f, -1.0f, 2.0f}, rlhf::shape{3});
  const auto p = make<B>({0.2f, 0.9f, 0.5f}, rlhf::shape{3});
  const auto q = make<B>({0.8f, 0.1f, 0.5f}, rlhf::shape{3});
  const auto x = losses::reward_loss<B>({a, b, nullptr, nullptr, &p});
  const auto y = losses::reward_loss<B>({b, a, nullptr, nullptr, &q});
  check_close(host<B>(y.losses), host<B>(x.losses), "losses with the pair and label swapped");
  check_close(y.loss, x.loss, "loss with the pairs and labels swapped");
}

TEST_CASE("ranking_pairs: K(K-1)/2 ordered pairs whose weights sum to one per prompt") {
  const auto pairs = losses::ranking_pairs(4);
  REQUIRE(pairs.size() == 6);
  float total = 0.0f;
  for (const auto& p : pairs) {
    CHECK(p.better < p.worse);
    total += p.weight;
  }
  CHECK(total == doctest::Approx(1.0));
  CHECK_THROWS_AS(losses::ranking_pairs(1), rlhf::config_error);
}

TEST_CASE_TEMPLATE("reward ensembles and the length penalty", B, RLHF_TEST_BACKENDS) {
  // 3 models × 2 examples.
  const auto scores = make<B>({1.0f, -2.0f, 3.0f, 0.5f, -1.0f, 4.0f}, rlhf::shape{3, 2});
  typename B::tensor out(rlhf::shape{2});
  losses::reward_ensemble<B>(scores, out, losses::ensemble_reduction::mean);
  check_close(host<B>(out), std::vector<float>{1.0f, 2.5f / 3.0f}, "mean ensemble");
  losses::reward_ensemble<B>(scores, out, losses::ensemble_reduction::min);
  check_close(host<B>(out), std::vector<float>{-1.0f, -2.0f}, "min ensemble");
  // mean - k·std (population std over the 3 models), k = 0.5, by hand:
  // column 0 {1, 3, -1}: 1 - 0.5·sqrt(8/3); column 1 {-2, 0.5, 4}: 5/6 - 0.5·sqrt(109/18).
  losses::reward_ensemble<B>(scores, out, losses::ensemble_reduction::mean_minus_std, 0.5f);
  check_close(host<B>(out), std::vector<float>{0.18350342f, -0.39706859f}, "mean - k std");
  CHECK_THROWS_WITH_AS(
      losses::reward_ensemble<B>(scores, out, static_cast<losses::ensemble_reduction>(3)),
      "reward_ensemble: how must be one of its 3 enumerators (0..2), got 3", rlhf::config_error);
  CHECK_THROWS_AS(
      losses::reward_ensemble<B>(scores, out, losses::ensemble_reduction::mean_minus_std, -1.0f),
      rlhf::config_error);

  auto s = make<B>({1.0f, 1.0f}, rlhf::shape{2});
  const auto len = make<B>({150.0f, 450.0f}, rlhf::shape{2});
  const auto opt = make<B>({150.0f, 150.0f}, rlhf::shape{2});
  losses::apply_length_penalty<B>(s, len, opt);
  check_close(host<B>(s), std::vector<float>{1.0f, 1.0f - 0.3f * 2.0f}, "length penalty");
  const auto zero = make<B>({150.0f, 0.0f}, rlhf::shape{2});
  CHECK_THROWS_AS(losses::apply_length_penalty<B>(s, len, zero), rlhf::data_error);
}

}  // namespace test_reward_cases
