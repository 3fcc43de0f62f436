// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// BCO: binary classifier optimisation with a running-mean reward shift (rlhf/losses/bco.hpp).
#include <cmath>
#include <random>
#include <string>

#include "fixture.hpp"
#include "rlhf/losses/bco.hpp"

namespace test_bco_cases {

using namespace rlhf_test;
namespace losses = rlhf::losses;

TEST_CASE_TEMPLATE("bco_loss matches the PyTorch reference", B, RLHF_TEST_BACKENDS) {
  int cases = 0;
  for (const auto& c : load_fixture("bco.json")) {
    ++cases;
    CAPTURE(c.name());
    losses::bco_config cfg;
    cfg.beta = c.config().at("beta").get<float>();
    losses::bco_running_mean running;
    running.count = c.config().at("running_count").get<double>();
    running.mean = c.config().at("running_mean").get<double>();
    const bool update = c.config().at("update_running").get<bool>();
    const auto lp = c.tensor<B>("policy_logps");
    const auto rp = c.tensor<B>("reference_logps");
    const auto lab = c.tensor<B>("labels");
    const auto r = losses::bco_loss<B>(
        {.policy_logps = lp, .reference_logps = rp, .labels = lab}, running, cfg, update);
    check_close(r.loss, c.output_scalar("loss"), "loss");
    check_close(host<B>(r.losses), c.output("losses"), "losses");
    check_close(host<B>(r.grad_policy_logps), c.output("grad_policy_logps"),
                "grad_policy_logps");
    check_close(static_cast<float>(running.mean), c.output_scalar("running_mean_after"),
                "running mean");
    // TRL's count starts at 1e-24; ours carries whatever the caller stored.
    CHECK(running.count == doctest::Approx(c.j.at("outputs").at("running_count_after").get<double>()));
    const auto& m = r.metrics;
    check_close(m.delta, c.output_scalar("delta"), "delta");
    check_close(m.rewards_chosen_sum, c.output_scalar("rewards/chosen_sum"), "rewards/chosen_sum");
    check_close(m.logps_chosen_sum, c.output_scalar("logps/chosen_sum"), "logps/chosen_sum");
    check_close(m.count_chosen, c.output_scalar("count/chosen"), "count/chosen");
    check_close(m.rewards_rejected_sum, c.output_scalar("rewards/rejected_sum"),
                "rewards/rejected_sum");
    check_close(m.logps_rejected_sum, c.output_scalar("logps/rejected_sum"), "logps/rejected_sum");
    check_close(m.count_rejected, c.output_scalar("count/rejected"), "count/rejected");
    CHECK(rlhf::metric_or(m.named(), "delta", NAN) == m.delta);
    CHECK((rlhf::metric_or(m.named(), "count/rejected", -1.0f) < 0) == (m.count_rejected == 0));
  }
  CHECK(cases == 8);  // what tools/reference/bco.py writes
}

TEST_CASE_TEMPLATE("bco_loss gradients match finite differences", B, RLHF_TEST_BACKENDS) {
  // δ is detached: differentiate with the running mean frozen (update_running = false).
  const rlhf::shape s{5};
  const std::vector<float> lp{-10.2f, -8.5f, -12.0f, -9.1f, -11.3f};
  const auto rp = make<B>({-10.0f, -9.5f, -11.0f, -9.0f, -12.0f}, s);
  const auto lab = make<B>({1.0f, 0.0f, 1.0f, 0.0f, 1.0f}, s);
  losses::bco_config cfg;
  cfg.beta = 0.9f;
  const losses::bco_running_mean frozen{12.0, 0.35};
  auto loss_of = [&](const std::vector<float>& x) {
    auto run = frozen;
    const auto xt = make<B>(x, s);
    return static_cast<double>(losses::bco_loss<B>({xt, rp, lab}, run, cfg, false).loss);
  };
  auto run = frozen;
  const auto lt = make<B>(lp, s);
  const auto r = losses::bco_loss<B>({lt, rp, lab}, run, cfg, false);
  CHECK(run.count == 12.0);
  CHECK(run.mean == 0.35);
  check_gradient_fd(loss_of, lp, host<B>(r.grad_policy_logps), "d loss / d policy_logps");

  // Training mode uses δ after the update and gives the gradient with that δ held fixed.
  auto trained = frozen;
  const auto rt = losses::bco_loss<B>({lt, rp, lab}, trained, cfg, true);
  CHECK(trained.count == 17.0);
  auto fixed = trained;
  const auto rf = losses::bco_loss<B>({lt, rp, lab}, fixed, cfg, false);
  CHECK(rt.loss == rf.loss);
  check_close(host<B>(rt.grad_policy_logps), host<B>(rf.grad_policy_logps), "δ detached");
}

TEST_CASE("bco_running_mean updates exactly like Welford") {
  std::mt19937 gen(7);
  std::normal_distribution<float> dist(0.3f, 2.0f);
  losses::bco_running_mean batched;
  double welford_mean = 0.0, welford_count = 0.0, total = 0.0;
  for (int b = 0; b < 20; ++b) {
    std::vector<float> v(static_cast<std::size_t>(1 + b * 3));
    for (auto& x : v) x = dist(gen);
    batched.update(v);
    for (const float x : v) {  // one value at a time: the textbook recurrence
      welford_count += 1.0;
      welford_mean += (static_cast<double>(x) - welford_mean) / welford_count;
      total += static_cast<double>(x);
    }
  }
  CHECK(batched.count == welford_count);
  CHECK(batched.mean == doctest::Approx(welford_mean).epsilon(1e-12));
  CHECK(batched.mean == doctest::Approx(total / welford_count).epsilon(1e-12));
  losses::bco_running_mean untouched;
  untouched.update(std::vector<float>{});
  CHECK(untouched.count == 0.0);
  CHECK(untouched.mean == 0.0);
}

TEST_CASE_TEMPLATE("bco_loss updates the running mean with the batch before use", B,
                   RLHF_TEST_BACKENDS) {
  const rlhf::shape s{4};
  const auto lp = make<B>({-1.0f, -2.0f, -3.0f, -4.0f}, s);
  const auto rp = make<B>({-2.0f, -2.0f, -1.0f, -4.0f}, s);  // r = β·{1, 0, -2, 0}
  const auto lab = make<B>({1.0f, 0.0f, 1.0f, 0.0f}, s);
  losses::bco_config cfg;
  cfg.beta = 0.5f;
  losses::bco_running_mean run;  // fresh: δ = batch mean = 0.5·(-1/4)
  const auto r = losses::bco_loss<B>({lp, rp, lab}, run, cfg);
  CHECK(run.count == 4.0);
  CHECK(run.mean == doctest::Approx(-0.125));
  CHECK(r.metrics.delta == doctest::Approx(-0.125f));
  check_close(r.metrics.rewards_chosen_sum, -0.5f, "rewards/chosen_sum");
  // Policy = reference with δ = 0: every loss is ln 2.
  losses::bco_running_mean zero;
  const auto same = losses::bco_loss<B>({lp, lp, lab}, zero, cfg);
  check_close(same.loss, std::log(2.0f), "ln 2 at policy = reference");
  // All desirable: rejected metrics absent from the named list.
  const auto ones = make<B>({1.0f, 1.0f, 1.0f, 1.0f}, s);
  const auto all = losses::bco_loss<B>({lp, rp, ones}, zero, cfg);
  CHECK(all.metrics.count_rejected == 0.0f);
  CHECK(all.metrics.named().size() == 4);
}

TEST_CASE_TEMPLATE("bco_loss rejects bad input", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{3};
  const auto a = make<B>({-1.0f, -2.0f, -3.0f}, s);
  const auto lab = make<B>({1.0f, 0.0f, 1.0f}, s);
  losses::bco_running_mean run;
  const auto short_t = make<B>({-1.0f, -2.0f}, rlhf::shape{2});
  CHECK_THROWS_WITH_AS(losses::bco_loss<B>({a, short_t, lab}, run),
                       "bco_loss: policy_logps has shape (3) but reference_logps has shape (2); "
                       "they must match",
                       rlhf::shape_error);
  const auto nan_t = make<B>({-1.0f, NAN, -3.0f}, s);
  CHECK_THROWS_WITH_AS(losses::bco_loss<B>({nan_t, a, lab}, run),
                       "bco_loss: policy_logps must be finite, got nan at flat index 1",
                       rlhf::data_error);
  const auto two = make<B>({1.0f, 2.0f, 0.0f}, s);
  CHECK_THROWS_WITH_AS(losses::bco_loss<B>({a, a, two}, run),
                       "bco_loss: labels must be 0 or 1, got 2 at flat index 1", rlhf::data_error);
  const typename B::tensor empty(rlhf::shape{0});
  CHECK_THROWS_AS(losses::bco_loss<B>({empty, empty, empty}, run), rlhf::shape_error);
  losses::bco_config bad;
  bad.beta = -1.0f;
  CHECK_THROWS_WITH_AS(losses::bco_loss<B>({a, a, lab}, run, bad),
                       "bco_loss: beta must be finite and > 0, got -1", rlhf::config_error);
  losses::bco_running_mean broken{1.0, NAN};
  CHECK_THROWS_AS(losses::bco_loss<B>({a, a, lab}, broken), rlhf::data_error);
  // Nothing was updated by the rejected calls.
  CHECK(run.count == 0.0);
}

}  // namespace test_bco_cases
