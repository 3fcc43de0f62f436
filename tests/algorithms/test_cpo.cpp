// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// CPO / SimPO / AlphaPO (rlhf/losses/cpo.hpp).
#include <cmath>
#include <string>

#include "fixture.hpp"
#include "rlhf/losses/cpo.hpp"

namespace test_cpo_cases {

using namespace rlhf_test;
namespace losses = rlhf::losses;

TEST_CASE_TEMPLATE("cpo_loss matches the PyTorch reference", B, RLHF_TEST_BACKENDS) {
  int cases = 0;
  for (const auto& c : load_fixture("cpo.json")) {
    ++cases;
    CAPTURE(c.name());
    losses::cpo_config cfg;
    cfg.loss_type = losses::parse_cpo_loss_type(c.config().at("loss_type").get<std::string>());
    cfg.beta = c.config().at("beta").get<float>();
    cfg.label_smoothing = c.config().at("label_smoothing").get<float>();
    cfg.simpo_gamma = c.config().at("simpo_gamma").get<float>();
    cfg.cpo_alpha = c.config().at("cpo_alpha").get<float>();
    cfg.alpha = c.config().at("alpha").get<float>();
    cfg.nll = losses::parse_nll_tokens(c.config().at("nll_tokens").get<std::string>());
    const auto lc = c.tensor<B>("policy_chosen_logps");
    const auto lr = c.tensor<B>("policy_rejected_logps");
    std::optional<typename B::tensor> counts, sums;
    if (c.has_input("chosen_nll_token_counts")) counts = c.tensor<B>("chosen_nll_token_counts");
    if (c.has_input("chosen_nll_logp_sums")) sums = c.tensor<B>("chosen_nll_logp_sums");
    const auto r = losses::cpo_loss<B>({.policy_chosen_logps = lc,
                                        .policy_rejected_logps = lr,
                                        .chosen_nll_token_counts = counts ? &*counts : nullptr,
                                        .chosen_nll_logp_sums = sums ? &*sums : nullptr},
                                       cfg);
    check_close(r.loss, c.output_scalar("loss"), "loss");
    check_close(host<B>(r.losses), c.output("losses"), "losses");
    check_close(host<B>(r.grad_policy_chosen_logps), c.output("grad_policy_chosen_logps"),
                "grad_policy_chosen_logps");
    check_close(host<B>(r.grad_policy_rejected_logps), c.output("grad_policy_rejected_logps"),
                "grad_policy_rejected_logps");
    if (sums) {
      check_close(host<B>(r.grad_chosen_nll_logp_sums), c.output("grad_chosen_nll_logp_sums"),
                  "grad_chosen_nll_logp_sums");
    }
    const auto named = r.metrics.named();
    for (const char* k : {"rewards/chosen", "rewards/rejected", "rewards/accuracies",
                          "rewards/margins", "logps/chosen", "logps/rejected", "nll_loss"}) {
      check_close(rlhf::metric_or(named, k, NAN), c.output_scalar(k), k);
    }
  }
  CHECK(cases == 19);  // what tools/reference/cpo.py writes
}

TEST_CASE_TEMPLATE("cpo_loss gradients match finite differences", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{4};
  // Per-token means (|βx| small, hinge away from its kink at βx = 1).
  const std::vector<float> lc{-0.6f, -1.1f, -0.9f, -1.7f}, lr{-1.2f, -0.8f, -1.5f, -1.0f};
  const std::vector<float> sums{-9.0f, -20.0f, -5.5f, -31.0f};
  const auto counts = make<B>({8.0f, 12.0f, 4.0f, 20.0f}, s);
  struct variant {
    losses::cpo_loss_type type;
    float beta, eps, alpha, cpo_alpha;
    bool given_sums;
  };
  using T = losses::cpo_loss_type;
  const variant variants[] = {
      {T::sigmoid, 0.9f, 0.0f, 0.0f, 1.0f, true},  {T::sigmoid, 0.9f, 0.2f, 0.0f, 1.0f, false},
      {T::hinge, 0.5f, 0.0f, 0.0f, 0.5f, true},    {T::ipo, 0.8f, 0.0f, 0.0f, 1.0f, true},
      {T::simpo, 2.0f, 0.0f, 0.0f, 0.0f, false},   {T::simpo, 2.0f, 0.1f, 0.0f, 1.0f, false},
      {T::alphapo, 2.0f, 0.0f, 0.25f, 1.0f, false}, {T::sigmoid, 1.0f, 0.1f, -0.4f, 1.0f, true},
      {T::ipo, 0.5f, 0.0f, 0.3f, 2.0f, false},
  };
  for (const auto& v : variants) {
    losses::cpo_config cfg;
    cfg.loss_type = v.type;
    cfg.beta = v.beta;
    cfg.label_smoothing = v.eps;
    cfg.alpha = v.alpha;
    cfg.cpo_alpha = v.cpo_alpha;
    CAPTURE(losses::to_string(v.type));
    CAPTURE(v.alpha);
    CAPTURE(v.given_sums);
    auto run = [&](const std::vector<float>& c, const std::vector<float>& j,
                   const std::vector<float>& sm) {
      const auto ct = make<B>(c, s), jt = make<B>(j, s), st = make<B>(sm, s);
      return losses::cpo_loss<B>({ct, jt, &counts, v.given_sums ? &st : nullptr}, cfg);
    };
    const auto r = run(lc, lr, sums);
    check_gradient_fd([&](const std::vector<float>& x) { return double(run(x, lr, sums).loss); },
                      lc, host<B>(r.grad_policy_chosen_logps), "d loss / d lc");
    check_gradient_fd([&](const std::vector<float>& x) { return double(run(lc, x, sums).loss); },
                      lr, host<B>(r.grad_policy_rejected_logps), "d loss / d lr");
    if (v.given_sums) {
      check_gradient_fd(
          [&](const std::vector<float>& x) { return double(run(lc, lr, x).loss); }, sums,
          host<B>(r.grad_chosen_nll_logp_sums), "d loss / d nll sums");
    }
  }
}

TEST_CASE_TEMPLATE("cpo_loss invariants", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{3};
  const auto l = make<B>({-10.0f, -25.0f, -40.0f}, s);
  const auto counts = make<B>({5.0f, 10.0f, 25.0f}, s);
  // Equal chosen and rejected: sigmoid ln 2 + NLL, hinge 1, ipo 1/(4β²), simpo -logσ(-γ).
  losses::cpo_config cfg;
  const auto sig = losses::cpo_loss<B>({l, l, &counts}, cfg);
  check_close(sig.metrics.nll_loss, 75.0f / 40.0f, "completion NLL from sum log-probs");
  check_close(sig.loss, std::log(2.0f) + 75.0f / 40.0f, "sigmoid");
  CHECK(sig.metrics.rewards_accuracies == 0.0f);
  cfg.cpo_alpha = 0.0f;
  cfg.loss_type = losses::cpo_loss_type::hinge;
  check_close(losses::cpo_loss<B>({l, l}, cfg).loss, 1.0f, "hinge");
  cfg.loss_type = losses::cpo_loss_type::ipo;
  check_close(losses::cpo_loss<B>({l, l}, cfg).loss, 25.0f, "ipo");
  cfg.loss_type = losses::cpo_loss_type::simpo;
  check_close(losses::cpo_loss<B>({l, l}, cfg).loss, -std::log(1.0f / (1.0f + std::exp(0.5f))),
              "simpo");
  // alphapo is simpo without the NLL term whatever cpo_alpha says (TRL's __post_init__).
  cfg.cpo_alpha = 1.0f;
  cfg.alpha = 0.2f;
  const auto lr = make<B>({-0.3f, -2.0f, -1.0f}, s);
  const auto lc = make<B>({-0.2f, -1.0f, -1.5f}, s);
  cfg.loss_type = losses::cpo_loss_type::alphapo;
  const auto ap = losses::cpo_loss<B>({lc, lr}, cfg);
  cfg.loss_type = losses::cpo_loss_type::simpo;
  cfg.cpo_alpha = 0.0f;
  const auto sp = losses::cpo_loss<B>({lc, lr}, cfg);
  CHECK(ap.loss == sp.loss);
  CHECK(ap.metrics.nll_loss == 0.0f);
  // AlphaPO rewards tend to the log-prob rewards as alpha -> 0.
  cfg.alpha = 1e-4f;
  const auto small = losses::cpo_loss<B>({lc, lr}, cfg);
  cfg.alpha = 0.0f;
  const auto plain = losses::cpo_loss<B>({lc, lr}, cfg);
  check_close(small.loss, plain.loss, "alpha -> 0", 1e-3);
  CHECK(losses::cpo_uses_mean_logps(losses::cpo_loss_type::simpo));
  CHECK_FALSE(losses::cpo_uses_mean_logps(losses::cpo_loss_type::hinge));
}

TEST_CASE_TEMPLATE("cpo_loss rejects bad input", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{3};
  const auto l = make<B>({-10.0f, -25.0f, -40.0f}, s);
  const auto counts = make<B>({5.0f, 10.0f, 25.0f}, s);
  const auto short_t = make<B>({-1.0f, -2.0f}, rlhf::shape{2});
  {
    losses::cpo_config bad;
    bad.loss_type = static_cast<losses::cpo_loss_type>(5);
    CHECK_THROWS_WITH_AS(losses::cpo_loss<B>({l, l, &counts}, bad),
                         "cpo_loss: loss_type must be one of its 5 enumerators (0..4), got 5",
                         rlhf::config_error);
    bad = {};
    bad.nll = static_cast<losses::nll_tokens>(2);
    CHECK_THROWS_WITH_AS(losses::cpo_loss<B>({l, l, &counts}, bad),
                         "cpo_loss: nll must be one of its 2 enumerators (0..1), got 2",
                         rlhf::config_error);
  }
  CHECK_THROWS_WITH_AS(losses::cpo_loss<B>({l, l, &counts, &short_t}),
                       "cpo_loss: chosen_nll_logp_sums has shape (2) but policy_chosen_logps "
                       "has shape (3); they must match",
                       rlhf::shape_error);
  CHECK_THROWS_AS(losses::cpo_loss<B>({l, short_t, &counts}), rlhf::shape_error);
  const auto inf_t = make<B>({-1.0f, -INFINITY, -2.0f}, s);
  CHECK_THROWS_WITH_AS(losses::cpo_loss<B>({l, inf_t, &counts}),
                       "cpo_loss: policy_rejected_logps must be finite, got -inf at flat index 1",
                       rlhf::data_error);
  const typename B::tensor empty(rlhf::shape{0});
  CHECK_THROWS_AS(losses::cpo_loss<B>({empty, empty, &empty}), rlhf::shape_error);
  CHECK_THROWS_WITH_AS(losses::cpo_loss<B>({l, l}),
                       "cpo_loss: chosen_nll_token_counts is required (the NLL term is a token "
                       "mean)",
                       rlhf::config_error);
  losses::cpo_config bad;
  bad.label_smoothing = 0.6f;
  CHECK_THROWS_WITH_AS(losses::cpo_loss<B>({l, l, &counts}, bad),
                       "cpo_loss: label_smoothing must be in [0, 0.5], got 0.600000024",
                       rlhf::config_error);
  bad = {};
  bad.beta = 0.0f;
  CHECK_THROWS_AS(losses::cpo_loss<B>({l, l, &counts}, bad), rlhf::config_error);
  bad = {};
  bad.cpo_alpha = -1.0f;
  CHECK_THROWS_AS(losses::cpo_loss<B>({l, l, &counts}, bad), rlhf::config_error);
  bad = {};
  bad.alpha = NAN;
  CHECK_THROWS_AS(losses::cpo_loss<B>({l, l, &counts}, bad), rlhf::config_error);
  bad = {};
  bad.simpo_gamma = INFINITY;
  CHECK_THROWS_AS(losses::cpo_loss<B>({l, l, &counts}, bad), rlhf::config_error);
  // AlphaPO's reward overflows float32 for very negative log-probs with alpha > 0.
  bad = {};
  bad.alpha = 0.5f;
  const auto deep = make<B>({-10.0f, -400.0f, -40.0f}, s);
  CHECK_THROWS_AS(losses::cpo_loss<B>({l, deep, &counts}, bad), rlhf::data_error);
  CHECK_THROWS_WITH_AS(losses::parse_cpo_loss_type("dpo"),
                       "parse_cpo_loss_type: unknown loss_type 'dpo'; accepted: sigmoid, hinge, "
                       "ipo, simpo, alphapo",
                       rlhf::config_error);
}

}  // namespace test_cpo_cases
