// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// PPO (train/ppo.hpp) on a tiny GPT: with a reward it can learn, the mean score rises by a
// stated margin within a bounded number of seeded steps (separate critic and shared trunk);
// a frozen reward model scores what an independent reward function scores; the frozen models
// never hold gradient buffers; a run stopped at a rollout boundary and resumed logs what the
// uninterrupted run logs bit for bit; the micro-batch gradients match central differences;
// target_kl ends rollouts early; bad configurations are refused naming the field.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "online_fixture.hpp"
#include "rlhf/backends/eigen.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/model_reward.hpp"
#include "rlhf/train/ppo.hpp"
#include "rlhf/train/reward_functions.hpp"
#include "rlhf/train/trainer.hpp"
#include "train_fixture.hpp"

namespace test_ppo_method_cases {

namespace {

using B = rlhf::eigen_backend;
namespace fs = std::filesystem;
namespace model = rlhf::model;
namespace train = rlhf::train;
using Tok = model::byte_tokenizer;
using namespace train_fixture;
using namespace online_fixture;

fs::path scratch(const std::string& name) { return train_fixture::scratch("ppo", name); }

/// 24 one-letter prompts in the scratch file `name`.
fs::path prompt_file(const std::string& name) { return write_prompts(scratch(name)); }

train::example_source<Tok> prompts(const fs::path& file, float eval_fraction = 0.0f) {
  return prompt_source(file, eval_fraction);
}

/// The policy, its frozen copy, a critic trunk and a value head of one PPO run.
struct models {
  model::gpt<B> policy{tiny_config()};
  model::gpt<B> reference{tiny_config(), /*trainable=*/false};
  model::gpt<B> critic{tiny_config()};
  model::scalar_head<B> v_head = model::make_value_head<B>(tiny_config().n_embd);

  explicit models(std::uint64_t seed) {
    policy.init(seed);
    rlhf::ops::transform<B>(reference.params(), rlhf::fn::identity{}, policy.params());
    critic.init(seed + 100);
    v_head.init(seed + 200);
  }
  /// The four models with the reward functions; `shared`: the value head on the policy.
  train::ppo_models<B> with(bool shared, std::vector<train::reward_function> f) {
    train::ppo_models<B> m;
    m.policy = &policy;
    m.reference = &reference;
    m.value_head = &v_head;
    m.value_model = shared ? nullptr : &critic;
    m.reward_functions = std::move(f);
    return m;
  }
};

/// PPO settings of the reward-rising runs: 8 prompts per rollout, 4 epochs of 1 minibatch
/// (K = 4 steps per rollout), 8-token completions, a constant learning rate.
train::ppo_config ppo_cfg(const fs::path& dir, rlhf::index_t steps) {
  train::ppo_config c;
  c.args = test_args(dir, 1e-2f, 0.0f);
  c.args.per_device_train_batch_size = 8;
  c.args.gradient_accumulation_steps = 1;
  c.args.max_steps = steps;
  c.args.eval_steps = 0;
  c.args.lr_scheduler_type = model::lr_schedule_type::constant;
  c.response_length = 8;
  c.temperature = 1.0f;
  return c;
}

/// Every logged value of `name`, in order.
std::vector<double> logged(const fs::path& dir, const std::string& name) {
  std::vector<double> v;
  for (const auto& l : read_lines(dir / "metrics.jsonl")) {
    const auto j = nlohmann::json::parse(l);
    if (j.contains(name)) v.push_back(j[name].get<double>());
  }
  return v;
}

/// Mean of `name` over the first / last `k` logged records that hold it.
std::pair<double, double> first_and_last(const fs::path& dir, const std::string& name, int k) {
  const auto v = logged(dir, name);
  REQUIRE(v.size() >= static_cast<std::size_t>(2 * k));
  double a = 0, b = 0;
  for (int i = 0; i < k; ++i) {
    a += v[static_cast<std::size_t>(i)];
    b += v[v.size() - 1 - static_cast<std::size_t>(i)];
  }
  return {a / k, b / k};
}

}  // namespace

TEST_CASE("PPO with a separate critic raises a learnable reward by >= 0.15 in 60 rollouts") {
  const auto dir = scratch("critic_run");
  models ms(3);
  auto source = prompts(prompt_file("critic_prompts.jsonl"));
  const auto c = ppo_cfg(dir, 240);
  train::ppo_method<B, Tok> method(ms.with(false, {even_tokens()}), source, c);
  train::trainer<B, decltype(method)> t(method, c.args);
  const auto res = t.train();
  const auto [first, last] = first_and_last(dir, "objective/scores", 5);
  INFO("mean score, first 5 rollouts " << first << ", last 5 " << last);
  // The margin holds in the Release and the sanitizer builds alike (their float sums
  // differ, and so do their trajectories: +0.25 and +0.18 for the shared trunk).
  CHECK(last >= first + 0.15);
  for (const char* name :
       {"loss", "objective/kl", "objective/entropy", "objective/non_score_reward",
        "objective/rlhf_reward", "policy/approxkl_avg", "policy/clipfrac_avg", "loss/policy_avg",
        "loss/value_avg", "val/clipfrac_avg", "policy/entropy_avg", "val/ratio", "val/ratio_var",
        "val/num_eos_tokens", "episode", "grad_norm", "learning_rate"}) {
    CAPTURE(name);
    CHECK(logged(dir, name).size() >= 1);
  }
  // The critic is checkpointed beside the policy; the policy file holds no value head.
  CHECK(fs::exists(res.last_checkpoint / "value_model.safetensors"));
  CHECK(fs::exists(res.last_checkpoint / "value_model_heads_optimizer.safetensors"));
  CHECK_FALSE(fs::exists(res.last_checkpoint / "heads_optimizer.safetensors"));
  CHECK(logged(dir, "episode").back() == 60 * 8);
  CHECK(ms.reference.grads().size() == 0);
}

TEST_CASE(
    "PPO with the value head on the policy's trunk raises the reward by >= 0.15 in 60 rollouts") {
  const auto dir = scratch("shared_run");
  models ms(3);
  auto source = prompts(prompt_file("shared_prompts.jsonl"));
  const auto c = ppo_cfg(dir, 240);
  train::ppo_method<B, Tok> method(ms.with(true, {even_tokens()}), source, c);
  train::trainer<B, decltype(method)> t(method, c.args);
  const auto res = t.train();
  const auto [first, last] = first_and_last(dir, "objective/scores", 5);
  INFO("mean score, first 5 rollouts " << first << ", last 5 " << last);
  // The margin holds in the Release and the sanitizer builds alike (their float sums
  // differ, and so do their trajectories: +0.25 and +0.18 for the shared trunk).
  CHECK(last >= first + 0.15);
  CHECK(fs::exists(res.last_checkpoint / "heads_optimizer.safetensors"));  // v_head's AdamW
  CHECK_FALSE(fs::exists(res.last_checkpoint / "value_model.safetensors"));
  CHECK(ms.critic.grads().size() > 0);  // unused here
}

TEST_CASE(
    "a frozen reward model scores what the same model as a reward function scores, "
    "without gradient buffers") {
  // The pipeline check: the bundled reward model (trunk + "score" head at the last real
  // token) gives the first rollout's objective/scores that train::model_reward (an
  // independent single-row forward) gives on the same seeded completions. Its weights are
  // random: no learnable signal is claimed here.
  model::gpt<B> rm(tiny_config(), /*trainable=*/false);
  rm.init(21);
  auto score = model::make_reward_head<B>(tiny_config().n_embd, /*trainable=*/false);
  score.init(22, 0.5f);
  auto run = [&](const std::string& name, bool bundled) {
    const auto dir = scratch(name);
    models ms(5);
    auto source = prompts(prompt_file(name + ".jsonl"));
    auto c = ppo_cfg(dir, 8);
    train::ppo_models<B> m = ms.with(false, {});
    if (bundled) {
      m.reward_model = &rm;
      m.reward_head = &score;
    } else {
      m.reward_functions = {train::model_reward<B>(rm, score, Tok{}.pad_id())};
    }
    train::ppo_method<B, Tok> method(m, source, c);
    train::trainer<B, decltype(method)> t(method, c.args);
    t.train();
    CHECK(ms.reference.grads().size() == 0);
    return logged(dir, "objective/scores");
  };
  const auto bundled = run("rm_bundled", true);
  const auto function = run("rm_function", false);
  REQUIRE(bundled.size() == 2);
  REQUIRE(function.size() == 2);
  CHECK(bundled[0] == doctest::Approx(function[0]).epsilon(1e-5));
  CHECK(std::abs(bundled[0]) > 1e-3);  // the head does read something
  CHECK(rm.grads().size() == 0);
  CHECK(score.grads().size() == 0);
}

TEST_CASE("PPO raises the score of a frozen random reward model by >= 2 in 30 rollouts") {
  // A random reward model is still a function of the completion that the policy can climb.
  const auto dir = scratch("rm_run");
  model::gpt<B> rm(tiny_config(), /*trainable=*/false);
  rm.init(31);
  auto score = model::make_reward_head<B>(tiny_config().n_embd, /*trainable=*/false);
  score.init(32, 1.0f);
  models ms(3);
  auto source = prompts(prompt_file("rm_run.jsonl"));
  const auto c = ppo_cfg(dir, 120);
  train::ppo_models<B> m = ms.with(false, {});
  m.reward_model = &rm;
  m.reward_head = &score;
  train::ppo_method<B, Tok> method(m, source, c);
  train::trainer<B, decltype(method)> t(method, c.args);
  t.train();
  const auto [first, last] = first_and_last(dir, "objective/scores", 5);
  INFO("reward model score, first 5 rollouts " << first << ", last 5 " << last);
  CHECK(last >= first + 2.0);  // measured: 0.53 -> 6.9
  CHECK(rm.grads().size() == 0);
  CHECK(score.grads().size() == 0);
}

TEST_CASE("PPO resumed from a checkpoint logs what the uninterrupted run logs, bit for bit") {
  // 16 prompts per rollout: 2 epochs × 2 minibatches of 2 micro-batches of 4 (K = 4); a stop
  // requested inside the second rollout (after step 5) is honoured at its end (step 8).
  for (const bool shared : {false, true}) {
    CAPTURE(shared);
    const std::string tag = shared ? "_shared" : "";
    auto run = [&](const std::string& name, int stop_at, const fs::path& resume) {
      const auto dir = scratch(name);
      models ms(7);
      auto source = prompts(prompt_file(name + ".jsonl"));
      auto c = ppo_cfg(dir, 12);
      c.args.per_device_train_batch_size = 4;
      c.args.gradient_accumulation_steps = 2;
      c.num_mini_batches = 2;
      c.num_ppo_epochs = 2;
      c.adaptive_kl = train::ppo_adaptive_kl{0.5, 100.0};  // its state is resumed too
      c.score_normalization = rlhf::rl::score_normalization::subtract_mean;
      c.args.save_steps = 3;  // rounded up to K = 4: checkpoints at rollout boundaries only
      train::ppo_method<B, Tok> method(ms.with(shared, {even_tokens()}), source, c);
      return train_stopping_at<B>(method, c.args, stop_at, resume);
    };
    run("whole" + tag, 0, {});
    const auto whole_dir = scratch("whole" + tag);
    CHECK(fs::exists(whole_dir / "checkpoint-4" /
                     (shared ? "heads_optimizer.safetensors" : "value_model.safetensors")));
    CHECK(fs::exists(whole_dir / "checkpoint-8"));
    CHECK_FALSE(fs::exists(whole_dir / "checkpoint-3"));
    CHECK_FALSE(fs::exists(whole_dir / "checkpoint-6"));
    const auto stopped = run("part" + tag, 5, {});
    REQUIRE(stopped.stopped_early);
    CHECK(stopped.global_step == 8);
    CHECK(stopped.last_checkpoint.filename() == "checkpoint-8");
    run("part" + tag, 0, stopped.last_checkpoint);
    const auto whole = read_lines(whole_dir / "metrics.jsonl");
    const auto part = read_lines(scratch("part" + tag) / "metrics.jsonl");
    REQUIRE(whole.size() == 12);
    CHECK(part == whole);
  }
}

namespace {

/// Central differences of the micro-batch loss against the analytic gradient for the
/// `count` entries of `grads` with the largest magnitude.
void check_fd(train::ppo_method<B, Tok>& method, typename B::tensor& params,
              const typename B::tensor& grads, int count, const char* what) {
  const auto g = rlhf::ops::to_host<B>(grads);
  std::vector<std::size_t> order(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) order[i] = i;
  std::partial_sort(order.begin(), order.begin() + count, order.end(),
                    [&](std::size_t a, std::size_t b) { return std::abs(g[a]) > std::abs(g[b]); });
  auto p = rlhf::ops::to_host<B>(params);
  const float h = 1e-2f;
  for (int k = 0; k < count; ++k) {
    const std::size_t i = order[static_cast<std::size_t>(k)];
    const float keep = p[i];
    auto loss_at = [&](float v) {
      p[i] = v;
      rlhf::ops::copy_from_host<B>(std::span<const float>(p), params);
      return static_cast<double>(
          rlhf::metric_or(method.micro_batch_loss(0, 0, false), "loss", NAN));
    };
    const double fd = (loss_at(keep + h) - loss_at(keep - h)) / (2.0 * h);
    loss_at(keep);
    CAPTURE(what);
    CAPTURE(i);
    CHECK(g[i] == doctest::Approx(fd).epsilon(0.03).scale(0));
  }
}

}  // namespace

TEST_CASE("the micro-batch gradients of policy and value model match central differences") {
  for (const bool shared : {false, true}) {
    CAPTURE(shared);
    const auto dir = scratch(shared ? "fd_shared" : "fd_critic");
    models ms(9);
    auto source = prompts(prompt_file(shared ? "fd_shared.jsonl" : "fd_critic.jsonl"));
    auto c = ppo_cfg(dir, 4);
    c.vf_coef = 1.0f;  // the value terms as large as the policy's
    train::ppo_method<B, Tok> method(ms.with(shared, {even_tokens()}), source, c);
    const std::vector<std::uint64_t> idx{0, 1, 2, 3, 4, 5, 6, 7};
    method.prepare_step(idx, 0);
    ms.policy.zero_grads();
    ms.critic.zero_grads();
    ms.v_head.zero_grads();
    const auto m = method.micro_batch_loss(0, 0, true);
    // At the rollout's own parameters the ratio is 1: the loss is -mean(A) + the value terms.
    CHECK(rlhf::metric_or(m, "val/ratio", NAN) == doctest::Approx(1.0).epsilon(1e-4));
    check_fd(method, ms.v_head.params(), ms.v_head.grads(), 4, "v_head");
    check_fd(method, ms.policy.params(), ms.policy.grads(), 6, "policy");
    if (!shared) check_fd(method, ms.critic.params(), ms.critic.grads(), 6, "critic trunk");
    if (!shared) {
      // The policy's gradient holds no value term: only the critic sees it.
      CHECK(rlhf::ops::to_host<B>(ms.critic.grads()) !=
            std::vector<float>(ms.critic.num_params(), 0.0f));
    }
  }
}

TEST_CASE("target_kl ends a rollout after the first epoch whose mean approx KL exceeds it") {
  const auto dir = scratch("target_kl");
  models ms(11);
  auto source = prompts(prompt_file("target_kl.jsonl"));
  auto c = ppo_cfg(dir, 8);
  c.args.per_device_train_batch_size = 4;
  c.num_mini_batches = 2;  // K = 8: one rollout would cover the whole run
  c.target_kl = 1e-9f;     // exceeded by the second minibatch's (after one update) KL
  train::ppo_method<B, Tok> method(ms.with(false, {even_tokens()}), source, c);
  train::trainer<B, decltype(method)> t(method, c.args);
  t.train();
  // Each rollout stops after its first epoch (2 steps): 4 rollouts in 8 steps.
  CHECK(logged(dir, "objective/scores").size() == 4);
  const auto epochs = logged(dir, "ppo/epochs");
  REQUIRE(epochs.size() == 4);
  CHECK(epochs.back() == 1.0);
}

TEST_CASE(
    "evaluation inside a rollout reports the rollout metrics and changes no training record") {
  // Two runs with a held-out quarter of the prompts: one evaluates every 2 steps (inside
  // the 4-step rollouts), one only at the end; their training records are identical.
  auto run = [&](const std::string& name, rlhf::index_t eval_steps) {
    const auto dir = scratch(name);
    models ms(13);
    auto source = prompts(prompt_file(name + ".jsonl"), 0.25f);
    auto c = ppo_cfg(dir, 8);
    c.args.eval_steps = eval_steps;
    c.args.per_device_eval_batch_size = 3;
    c.adaptive_kl = train::ppo_adaptive_kl{};
    c.score_normalization = rlhf::rl::score_normalization::scale_only;
    train::ppo_method<B, Tok> method(ms.with(false, {even_tokens()}), source, c);
    train::trainer<B, decltype(method)> t(method, c.args);
    const auto res = t.train();
    CHECK(res.last_eval.contains("eval_objective/scores"));
    CHECK(res.last_eval.contains("eval_objective/kl"));
    CHECK(res.last_eval.contains("eval_completions/mean_length"));
    std::vector<std::string> training;
    for (const auto& l : read_lines(dir / "metrics.jsonl")) {
      if (l.find("eval_") == std::string::npos) training.push_back(l);
    }
    return training;
  };
  const auto with = run("eval_often", 2);
  const auto without = run("eval_end", 0);
  REQUIRE(without.size() == 8);
  CHECK(with == without);
}

TEST_CASE(
    "missing_eos_penalty lowers objective/scores by penalty × the share without EOS; "
    "k3, whitened rewards and a NaN score") {
  auto first_record = [&](const std::string& name, std::optional<float> penalty) {
    const auto dir = scratch(name);
    models ms(17);
    auto source = prompts(prompt_file(name + ".jsonl"));
    auto c = ppo_cfg(dir, 4);
    c.response_length = 3;  // most completions end without EOS
    c.missing_eos_penalty = penalty;
    c.kl_estimator = rlhf::rl::kl_estimator::k3;
    c.whiten_rewards = true;
    train::ppo_method<B, Tok> method(ms.with(false, {even_tokens()}), source, c);
    train::trainer<B, decltype(method)> t(method, c.args);
    t.train();
    return nlohmann::json::parse(read_lines(dir / "metrics.jsonl").front());
  };
  const auto plain = first_record("eos_plain", std::nullopt);
  const auto penalised = first_record("eos_penalised", 2.0f);
  const double clipped = plain["completions/clipped_ratio"].get<double>();
  CHECK(clipped > 0.0);
  CHECK(penalised["completions/clipped_ratio"].get<double>() == clipped);
  CHECK(penalised["objective/scores"].get<double>() ==
        doctest::Approx(plain["objective/scores"].get<double>() - 2.0 * clipped).epsilon(1e-5));
  CHECK(std::isfinite(penalised["loss"].get<double>()));

  const auto dir = scratch("nan_score");
  models ms(17);
  auto source = prompts(prompt_file("nan_score.jsonl"));
  const auto c = ppo_cfg(dir, 4);
  train::reward_function none{"none", 1.0f, [](const train::completion_batch& b) {
                                return std::vector<float>(b.size(), NAN);
                              }};
  train::ppo_method<B, Tok> method(ms.with(false, {none}), source, c);
  train::trainer<B, decltype(method)> t(method, c.args);
  CHECK_THROWS_WITH_AS(t.train(), doctest::Contains("reward function 'none' returned no score"),
                       rlhf::data_error);
}

TEST_CASE("bad PPO configurations and models are refused, naming the field") {
  const auto dir = scratch("bad");
  models ms(3);
  auto source = prompts(prompt_file("bad_prompts.jsonl"));
  auto c = ppo_cfg(dir, 4);
  using M = train::ppo_method<B, Tok>;
  auto refused = [&](const train::ppo_models<B>& m, const train::ppo_config& cfg,
                     const std::string& field) {
    CAPTURE(field);
    CHECK_THROWS_WITH_AS(M(m, source, cfg), doctest::Contains(field.c_str()), rlhf::config_error);
  };
  SUBCASE("non-positive epochs and minibatches") {
    c.num_ppo_epochs = 0;
    refused(ms.with(false, {even_tokens()}), c, "num_ppo_epochs must be >= 1");
    c.num_ppo_epochs = 4;
    c.num_mini_batches = -1;
    refused(ms.with(false, {even_tokens()}), c, "num_mini_batches must be >= 1");
  }
  SUBCASE("a rollout batch the prompts cannot fill") {
    c.num_mini_batches = 4;  // 8 · 1 · 4 = 32 > 24 prompts
    refused(ms.with(false, {even_tokens()}), c, "num_mini_batches must be <= the training prompts");
  }
  SUBCASE("estimators, lengths, temperature") {
    c.kl_estimator = rlhf::rl::kl_estimator::abs;
    refused(ms.with(false, {even_tokens()}), c, "kl_estimator must be k1 or k3");
    c.kl_estimator = rlhf::rl::kl_estimator::k3;
    c.response_length = 32;
    refused(ms.with(false, {even_tokens()}), c, "response_length");
    c.response_length = 8;
    c.target_kl = -1.0f;
    refused(ms.with(false, {even_tokens()}), c, "target_kl");
  }
  SUBCASE("a reward model of another vocabulary or context") {
    auto other = tiny_config();
    other.vocab_size += 1;
    model::gpt<B> rm(other, false);
    auto head = model::make_reward_head<B>(other.n_embd, false);
    auto m = ms.with(false, {});
    m.reward_model = &rm;
    m.reward_head = &head;
    refused(m, c, "reward_model.vocab_size");
    auto shorter = tiny_config();
    shorter.max_seq_len = 16;
    model::gpt<B> rm2(shorter, false);
    m.reward_model = &rm2;
    refused(m, c, "reward_model.max_seq_len");
  }
  SUBCASE("trainable frozen models, both rewards or none, a critic of another vocabulary") {
    model::gpt<B> trainable_ref(tiny_config());
    auto m = ms.with(false, {even_tokens()});
    m.reference = &trainable_ref;
    refused(m, c, "reference must be frozen");
    model::gpt<B> rm(tiny_config(), false);
    auto head = model::make_reward_head<B>(tiny_config().n_embd, false);
    m = ms.with(false, {even_tokens()});
    m.reward_model = &rm;
    m.reward_head = &head;
    refused(m, c, "reward must be either");
    refused(ms.with(false, {}), c, "reward must be either");
    auto other = tiny_config();
    other.vocab_size += 3;
    model::gpt<B> critic(other);
    m = ms.with(false, {even_tokens()});
    m.value_model = &critic;
    refused(m, c, "value_model.vocab_size");
  }
}

}  // namespace test_ppo_method_cases
