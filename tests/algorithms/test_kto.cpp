// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// KTO and its unpaired APO-zero variant (rlhf/losses/kto.hpp).
#include <cmath>
#include <string>

#include "fixture.hpp"
#include "rlhf/losses/kto.hpp"

namespace test_kto_cases {

using namespace rlhf_test;
namespace losses = rlhf::losses;

namespace {
losses::kto_config config_of(const fixture_case& c) {
  losses::kto_config cfg;
  cfg.beta = c.config().at("beta").get<float>();
  cfg.desirable_weight = c.config().at("desirable_weight").get<float>();
  cfg.undesirable_weight = c.config().at("undesirable_weight").get<float>();
  cfg.loss_type = losses::parse_kto_loss_type(c.config().at("loss_type").get<std::string>());
  return cfg;
}
}  // namespace

TEST_CASE_TEMPLATE("kto_loss matches the PyTorch reference", B, RLHF_TEST_BACKENDS) {
  int cases = 0;
  for (const auto& c : load_fixture("kto.json")) {
    ++cases;
    CAPTURE(c.name());
    const auto cfg = config_of(c);
    const auto lp = c.tensor<B>("policy_logps");
    const auto rp = c.tensor<B>("reference_logps");
    const auto lab = c.tensor<B>("labels");
    std::optional<typename B::tensor> pkl, rkl;
    if (c.has_input("policy_kl_logps")) {
      pkl = c.tensor<B>("policy_kl_logps");
      rkl = c.tensor<B>("reference_kl_logps");
    }
    const auto r = losses::kto_loss<B>({.policy_logps = lp,
                                        .reference_logps = rp,
                                        .labels = lab,
                                        .policy_kl_logps = pkl ? &*pkl : nullptr,
                                        .reference_kl_logps = rkl ? &*rkl : nullptr},
                                       cfg);
    check_close(r.loss, c.output_scalar("loss"), "loss");
    check_close(host<B>(r.losses), c.output("losses"), "losses");
    check_close(host<B>(r.grad_policy_logps), c.output("grad_policy_logps"),
                "grad_policy_logps");
    const auto& m = r.metrics;
    check_close(m.kl, c.output_scalar("kl"), "kl");
    check_close(m.rewards_chosen_sum, c.output_scalar("rewards/chosen_sum"), "rewards/chosen_sum");
    check_close(m.logps_chosen_sum, c.output_scalar("logps/chosen_sum"), "logps/chosen_sum");
    check_close(m.count_chosen, c.output_scalar("count/chosen"), "count/chosen");
    check_close(m.rewards_rejected_sum, c.output_scalar("rewards/rejected_sum"),
                "rewards/rejected_sum");
    check_close(m.logps_rejected_sum, c.output_scalar("logps/rejected_sum"), "logps/rejected_sum");
    check_close(m.count_rejected, c.output_scalar("count/rejected"), "count/rejected");
    // TRL 1.16 logs the batch's class means (a class's entries left out when the batch has
    // none of it, margins only with both); the sums stay under their "_sum" names.
    const auto named = m.named();
    CHECK(rlhf::metric_or(named, "kl", -1.0f) == m.kl);
    CHECK(rlhf::metric_or(named, "count/chosen", -1.0f) == -1.0f);
    CHECK(std::isnan(rlhf::metric_or(named, "rewards/chosen_sum", NAN)));
    if (m.count_chosen > 0) {
      check_close(rlhf::metric_or(named, "rewards/chosen", NAN),
                  c.output_scalar("rewards/chosen_sum") / c.output_scalar("count/chosen"),
                  "rewards/chosen (mean)");
      check_close(rlhf::metric_or(named, "logps/chosen", NAN),
                  c.output_scalar("logps/chosen_sum") / c.output_scalar("count/chosen"),
                  "logps/chosen (mean)");
    } else {
      CHECK(std::isnan(rlhf::metric_or(named, "rewards/chosen", NAN)));
    }
    if (m.count_rejected > 0) {
      check_close(rlhf::metric_or(named, "rewards/rejected", NAN),
                  c.output_scalar("rewards/rejected_sum") / c.output_scalar("count/rejected"),
                  "rewards/rejected (mean)");
    }
    if (m.count_chosen > 0 && m.count_rejected > 0) {
      check_close(rlhf::metric_or(named, "rewards/margins", NAN),
                  c.output_scalar("rewards/chosen_sum") / c.output_scalar("count/chosen") -
                      c.output_scalar("rewards/rejected_sum") / c.output_scalar("count/rejected"),
                  "rewards/margins");
    } else {
      CHECK(std::isnan(rlhf::metric_or(named, "rewards/margins", NAN)));
    }
    const auto sums = m.sums();
    CHECK(rlhf::metric_or(sums, "count/chosen", -1.0f) ==
          (m.count_chosen > 0 ? m.count_chosen : -1.0f));
  }
  CHECK(cases == 10);  // what tools/reference/kto.py writes
}

TEST_CASE_TEMPLATE("kto_loss gradients match finite differences", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{5};
  const std::vector<float> lp{-10.2f, -8.5f, -12.0f, -9.1f, -11.3f};
  const auto rp = make<B>({-10.0f, -9.5f, -11.0f, -9.0f, -12.0f}, s);
  const auto lab = make<B>({1.0f, 0.0f, 1.0f, 0.0f, 1.0f}, s);
  const auto pkl = make<B>({-14.0f, -13.0f, -15.5f, -12.0f, -13.5f}, s);
  const auto rkl = make<B>({-14.5f, -13.2f, -15.0f, -13.0f, -14.0f}, s);
  for (const auto type : {losses::kto_loss_type::kto, losses::kto_loss_type::apo_zero_unpaired}) {
    CAPTURE(losses::to_string(type));
    losses::kto_config cfg;
    cfg.beta = 0.8f;
    cfg.desirable_weight = 1.3f;
    cfg.undesirable_weight = 0.6f;
    cfg.loss_type = type;
    auto loss_of = [&](const std::vector<float>& x) {
      const auto xt = make<B>(x, s);
      return static_cast<double>(losses::kto_loss<B>({xt, rp, lab, &pkl, &rkl}, cfg).loss);
    };
    const auto lt = make<B>(lp, s);
    const auto r = losses::kto_loss<B>({lt, rp, lab, &pkl, &rkl}, cfg);
    check_gradient_fd(loss_of, lp, host<B>(r.grad_policy_logps), "d loss / d policy_logps");
  }
}

TEST_CASE_TEMPLATE("kto_loss invariants", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{4};
  const auto a = make<B>({-5.0f, -7.0f, -3.0f, -9.0f}, s);
  const auto lab = make<B>({1.0f, 0.0f, 1.0f, 0.0f}, s);
  const auto b = make<B>({-6.0f, -6.5f, -2.0f, -8.5f}, s);
  losses::kto_config cfg;
  cfg.desirable_weight = 2.0f;
  cfg.undesirable_weight = 0.5f;

  // Policy = reference, z0 = 0: every L = 1 - σ(0) = 1/2; loss = mean λ / 2 (divided by N).
  const auto same = losses::kto_loss<B>({a, a, lab, &a, &a}, cfg);
  check_close(same.loss, (2.0f + 0.5f + 2.0f + 0.5f) / 4.0f * 0.5f, "loss at policy = ref");
  CHECK(same.metrics.kl == 0.0f);

  // A negative KL estimate is clamped at 0, and KTO with z0 = 0 is APO-zero-unpaired.
  const auto kto = losses::kto_loss<B>({b, a, lab, &a, &b}, cfg);  // mean(a - b) = -0.25
  CHECK(kto.metrics.kl == 0.0f);
  losses::kto_config apo = cfg;
  apo.loss_type = losses::kto_loss_type::apo_zero_unpaired;
  const auto ap = losses::kto_loss<B>({b, a, lab}, apo);
  check_close(kto.loss, ap.loss, "kto(z0 = 0) = apo_zero_unpaired");
  check_close(host<B>(kto.grad_policy_logps), host<B>(ap.grad_policy_logps), "same gradient");

  // A positive KL estimate moves the reference point: z0 = mean(b - a) = 0.25.
  const auto shifted = losses::kto_loss<B>({b, a, lab, &b, &a}, cfg);
  check_close(shifted.metrics.kl, 0.25f, "z0");
  CHECK(shifted.loss != kto.loss);

  // All desirable: the rejected metrics are zero and absent from the named list.
  const auto ones = make<B>({1.0f, 1.0f, 1.0f, 1.0f}, s);
  const auto all = losses::kto_loss<B>({b, a, ones, &a, &b}, cfg);
  CHECK(all.metrics.count_chosen == 4.0f);
  CHECK(all.metrics.count_rejected == 0.0f);
  CHECK(all.metrics.rewards_rejected_sum == 0.0f);
  CHECK(rlhf::metric_or(all.metrics.sums(), "count/rejected", -1.0f) == -1.0f);
  CHECK(all.metrics.sums().size() == 4);
  CHECK(all.metrics.named().size() == 3);  // kl, rewards/chosen, logps/chosen
  CHECK(std::isnan(rlhf::metric_or(all.metrics.named(), "rewards/margins", NAN)));
}

TEST_CASE("kto_kl_pair_indices rotates the completions by one") {
  CHECK(losses::kto_kl_pair_indices(4) == std::vector<rlhf::index_t>{3, 0, 1, 2});
  CHECK(losses::kto_kl_pair_indices(2) == std::vector<rlhf::index_t>{1, 0});
  CHECK_THROWS_WITH_AS(losses::kto_kl_pair_indices(1),
                       "kto_kl_pair_indices: n (batch size) must be >= 2, got 1",
                       rlhf::config_error);
}

TEST_CASE("kto_class_balance_warning: λD·nD / (λU·nU) in [1, 4/3]") {
  losses::kto_config cfg;
  CHECK_FALSE(losses::kto_class_balance_warning(100, 100, cfg).has_value());
  const auto w = losses::kto_class_balance_warning(100, 300, cfg);
  REQUIRE(w.has_value());
  CHECK(w->find("outside [1, 4/3]") != std::string::npos);
  CHECK(w->find("desirable_weight in [3, 4]") != std::string::npos);
  cfg.desirable_weight = 3.5f;  // 350 / 300 = 1.167
  CHECK_FALSE(losses::kto_class_balance_warning(100, 300, cfg).has_value());
  cfg.desirable_weight = 4.1f;  // 410 / 300 = 1.367
  CHECK(losses::kto_class_balance_warning(100, 300, cfg).has_value());
  CHECK(losses::kto_class_balance_warning(0, 300, cfg).has_value());
  cfg.desirable_weight = 1.0f;
  cfg.undesirable_weight = 0.0f;
  CHECK(losses::kto_class_balance_warning(10, 10, cfg).has_value());
  CHECK_THROWS_AS(losses::kto_class_balance_warning(-1, 10, cfg), rlhf::config_error);
}

TEST_CASE_TEMPLATE("kto_loss rejects bad input", B, RLHF_TEST_BACKENDS) {
  const auto a = make<B>({-1.0f, -2.0f, -3.0f}, rlhf::shape{3});
  const auto lab = make<B>({1.0f, 0.0f, 1.0f}, rlhf::shape{3});
  const auto short_t = make<B>({1.0f, 0.0f}, rlhf::shape{2});
  {
    losses::kto_config bad;
    bad.loss_type = static_cast<losses::kto_loss_type>(2);
    CHECK_THROWS_WITH_AS(losses::kto_loss<B>({a, a, lab, &a, &a}, bad),
                         "kto_loss: loss_type must be one of its 2 enumerators (0..1), got 2",
                         rlhf::config_error);
  }
  CHECK_THROWS_WITH_AS(losses::kto_loss<B>({a, a, short_t, &a, &a}),
                       "kto_loss: policy_logps has shape (3) but labels has shape (2); they "
                       "must match",
                       rlhf::shape_error);
  CHECK_THROWS_AS(losses::kto_loss<B>({a, a, lab, &short_t, &a}), rlhf::shape_error);
  const auto nan_t = make<B>({-1.0f, INFINITY, 0.0f}, rlhf::shape{3});
  CHECK_THROWS_WITH_AS(losses::kto_loss<B>({a, a, lab, &a, &nan_t}),
                       "kto_loss: reference_kl_logps must be finite, got inf at flat index 1",
                       rlhf::data_error);
  CHECK_THROWS_AS(losses::kto_loss<B>({nan_t, a, lab, &a, &a}), rlhf::data_error);
  const auto half = make<B>({1.0f, 0.5f, 0.0f}, rlhf::shape{3});
  CHECK_THROWS_WITH_AS(losses::kto_loss<B>({a, a, half, &a, &a}),
                       "kto_loss: labels must be 0 or 1, got 0.5 at flat index 1",
                       rlhf::data_error);
  const typename B::tensor empty(rlhf::shape{0});
  CHECK_THROWS_WITH_AS(losses::kto_loss<B>({empty, empty, empty, &empty, &empty}),
                       "kto_loss: batch is empty (policy_logps has 0 examples)",
                       rlhf::shape_error);
  CHECK_THROWS_WITH_AS(losses::kto_loss<B>({a, a, lab}),
                       "kto_loss: policy_kl_logps and reference_kl_logps are required for "
                       "loss_type kto",
                       rlhf::config_error);
  losses::kto_config bad;
  bad.beta = 0.0f;
  CHECK_THROWS_WITH_AS(losses::kto_loss<B>({a, a, lab, &a, &a}, bad),
                       "kto_loss: beta must be finite and > 0, got 0", rlhf::config_error);
  bad = {};
  bad.undesirable_weight = -0.5f;
  CHECK_THROWS_AS(losses::kto_loss<B>({a, a, lab, &a, &a}, bad), rlhf::config_error);
  bad = {};
  bad.desirable_weight = NAN;
  CHECK_THROWS_AS(losses::kto_loss<B>({a, a, lab, &a, &a}, bad), rlhf::config_error);
  CHECK_THROWS_WITH_AS(losses::parse_kto_loss_type("sigmoid"),
                       "parse_kto_loss_type: unknown loss_type 'sigmoid'; accepted: kto, "
                       "apo_zero_unpaired",
                       rlhf::config_error);
  CHECK(losses::parse_kto_loss_type("apo_zero_unpaired") ==
        losses::kto_loss_type::apo_zero_unpaired);
}

}  // namespace test_kto_cases
