// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// ORPO: odds-ratio preference optimisation (rlhf/losses/orpo.hpp).
#include <cmath>
#include <string>

#include "fixture.hpp"
#include "rlhf/losses/orpo.hpp"

namespace test_orpo_cases {

using namespace rlhf_test;
namespace losses = rlhf::losses;

TEST_CASE_TEMPLATE("orpo_loss matches the PyTorch reference", B, RLHF_TEST_BACKENDS) {
  int cases = 0;
  for (const auto& c : load_fixture("orpo.json")) {
    ++cases;
    CAPTURE(c.name());
    losses::orpo_config cfg;
    cfg.beta = c.config().at("beta").get<float>();
    cfg.nll = losses::parse_nll_tokens(c.config().at("nll_tokens").get<std::string>());
    const auto lc = c.tensor<B>("policy_chosen_logps");
    const auto lr = c.tensor<B>("policy_rejected_logps");
    const auto counts = c.tensor<B>("chosen_nll_token_counts");
    std::optional<typename B::tensor> sums;
    if (c.has_input("chosen_nll_logp_sums")) sums = c.tensor<B>("chosen_nll_logp_sums");
    const auto r = losses::orpo_loss<B>({.policy_chosen_logps = lc,
                                         .policy_rejected_logps = lr,
                                         .chosen_nll_token_counts = counts,
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
    } else {
      CHECK(r.grad_chosen_nll_logp_sums.size() == 0);
    }
    const auto named = r.metrics.named();
    for (const char* k : {"rewards/chosen", "rewards/rejected", "rewards/accuracies",
                          "rewards/margins", "logps/chosen", "logps/rejected", "nll_loss",
                          "log_odds_ratio", "log_odds_chosen"}) {
      check_close(rlhf::metric_or(named, k, NAN), c.output_scalar(k), k);
    }
  }
  CHECK(cases == 7);  // what tools/reference/orpo.py writes
}

TEST_CASE_TEMPLATE("orpo_loss gradients match finite differences", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{4};
  const std::vector<float> lc{-0.4f, -1.3f, -0.9f, -2.2f}, lr{-1.1f, -0.5f, -1.6f, -0.8f};
  const std::vector<float> sums{-9.0f, -20.0f, -5.5f, -31.0f};
  const auto counts = make<B>({8.0f, 12.0f, 4.0f, 20.0f}, s);
  losses::orpo_config cfg;
  cfg.beta = 0.7f;
  auto run = [&](const std::vector<float>& c, const std::vector<float>& j,
                 const std::vector<float>* sm) {
    const auto ct = make<B>(c, s), jt = make<B>(j, s);
    if (sm == nullptr) return losses::orpo_loss<B>({ct, jt, counts}, cfg);
    const auto st = make<B>(*sm, s);
    return losses::orpo_loss<B>({ct, jt, counts, &st}, cfg);
  };
  SUBCASE("given NLL sums (prompt + completion)") {
    const auto r = run(lc, lr, &sums);
    check_gradient_fd([&](const std::vector<float>& x) { return double(run(x, lr, &sums).loss); },
                      lc, host<B>(r.grad_policy_chosen_logps), "d loss / d lc");
    check_gradient_fd([&](const std::vector<float>& x) { return double(run(lc, x, &sums).loss); },
                      lr, host<B>(r.grad_policy_rejected_logps), "d loss / d lr");
    check_gradient_fd([&](const std::vector<float>& x) { return double(run(lc, lr, &x).loss); },
                      sums, host<B>(r.grad_chosen_nll_logp_sums), "d loss / d nll sums");
  }
  SUBCASE("completion NLL derived from the mean log-probs") {
    cfg.nll = losses::nll_tokens::completion;
    const auto r = run(lc, lr, nullptr);
    check_gradient_fd([&](const std::vector<float>& x) { return double(run(x, lr, nullptr).loss); },
                      lc, host<B>(r.grad_policy_chosen_logps), "d loss / d lc (with NLL)");
  }
}

TEST_CASE_TEMPLATE("orpo_loss invariants", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{3};
  const auto l = make<B>({-0.5f, -1.5f, -3.0f}, s);
  const auto counts = make<B>({4.0f, 6.0f, 10.0f}, s);
  const auto sums = make<B>({-2.0f, -9.0f, -30.0f}, s);
  // Equal chosen and rejected: log_odds = 0, OR term = λ ln 2, accuracy 0 (strict).
  const auto r = losses::orpo_loss<B>({l, l, counts, &sums});
  check_close(r.metrics.log_odds_chosen, 0.0f, "log_odds");
  check_close(r.metrics.nll_loss, 41.0f / 20.0f, "nll = -Σ sums / Σ counts");
  check_close(r.loss, 41.0f / 20.0f + 0.1f * std::log(2.0f), "loss");
  CHECK(r.metrics.rewards_accuracies == 0.0f);
  // Derived completion sums equal explicit lc · n sums.
  losses::orpo_config comp;
  comp.nll = losses::nll_tokens::completion;
  const auto lr = make<B>({-0.7f, -1.0f, -2.0f}, s);
  const auto derived = losses::orpo_loss<B>({l, lr, counts}, comp);
  const auto explicit_sums = make<B>({-2.0f, -9.0f, -30.0f}, s);
  const auto given = losses::orpo_loss<B>({l, lr, counts, &explicit_sums}, comp);
  check_close(derived.loss, given.loss, "derived = given completion NLL");
  // A count of 0 for one sequence is fine as long as the batch has tokens.
  const auto some_zero = make<B>({0.0f, 6.0f, 10.0f}, s);
  CHECK(std::isfinite(losses::orpo_loss<B>({l, lr, some_zero, &sums}).loss));
}

TEST_CASE_TEMPLATE("orpo_loss rejects bad input", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{3};
  const auto l = make<B>({-0.5f, -1.5f, -3.0f}, s);
  const auto counts = make<B>({4.0f, 6.0f, 10.0f}, s);
  const auto sums = make<B>({-2.0f, -9.0f, -30.0f}, s);
  const auto zero = make<B>({-0.5f, 0.0f, -3.0f}, s);
  {
    losses::orpo_config bad;
    bad.nll = static_cast<losses::nll_tokens>(3);
    CHECK_THROWS_WITH_AS(losses::orpo_loss<B>({l, l, counts, &sums}, bad),
                         "orpo_loss: nll must be one of its 2 enumerators (0..1), got 3",
                         rlhf::config_error);
  }
  CHECK_THROWS_WITH_AS(losses::orpo_loss<B>({l, zero, counts, &sums}),
                       "orpo_loss: policy_rejected_logps must be < 0 (a mean log-probability; "
                       "log1mexp(0) = -inf), got 0 at flat index 1",
                       rlhf::data_error);
  const auto pos = make<B>({0.5f, -1.0f, -3.0f}, s);
  CHECK_THROWS_AS(losses::orpo_loss<B>({pos, l, counts, &sums}), rlhf::data_error);
  const auto nan_t = make<B>({-0.5f, NAN, -3.0f}, s);
  CHECK_THROWS_WITH_AS(losses::orpo_loss<B>({nan_t, l, counts, &sums}),
                       "orpo_loss: policy_chosen_logps must be finite, got nan at flat index 1",
                       rlhf::data_error);
  const auto short_t = make<B>({-0.5f, -1.0f}, rlhf::shape{2});
  CHECK_THROWS_WITH_AS(losses::orpo_loss<B>({l, short_t, counts, &sums}),
                       "orpo_loss: policy_chosen_logps has shape (3) but policy_rejected_logps "
                       "has shape (2); they must match",
                       rlhf::shape_error);
  CHECK_THROWS_AS(losses::orpo_loss<B>({l, l, counts, &short_t}), rlhf::shape_error);
  const typename B::tensor empty(rlhf::shape{0});
  CHECK_THROWS_AS(losses::orpo_loss<B>({empty, empty, empty, &empty}), rlhf::shape_error);
  losses::orpo_config bad;
  bad.beta = -0.1f;
  CHECK_THROWS_WITH_AS(losses::orpo_loss<B>({l, l, counts, &sums}, bad),
                       "orpo_loss: beta must be finite and > 0, got -0.100000001",
                       rlhf::config_error);
  CHECK_THROWS_WITH_AS(losses::orpo_loss<B>({l, l, counts}),
                       "orpo_loss: chosen_nll_logp_sums is required when nll_tokens = "
                       "prompt_and_completion (only completion-token sums can be derived from "
                       "policy_chosen_logps)",
                       rlhf::config_error);
  const auto no_tokens = make<B>({0.0f, 0.0f, 0.0f}, s);
  CHECK_THROWS_WITH_AS(losses::orpo_loss<B>({l, l, no_tokens, &sums}),
                       "orpo_loss: chosen_nll_token_counts sums to 0; the NLL token mean is "
                       "undefined",
                       rlhf::data_error);
  const auto neg_count = make<B>({1.0f, -1.0f, 3.0f}, s);
  CHECK_THROWS_AS(losses::orpo_loss<B>({l, l, neg_count, &sums}), rlhf::data_error);
  CHECK_THROWS_WITH_AS(losses::parse_nll_tokens("prompt"),
                       "parse_nll_tokens: unknown nll_tokens 'prompt'; accepted: "
                       "prompt_and_completion, completion",
                       rlhf::config_error);
}

}  // namespace test_orpo_cases
