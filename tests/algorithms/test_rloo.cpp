// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// RLOO advantages and loss (rlhf/losses/rloo.hpp).
#include <cmath>
#include <optional>
#include <vector>

#include "fixture.hpp"
#include "rlhf/losses/rloo.hpp"

namespace test_rloo_cases {

using namespace rlhf_test;
namespace losses = rlhf::losses;

namespace {

/// An input tensor whose data may hold null: NaN (an unscorable reward; JSON has no NaN).
template <class B>
typename B::tensor tensor_with_nan(const fixture_case& c, const char* key) {
  const auto& t = c.j.at("inputs").at(key);
  std::vector<float> v;
  for (const auto& x : t.at("data")) v.push_back(x.is_null() ? NAN : x.get<float>());
  return make<B>(v, fixture_case::shape_of(t));
}

/// An output scalar that may be null: NaN (a statistic over no values).
float scalar_or_nan(const fixture_case& c, const char* key) {
  const auto& v = c.j.at("outputs").at(key);
  return v.is_null() ? NAN : v.get<float>();
}

}  // namespace

TEST_CASE_TEMPLATE("rloo_advantages and rloo_loss match the PyTorch reference", B,
                   RLHF_TEST_BACKENDS) {
  int loss_cases = 0, advantage_cases = 0, k1_cases = 0;
  for (const auto& c : load_fixture("rloo.json")) {
    CAPTURE(c.name());
    const auto& j = c.config();
    losses::rloo_config cfg;
    if (j.at("kind") == "advantages") {
      ++advantage_cases;
      cfg.beta = j.at("beta").get<float>();
      cfg.num_generations = j.at("num_generations").get<rlhf::index_t>();
      if (cfg.num_generations == 1) ++k1_cases;
      cfg.normalize_advantages = j.at("normalize_advantages").get<bool>();
      if (!j.at("reward_clip_range").is_null()) {
        cfg.reward_clip_range = std::pair{j.at("reward_clip_range")[0].get<float>(),
                                          j.at("reward_clip_range")[1].get<float>()};
      }
      const auto rewards = tensor_with_nan<B>(c, "rewards");
      std::optional<typename B::tensor> mask, old, ref;
      if (c.has_input("completion_mask")) {
        mask = c.tensor<B>("completion_mask");
        old = c.tensor<B>("old_per_token_logps");
        ref = c.tensor<B>("ref_per_token_logps");
      }
      typename B::tensor out(rewards.shape());
      const auto m = losses::rloo_advantages<B>({.rewards = rewards,
                                                 .completion_mask = mask ? &*mask : nullptr,
                                                 .old_per_token_logps = old ? &*old : nullptr,
                                                 .ref_per_token_logps = ref ? &*ref : nullptr},
                                                cfg, out);
      check_close(host<B>(out), c.output("advantages"), "advantages");
      check_close(m.reward, scalar_or_nan(c, "reward"), "reward");
      check_close(m.reward_std, scalar_or_nan(c, "reward_std"), "reward_std");
      check_close(m.frac_reward_zero_std, c.output_scalar("frac_reward_zero_std"),
                  "frac_reward_zero_std");
      CHECK(m.num_unscorable == c.j.at("outputs").at("num_unscorable").get<rlhf::index_t>());
      check_close(m.frac_reward_unscorable, c.output_scalar("frac_reward_unscorable"),
                  "frac_reward_unscorable");
      CHECK(m.has_kl == c.has_output("kl"));
      if (c.has_output("kl")) check_close(m.kl, c.output_scalar("kl"), "kl");
      continue;
    }
    ++loss_cases;
    cfg.epsilon = j.at("epsilon").get<float>();
    if (!j.at("epsilon_high").is_null()) cfg.epsilon_high = j.at("epsilon_high").get<float>();
    const auto logp = c.tensor<B>("per_token_logps");
    const auto adv = c.tensor<B>("advantages");
    const auto mask = c.tensor<B>("completion_mask");
    std::optional<typename B::tensor> old;
    if (c.has_input("old_logps")) old = c.tensor<B>("old_logps");
    const auto r = losses::rloo_loss<B>({.per_token_logps = logp,
                                         .advantages = adv,
                                         .completion_mask = mask,
                                         .old_logps = old ? &*old : nullptr},
                                        cfg);
    check_close(r.loss, c.output_scalar("loss"), "loss");
    check_close(host<B>(r.losses), c.output("losses"), "losses");
    check_close(host<B>(r.grad_per_token_logps), c.output("grad_per_token_logps"),
                "grad_per_token_logps");
    check_close(r.metrics.clip_ratio_low_mean, c.output_scalar("clip_ratio_low_mean"),
                "clip_ratio/low_mean");
    check_close(r.metrics.clip_ratio_high_mean, c.output_scalar("clip_ratio_high_mean"),
                "clip_ratio/high_mean");
    check_close(r.metrics.clip_ratio_region_mean, c.output_scalar("clip_ratio_region_mean"),
                "clip_ratio/region_mean");
    check_close(r.metrics.clip_ratio_low_min, c.output_scalar("clip_ratio_low_min"),
                "clip_ratio/low_min");
    check_close(r.metrics.clip_ratio_high_max, c.output_scalar("clip_ratio_high_max"),
                "clip_ratio/high_max");
    CHECK(rlhf::metric_or(r.metrics.named(), "clip_ratio/low_min", -1.0f) ==
          r.metrics.clip_ratio_low_min);
    CHECK(rlhf::metric_or(r.metrics.named(), "clip_ratio/high_max", -1.0f) ==
          r.metrics.clip_ratio_high_max);
  }
  CHECK(advantage_cases >= 12);
  CHECK(k1_cases >= 5);
  CHECK(loss_cases >= 7);
}

TEST_CASE_TEMPLATE("rloo_advantages num_generations 1 (TRL's num_generations_eval = 1)", B,
                   RLHF_TEST_BACKENDS) {
  // No sibling to leave out: every advantage is 0, every group has std 0, unscorable or not.
  const auto r = make<B>({0.5f, NAN, -2.0f, 3.0f}, rlhf::shape{4});
  for (const bool normalize : {false, true}) {
    CAPTURE(normalize);
    losses::rloo_config cfg;
    cfg.beta = 0.0f;
    cfg.num_generations = 1;
    cfg.normalize_advantages = normalize;
    typename B::tensor out(rlhf::shape{4});
    const auto m = losses::rloo_advantages<B>({r}, cfg, out);
    CHECK(host<B>(out) == std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f});
    CHECK(m.frac_reward_zero_std == 1.0f);
    CHECK(m.reward == doctest::Approx(0.5f));
    CHECK(m.num_unscorable == 1);
  }
}

TEST_CASE_TEMPLATE("rloo_loss gradients match finite differences", B, RLHF_TEST_BACKENDS) {
  // 4 sequences × 3 tokens; sequence log-ratios -0.5, 0.02, 0.6, 0.1 (kinks at -0.223 and
  // log 1.28 = 0.247), advantages of both signs so that both branches are exercised.
  const rlhf::shape s{4, 3};
  const std::vector<float> logp{-1.2f, -0.4f, -2.1f, -0.9f, -0.3f, -1.7f,
                                -0.8f, -2.5f, -1.1f, -0.6f, -1.9f, -0.2f};
  const std::vector<float> mask{1, 1, 1, 1, 1, 0, 1, 0, 0, 1, 1, 1};
  const std::vector<float> seq{-3.7f, -1.2f, -0.8f, -2.7f};
  const std::vector<float> ratio{-0.5f, 0.02f, 0.6f, 0.1f};
  std::vector<float> old(4);
  for (std::size_t i = 0; i < 4; ++i) old[i] = seq[i] - ratio[i];
  const auto ot = make<B>(old, rlhf::shape{4});
  const auto mt = make<B>(mask, s);
  losses::rloo_config cfg;
  cfg.epsilon_high = 0.28f;
  for (const auto& a : {std::vector<float>{0.7f, -1.2f, -0.9f, 1.1f},
                        std::vector<float>{-0.7f, 1.2f, 0.9f, -1.1f}}) {
    const auto at = make<B>(a, rlhf::shape{4});
    auto loss_of = [&](const std::vector<float>& x) {
      const auto xt = make<B>(x, s);
      return static_cast<double>(losses::rloo_loss<B>({xt, at, mt, &ot}, cfg).loss);
    };
    const auto xt = make<B>(logp, s);
    const auto r = losses::rloo_loss<B>({xt, at, mt, &ot}, cfg);
    check_gradient_fd(loss_of, logp, host<B>(r.grad_per_token_logps), "d loss / d per_token_logps");
  }
}

TEST_CASE_TEMPLATE("rloo invariants: leave-one-out baseline, on-policy loss", B,
                   RLHF_TEST_BACKENDS) {
  // 2 prompts × 4 completions.
  const auto rewards = make<B>({1.0f, 0.0f, 0.5f, 2.5f, -1.0f, 3.0f, 0.25f, 0.75f}, rlhf::shape{8});
  losses::rloo_config cfg;
  cfg.num_generations = 4;
  cfg.beta = 0.0f;
  typename B::tensor adv(rlhf::shape{8});
  const auto m = losses::rloo_advantages<B>({rewards}, cfg, adv);
  const auto a = host<B>(adv);
  // A_i = r_i - mean of the others = k/(k-1)·(r_i - mean_group): Σ_group A = 0.
  CHECK(std::abs(a[0] + a[1] + a[2] + a[3]) < 1e-6f);
  CHECK(std::abs(a[4] + a[5] + a[6] + a[7]) < 1e-6f);
  check_close(a[0], 1.0f - (0.0f + 0.5f + 2.5f) / 3.0f, "A_0");
  CHECK(!m.has_kl);
  CHECK(m.named().size() == 4);  // reward, reward_std, frac_reward_zero_std, frac_reward_unscorable

  const rlhf::shape s{8, 3};
  std::vector<float> logp(24);
  for (std::size_t k = 0; k < 24; ++k) logp[k] = -0.2f - 0.09f * static_cast<float>(k % 7);
  const auto lt = make<B>(logp, s);
  const std::vector<float> mask{1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1,
                                1, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1};
  const auto mt = make<B>(mask, s);
  // On-policy the loss is -mean(A) = 0 and the gradient the plain -A_i·m_t / N.
  const auto r = losses::rloo_loss<B>({lt, adv, mt}, cfg);
  CHECK(std::abs(r.loss) < 1e-6f);
  std::vector<float> expected(24);
  for (std::size_t k = 0; k < 24; ++k) expected[k] = -a[k / 3] * mask[k] / 8.0f;
  check_close(host<B>(r.grad_per_token_logps), expected, "on-policy gradient");

  // Passing old_logps equal to the current sums is the same as on-policy.
  std::vector<float> sums(8, 0.0f);
  for (std::size_t k = 0; k < 24; ++k) sums[k / 3] += mask[k] * logp[k];
  const auto st = make<B>(sums, rlhf::shape{8});
  const auto r2 = losses::rloo_loss<B>({lt, adv, mt, &st}, cfg);
  check_close(r2.loss, r.loss, "loss, old = current");
  check_close(host<B>(r2.grad_per_token_logps), expected, "gradient, old = current");

  // The KL penalty: a sequence whose old logps exceed the reference by Σ d gets
  // r - β·Σ d before the baseline; with equal rewards the advantages come only from it.
  const auto eq = make<B>(std::vector<float>(8, 1.0f), rlhf::shape{8});
  std::vector<float> ref(logp);
  ref[0] -= 2.0f;  // sequence 0: Σ m·(old - ref) = 2
  const auto rt = make<B>(ref, s);
  cfg.beta = 0.05f;
  const auto mk = losses::rloo_advantages<B>({eq, &mt, &lt, &rt}, cfg, adv);
  const auto ak = host<B>(adv);
  check_close(ak[0], -0.1f, "A_0 with KL");
  check_close(ak[1], 0.1f / 3.0f, "A_1 with KL");
  CHECK(ak[4] == 0.0f);
  check_close(mk.kl, 2.0f / 18.0f, "kl");
  CHECK(mk.frac_reward_zero_std == 0.5f);

  // Normalised advantages: mean 0, std ~1.
  cfg.beta = 0.0f;
  cfg.normalize_advantages = true;
  losses::rloo_advantages<B>({rewards}, cfg, adv);
  const auto an = host<B>(adv);
  double mean = 0.0, var = 0.0;
  for (float v : an) mean += v / 8.0;
  for (float v : an) var += (v - mean) * (v - mean) / 7.0;
  CHECK(std::abs(mean) < 1e-6);
  CHECK(std::abs(std::sqrt(var) - 1.0) < 1e-3);
}

TEST_CASE_TEMPLATE("rloo_advantages: unscorable (NaN) rewards are left out, get 0, are counted", B,
                   RLHF_TEST_BACKENDS) {
  // 3 prompts × 4: three scorable; one scorable (baseline 0/0); none.
  const std::vector<float> v{1.0f, NAN, 0.0f, 2.0f, NAN, 5.0f, NAN, NAN, NAN, NAN, NAN, NAN};
  const auto rewards = make<B>(v, rlhf::shape{12});
  losses::rloo_config cfg;
  cfg.num_generations = 4;
  cfg.beta = 0.0f;
  typename B::tensor adv(rlhf::shape{12});
  const auto m = losses::rloo_advantages<B>({rewards}, cfg, adv);
  const auto a = host<B>(adv);
  // Group 0: the baseline of each is the mean of its two scorable siblings.
  check_close(std::vector<float>(a.begin(), a.begin() + 4),
              std::vector<float>{0.0f, 0.0f, -1.5f, 1.5f}, "group 0");
  for (std::size_t i = 4; i < 12; ++i) CHECK(a[i] == 0.0f);
  CHECK(m.num_unscorable == 8);
  check_close(m.frac_reward_unscorable, 8.0f / 12.0f, "frac_reward_unscorable");
  check_close(m.reward, 2.0f, "reward: nanmean");
  check_close(m.reward_std, std::sqrt(14.0f / 3.0f), "reward_std: nanstd of the batch");
  CHECK(m.frac_reward_zero_std == 0.0f);  // std 1, NaN (one value), NaN (none)
  CHECK(rlhf::metric_or(m.named(), "frac_reward_unscorable", -1.0f) == m.frac_reward_unscorable);

  SUBCASE("reward and reward_std are of the raw rewards, not the clipped ones") {
    cfg.reward_clip_range = std::pair{0.0f, 1.0f};
    const auto c = losses::rloo_advantages<B>({rewards}, cfg, adv);
    check_close(c.reward, 2.0f, "reward");
    check_close(host<B>(adv)[3], 1.0f - 0.5f, "A_3 of the clipped rewards {1, 0, 1}");
  }
  SUBCASE("normalised over the scorable advantages only; in place") {
    cfg.normalize_advantages = true;
    auto r = make<B>(v, rlhf::shape{12});
    losses::rloo_advantages<B>({r}, cfg, r);
    const auto an = host<B>(r);
    // A = {0, -1.5, 1.5} (nanmean 0, nanstd 1.5): the third of them -1.5 / (1.5 + 1e-4).
    check_close(an[2], -1.5f / (1.5f + 1e-4f), "normalised A_2");
    check_close(an[0], 0.0f, "normalised A_0");
    CHECK(an[1] == 0.0f);
    for (std::size_t i = 4; i < 12; ++i) CHECK(an[i] == 0.0f);
  }
  SUBCASE("every completion unscorable: NaN statistics, advantages 0") {
    const auto all = make<B>(std::vector<float>(4, NAN), rlhf::shape{4});
    typename B::tensor a4(rlhf::shape{4});
    cfg.num_generations = 2;
    const auto mn = losses::rloo_advantages<B>({all}, cfg, a4);
    for (const float x : host<B>(a4)) CHECK(x == 0.0f);
    CHECK(std::isnan(mn.reward));
    CHECK(std::isnan(mn.reward_std));
    CHECK(mn.num_unscorable == 4);
  }
}

TEST_CASE_TEMPLATE("rloo_loss clip_ratio/low_min and high_max: min / max of per-sequence flags", B,
                   RLHF_TEST_BACKENDS) {
  // 3 sequences × 2 tokens; sequence log-ratios -0.5 (ratio 0.61), 0.5 (1.65), 0.
  const rlhf::shape s{3, 2};
  const auto lp = make<B>({-1.0f, -0.5f, -0.25f, -2.0f, -1.5f, -0.5f}, s);
  const auto mask = make<B>(std::vector<float>(6, 1.0f), s);
  const auto old = make<B>({-1.0f, -2.75f, -2.0f}, rlhf::shape{3});
  SUBCASE("one low- and one high-clipped sequence of three: high_max 1, low_min 0") {
    const auto adv = make<B>({-1.0f, 1.0f, -1.0f}, rlhf::shape{3});
    const auto r = losses::rloo_loss<B>({lp, adv, mask, &old});
    check_close(r.metrics.clip_ratio_low_mean, 1.0f / 3.0f, "low_mean");
    check_close(r.metrics.clip_ratio_high_mean, 1.0f / 3.0f, "high_mean");
    CHECK(r.metrics.clip_ratio_high_max == 1.0f);
    CHECK(r.metrics.clip_ratio_low_min == 0.0f);
  }
  SUBCASE("every sequence low-clipped (log-ratios all -0.5): low_min 1") {
    const auto low_old = make<B>({-1.0f, -1.75f, -1.5f}, rlhf::shape{3});
    const auto adv = make<B>({-1.0f, -0.5f, -2.0f}, rlhf::shape{3});
    const auto r = losses::rloo_loss<B>({lp, adv, mask, &low_old});
    CHECK(r.metrics.clip_ratio_low_mean == 1.0f);
    CHECK(r.metrics.clip_ratio_low_min == 1.0f);
    CHECK(r.metrics.clip_ratio_high_max == 0.0f);
    CHECK(rlhf::metric_or(r.metrics.named(), "clip_ratio/low_min", -1.0f) == 1.0f);
  }
}

TEST_CASE("rloo_config has TRL's defaults") {
  const losses::rloo_config cfg;
  CHECK(cfg.beta == 0.05f);
  CHECK(cfg.num_generations == 2);
  CHECK(cfg.epsilon == 0.2f);
  CHECK(!cfg.epsilon_high);
  CHECK(!cfg.normalize_advantages);
  CHECK(!cfg.reward_clip_range);
}

TEST_CASE_TEMPLATE("rloo bad input", B, RLHF_TEST_BACKENDS) {
  const auto r6 = make<B>({1, 2, 3, 4, 5, 6}, rlhf::shape{6});
  typename B::tensor out(rlhf::shape{6});
  losses::rloo_config cfg;
  cfg.beta = 0.0f;
  cfg.num_generations = 4;
  CHECK_THROWS_WITH_AS(losses::rloo_advantages<B>({r6}, cfg, out),
                       "rloo_advantages: num_generations (4) must divide the number of "
                       "rewards (6)",
                       rlhf::shape_error);
  cfg.num_generations = 0;
  CHECK_THROWS_WITH_AS(losses::rloo_advantages<B>({r6}, cfg, out),
                       "rloo_advantages: num_generations must be >= 1, got 0", rlhf::config_error);
  cfg.num_generations = 2;
  cfg.beta = -0.05f;
  CHECK_THROWS_AS(losses::rloo_advantages<B>({r6}, cfg, out), rlhf::config_error);
  cfg.beta = 0.05f;
  CHECK_THROWS_WITH_AS(losses::rloo_advantages<B>({r6}, cfg, out),
                       "rloo_advantages: completion_mask, old_per_token_logps and "
                       "ref_per_token_logps are required when beta > 0, got beta = "
                       "0.0500000007",
                       rlhf::config_error);
  cfg.beta = 0.0f;
  cfg.reward_clip_range = std::pair{1.0f, -1.0f};
  CHECK_THROWS_AS(losses::rloo_advantages<B>({r6}, cfg, out), rlhf::config_error);
  cfg.reward_clip_range.reset();
  const typename B::tensor empty1(rlhf::shape{0});
  CHECK_THROWS_AS(losses::rloo_advantages<B>({empty1}, cfg, out), rlhf::shape_error);
  // A NaN reward is an unscorable completion (allowed); ±Inf is not a reward.
  const auto inf_r = make<B>({1, 2, INFINITY, 4, 5, 6}, rlhf::shape{6});
  CHECK_THROWS_WITH_AS(losses::rloo_advantages<B>({inf_r}, cfg, out),
                       "rloo_advantages: rewards must be finite or NaN, got inf at flat index 2",
                       rlhf::data_error);

  const rlhf::shape s{2, 3};
  const auto lp = make<B>({-1.0f, -0.5f, -2.0f, -0.3f, -0.7f, -1.1f}, s);
  const auto adv = make<B>({0.5f, -0.5f}, rlhf::shape{2});
  const auto mask = make<B>({1, 1, 0, 1, 0, 0}, s);
  const auto old3 = make<B>({1, 2, 3}, rlhf::shape{3});
  CHECK_THROWS_WITH_AS(losses::rloo_loss<B>({lp, adv, mask, &old3}),
                       "rloo_loss: old_logps has shape (3), expected (2) (one per sequence)",
                       rlhf::shape_error);
  losses::rloo_config bad;
  bad.epsilon = 1.5f;
  CHECK_THROWS_WITH_AS(losses::rloo_loss<B>({lp, adv, mask}, bad),
                       "rloo_loss: epsilon must be in (0, 1), got 1.5", rlhf::config_error);
  bad = {};
  bad.epsilon_high = -0.1f;
  CHECK_THROWS_AS(losses::rloo_loss<B>({lp, adv, mask}, bad), rlhf::config_error);
  const auto bad_mask = make<B>({1, NAN, 0, 1, 0, 0}, s);
  CHECK_THROWS_WITH_AS(losses::rloo_loss<B>({lp, adv, bad_mask}),
                       "rloo_loss: completion_mask must hold finite weights >= 0, got nan at "
                       "flat index 1",
                       rlhf::data_error);
  const typename B::tensor empty2(rlhf::shape{0, 3});
  CHECK_THROWS_AS(losses::rloo_loss<B>({empty2, empty1, empty2}), rlhf::shape_error);
}

}  // namespace test_rloo_cases
