// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// GRPO advantages, reward combination and loss (rlhf/losses/grpo.hpp).
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "rlhf/losses/grpo.hpp"

namespace test_grpo_cases {

using namespace rlhf_test;
namespace losses = rlhf::losses;

namespace {

bool has_metric(const rlhf::named_metrics& m, const std::string& name) {
  for (const auto& [key, value] : m) {
    if (key == name) return true;
  }
  return false;
}

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
  cfg.importance_sampling_level = losses::parse_grpo_importance_sampling_level(
      j.at("importance_sampling_level").get<std::string>());
  cfg.loss_type = losses::parse_grpo_loss_type(j.at("loss_type").get<std::string>());
  cfg.max_completion_length = j.at("max_completion_length").get<rlhf::index_t>();
  // The loss options of TRL 1.16 (fixture cases always write them).
  cfg.use_bias_correction_kl = j.at("use_bias_correction_kl").get<bool>();
  cfg.sapo_temperature_pos = j.at("sapo_temperature_pos").get<float>();
  cfg.sapo_temperature_neg = j.at("sapo_temperature_neg").get<float>();
  cfg.vespo_k_pos = j.at("vespo_k_pos").get<float>();
  cfg.vespo_lambda_pos = j.at("vespo_lambda_pos").get<float>();
  cfg.vespo_k_neg = j.at("vespo_k_neg").get<float>();
  cfg.vespo_lambda_neg = j.at("vespo_lambda_neg").get<float>();
  cfg.top_entropy_quantile = j.at("top_entropy_quantile").get<float>();
  cfg.off_policy_mask_threshold = optional_float(j, "off_policy_mask_threshold");
  cfg.entropy_coef = j.at("entropy_coef").get<float>();
  return cfg;
}

/// grpo_advantages' two options.
losses::grpo_config advantage_config(rlhf::index_t num_generations,
                                     losses::grpo_scale_rewards scale_rewards) {
  losses::grpo_config cfg;
  cfg.num_generations = num_generations;
  cfg.scale_rewards = scale_rewards;
  return cfg;
}

/// Numbers of which some may be null: NaN (JSON has no NaN).
std::vector<float> values_with_nan(const json& data) {
  std::vector<float> v;
  for (const auto& x : data) v.push_back(x.is_null() ? NAN : x.get<float>());
  return v;
}

/// An input tensor whose data may hold null (an unscorable reward).
template <class B>
typename B::tensor tensor_with_nan(const fixture_case& c, const char* key) {
  const auto& t = c.j.at("inputs").at(key);
  return make<B>(values_with_nan(t.at("data")), fixture_case::shape_of(t));
}

/// An output scalar that may be null: NaN (a statistic over no values).
float scalar_or_nan(const fixture_case& c, const char* key) {
  const auto& v = c.j.at("outputs").at(key);
  return v.is_null() ? NAN : v.get<float>();
}

}  // namespace

constexpr losses::grpo_loss_type kAllLossTypes[] = {
    losses::grpo_loss_type::grpo,  losses::grpo_loss_type::bnpo,  losses::grpo_loss_type::dr_grpo,
    losses::grpo_loss_type::dapo,  losses::grpo_loss_type::cispo, losses::grpo_loss_type::sapo,
    losses::grpo_loss_type::luspo, losses::grpo_loss_type::vespo};

TEST_CASE_TEMPLATE("grpo_advantages and grpo_loss match the PyTorch reference", B,
                   RLHF_TEST_BACKENDS) {
  int loss_cases = 0, advantage_cases = 0, clip_extreme_cases = 0, combine_cases = 0;
  int cispo_cases = 0, vespo_cases = 0, entropy_bonus_cases = 0, normalize_then_sum_cases = 0;
  for (const auto& c : load_fixture("grpo.json")) {
    CAPTURE(c.name());
    const auto& j = c.config();
    if (j.at("kind") == "combine") {
      ++combine_cases;
      const auto per_func = tensor_with_nan<B>(c, "rewards_per_func");
      const auto w = c.input("weights");
      typename B::tensor out(rlhf::shape{per_func.shape()[0]});
      const auto m = losses::grpo_combine_rewards<B>(per_func, w, out);
      const auto& o = c.j.at("outputs");
      check_close(host<B>(out), values_with_nan(o.at("rewards").at("data")), "rewards");
      check_close(m.mean, values_with_nan(o.at("mean")), "rewards/<name>/mean");
      check_close(m.std, values_with_nan(o.at("std")), "rewards/<name>/std");
      continue;
    }
    if (j.at("kind") == "advantages") {
      ++advantage_cases;
      const auto rewards = tensor_with_nan<B>(c, "rewards");
      typename B::tensor out(rewards.shape());
      auto cfg = advantage_config(
          j.at("num_generations").get<rlhf::index_t>(),
          losses::parse_grpo_scale_rewards(j.at("scale_rewards").get<std::string>()));
      std::optional<typename B::tensor> per_func;
      std::vector<float> weights;
      if (j.contains("multi_objective_aggregation")) {
        cfg.multi_objective_aggregation = losses::parse_grpo_multi_objective_aggregation(
            j.at("multi_objective_aggregation").get<std::string>());
        per_func = tensor_with_nan<B>(c, "rewards_per_func");
        weights = c.input("weights");
        ++normalize_then_sum_cases;
      }
      const auto m = losses::grpo_advantages<B>(
          {.rewards = rewards,
           .rewards_per_func = per_func ? &*per_func : nullptr,
           .reward_weights = weights},
          cfg, out);
      check_close(host<B>(out), c.output("advantages"), "advantages");
      check_close(m.reward, scalar_or_nan(c, "reward"), "reward");
      check_close(m.reward_std, scalar_or_nan(c, "reward_std"), "reward_std");
      check_close(m.frac_reward_zero_std, c.output_scalar("frac_reward_zero_std"),
                  "frac_reward_zero_std");
      CHECK(m.num_unscorable == c.j.at("outputs").at("num_unscorable").get<rlhf::index_t>());
      check_close(m.frac_reward_unscorable, c.output_scalar("frac_reward_unscorable"),
                  "frac_reward_unscorable");
      CHECK(rlhf::metric_or(m.named(), "frac_reward_unscorable", -1.0f) ==
            m.frac_reward_unscorable);
      continue;
    }
    ++loss_cases;
    const auto logp = c.tensor<B>("per_token_logps");
    const auto adv = c.tensor<B>("advantages");
    const auto mask = c.tensor<B>("completion_mask");
    std::optional<typename B::tensor> old, ref, ent, samp, isr;
    if (c.has_input("old_per_token_logps")) old = c.tensor<B>("old_per_token_logps");
    if (c.has_input("ref_per_token_logps")) ref = c.tensor<B>("ref_per_token_logps");
    if (c.has_input("entropies")) ent = c.tensor<B>("entropies");
    if (c.has_input("sampling_per_token_logps")) samp = c.tensor<B>("sampling_per_token_logps");
    if (c.has_input("importance_sampling_ratio")) isr = c.tensor<B>("importance_sampling_ratio");
    const auto cfg = config_of(c);
    const auto r = losses::grpo_loss<B>(
        {.per_token_logps = logp,
         .advantages = adv,
         .completion_mask = mask,
         .old_per_token_logps = old ? &*old : nullptr,
         .ref_per_token_logps = ref ? &*ref : nullptr,
         .num_items_in_batch = optional_float(j, "num_items_in_batch"),
         .entropies = ent ? &*ent : nullptr,
         .sampling_per_token_logps = samp ? &*samp : nullptr,
         .importance_sampling_ratio = isr ? &*isr : nullptr},
        cfg);
    check_close(r.loss, c.output_scalar("loss"), "loss");
    check_close(host<B>(r.per_token_loss), c.output("per_token_loss"), "per_token_loss");
    check_close(host<B>(r.grad_per_token_logps), c.output("grad_per_token_logps"),
                "grad_per_token_logps");
    const auto named = r.metrics.named();
    // TRL logs the clip_ratio family for grpo, bnpo, dr_grpo, dapo, luspo only.
    CHECK(c.has_output("clip_ratio_low_mean") == has_metric(named, "clip_ratio/low_mean"));
    if (c.has_output("clip_ratio_low_mean")) {
      check_close(r.metrics.clip_ratio_low_mean, c.output_scalar("clip_ratio_low_mean"),
                  "clip_ratio/low_mean");
      check_close(r.metrics.clip_ratio_high_mean, c.output_scalar("clip_ratio_high_mean"),
                  "clip_ratio/high_mean");
      check_close(r.metrics.clip_ratio_region_mean, c.output_scalar("clip_ratio_region_mean"),
                  "clip_ratio/region_mean");
      CHECK(rlhf::metric_or(named, "clip_ratio/high_max", -1.0f) == r.metrics.clip_ratio_high_max);
    }
    CHECK(c.has_output("cispo_clip_ratio") == has_metric(named, "cispo_clip_ratio"));
    if (c.has_output("cispo_clip_ratio")) {
      ++cispo_cases;
      check_close(r.metrics.cispo_clip_ratio, c.output_scalar("cispo_clip_ratio"),
                  "cispo_clip_ratio");
    }
    CHECK(c.has_output("vespo_phi_seq_mean") == has_metric(named, "vespo/phi_seq_mean"));
    if (c.has_output("vespo_phi_seq_mean")) {
      ++vespo_cases;
      check_close(r.metrics.vespo_phi_seq_mean, c.output_scalar("vespo_phi_seq_mean"),
                  "vespo/phi_seq_mean");
    }
    CHECK(r.metrics.has_entropy == c.has_output("entropy"));
    if (c.has_output("entropy")) {
      check_close(r.metrics.entropy, c.output_scalar("entropy"), "entropy");
    }
    CHECK(r.metrics.has_policy_loss == c.has_output("policy_loss"));
    if (c.has_output("policy_loss")) {
      ++entropy_bonus_cases;
      check_close(r.metrics.policy_loss, c.output_scalar("policy_loss"), "policy_loss");
      check_close(host<B>(r.grad_entropies), c.output("grad_entropies"), "grad_entropies");
    } else {
      CHECK(r.grad_entropies.size() == 0);
    }
    if (c.has_output("clip_ratio_low_min")) {  // absent for loss types without clip metrics
      ++clip_extreme_cases;
      check_close(r.metrics.clip_ratio_low_min, scalar_or_nan(c, "clip_ratio_low_min"),
                  "clip_ratio/low_min");
      check_close(r.metrics.clip_ratio_high_max, scalar_or_nan(c, "clip_ratio_high_max"),
                  "clip_ratio/high_max");
    }
    CHECK(r.metrics.has_kl == c.has_output("kl"));
    if (c.has_output("kl")) check_close(r.metrics.kl, c.output_scalar("kl"), "kl");
    CHECK(rlhf::metric_or(named, "kl", -1.0f) == (r.metrics.has_kl ? r.metrics.kl : -1.0f));
  }
  CHECK(advantage_cases >= 22);
  CHECK(normalize_then_sum_cases >= 9);
  CHECK(combine_cases >= 1);
  CHECK(loss_cases >= 130);
  CHECK(clip_extreme_cases >= 50);
  CHECK(cispo_cases >= 15);
  CHECK(vespo_cases >= 12);
  CHECK(entropy_bonus_cases >= 3);
}

TEST_CASE_TEMPLATE("grpo_loss gradients match finite differences", B, RLHF_TEST_BACKENDS) {
  // 4 sequences × 4 tokens. Per-token log-ratios and the sequence means (masked) stay at
  // least 0.04 from every kink: log 0.8 = -0.223, log 1.2 = 0.182, log 1.5 = 0.405.
  const rlhf::shape s{4, 4};
  const std::vector<float> logp{-1.2f, -0.4f, -2.1f, -0.9f, -0.3f, -1.7f, -0.8f, -2.5f,
                                -1.1f, -0.6f, -1.9f, -0.2f, -0.7f, -1.4f, -0.5f, -1.0f};
  const std::vector<float> delta{0.05f, -0.1f, 0.3f,  -0.4f,  // mean -0.0375
                                 0.9f,  0.3f,  0.6f,  0.8f,   // 3 tokens: mean 0.6
                                 -0.7f, -0.3f, -0.5f, 0.1f,   // 2 tokens: mean -0.5
                                 0.5f,  0.7f,  0.55f, 0.6f};  // mean 0.5875
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
          return static_cast<double>(losses::grpo_loss<B>({xt, adv, mt, &ot, &rt}, cfg).loss);
        };
        const auto xt = make<B>(logp, s);
        const auto r = losses::grpo_loss<B>({xt, adv, mt, &ot, &rt}, cfg);
        check_gradient_fd(loss_of, logp, host<B>(r.grad_per_token_logps),
                          "d loss / d per_token_logps");
      }
    }
  }
}

TEST_CASE_TEMPLATE("grpo_loss cispo, sapo, luspo, vespo and the options match finite differences",
                   B, RLHF_TEST_BACKENDS) {
  // The batch of the test above. cispo and vespo detach their weights (min(c1, ε_high) and
  // φ): their gradient is that of the loss with the weights frozen, which finite
  // differences see when old moves with logp (the ratios stay put). The bias-corrected KL
  // term has no detached part: it is checked on L(β) - L(0) with old fixed.
  const rlhf::shape s{4, 4};
  const std::vector<float> logp{-1.2f, -0.4f, -2.1f, -0.9f, -0.3f, -1.7f, -0.8f, -2.5f,
                                -1.1f, -0.6f, -1.9f, -0.2f, -0.7f, -1.4f, -0.5f, -1.0f};
  const std::vector<float> delta{0.05f, -0.1f, 0.3f,  -0.4f, 0.9f, 0.3f, 0.6f,  0.8f,
                                 -0.7f, -0.3f, -0.5f, 0.1f,  0.5f, 0.7f, 0.55f, 0.6f};
  const std::vector<float> mask{1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1};
  // 13 tokens: entropies 0.1 apart, so a step of 1e-2 never reorders them.
  const std::vector<float> entropy{1.3f, 0.2f, 0.9f, 1.6f, 0.5f, 1.1f, 0.3f, 2.0f,
                                   0.7f, 1.4f, 2.2f, 0.4f, 1.0f, 0.6f, 1.2f, 0.8f};
  std::vector<float> old(16), ref(16), sampling(16), ratio(16);
  for (std::size_t k = 0; k < 16; ++k) {
    old[k] = logp[k] - delta[k];
    ref[k] = logp[k] + 0.3f * std::sin(static_cast<float>(k));
    sampling[k] = logp[k] + 0.2f;  // mean log(π_sampler / π) = 0.2 > δ in every row
    ratio[k] = 0.6f + 0.05f * static_cast<float>(k);
  }
  const auto adv = make<B>({0.8f, -1.1f, 0.6f, 1.3f}, rlhf::shape{4});
  const auto mt = make<B>(mask, s), ot = make<B>(old, s), rt = make<B>(ref, s);
  const auto et = make<B>(entropy, s), st = make<B>(sampling, s), it = make<B>(ratio, s);
  for (const auto level : {losses::grpo_importance_sampling_level::token,
                           losses::grpo_importance_sampling_level::sequence}) {
    for (const auto type : {losses::grpo_loss_type::cispo, losses::grpo_loss_type::sapo,
                            losses::grpo_loss_type::luspo, losses::grpo_loss_type::vespo}) {
      for (const bool options : {false, true}) {
        losses::grpo_config cfg;
        cfg.beta = 0.04f;
        cfg.epsilon_high = type == losses::grpo_loss_type::cispo ? 1.5f : 0.28f;
        cfg.importance_sampling_level = level;
        cfg.loss_type = type;
        if (options) {  // row 1 (A < 0) dropped by OPSM; the upper half of H kept
          cfg.top_entropy_quantile = 0.5f;
          cfg.off_policy_mask_threshold = 0.1f;
          cfg.entropy_coef = 0.03f;
        }
        CAPTURE(losses::to_string(level));
        CAPTURE(losses::to_string(type));
        CAPTURE(options);
        const bool detached = type == losses::grpo_loss_type::cispo ||
                              type == losses::grpo_loss_type::vespo;
        auto run = [&](const typename B::tensor& x, const typename B::tensor& o,
                       const typename B::tensor& e, const losses::grpo_config& c) {
          return losses::grpo_loss<B>({.per_token_logps = x,
                                       .advantages = adv,
                                       .completion_mask = mt,
                                       .old_per_token_logps = &o,
                                       .ref_per_token_logps = &rt,
                                       .entropies = &e,
                                       .sampling_per_token_logps = options ? &st : nullptr,
                                       .importance_sampling_ratio = options ? &it : nullptr},
                                      c);
        };
        // The policy term (and k3 without the ratio).
        losses::grpo_config plain = cfg;
        plain.use_bias_correction_kl = false;
        auto policy_of = [&](const std::vector<float>& x) {
          std::vector<float> o(old);
          if (detached) {
            for (std::size_t k = 0; k < 16; ++k) o[k] = x[k] - delta[k];
          }
          return static_cast<double>(run(make<B>(x, s), make<B>(o, s), et, plain).loss);
        };
        const auto xt = make<B>(logp, s);
        const auto r = run(xt, ot, et, plain);
        check_gradient_fd(policy_of, logp, host<B>(r.grad_per_token_logps),
                          "d loss / d per_token_logps");
        // The bias-corrected KL term: L(β) - L(0), whose policy parts cancel exactly.
        losses::grpo_config no_kl = cfg;
        no_kl.beta = 0.0f;
        auto kl_of = [&](const std::vector<float>& x) {
          const auto t = make<B>(x, s);
          return static_cast<double>(run(t, ot, et, cfg).loss) -
                 static_cast<double>(run(t, ot, et, no_kl).loss);
        };
        const auto with = host<B>(run(xt, ot, et, cfg).grad_per_token_logps);
        const auto without = host<B>(run(xt, ot, et, no_kl).grad_per_token_logps);
        std::vector<float> kl_grad(16);
        for (std::size_t k = 0; k < 16; ++k) kl_grad[k] = with[k] - without[k];
        check_gradient_fd(kl_of, logp, kl_grad, "d (β·k3·c1 term) / d per_token_logps", 1e-2f, 2e-2,
                          2e-4);
        if (options) {  // the entropy bonus, against the entropies
          auto bonus_of = [&](const std::vector<float>& e) {
            return static_cast<double>(run(xt, ot, make<B>(e, s), cfg).loss);
          };
          check_gradient_fd(bonus_of, entropy, host<B>(r.grad_entropies), "d loss / d entropies");
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("grpo loss types and options follow TRL 1.16's definitions", B,
                   RLHF_TEST_BACKENDS) {
  // 3 completions × 4 tokens (lengths 4, 2, 3), dapo's divisor Σ m = 9.
  const rlhf::shape s{3, 4};
  const std::vector<float> logp{-0.5f, -1.0f, -1.5f, -2.0f, -0.7f, -0.2f,
                                -9.0f, -9.0f, -1.2f, -0.4f, -0.9f, -9.0f};
  const std::vector<float> mask{1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0};
  const std::vector<float> a{0.5f, -1.0f, 0.0f};
  const std::vector<float> len{4, 2, 3};
  const auto lt = make<B>(logp, s), mt = make<B>(mask, s), at = make<B>(a, rlhf::shape{3});
  // -A_i·m / D: the plain policy gradient.
  auto policy_gradient = [&](float weight, float divisor) {
    std::vector<float> g(12);
    for (std::size_t k = 0; k < 12; ++k) g[k] = -weight * a[k / 4] * mask[k] / divisor;
    return g;
  };
  using lt_t = losses::grpo_loss_type;

  SUBCASE("on-policy, sapo's gate has slope 1 and value 2/τ: the plain policy gradient") {
    losses::grpo_config cfg;
    cfg.loss_type = lt_t::sapo;  // aggregated as grpo: per row / Σ_t m, mean over rows
    const auto r = losses::grpo_loss<B>({lt, at, mt}, cfg);
    // l = -(4/τ)·σ(0)·A = -2A/τ: τ_pos = 1 for A > 0, τ_neg = 1.05 otherwise.
    check_close(r.loss, (-2.0f * 0.5f / 1.0f - 2.0f * -1.0f / 1.05f) / 3.0f, "loss");
    std::vector<float> g(12);
    for (std::size_t k = 0; k < 12; ++k) g[k] = -a[k / 4] * mask[k] / (3.0f * len[k / 4]);
    check_close(host<B>(r.grad_per_token_logps), g, "grad");
    CHECK(r.metrics.named().empty());  // TRL logs no clip metrics for sapo
  }
  SUBCASE("cispo caps the ratio at epsilon_high itself (default: epsilon = 0.2)") {
    std::vector<float> old(logp);
    for (auto& v : old) v -= std::log(2.0f);  // every ratio is 2
    const auto ot = make<B>(old, s);
    losses::grpo_config cfg;
    cfg.loss_type = lt_t::cispo;
    cfg.delta = 0.9f;  // read by the clipped loss types only: no error here
    auto r = losses::grpo_loss<B>({lt, at, mt, &ot}, cfg);
    check_close(host<B>(r.grad_per_token_logps), policy_gradient(0.2f, 9.0f), "cap 0.2");
    float expected = 0.0f;  // -w·A·logp summed, / 9
    for (std::size_t k = 0; k < 12; ++k) expected -= 0.2f * a[k / 4] * logp[k] * mask[k];
    check_close(r.loss, expected / 9.0f, "REINFORCE-form loss");
    check_close(r.metrics.cispo_clip_ratio, 4.0f / 9.0f, "cispo_clip_ratio (row 0: A > 0)");
    CHECK(rlhf::metric_or(r.metrics.named(), "cispo_clip_ratio", -1.0f) == 4.0f / 9.0f);
    cfg.epsilon_high = 5.0f;  // ScaleRL's ε_max: 2 is below the cap
    r = losses::grpo_loss<B>({lt, at, mt, &ot}, cfg);
    check_close(host<B>(r.grad_per_token_logps), policy_gradient(2.0f, 9.0f), "cap 5");
    CHECK(r.metrics.cispo_clip_ratio == 0.0f);
  }
  SUBCASE("vespo: φ(1) = 1, and (k, λ) are chosen by A >= 0 (sapo's τ by A > 0)") {
    losses::grpo_config cfg;
    cfg.loss_type = lt_t::vespo;
    auto r = losses::grpo_loss<B>({lt, at, mt}, cfg);
    check_close(host<B>(r.grad_per_token_logps), policy_gradient(1.0f, 9.0f), "on-policy");
    check_close(r.metrics.vespo_phi_seq_mean, 1.0f, "vespo/phi_seq_mean");
    // Off-policy by Σ_t m·log ρ = 4·0.1 = 0.4 per row: φ = exp(λ + k·0.4 - λ·e^0.4).
    std::vector<float> old(logp);
    for (auto& v : old) v -= 0.1f;
    const auto ot = make<B>(old, s);
    const auto one = make<B>({0.0f}, rlhf::shape{1});  // A = 0: the A >= 0 parameters
    const auto row = make<B>({-0.5f, -1.0f, -1.5f, -2.0f}, rlhf::shape{1, 4});
    const auto row_old = make<B>({-0.6f, -1.1f, -1.6f, -2.1f}, rlhf::shape{1, 4});
    const auto row_mask = make<B>({1, 1, 1, 1}, rlhf::shape{1, 4});
    r = losses::grpo_loss<B>({row, one, row_mask, &row_old}, cfg);
    const float l = 4.0f * (-0.5f - -0.6f);
    check_close(r.metrics.vespo_phi_seq_mean, std::exp(3.0f + 2.0f * l - 3.0f * std::exp(l)),
                "φ with k_pos, λ_pos at A = 0");
    // vLLM ratios of 1 change nothing; a λ of 0 is used as 1e-4.
    const auto ones = make<B>(std::vector<float>(12, 1.0f), s);
    const auto base = losses::grpo_loss<B>({lt, at, mt, &ot}, cfg);
    const auto with_ratio = losses::grpo_loss<B>({.per_token_logps = lt,
                                                  .advantages = at,
                                                  .completion_mask = mt,
                                                  .old_per_token_logps = &ot,
                                                  .importance_sampling_ratio = &ones},
                                                 cfg);
    check_close(with_ratio.loss, base.loss, "ratio 1");
    cfg.vespo_lambda_neg = 0.0f;
    const auto lam0 = losses::grpo_loss<B>({lt, at, mt, &ot}, cfg);
    const float l1 = 2.0f * 0.1f;  // row 1: 2 tokens
    const float phi1 = std::exp(1e-4f + 3.0f * l1 - 1e-4f * std::exp(l1));
    check_close(host<B>(lam0.grad_per_token_logps)[4], phi1 * 1.0f / 9.0f, "λ_neg 0 → 1e-4");
  }
  SUBCASE("luspo: mean over sequences of the summed token losses (no length division)") {
    losses::grpo_config cfg;
    cfg.loss_type = lt_t::luspo;
    cfg.importance_sampling_level = losses::grpo_importance_sampling_level::sequence;
    const auto r = losses::grpo_loss<B>({lt, at, mt}, cfg);
    check_close(r.loss, -(0.5f * 4.0f - 1.0f * 2.0f) / 3.0f, "loss");
    check_close(host<B>(r.grad_per_token_logps), policy_gradient(1.0f, 3.0f), "grad");
    CHECK(has_metric(r.metrics.named(), "clip_ratio/region_mean"));
  }
  SUBCASE("top_entropy_quantile: torch.quantile's linear interpolation, kept if H·m >= it") {
    // Valid entropies {0.1, 0.5, 0.2, 0.4 | 0.3, 0.6 | 0.7, 0.05, 0.15}: 9 tokens, sorted
    // 0.05 0.1 0.15 0.2 0.3 0.4 0.5 0.6 0.7.
    const std::vector<float> h{0.1f, 0.5f, 0.2f, 0.4f,  0.3f,  0.6f,
                               9.0f, 9.0f, 0.7f, 0.05f, 0.15f, 9.0f};
    const auto ht = make<B>(h, s);
    losses::grpo_config cfg;
    auto kept = [&](float rho, const typename B::tensor& m) {
      cfg.top_entropy_quantile = rho;
      const auto r = losses::grpo_loss<B>(
          {.per_token_logps = lt, .advantages = at, .completion_mask = m, .entropies = &ht}, cfg);
      // Rows 0 and 1 as a string: '1' where the token has a policy gradient. (A string, not
      // a vector<int> literal: g++ 12.2 -O2 -march=native (AVX-512 SLP) miscompiles one.)
      std::string k;
      const auto g = host<B>(r.grad_per_token_logps);
      for (std::size_t i = 0; i < 8; ++i) k += g[i] != 0.0f ? '1' : '0';
      return k;
    };
    // ρ = 0.3: rank 0.7·8 = 5.6, threshold 0.4 + 0.6·0.1 = 0.46 → 0.5, 0.6 (and 0.7).
    CHECK(kept(0.3f, mt) == "01000100");
    // ρ = 0.5: rank 4, threshold 0.3 exactly, kept inclusively.
    CHECK(kept(0.5f, mt) == "01011100");
    // ρ = 0: only the maximum (0.7, in row 2).
    CHECK(kept(0.0f, mt) == "00000000");
    // ρ = 1: no mask.
    CHECK(kept(1.0f, mt) == "11111100");
    // TRL compares H·m: a weight of 3 lifts entropy 0.2 (H·m = 0.6) over 0.46.
    std::vector<float> w(mask);
    w[2] = 3.0f;
    CHECK(kept(0.3f, make<B>(w, s)) == "01100100");
    // No token at all: nothing is kept (TRL's all-false mask), and nothing breaks.
    const auto none = make<B>(std::vector<float>(12, 0.0f), s);
    CHECK(kept(0.3f, none) == "00000000");
  }
  SUBCASE("off_policy_mask_threshold drops the policy term of A < 0 rows with mean KL > δ") {
    std::vector<float> samp(logp);
    for (auto& v : samp) v += 0.3f;  // mean log(π_sampler / π) = 0.3 in every row
    samp[0] = NAN;                   // a token the sampler could not score: counts 0
    const auto st = make<B>(samp, s);
    const auto ref = make<B>(std::vector<float>(12, -1.0f), s);
    losses::grpo_config cfg;
    cfg.beta = 0.1f;
    cfg.off_policy_mask_threshold = 0.25f;
    const auto masked = losses::grpo_loss<B>({.per_token_logps = lt,
                                              .advantages = at,
                                              .completion_mask = mt,
                                              .ref_per_token_logps = &ref,
                                              .sampling_per_token_logps = &st},
                                             cfg);
    cfg.off_policy_mask_threshold.reset();
    const auto full = losses::grpo_loss<B>({lt, at, mt, nullptr, &ref}, cfg);
    cfg.beta = 0.0f;
    const auto policy = losses::grpo_loss<B>({lt, at, mt}, cfg);
    const auto gm = host<B>(masked.grad_per_token_logps), gf = host<B>(full.grad_per_token_logps),
               gp = host<B>(policy.grad_per_token_logps);
    for (std::size_t k = 0; k < 12; ++k) {
      CAPTURE(k);
      // Row 1 (A = -1, KL 0.3 > 0.25) keeps only its KL gradient; row 0 (KL 0.225 with the
      // NaN token counted 0) and rows with A >= 0 are untouched.
      if (k / 4 == 1) {
        check_close(gm[k], gf[k] - gp[k], "KL only");
      } else {
        check_close(gm[k], gf[k], "kept");
      }
    }
    // Without sampler log-probs it uses old_per_token_logps; on-policy the KL is 0, kept
    // by δ = 0 (<=) and dropped by any δ < 0.
    cfg.off_policy_mask_threshold = 0.0f;
    check_close(losses::grpo_loss<B>({lt, at, mt}, cfg).loss, policy.loss, "on-policy, δ = 0");
    cfg.off_policy_mask_threshold = -0.01f;
    check_close(losses::grpo_loss<B>({lt, at, mt}, cfg).loss, -2.0f / 9.0f, "δ < 0");
  }
  SUBCASE("importance_sampling_ratio: (N, 1) is the per-row broadcast of (N, T)") {
    const auto per_row = make<B>({0.5f, 2.0f, 1.5f}, rlhf::shape{3, 1});
    std::vector<float> full(12);
    for (std::size_t k = 0; k < 12; ++k) full[k] = std::vector<float>{0.5f, 2.0f, 1.5f}[k / 4];
    const auto per_token = make<B>(full, s);
    for (const auto type : kAllLossTypes) {
      if (type == lt_t::vespo) continue;  // (N, 1) is refused (bad input test)
      CAPTURE(losses::to_string(type));
      losses::grpo_config cfg;
      cfg.loss_type = type;
      const auto r1 = losses::grpo_loss<B>({.per_token_logps = lt,
                                            .advantages = at,
                                            .completion_mask = mt,
                                            .importance_sampling_ratio = &per_row},
                                           cfg);
      const auto rt = losses::grpo_loss<B>({.per_token_logps = lt,
                                            .advantages = at,
                                            .completion_mask = mt,
                                            .importance_sampling_ratio = &per_token},
                                           cfg);
      check_close(r1.loss, rt.loss, "loss");
      check_close(host<B>(r1.grad_per_token_logps), host<B>(rt.grad_per_token_logps), "grad");
    }
  }
  SUBCASE("entropy_coef: loss = policy_loss - c·(masked mean entropy); TRL's metric names") {
    const std::vector<float> h{0.1f, 0.5f, 0.2f, 0.4f,  0.3f,  0.6f,
                               9.0f, 9.0f, 0.7f, 0.05f, 0.15f, 9.0f};
    const auto ht = make<B>(h, s);
    losses::grpo_config cfg;
    cfg.entropy_coef = 0.1f;
    const auto r = losses::grpo_loss<B>(
        {.per_token_logps = lt, .advantages = at, .completion_mask = mt, .entropies = &ht}, cfg);
    const float mean_h = 3.0f / 9.0f;
    check_close(r.loss, r.metrics.policy_loss - 0.1f * mean_h, "loss");
    check_close(r.metrics.entropy, mean_h, "entropy");
    std::vector<float> ge(12);
    for (std::size_t k = 0; k < 12; ++k) ge[k] = -0.1f * mask[k] / 9.0f;
    check_close(host<B>(r.grad_entropies), ge, "grad_entropies");
    const auto named = r.metrics.named();
    CHECK(rlhf::metric_or(named, "entropy", -1.0f) == r.metrics.entropy);
    CHECK(rlhf::metric_or(named, "policy_loss", -1.0f) == r.metrics.policy_loss);
    // With the entropy mask the bonus is the mean over the kept tokens only (0.5, 0.6, 0.7).
    cfg.top_entropy_quantile = 0.3f;
    const auto rm = losses::grpo_loss<B>(
        {.per_token_logps = lt, .advantages = at, .completion_mask = mt, .entropies = &ht}, cfg);
    check_close(rm.loss, rm.metrics.policy_loss - 0.1f * 0.6f, "masked bonus");
    check_close(rm.metrics.entropy, mean_h, "entropy metric is over all tokens");
  }
}

TEST_CASE_TEMPLATE("grpo invariants: on-policy loss, zero-std groups, token = sequence on-policy",
                   B, RLHF_TEST_BACKENDS) {
  // 2 prompts × 3 completions, group-centred advantages.
  const auto rewards = make<B>({1.0f, 0.0f, 0.5f, 2.0f, -1.0f, 0.25f}, rlhf::shape{6});
  typename B::tensor adv(rlhf::shape{6});
  losses::grpo_advantages<B>({rewards}, advantage_config(3, losses::grpo_scale_rewards::group),
                             adv);
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
    for (const auto type : kAllLossTypes) {
      losses::grpo_config cfg;
      cfg.loss_type = type;
      cfg.beta = 0.1f;
      // The bias-corrected KL differs between the levels (next subcase); k3 alone does not.
      cfg.use_bias_correction_kl = false;
      const auto tok = losses::grpo_loss<B>({lt, adv, mu, nullptr, &ref}, cfg);
      cfg.importance_sampling_level = losses::grpo_importance_sampling_level::sequence;
      const auto seq = losses::grpo_loss<B>({lt, adv, mu, nullptr, &ref}, cfg);
      CAPTURE(losses::to_string(type));
      check_close(seq.loss, tok.loss, "loss");
      check_close(host<B>(seq.grad_per_token_logps), host<B>(tok.grad_per_token_logps), "grad");
    }
  }
  SUBCASE("use_bias_correction_kl on-policy: β·k3·c1 adds β·k3 to each token's gradient") {
    // d(k3·c1)/dlogp_t at c1 = 1: token level dk3_t + k3_t; sequence level dk3_t +
    // Σ_u m_u·k3_u / Σ m (c1_i moves with every token of the row). dapo: w = 1 / Σ m = 1/15.
    const auto ref = make<B>(std::vector<float>(24, -0.5f), s);
    losses::grpo_config cfg;
    cfg.beta = 0.1f;
    for (const auto level : {losses::grpo_importance_sampling_level::token,
                             losses::grpo_importance_sampling_level::sequence}) {
      CAPTURE(losses::to_string(level));
      cfg.importance_sampling_level = level;
      cfg.use_bias_correction_kl = false;
      const auto plain = losses::grpo_loss<B>({lt, adv, mu, nullptr, &ref}, cfg);
      cfg.use_bias_correction_kl = true;
      const auto corrected = losses::grpo_loss<B>({lt, adv, mu, nullptr, &ref}, cfg);
      check_close(corrected.loss, plain.loss, "loss (c1 = 1)");
      check_close(corrected.metrics.kl, plain.metrics.kl, "kl (c1 = 1)");
      std::vector<float> k3(24), row_k3(6, 0.0f);
      for (std::size_t k = 0; k < 24; ++k) {
        const float d = -0.5f - logp[k];
        k3[k] = uneven[k] * (std::exp(d) - d - 1.0f);
        row_k3[k / 4] += k3[k];
      }
      const auto g0 = host<B>(plain.grad_per_token_logps);
      std::vector<float> expected(24);
      for (std::size_t k = 0; k < 24; ++k) {
        const float extra = level == losses::grpo_importance_sampling_level::token
                                ? k3[k]
                                : uneven[k] * row_k3[k / 4] / lengths[k / 4];
        expected[k] = g0[k] + 0.1f * extra / 15.0f;
      }
      check_close(host<B>(corrected.grad_per_token_logps), expected, "grad");
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
      const auto m = losses::grpo_advantages<B>({eq}, advantage_config(3, scale), adv_eq);
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
    losses::grpo_advantages<B>({r}, advantage_config(3, losses::grpo_scale_rewards::none), r);
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

TEST_CASE_TEMPLATE("grpo_combine_rewards: a row no function scored is NaN (unscorable)", B,
                   RLHF_TEST_BACKENDS) {
  // TRL 1.16: nansum over the functions, then NaN where every function returned None.
  const auto per_func = make<B>({NAN, NAN, 0.0f, NAN, NAN, -1.0f}, rlhf::shape{3, 2});
  typename B::tensor out(rlhf::shape{3});
  const std::vector<float> w{2.0f, 0.5f};
  const auto m = losses::grpo_combine_rewards<B>(per_func, w, out);
  const auto o = host<B>(out);
  CHECK(std::isnan(o[0]));
  CHECK(o[1] == 0.0f);  // scored 0 by one function: scorable
  CHECK(o[2] == -0.5f);
  CHECK(m.mean[0] == 0.0f);
  CHECK(std::isnan(m.std[0]));  // one value
}

TEST_CASE_TEMPLATE("grpo_advantages: unscorable (NaN) rewards are left out, get 0, are counted", B,
                   RLHF_TEST_BACKENDS) {
  // 3 prompts × 4: three scorable; one scorable; none.
  const std::vector<float> v{1.0f, NAN, 0.0f, 2.0f, NAN, 5.0f, NAN, NAN, NAN, NAN, NAN, NAN};
  const auto rewards = make<B>(v, rlhf::shape{12});
  const float batch_std = std::sqrt(14.0f / 3.0f);  // nanstd of {1, 0, 2, 5}
  for (const auto scale : {losses::grpo_scale_rewards::group, losses::grpo_scale_rewards::batch,
                           losses::grpo_scale_rewards::none}) {
    const std::string scale_name = losses::to_string(scale);
    CAPTURE(scale_name);
    typename B::tensor adv(rlhf::shape{12});
    const auto m = losses::grpo_advantages<B>({rewards}, advantage_config(4, scale), adv);
    const auto a = host<B>(adv);
    // Group 0: nanmean 1, nanstd 1 (3 values); the others have advantage exactly 0.
    const float div = scale == losses::grpo_scale_rewards::group   ? 1.0f + 1e-4f
                      : scale == losses::grpo_scale_rewards::batch ? batch_std + 1e-4f
                                                                   : 1.0f;
    check_close(std::vector<float>(a.begin(), a.begin() + 4),
                std::vector<float>{0.0f, 0.0f, -1.0f / div, 1.0f / div}, "group 0");
    for (std::size_t i = 4; i < 12; ++i) CHECK(a[i] == 0.0f);
    CHECK(m.num_unscorable == 8);
    check_close(m.frac_reward_unscorable, 8.0f / 12.0f, "frac_reward_unscorable");
    check_close(m.reward, 2.0f, "reward: nanmean");
    check_close(m.reward_std, batch_std, "reward_std: nanstd of the batch");
    // group / none: group 0's std is 1 and the others' NaN (not 0); batch: nanstd > 0.
    CHECK(m.frac_reward_zero_std == 0.0f);
  }
  SUBCASE("in place, and every completion unscorable: NaN statistics, advantages 0") {
    auto r = make<B>(std::vector<float>(6, NAN), rlhf::shape{6});
    const auto m = losses::grpo_advantages<B>(
        {r}, advantage_config(3, losses::grpo_scale_rewards::group), r);
    for (const float x : host<B>(r)) CHECK(x == 0.0f);
    CHECK(std::isnan(m.reward));
    CHECK(std::isnan(m.reward_std));
    CHECK(m.num_unscorable == 6);
    CHECK(m.frac_reward_unscorable == 1.0f);
  }
  SUBCASE("num_generations 1 (TRL's eval): std 0, so every completion counts as zero-std") {
    const auto r = make<B>({0.5f, NAN, 2.0f}, rlhf::shape{3});
    typename B::tensor a(rlhf::shape{3});
    const auto m = losses::grpo_advantages<B>(
        {r}, advantage_config(1, losses::grpo_scale_rewards::group), a);
    for (const float x : host<B>(a)) CHECK(x == 0.0f);
    CHECK(m.frac_reward_zero_std == 1.0f);
    CHECK(m.num_unscorable == 1);
  }
  SUBCASE("reward_std is the std of the whole batch, not the mean group std") {
    const auto r = make<B>({0.0f, 2.0f, 10.0f, 14.0f}, rlhf::shape{4});
    typename B::tensor a(rlhf::shape{4});
    const auto m = losses::grpo_advantages<B>(
        {r}, advantage_config(2, losses::grpo_scale_rewards::group), a);
    check_close(m.reward_std, std::sqrt(131.0f / 3.0f), "reward_std");
    CHECK(m.num_unscorable == 0);
    CHECK(rlhf::metric_or(m.named(), "frac_reward_unscorable", -1.0f) == 0.0f);
  }
}

TEST_CASE_TEMPLATE("grpo_advantages normalize_then_sum: per-function group z-scores, batch scaling",
                   B, RLHF_TEST_BACKENDS) {
  // 2 prompts × 2 completions, 2 functions. Function 0 ranks the rows one way, function 1
  // (on a 100× larger scale) the other way: summed first, function 1 would dominate;
  // normalised first, the two cancel in group 0.
  const float nan = NAN;
  const auto per_func = make<B>({1.0f, 0.0f, 0.0f, 100.0f, 2.0f, 50.0f, 0.0f, 50.0f},
                                rlhf::shape{4, 2});
  typename B::tensor raw(rlhf::shape{4}), adv(rlhf::shape{4});
  (void)losses::grpo_combine_rewards<B>(per_func, {}, raw);
  auto cfg = advantage_config(2, losses::grpo_scale_rewards::group);
  cfg.multi_objective_aggregation = losses::grpo_multi_objective_aggregation::normalize_then_sum;
  const auto m = losses::grpo_advantages<B>({.rewards = raw, .rewards_per_func = &per_func}, cfg,
                                            adv);
  // z per group and function (nanstd of two values x, y: |x - y| / √2): group 0,
  // ±0.5 / (√0.5 + 1e-4) and ∓50 / (√5000 + 1e-4), which nearly cancel; group 1, function 0
  // ±1 / (√2 + 1e-4), function 1 constant: 0.
  const double d = 0.5 / (std::sqrt(0.5) + 1e-4) - 50.0 / (std::sqrt(5000.0) + 1e-4);
  const double z = 1.0 / (std::sqrt(2.0) + 1e-4);
  const std::vector<double> s{d, -d, z, -z};  // batch mean 0
  const double sd = std::sqrt((2.0 * d * d + 2.0 * z * z) / 3.0) + 1e-4;
  const auto a = host<B>(adv);
  for (std::size_t i = 0; i < 4; ++i) CHECK(a[i] == doctest::Approx(s[i] / sd).epsilon(1e-5));
  // The metrics are of the raw weighted sums 1, 100, 52, 50.
  CHECK(m.reward == doctest::Approx(50.75f));
  CHECK(m.frac_reward_zero_std == 0.0f);
  // Every scale_rewards gives the same advantages (TRL ignores it here).
  for (const auto scale : {losses::grpo_scale_rewards::batch, losses::grpo_scale_rewards::none}) {
    cfg.scale_rewards = scale;
    typename B::tensor other(rlhf::shape{4});
    (void)losses::grpo_advantages<B>({.rewards = raw, .rewards_per_func = &per_func}, cfg, other);
    CHECK(host<B>(other) == a);
  }
  // The default sum_then_normalize reads rewards only: group 0 is decided by function 1.
  typename B::tensor summed(rlhf::shape{4});
  (void)losses::grpo_advantages<B>({.rewards = raw, .rewards_per_func = &per_func},
                                   advantage_config(2, losses::grpo_scale_rewards::group), summed);
  CHECK(host<B>(summed)[0] < 0.0f);
  // Bad input names the argument.
  CHECK_THROWS_WITH_AS((void)losses::grpo_advantages<B>({.rewards = raw}, cfg, adv),
                       "grpo_advantages: rewards_per_func is required when "
                       "multi_objective_aggregation is normalize_then_sum, got none",
                       rlhf::config_error);
  const auto wrong = make<B>({1.0f, nan, 52.0f, 50.0f}, rlhf::shape{4});
  CHECK_THROWS_WITH_AS(
      (void)losses::grpo_advantages<B>({.rewards = wrong, .rewards_per_func = &per_func}, cfg, adv),
      doctest::Contains("grpo_advantages: rewards[1] = nan disagrees with rewards_per_func row 1"),
      rlhf::data_error);
  const std::vector<float> three{1.0f, 2.0f, 3.0f};
  CHECK_THROWS_AS(
      (void)losses::grpo_advantages<B>(
          {.rewards = raw, .rewards_per_func = &per_func, .reward_weights = three}, cfg, adv),
      rlhf::shape_error);
  const auto inf = make<B>({1.0f, 0.0f, 0.0f, INFINITY, 2.0f, 50.0f, 0.0f, 50.0f},
                           rlhf::shape{4, 2});
  CHECK_THROWS_AS(
      (void)losses::grpo_advantages<B>({.rewards = raw, .rewards_per_func = &inf}, cfg, adv),
      rlhf::data_error);
  cfg.multi_objective_aggregation = static_cast<losses::grpo_multi_objective_aggregation>(2);
  CHECK_THROWS_AS((void)losses::grpo_advantages<B>({.rewards = raw}, cfg, adv), rlhf::config_error);
}

TEST_CASE_TEMPLATE("grpo_loss: a non-finite loss or gradient is a data_error from grpo_loss", B,
                   RLHF_TEST_BACKENDS) {
  // Row 1's second token has log-ratio +1e3: its ratio overflows float.
  const rlhf::shape s{2, 2};
  const auto lp = make<B>({-1.0f, -0.5f, -2.0f, -0.3f}, s);
  const auto old = make<B>({-1.1f, -0.4f, -2.05f, -1000.3f}, s);
  const auto ref = make<B>({-0.9f, -0.6f, -2.1f, -0.2f}, s);
  const auto mask = make<B>({1.0f, 1.0f, 1.0f, 1.0f}, s);
  const auto neg = make<B>({0.5f, -0.8f}, rlhf::shape{2});
  const auto pos = make<B>({0.5f, 0.8f}, rlhf::shape{2});
  for (const auto level : {losses::grpo_importance_sampling_level::token,
                           losses::grpo_importance_sampling_level::sequence}) {
    CAPTURE(static_cast<int>(level));
    losses::grpo_config cfg;
    cfg.importance_sampling_level = level;
    cfg.loss_type = losses::grpo_loss_type::grpo;
    // A < 0, unclipped, no delta: -ratio·A = +inf (TRL returns inf; grpo_loss throws).
    CHECK_THROWS_WITH_AS((void)losses::grpo_loss<B>({lp, neg, mask, &old}, cfg),
                         doctest::Contains("grpo_loss: the loss of sequence 1 token "),
                         rlhf::data_error);
    CHECK_THROWS_WITH_AS((void)losses::grpo_loss<B>({lp, neg, mask, &old}, cfg),
                         doctest::Contains("set delta"), rlhf::data_error);
    // delta caps the ratio: finite.
    cfg.delta = 2.0f;
    const auto capped = losses::grpo_loss<B>({lp, neg, mask, &old}, cfg);
    CHECK(std::isfinite(capped.loss));
    cfg.delta.reset();
    // A > 0 is clipped: finite, zero gradient on the overflowing token.
    const auto clipped = losses::grpo_loss<B>({lp, pos, mask, &old}, cfg);
    CHECK(std::isfinite(clipped.loss));
    // ... unless beta > 0 with use_bias_correction_kl: β·k3·ratio is infinite.
    cfg.beta = 0.04f;
    CHECK_THROWS_WITH_AS((void)losses::grpo_loss<B>({lp, pos, mask, &old, &ref}, cfg),
                         doctest::Contains("use_bias_correction_kl"), rlhf::data_error);
    cfg.use_bias_correction_kl = false;
    CHECK(std::isfinite(losses::grpo_loss<B>({lp, pos, mask, &old, &ref}, cfg).loss));
  }
  // A masked-out overflowing token is never read.
  const auto masked = make<B>({1.0f, 1.0f, 1.0f, 0.0f}, s);
  CHECK(std::isfinite(losses::grpo_loss<B>({lp, neg, masked, &old}).loss));
}

TEST_CASE_TEMPLATE("grpo_loss clip_ratio/low_min and high_max: min / max over sequences", B,
                   RLHF_TEST_BACKENDS) {
  // 4 rows × 4 tokens, on-ratio tokens Δ = 0 and clipped ones Δ = ±0.5 (ratio 1.65 / 0.61).
  const rlhf::shape s{4, 4};
  std::vector<float> logp(16);
  for (std::size_t k = 0; k < 16; ++k) logp[k] = -0.3f - 0.1f * static_cast<float>(k % 5);
  const auto lt = make<B>(logp, s);
  auto old_of = [&](const std::vector<float>& delta) {
    std::vector<float> old(16);
    for (std::size_t k = 0; k < 16; ++k) old[k] = logp[k] - delta[k];
    return make<B>(old, s);
  };
  // Row lengths 4, 2, 4, 0 (the empty row is TRL's NaN in masked_seq_mean: skipped).
  const auto mask = make<B>({1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0}, s);
  SUBCASE("mixed signs: high fractions 0.5, 1, 0; low fractions 0, 0, 0.25") {
    const auto old = old_of({0.5f, 0, 0.5f, 0, 0.5f, 0.5f, 0.5f, 0, -0.5f, 0, 0, 0, 0, 0, 0, 0});
    const auto adv = make<B>({1.0f, 1.0f, -1.0f, -1.0f}, rlhf::shape{4});
    const auto r = losses::grpo_loss<B>({lt, adv, mask, &old});
    check_close(r.metrics.clip_ratio_high_mean, 0.4f, "high_mean");
    check_close(r.metrics.clip_ratio_low_mean, 0.1f, "low_mean");
    CHECK(r.metrics.clip_ratio_high_max == 1.0f);
    CHECK(r.metrics.clip_ratio_low_min == 0.0f);
  }
  SUBCASE("all advantages negative: low fractions 0.5, 1, 0.25 and an empty row") {
    const auto old = old_of(
        {-0.5f, 0, -0.5f, 0, -0.5f, -0.5f, 0, 0, -0.5f, 0, 0, 0, -0.5f, -0.5f, 0, 0});
    const auto adv = make<B>({-1.0f, -1.0f, -1.0f, -1.0f}, rlhf::shape{4});
    const auto r = losses::grpo_loss<B>({lt, adv, mask, &old});
    check_close(r.metrics.clip_ratio_low_mean, 0.5f, "low_mean");
    check_close(r.metrics.clip_ratio_low_min, 0.25f, "low_min");
    CHECK(r.metrics.clip_ratio_high_max == 0.0f);
    const auto named = r.metrics.named();
    CHECK(rlhf::metric_or(named, "clip_ratio/low_min", -1.0f) == r.metrics.clip_ratio_low_min);
    // Sequence level: one 0/1 flag per row, empty rows included (ratio 1: not clipped).
    losses::grpo_config cfg;
    cfg.importance_sampling_level = losses::grpo_importance_sampling_level::sequence;
    const auto q = losses::grpo_loss<B>({lt, adv, mask, &old}, cfg);
    // Row means of Δ: -0.25, -0.5 (low), -0.125 (inside), empty.
    check_close(q.metrics.clip_ratio_low_mean, 0.5f, "sequence low_mean");
    CHECK(q.metrics.clip_ratio_low_min == 0.0f);
    CHECK(q.metrics.clip_ratio_high_max == 0.0f);
  }
  SUBCASE("no completion token at all: token-level min / max are NaN (TRL's nanmin of NaN)") {
    const auto empty = make<B>(std::vector<float>(16, 0.0f), s);
    const auto adv = make<B>({1.0f, 1.0f, -1.0f, -1.0f}, rlhf::shape{4});
    const auto r = losses::grpo_loss<B>({lt, adv, empty});
    CHECK(std::isnan(r.metrics.clip_ratio_low_min));
    CHECK(std::isnan(r.metrics.clip_ratio_high_max));
    CHECK(r.metrics.clip_ratio_low_mean == 0.0f);
  }
}

TEST_CASE("grpo option names parse and print as TRL spells them") {
  for (const char* name : {"grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"}) {
    CHECK(std::string(losses::to_string(losses::parse_grpo_loss_type(name))) == name);
  }
  CHECK(losses::parse_grpo_scale_rewards("true") == losses::grpo_scale_rewards::group);
  CHECK(losses::parse_grpo_scale_rewards("False") == losses::grpo_scale_rewards::none);
  CHECK(losses::parse_grpo_importance_sampling_level("sequence") ==
        losses::grpo_importance_sampling_level::sequence);
  CHECK_THROWS_WITH_AS(losses::parse_grpo_loss_type("ppo"),
                       "parse_grpo_loss_type: unknown loss_type 'ppo'; accepted: grpo, bnpo, "
                       "dr_grpo, dapo, cispo, sapo, luspo, vespo",
                       rlhf::config_error);
  CHECK_THROWS_AS(losses::parse_grpo_scale_rewards("global"), rlhf::config_error);
  for (const char* name : {"sum_then_normalize", "normalize_then_sum"}) {
    CHECK(std::string(losses::to_string(losses::parse_grpo_multi_objective_aggregation(name))) ==
          name);
  }
  CHECK_THROWS_WITH_AS(losses::parse_grpo_multi_objective_aggregation("sum"),
                       "parse_grpo_multi_objective_aggregation: unknown "
                       "multi_objective_aggregation 'sum'; accepted: sum_then_normalize, "
                       "normalize_then_sum",
                       rlhf::config_error);
  // TRL's defaults.
  const losses::grpo_config cfg;
  CHECK(cfg.multi_objective_aggregation ==
        losses::grpo_multi_objective_aggregation::sum_then_normalize);
  CHECK(cfg.beta == 0.0f);
  CHECK(cfg.epsilon == 0.2f);
  CHECK(!cfg.epsilon_high);
  CHECK(!cfg.delta);
  CHECK(cfg.loss_type == losses::grpo_loss_type::dapo);
  CHECK(cfg.importance_sampling_level == losses::grpo_importance_sampling_level::token);
  CHECK(cfg.max_completion_length == 512);
  CHECK(cfg.sapo_temperature_pos == 1.0f);
  CHECK(cfg.sapo_temperature_neg == 1.05f);
  CHECK(cfg.vespo_k_pos == 2.0f);
  CHECK(cfg.vespo_lambda_pos == 3.0f);
  CHECK(cfg.vespo_k_neg == 3.0f);
  CHECK(cfg.vespo_lambda_neg == 2.0f);
  CHECK(cfg.top_entropy_quantile == 1.0f);
  CHECK(!cfg.off_policy_mask_threshold);
  CHECK(cfg.use_bias_correction_kl);  // TRL 1.x: on by default
  CHECK(cfg.entropy_coef == 0.0f);
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
                         "grpo_loss: loss_type must be one of its 8 enumerators (0..7), got 9",
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
        losses::grpo_advantages<B>(
            {r4}, advantage_config(2, static_cast<losses::grpo_scale_rewards>(3)), out4),
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
  CHECK_THROWS_WITH_AS(losses::grpo_advantages<B>(
                           {r5}, advantage_config(2, losses::grpo_scale_rewards::group), out5),
                       "grpo_advantages: num_generations (2) must divide the number of rewards (5)",
                       rlhf::shape_error);
  CHECK_THROWS_AS(losses::grpo_advantages<B>(
                      {empty1}, advantage_config(2, losses::grpo_scale_rewards::group), out5),
                  rlhf::shape_error);
  CHECK_THROWS_AS(losses::grpo_advantages<B>(
                      {r5}, advantage_config(0, losses::grpo_scale_rewards::group), out5),
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
  // A NaN reward is an unscorable completion (allowed); ±Inf is not a reward.
  const auto inf_r = make<B>({1.0f, -INFINITY}, rlhf::shape{2});
  typename B::tensor out2(rlhf::shape{2});
  CHECK_THROWS_WITH_AS(losses::grpo_advantages<B>(
                           {inf_r}, advantage_config(2, losses::grpo_scale_rewards::group), out2),
                       "grpo_advantages: rewards must be finite or NaN, got -inf at flat index 1",
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

TEST_CASE_TEMPLATE("grpo loss types and options: bad input names the argument", B,
                   RLHF_TEST_BACKENDS) {
  const rlhf::shape s{2, 3};
  const auto lp = make<B>({-1.0f, -0.5f, -2.0f, -0.3f, -0.7f, -1.1f}, s);
  const auto adv = make<B>({0.5f, -0.5f}, rlhf::shape{2});
  const auto mask = make<B>({1, 1, 0, 1, 0, 0}, s);
  const auto ent = make<B>({0.5f, 1.0f, 0.2f, 0.7f, 0.1f, 0.3f}, s);
  auto loss = [&](const losses::grpo_config& cfg, const typename B::tensor* e = nullptr,
                  const typename B::tensor* samp = nullptr,
                  const typename B::tensor* ratio = nullptr) {
    return losses::grpo_loss<B>({.per_token_logps = lp,
                                 .advantages = adv,
                                 .completion_mask = mask,
                                 .entropies = e,
                                 .sampling_per_token_logps = samp,
                                 .importance_sampling_ratio = ratio},
                                cfg);
  };

  // Hyper-parameters: config_error naming the field.
  losses::grpo_config cfg;
  cfg.top_entropy_quantile = 1.5f;
  CHECK_THROWS_WITH_AS(loss(cfg, &ent),
                       "grpo_loss: top_entropy_quantile must be in [0, 1], got 1.5",
                       rlhf::config_error);
  cfg.top_entropy_quantile = NAN;
  CHECK_THROWS_AS(loss(cfg, &ent), rlhf::config_error);
  cfg = {};
  cfg.top_entropy_quantile = 0.2f;
  CHECK_THROWS_WITH_AS(loss(cfg),
                       "grpo_loss: entropies are required when top_entropy_quantile < 1 or "
                       "entropy_coef != 0, got top_entropy_quantile = 0.200000003, "
                       "entropy_coef = 0 and no entropies",
                       rlhf::config_error);
  cfg = {};
  cfg.entropy_coef = 0.01f;
  CHECK_THROWS_AS(loss(cfg), rlhf::config_error);
  cfg.entropy_coef = INFINITY;
  CHECK_THROWS_WITH_AS(loss(cfg, &ent), "grpo_loss: entropy_coef must be finite, got inf",
                       rlhf::config_error);
  cfg = {};
  cfg.off_policy_mask_threshold = NAN;
  CHECK_THROWS_WITH_AS(loss(cfg), "grpo_loss: off_policy_mask_threshold must be finite, got nan",
                       rlhf::config_error);
  cfg = {};
  cfg.loss_type = losses::grpo_loss_type::sapo;
  cfg.sapo_temperature_neg = 0.0f;
  CHECK_THROWS_WITH_AS(loss(cfg), "grpo_loss: sapo_temperature_neg must be finite and > 0, got 0",
                       rlhf::config_error);
  cfg = {};
  cfg.sapo_temperature_pos = -1.0f;
  CHECK_THROWS_AS(loss(cfg), rlhf::config_error);
  cfg = {};
  cfg.vespo_lambda_pos = NAN;
  CHECK_THROWS_WITH_AS(loss(cfg), "grpo_loss: vespo_lambda_pos must be finite, got nan",
                       rlhf::config_error);
  cfg = {};
  cfg.vespo_k_neg = -INFINITY;
  CHECK_THROWS_AS(loss(cfg), rlhf::config_error);
  cfg = {};
  cfg.loss_type = losses::grpo_loss_type::cispo;
  cfg.epsilon_high = 0.0f;  // cispo's cap must be > 0
  CHECK_THROWS_AS(loss(cfg), rlhf::config_error);
  cfg.epsilon_high = 5.0f;
  cfg.delta = 1.5f;  // ignored by cispo (it would be < 1 + epsilon_high for dapo)
  CHECK_NOTHROW(loss(cfg));
  cfg.loss_type = losses::grpo_loss_type::luspo;  // a clipped loss type checks it
  CHECK_THROWS_AS(loss(cfg), rlhf::config_error);

  // Shapes: shape_error naming the tensor.
  const auto short_ent = make<B>({0.5f, 1.0f, 0.2f, 0.7f}, rlhf::shape{2, 2});
  CHECK_THROWS_WITH_AS(loss({}, &short_ent),
                       "grpo_loss: entropies has shape (2, 2) but per_token_logps has shape "
                       "(2, 3); they must match",
                       rlhf::shape_error);
  CHECK_THROWS_AS(loss({}, nullptr, &short_ent), rlhf::shape_error);
  const auto ratio_2x2 = make<B>({1.0f, 1.0f, 1.0f, 1.0f}, rlhf::shape{2, 2});
  CHECK_THROWS_WITH_AS(loss({}, nullptr, nullptr, &ratio_2x2),
                       "grpo_loss: importance_sampling_ratio has shape (2, 2) but "
                       "per_token_logps has shape (2, 3); they must match",
                       rlhf::shape_error);
  // A sequence-level vLLM ratio (N, 1) with vespo: TRL refuses the combination.
  const auto ratio_rows = make<B>({1.0f, 0.5f}, rlhf::shape{2, 1});
  cfg = {};
  CHECK_NOTHROW(loss(cfg, nullptr, nullptr, &ratio_rows));
  cfg.loss_type = losses::grpo_loss_type::vespo;
  CHECK_THROWS_AS(loss(cfg, nullptr, nullptr, &ratio_rows), rlhf::config_error);

  // Values: data_error naming the tensor.
  const auto nan_ent = make<B>({0.5f, NAN, 0.2f, 0.7f, 0.1f, 0.3f}, s);
  CHECK_THROWS_WITH_AS(loss({}, &nan_ent),
                       "grpo_loss: entropies must be finite, got nan at flat index 1",
                       rlhf::data_error);
  const auto neg_ratio = make<B>({1.0f, -0.5f, 1.0f, 1.0f, 1.0f, 1.0f}, s);
  CHECK_THROWS_WITH_AS(loss({}, nullptr, nullptr, &neg_ratio),
                       "grpo_loss: importance_sampling_ratio must hold finite weights >= 0, "
                       "got -0.5 at flat index 1",
                       rlhf::data_error);
  // Sampler log-probs may be NaN (unscored by the sampler) but not ±Inf.
  const auto nan_samp = make<B>({NAN, -0.5f, -2.0f, -0.3f, -0.7f, -1.1f}, s);
  cfg = {};
  cfg.off_policy_mask_threshold = 0.1f;
  CHECK_NOTHROW(loss(cfg, nullptr, &nan_samp));
  const auto inf_samp = make<B>({-INFINITY, -0.5f, -2.0f, -0.3f, -0.7f, -1.1f}, s);
  CHECK_THROWS_WITH_AS(loss(cfg, nullptr, &inf_samp),
                       "grpo_loss: sampling_per_token_logps must be finite or NaN, got -inf at "
                       "flat index 0",
                       rlhf::data_error);
}

}  // namespace test_grpo_cases
