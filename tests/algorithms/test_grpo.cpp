// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// GRPO advantages, reward combination and loss (rlhf/losses/grpo.hpp).
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "rlhf/losses/grpo.hpp"

using namespace rlhf_test;
namespace losses = rlhf::losses;

namespace {

std::optional<float> optional_float(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<float>();
}

losses::grpo_config config_of(const fixture_case& c) {
  const auto& j = c.config();
  losses::grpo_config cfg;
  cfg.beta = j.at("beta").get<float>();
  cfg.epsilon = j.at("epsilon").get<float>();
  cfg.epsilon_high = optional_float(j, "epsilon_high");
  cfg.delta = optional_float(j, "delta");
  cfg.importance_sampling_level =
      losses::parse_grpo_importance_sampling_level(j.at("importance_sampling_level").get<std::string>());
  cfg.loss_type = losses::parse_grpo_loss_type(j.at("loss_type").get<std::string>());
  cfg.max_completion_length = j.at("max_completion_length").get<rlhf::index_t>();
  return cfg;
}

}  // namespace

TEST_CASE_TEMPLATE("grpo_advantages and grpo_loss match the PyTorch reference", B,
                   RLHF_TEST_BACKENDS) {
  int loss_cases = 0, advantage_cases = 0;
  for (const auto& c : load_fixture("grpo.json")) {
    CAPTURE(c.name());
    const auto& j = c.config();
    if (j.at("kind") == "advantages") {
      ++advantage_cases;
      const auto rewards = c.tensor<B>("rewards");
      typename B::tensor out(rewards.shape());
      const auto m = losses::grpo_advantages<B>(
          rewards, j.at("group_size").get<rlhf::index_t>(),
          losses::parse_grpo_scale_rewards(j.at("scale_rewards").get<std::string>()), out);
      check_close(host<B>(out), c.output("advantages"), "advantages");
      check_close(m.reward, c.output_scalar("reward"), "reward");
      check_close(m.reward_std, c.output_scalar("reward_std"), "reward_std");
      check_close(m.frac_reward_zero_std, c.output_scalar("frac_reward_zero_std"),
                  "frac_reward_zero_std");
      continue;
    }
    ++loss_cases;
    const auto logp = c.tensor<B>("per_token_logps");
    const auto adv = c.tensor<B>("advantages");
    const auto mask = c.tensor<B>("completion_mask");
    std::optional<typename B::tensor> old, ref;
    if (c.has_input("old_per_token_logps")) old = c.tensor<B>("old_per_token_logps");
    if (c.has_input("ref_per_token_logps")) ref = c.tensor<B>("ref_per_token_logps");
    const auto cfg = config_of(c);
    const auto r = losses::grpo_loss<B>({.per_token_logps = logp,
                                         .advantages = adv,
                                         .completion_mask = mask,
                                         .old_per_token_logps = old ? &*old : nullptr,
                                         .ref_per_token_logps = ref ? &*ref : nullptr,
                                         .num_items_in_batch = optional_float(j, "num_items_in_batch")},
                                        cfg);
    check_close(r.loss, c.output_scalar("loss"), "loss");
    check_close(host<B>(r.per_token_loss), c.output("per_token_loss"), "per_token_loss");
    check_close(host<B>(r.grad_per_token_logps), c.output("grad_per_token_logps"),
                "grad_per_token_logps");
    check_close(r.metrics.clip_ratio_low_mean, c.output_scalar("clip_ratio_low_mean"),
                "clip_ratio/low_mean");
    check_close(r.metrics.clip_ratio_high_mean, c.output_scalar("clip_ratio_high_mean"),
                "clip_ratio/high_mean");
    check_close(r.metrics.clip_ratio_region_mean, c.output_scalar("clip_ratio_region_mean"),
                "clip_ratio/region_mean");
    CHECK(r.metrics.has_kl == c.has_output("kl"));
    if (c.has_output("kl")) check_close(r.metrics.kl, c.output_scalar("kl"), "kl");
    const auto named = r.metrics.named();
    CHECK(rlhf::metric_or(named, "clip_ratio/high_max", -1.0f) == r.metrics.clip_ratio_high_mean);
    CHECK(rlhf::metric_or(named, "kl", -1.0f) == (r.metrics.has_kl ? r.metrics.kl : -1.0f));
  }
  CHECK(advantage_cases >= 6);
  CHECK(loss_cases >= 50);
}

TEST_CASE_TEMPLATE("grpo_loss gradients match finite differences", B, RLHF_TEST_BACKENDS) {
  // 4 sequences × 4 tokens. Per-token log-ratios and the sequence means (masked) stay at
  // least 0.04 from every kink: log 0.8 = -0.223, log 1.2 = 0.182, log 1.5 = 0.405.
  const rlhf::shape s{4, 4};
  const std::vector<float> logp{-1.2f, -0.4f, -2.1f, -0.9f, -0.3f, -1.7f, -0.8f, -2.5f,
                                -1.1f, -0.6f, -1.9f, -0.2f, -0.7f, -1.4f, -0.5f, -1.0f};
  const std::vector<float> delta{0.05f, -0.1f, 0.3f, -0.4f,   // mean -0.0375
                                 0.9f, 0.3f, 0.6f, 0.8f,      // 3 tokens: mean 0.6
                                 -0.7f, -0.3f, -0.5f, 0.1f,   // 2 tokens: mean -0.5
                                 0.5f, 0.7f, 0.55f, 0.6f};    // mean 0.5875
  const std::vector<float> mask{1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1};
  std::vector<float> old(16), ref(16);
  for (std::size_t k = 0; k < 16; ++k) {
    old[k] = logp[k] - delta[k];
    ref[k] = logp[k] + 0.3f * std::sin(static_cast<float>(k));
  }
  const auto adv = make<B>({0.8f, -1.1f, 0.6f, 1.3f}, rlhf::shape{4});
  const auto mt = make<B>(mask, s), ot = make<B>(old, s), rt = make<B>(ref, s);
  for (const auto level : {losses::grpo_importance_sampling_level::token,
                           losses::grpo_importance_sampling_level::sequence}) {
    for (const auto type : {losses::grpo_loss_type::grpo, losses::grpo_loss_type::bnpo,
                            losses::grpo_loss_type::dr_grpo, losses::grpo_loss_type::dapo}) {
      for (const bool two_sided : {false, true}) {
        losses::grpo_config cfg;
        cfg.beta = 0.04f;
        cfg.epsilon_high = 0.28f;  // log 1.28 = 0.247
        if (two_sided) cfg.delta = 1.5f;
        cfg.importance_sampling_level = level;
        cfg.loss_type = type;
        cfg.max_completion_length = 6;
        CAPTURE(losses::to_string(level));
        CAPTURE(losses::to_string(type));
        CAPTURE(two_sided);
        auto loss_of = [&](const std::vector<float>& x) {
          const auto xt = make<B>(x, s);
          return static_cast<double>(
              losses::grpo_loss<B>({xt, adv, mt, &ot, &rt}, cfg).loss);
        };
        const auto xt = make<B>(logp, s);
        const auto r = losses::grpo_loss<B>({xt, adv, mt, &ot, &rt}, cfg);
        check_gradient_fd(loss_of, logp, host<B>(r.grad_per_token_logps),
                          "d loss / d per_token_logps");
      }
    }
  }
}

TEST_CASE_TEMPLATE("grpo invariants: on-policy loss, zero-std groups, token = sequence on-policy",
                   B, RLHF_TEST_BACKENDS) {
  // 2 prompts × 3 completions, group-centred advantages.
  const auto rewards = make<B>({1.0f, 0.0f, 0.5f, 2.0f, -1.0f, 0.25f}, rlhf::shape{6});
  typename B::tensor adv(rlhf::shape{6});
  losses::grpo_advantages<B>(rewards, 3, losses::grpo_scale_rewards::group, adv);
  const auto a = host<B>(adv);
  CHECK(std::abs(a[0] + a[1] + a[2]) < 1e-6f);
  CHECK(std::abs(a[3] + a[4] + a[5]) < 1e-6f);

  const rlhf::shape s{6, 4};
  std::vector<float> logp(24);
  for (std::size_t k = 0; k < 24; ++k) logp[k] = -0.1f - 0.07f * static_cast<float>(k % 11);
  const auto lt = make<B>(logp, s);
  // Unequal lengths (4, 1, 2 | 4, 1, 3).
  const std::vector<float> uneven{1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0,
                                  1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0};
  const auto mu = make<B>(uneven, s);
  const std::vector<float> lengths{4, 1, 2, 4, 1, 3};

  SUBCASE("grpo aggregation: the loss on-policy is -mean_i(A_i) = 0 for group-centred A") {
    losses::grpo_config cfg;
    cfg.loss_type = losses::grpo_loss_type::grpo;
    const auto r = losses::grpo_loss<B>({lt, adv, mu}, cfg);
    CHECK(std::abs(r.loss) < 1e-6f);
    // The gradient is the plain policy gradient -A_i·m_t / (N·Σ_t m).
    std::vector<float> expected(24);
    for (std::size_t k = 0; k < 24; ++k) {
      expected[k] = -a[k / 4] * uneven[k] / (6.0f * lengths[k / 4]);
    }
    check_close(host<B>(r.grad_per_token_logps), expected, "on-policy gradient");
    CHECK(r.metrics.clip_ratio_region_mean == 0.0f);
  }
  SUBCASE("token aggregations on-policy: -Σ A_i·len_i / D, 0 only when lengths match per group") {
    float weighted = 0.0f;
    for (std::size_t i = 0; i < 6; ++i) weighted += a[i] * lengths[i];
    losses::grpo_config cfg;
    cfg.loss_type = losses::grpo_loss_type::bnpo;
    check_close(losses::grpo_loss<B>({lt, adv, mu}, cfg).loss, -weighted / 15.0f, "bnpo");
    cfg.loss_type = losses::grpo_loss_type::dr_grpo;
    cfg.max_completion_length = 5;
    check_close(losses::grpo_loss<B>({lt, adv, mu}, cfg).loss, -weighted / 30.0f, "dr_grpo");
    CHECK(std::abs(weighted) > 1.0f);
    // Same length within each group: Σ_group A_i·len = len·Σ_group A_i = 0.
    const std::vector<float> even{1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0,
                                  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const auto me = make<B>(even, s);
    for (const auto type : {losses::grpo_loss_type::bnpo, losses::grpo_loss_type::dr_grpo,
                            losses::grpo_loss_type::dapo}) {
      cfg.loss_type = type;
      CHECK(std::abs(losses::grpo_loss<B>({lt, adv, me}, cfg).loss) < 1e-6f);
    }
  }
  SUBCASE("on-policy, token- and sequence-level importance weights give the same gradient") {
    const auto ref = make<B>(std::vector<float>(24, -0.5f), s);
    for (const auto type : {losses::grpo_loss_type::grpo, losses::grpo_loss_type::bnpo,
                            losses::grpo_loss_type::dr_grpo, losses::grpo_loss_type::dapo}) {
      losses::grpo_config cfg;
      cfg.loss_type = type;
      cfg.beta = 0.1f;
      const auto tok = losses::grpo_loss<B>({lt, adv, mu, nullptr, &ref}, cfg);
      cfg.importance_sampling_level = losses::grpo_importance_sampling_level::sequence;
      const auto seq = losses::grpo_loss<B>({lt, adv, mu, nullptr, &ref}, cfg);
      CAPTURE(losses::to_string(type));
      check_close(seq.loss, tok.loss, "loss");
      check_close(host<B>(seq.grad_per_token_logps), host<B>(tok.grad_per_token_logps), "grad");
    }
  }
  SUBCASE("k3 is 0 at policy = reference, and then the loss equals the beta = 0 loss") {
    losses::grpo_config cfg;
    cfg.beta = 0.5f;
    const auto with = losses::grpo_loss<B>({lt, adv, mu, nullptr, &lt}, cfg);
    cfg.beta = 0.0f;
    const auto without = losses::grpo_loss<B>({lt, adv, mu}, cfg);
    CHECK(with.metrics.kl == 0.0f);
    CHECK(without.metrics.named().size() == 5);  // no "kl" when beta = 0
    check_close(with.loss, without.loss, "loss");
    check_close(host<B>(with.grad_per_token_logps), host<B>(without.grad_per_token_logps), "grad");
  }
  SUBCASE("a group of equal rewards has advantage 0 and contributes no gradient") {
    const auto eq = make<B>({0.5f, 0.5f, 0.5f, 2.0f, -1.0f, 0.25f}, rlhf::shape{6});
    for (const auto scale : {losses::grpo_scale_rewards::group, losses::grpo_scale_rewards::batch,
                             losses::grpo_scale_rewards::none}) {
      typename B::tensor adv_eq(rlhf::shape{6});
      const auto m = losses::grpo_advantages<B>(eq, 3, scale, adv_eq);
      const auto ae = host<B>(adv_eq);
      CHECK(ae[0] == 0.0f);
      CHECK(ae[2] == 0.0f);
      if (scale != losses::grpo_scale_rewards::batch) CHECK(m.frac_reward_zero_std == 0.5f);
      std::vector<float> old(logp);
      for (auto& v : old) v += 0.5f;  // far off-policy
      const auto ot = make<B>(old, s);
      const auto r = losses::grpo_loss<B>({lt, adv_eq, mu, &ot});
      const auto g = host<B>(r.grad_per_token_logps);
      for (std::size_t k = 0; k < 12; ++k) CHECK(g[k] == 0.0f);
    }
  }
  SUBCASE("scale_rewards none is Dr. GRPO: r - mean_group, in place") {
    auto r = make<B>({1.0f, 0.0f, 0.5f, 2.0f, -1.0f, 0.5f}, rlhf::shape{6});
    losses::grpo_advantages<B>(r, 3, losses::grpo_scale_rewards::none, r);
    check_close(host<B>(r), std::vector<float>{0.5f, -0.5f, 0.0f, 1.5f, -1.5f, 0.0f}, "A");
  }
}

TEST_CASE_TEMPLATE("grpo_combine_rewards: weighted nansum and per-function metrics", B,
                   RLHF_TEST_BACKENDS) {
  // 3 completions × 2 reward functions; NaN = the function does not apply.
  const auto per_func = make<B>({1.0f, 0.5f, NAN, 2.0f, 3.0f, NAN}, rlhf::shape{3, 2});
  typename B::tensor out(rlhf::shape{3});
  const std::vector<float> w{2.0f, -1.0f};
  const auto m = losses::grpo_combine_rewards<B>(per_func, w, out);
  check_close(host<B>(out), std::vector<float>{1.5f, -2.0f, 6.0f}, "combined");
  check_close(m.mean, std::vector<float>{2.0f, 1.25f}, "means");
  check_close(m.std, std::vector<float>{std::sqrt(2.0f), std::sqrt(1.125f)}, "stds");
  const std::vector<std::string> names{"accuracy", "format"};
  const auto named = m.named(names);
  CHECK(named.size() == 4);
  CHECK(named[2].first == "rewards/format/mean");
  losses::grpo_combine_rewards<B>(per_func, {}, out);
  check_close(host<B>(out), std::vector<float>{1.5f, 2.0f, 3.0f}, "unit weights");
  const auto inf = make<B>({1.0f, INFINITY}, rlhf::shape{1, 2});
  typename B::tensor one(rlhf::shape{1});
  CHECK_THROWS_AS(losses::grpo_combine_rewards<B>(inf, {}, one), rlhf::data_error);
  const std::vector<float> three{1.0f, 1.0f, 1.0f};
  CHECK_THROWS_AS(losses::grpo_combine_rewards<B>(per_func, three, out), rlhf::shape_error);
}

TEST_CASE("grpo option names parse and print as TRL spells them") {
  for (const char* name : {"grpo", "bnpo", "dr_grpo", "dapo"}) {
    CHECK(std::string(losses::to_string(losses::parse_grpo_loss_type(name))) == name);
  }
  CHECK(losses::parse_grpo_scale_rewards("true") == losses::grpo_scale_rewards::group);
  CHECK(losses::parse_grpo_scale_rewards("False") == losses::grpo_scale_rewards::none);
  CHECK(losses::parse_grpo_importance_sampling_level("sequence") ==
        losses::grpo_importance_sampling_level::sequence);
  CHECK_THROWS_WITH_AS(losses::parse_grpo_loss_type("ppo"),
                       "parse_grpo_loss_type: loss_type must be one of grpo, bnpo, dr_grpo, "
                       "dapo, got 'ppo'",
                       rlhf::config_error);
  CHECK_THROWS_AS(losses::parse_grpo_scale_rewards("global"), rlhf::config_error);
  // TRL's defaults.
  const losses::grpo_config cfg;
  CHECK(cfg.beta == 0.0f);
  CHECK(cfg.epsilon == 0.2f);
  CHECK(!cfg.epsilon_high);
  CHECK(!cfg.delta);
  CHECK(cfg.loss_type == losses::grpo_loss_type::dapo);
  CHECK(cfg.importance_sampling_level == losses::grpo_importance_sampling_level::token);
}

TEST_CASE_TEMPLATE("grpo bad input", B, RLHF_TEST_BACKENDS) {
  const rlhf::shape s{2, 3};
  const auto lp = make<B>({-1.0f, -0.5f, -2.0f, -0.3f, -0.7f, -1.1f}, s);
  const auto adv = make<B>({0.5f, -0.5f}, rlhf::shape{2});
  const auto mask = make<B>({1, 1, 0, 1, 0, 0}, s);

  // Enum options cast from an out-of-range integer, and delta inside the clip range.
  {
    losses::grpo_config bad;
    bad.loss_type = static_cast<losses::grpo_loss_type>(9);
    CHECK_THROWS_WITH_AS(losses::grpo_loss<B>({lp, adv, mask}, bad),
                         "grpo_loss: loss_type must be one of its 4 enumerators (0..3), got 9",
                         rlhf::config_error);
    bad = {};
    bad.importance_sampling_level = static_cast<losses::grpo_importance_sampling_level>(2);
    CHECK_THROWS_WITH_AS(losses::grpo_loss<B>({lp, adv, mask}, bad),
                         "grpo_loss: importance_sampling_level must be one of its 2 enumerators "
                         "(0..1), got 2",
                         rlhf::config_error);
    const auto r4 = make<B>({1, 2, 3, 4}, rlhf::shape{4});
    typename B::tensor out4(rlhf::shape{4});
    CHECK_THROWS_WITH_AS(
        losses::grpo_advantages<B>(r4, 2, static_cast<losses::grpo_scale_rewards>(3), out4),
        "grpo_advantages: scale_rewards must be one of its 3 enumerators (0..2), got 3",
        rlhf::config_error);
    // delta <= 1 + epsilon_high caps the ratio inside the clip range: the gradient there
    // would be 0 with no error. 1 + epsilon_high itself is rejected too (TRL: delta > 1 + ε).
    bad = {};
    bad.delta = 0.9f;
    CHECK_THROWS_WITH_AS(losses::grpo_loss<B>({lp, adv, mask}, bad),
                         "grpo_loss: delta must be finite and > 1 + epsilon_high = 1.20000005, "
                         "got 0.899999976",
                         rlhf::config_error);
    bad.delta = 1.1f;
    CHECK_THROWS_AS(losses::grpo_loss<B>({lp, adv, mask}, bad), rlhf::config_error);
    bad.epsilon_high = 0.28f;
    bad.delta = 1.25f;  // above 1 + epsilon but not above 1 + epsilon_high
    CHECK_THROWS_AS(losses::grpo_loss<B>({lp, adv, mask}, bad), rlhf::config_error);
    bad.delta = 1.3f;
    CHECK_NOTHROW(losses::grpo_loss<B>({lp, adv, mask}, bad));
  }

  // Shapes.
  const auto short_mask = make<B>({1, 1, 1, 1}, rlhf::shape{2, 2});
  CHECK_THROWS_WITH_AS(losses::grpo_loss<B>({lp, adv, short_mask}),
                       "grpo_loss: completion_mask has shape (2, 2) but per_token_logps has "
                       "shape (2, 3); they must match",
                       rlhf::shape_error);
  const auto adv3 = make<B>({0.5f, -0.5f, 1.0f}, rlhf::shape{3});
  CHECK_THROWS_AS(losses::grpo_loss<B>({lp, adv3, mask}), rlhf::shape_error);
  const typename B::tensor empty2(rlhf::shape{0, 3}), empty1(rlhf::shape{0});
  CHECK_THROWS_WITH_AS(losses::grpo_loss<B>({empty2, empty1, empty2}),
                       "grpo_loss: batch is empty (per_token_logps has 0 sequences)",
                       rlhf::shape_error);
  const auto r5 = make<B>({1, 2, 3, 4, 5}, rlhf::shape{5});
  typename B::tensor out5(rlhf::shape{5});
  CHECK_THROWS_WITH_AS(
      losses::grpo_advantages<B>(r5, 2, losses::grpo_scale_rewards::group, out5),
      "grpo_advantages: group_size (2) must divide the number of rewards (5)",
      rlhf::shape_error);
  CHECK_THROWS_AS(losses::grpo_advantages<B>(empty1, 2, losses::grpo_scale_rewards::group, out5),
                  rlhf::shape_error);
  CHECK_THROWS_AS(losses::grpo_advantages<B>(r5, 0, losses::grpo_scale_rewards::group, out5),
                  rlhf::config_error);

  // Hyper-parameters.
  losses::grpo_config cfg;
  cfg.epsilon = 1.0f;
  CHECK_THROWS_WITH_AS(losses::grpo_loss<B>({lp, adv, mask}, cfg),
                       "grpo_loss: epsilon must be in (0, 1), got 1", rlhf::config_error);
  cfg = {};
  cfg.epsilon = 0.0f;
  CHECK_THROWS_AS(losses::grpo_loss<B>({lp, adv, mask}, cfg), rlhf::config_error);
  cfg = {};
  cfg.epsilon_high = 0.0f;
  CHECK_THROWS_AS(losses::grpo_loss<B>({lp, adv, mask}, cfg), rlhf::config_error);
  cfg = {};
  cfg.beta = -0.1f;
  CHECK_THROWS_AS(losses::grpo_loss<B>({lp, adv, mask}, cfg), rlhf::config_error);
  cfg = {};
  cfg.beta = 0.04f;
  CHECK_THROWS_WITH_AS(losses::grpo_loss<B>({lp, adv, mask}, cfg),
                       "grpo_loss: ref_per_token_logps is required when beta > 0, got beta = "
                       "0.0399999991 and no ref_per_token_logps",
                       rlhf::config_error);
  cfg = {};
  cfg.delta = -1.0f;
  CHECK_THROWS_AS(losses::grpo_loss<B>({lp, adv, mask}, cfg), rlhf::config_error);
  cfg = {};
  cfg.loss_type = losses::grpo_loss_type::dr_grpo;
  cfg.max_completion_length = 0;
  CHECK_THROWS_AS(losses::grpo_loss<B>({lp, adv, mask}, cfg), rlhf::config_error);
  CHECK_THROWS_AS(losses::grpo_loss<B>({.per_token_logps = lp,
                                        .advantages = adv,
                                        .completion_mask = mask,
                                        .num_items_in_batch = 0.0f}),
                  rlhf::config_error);

  // Values.
  const auto nan_lp = make<B>({-1.0f, -0.5f, -2.0f, NAN, -0.7f, -1.1f}, s);
  CHECK_THROWS_WITH_AS(losses::grpo_loss<B>({nan_lp, adv, mask}),
                       "grpo_loss: per_token_logps must be finite, got nan at flat index 3",
                       rlhf::data_error);
  const auto inf_old = make<B>({-1.0f, -INFINITY, -2.0f, -0.3f, -0.7f, -1.1f}, s);
  CHECK_THROWS_AS(losses::grpo_loss<B>({lp, adv, mask, &inf_old}), rlhf::data_error);
  const auto neg_mask = make<B>({1, -1, 0, 1, 0, 0}, s);
  CHECK_THROWS_AS(losses::grpo_loss<B>({lp, adv, neg_mask}), rlhf::data_error);
  const auto nan_r = make<B>({1.0f, NAN}, rlhf::shape{2});
  typename B::tensor out2(rlhf::shape{2});
  CHECK_THROWS_AS(losses::grpo_advantages<B>(nan_r, 2, losses::grpo_scale_rewards::group, out2),
                  rlhf::data_error);

  // An all-zero mask row is allowed (TRL's mask_truncated_completions makes them): it
  // contributes 0 to the loss and gets no gradient.
  const auto zero_row = make<B>({1, 1, 0, 0, 0, 0}, s);
  losses::grpo_config g;
  g.loss_type = losses::grpo_loss_type::grpo;
  const auto r = losses::grpo_loss<B>({lp, adv, zero_row}, g);
  check_close(r.loss, -0.5f / 2.0f, "loss with an empty row");
  const auto grad = host<B>(r.grad_per_token_logps);
  CHECK(grad[3] == 0.0f);
  CHECK(grad[4] == 0.0f);
}
