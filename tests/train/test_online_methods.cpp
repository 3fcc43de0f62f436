// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// GRPO and RLOO as training methods on a tiny GPT with a reward it can learn: each raises
// the mean reward by a stated margin within a bounded number of seeded steps, a resumed GRPO
// run logs what the uninterrupted one logs bit for bit, the generation metrics are TRL's, and
// bad reward functions and configurations are refused with messages naming the culprit.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "online_fixture.hpp"
#include "rlhf/backends/eigen.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/best_of_n.hpp"
#include "rlhf/train/command_reward.hpp"
#include "rlhf/train/grpo.hpp"
#include "rlhf/train/model_reward.hpp"
#include "rlhf/train/policy_eval.hpp"
#include "rlhf/train/reward_functions.hpp"
#include "rlhf/train/rloo.hpp"
#include "rlhf/train/trainer.hpp"
#include "train_fixture.hpp"

namespace test_online_methods_cases {

namespace {

using B = rlhf::eigen_backend;
namespace fs = std::filesystem;
namespace model = rlhf::model;
namespace train = rlhf::train;
using Tok = model::byte_tokenizer;
using namespace train_fixture;
using namespace online_fixture;

fs::path scratch(const std::string& name) { return train_fixture::scratch("online", name); }

/// 24 one-letter prompts in the scratch file `name`.
fs::path prompt_file(const std::string& name) { return write_prompts(scratch(name)); }

train::example_source<Tok> prompts(const fs::path& file, float eval_fraction = 0.0f) {
  return prompt_source(file, eval_fraction);
}

/// Arguments for the reward-rising runs: 8 completions per step, a constant learning rate.
train::training_args online_args(const fs::path& dir, rlhf::index_t steps) {
  auto a = test_args(dir, 1e-2f, 0.0f);
  a.per_device_train_batch_size = 8;
  a.gradient_accumulation_steps = 1;
  a.max_steps = steps;
  a.eval_steps = 0;
  a.lr_scheduler_type = model::lr_schedule_type::constant;
  return a;
}

/// Mean of `name` over the first / last `k` logged training records.
std::pair<double, double> first_and_last(const fs::path& dir, const std::string& name, int k) {
  std::vector<double> v;
  for (const auto& l : read_lines(dir / "metrics.jsonl")) {
    const auto j = nlohmann::json::parse(l);
    if (j.contains(name)) v.push_back(j[name].get<double>());
  }
  REQUIRE(v.size() >= static_cast<std::size_t>(2 * k));
  double a = 0, b = 0;
  for (int i = 0; i < k; ++i) {
    a += v[static_cast<std::size_t>(i)];
    b += v[v.size() - 1 - static_cast<std::size_t>(i)];
  }
  return {a / k, b / k};
}

train::grpo_config grpo_cfg(const fs::path& dir, rlhf::index_t steps) {
  train::grpo_config c;
  c.args = online_args(dir, steps);
  c.loss.num_generations = 4;
  c.loss.max_completion_length = 8;
  return c;
}

}  // namespace

TEST_CASE(
    "GRPO raises a learnable reward: mean reward of the last 5 of 40 steps >= first 5 + 0.3") {
  const auto dir = scratch("grpo_run");
  model::gpt<B> policy(tiny_config());
  policy.init(3);
  auto source = prompts(prompt_file("grpo_prompts.jsonl"));
  train::grpo_method<B, Tok> method(policy, nullptr, source, {even_tokens()}, grpo_cfg(dir, 40));
  train::trainer<B, decltype(method)> t(method, grpo_cfg(dir, 40).args);
  t.train();
  const auto [first, last] = first_and_last(dir, "reward", 5);
  INFO("mean reward, first 5 steps " << first << ", last 5 " << last);
  CHECK(first > 0.3);
  CHECK(last >= first + 0.3);
  // num_tokens is TRL's running count of prompt + completion tokens: 8 one-token prompts and
  // 8 completions of completions/mean_length tokens a step (one step a record).
  double tokens = 0;
  for (const auto& l : read_lines(dir / "metrics.jsonl")) {
    const auto j = nlohmann::json::parse(l);
    tokens += 8.0 + 8.0 * j["completions/mean_length"].get<double>();
    CHECK(j["num_tokens"].get<double>() == tokens);
  }
}

TEST_CASE(
    "RLOO with a reference (beta 0.05) raises the reward by >= 0.15 in 60 steps, logs TRL's "
    "metrics") {
  const auto dir = scratch("rloo_run");
  model::gpt<B> policy(tiny_config());
  policy.init(3);
  model::gpt<B> reference(tiny_config(), /*trainable=*/false);
  rlhf::ops::transform<B>(reference.params(), rlhf::fn::identity{}, policy.params());
  auto source = prompts(prompt_file("rloo_prompts.jsonl"));
  train::rloo_config c;
  c.args = online_args(dir, 60);
  c.loss.num_generations = 4;
  c.max_completion_length = 8;
  train::rloo_method<B, Tok> method(policy, &reference, source, {even_tokens()}, c);
  train::trainer<B, decltype(method)> t(method, c.args);
  const auto res = t.train();
  for (const char* name : {"loss", "reward", "reward_std", "frac_reward_zero_std", "kl", "entropy",
                           "clip_ratio/region_mean", "completions/mean_length",
                           "completions/clipped_ratio", "rewards/even_tokens/mean"}) {
    CAPTURE(name);
    CHECK(res.last_log.contains(name));
  }
  const auto [first, last] = first_and_last(dir, "reward", 5);
  INFO("mean reward, first 5 steps " << first << ", last 5 " << last);
  CHECK(last >= first + 0.15);
  // The KL to the reference starts at 0 (the same weights) and grows as the policy moves.
  const auto [kl0, kl1] = first_and_last(dir, "kl", 1);
  CHECK(std::abs(kl0) < 1e-6);
  CHECK(kl1 > 1e-4);
}

TEST_CASE("GRPO resumed from a checkpoint logs what the uninterrupted run logs, bit for bit") {
  auto run = [&](const std::string& name, int stop_at, const fs::path& resume) {
    const auto dir = scratch(name);
    model::gpt<B> policy(tiny_config());
    policy.init(5);
    model::gpt<B> reference(tiny_config(), /*trainable=*/false);
    rlhf::ops::transform<B>(reference.params(), rlhf::fn::identity{}, policy.params());
    auto source = prompts(prompt_file(name + ".jsonl"));
    auto c = grpo_cfg(dir, 6);
    c.loss.beta = 0.04f;  // the reference's path too
    c.args.gradient_accumulation_steps = 2;
    c.args.per_device_train_batch_size = 4;
    train::grpo_method<B, Tok> method(policy, &reference, source, {even_tokens()}, c);
    return train_stopping_at<B>(method, c.args, stop_at, resume);
  };
  run("whole", 0, {});
  const auto stopped = run("part", 3, {});
  REQUIRE(stopped.stopped_early);
  // The resumed run writes into the stopped run's folder.
  {
    const auto dir = scratch("part");
    model::gpt<B> policy(tiny_config());
    policy.init(5);
    model::gpt<B> reference(tiny_config(), /*trainable=*/false);
    rlhf::ops::transform<B>(reference.params(), rlhf::fn::identity{}, policy.params());
    auto source = prompts(prompt_file("part.jsonl"));
    auto c = grpo_cfg(dir, 6);
    c.loss.beta = 0.04f;
    c.args.gradient_accumulation_steps = 2;
    c.args.per_device_train_batch_size = 4;
    train::grpo_method<B, Tok> method(policy, &reference, source, {even_tokens()}, c);
    train_stopping_at<B>(method, c.args, 0, stopped.last_checkpoint);
  }
  const auto whole = read_lines(scratch("whole") / "metrics.jsonl");
  const auto part = read_lines(scratch("part") / "metrics.jsonl");
  REQUIRE(whole.size() == 6);
  CHECK(part == whole);
}

TEST_CASE("GRPO's generation metrics follow TRL's definitions on a known batch") {
  train::completion_batch b;
  const std::int32_t eos = Tok{}.eos_id();
  b.completion_ids = {{1, 2, eos}, {4, 6, 8, 10}, {3, eos}, {5, 7, 9, 11}};
  b.truncated = {false, true, false, true};
  b.completions.resize(4);
  const auto m = train::detail::completion_metrics(b);
  auto get = [&](const std::string& n) { return rlhf::metric_or(m, n, NAN); };
  CHECK(get("completions/mean_length") == doctest::Approx(13.0 / 4));
  CHECK(get("completions/min_length") == 2);
  CHECK(get("completions/max_length") == 4);
  CHECK(get("completions/clipped_ratio") == doctest::Approx(0.5));
  CHECK(get("completions/mean_terminated_length") == doctest::Approx(2.5));
  CHECK(get("completions/min_terminated_length") == 2);
  CHECK(get("completions/max_terminated_length") == 3);
}

TEST_CASE("bad reward functions and configurations are refused, naming the culprit") {
  const auto dir = scratch("bad");
  model::gpt<B> policy(tiny_config());
  policy.init(3);
  auto source = prompts(prompt_file("bad_prompts.jsonl"));
  auto c = grpo_cfg(dir, 2);

  SUBCASE("a function returning the wrong number of scores") {
    train::reward_function short_fn{
        "short", 1.0f, [](const train::completion_batch&) { return std::vector<float>{1.0f}; }};
    train::grpo_method<B, Tok> m(policy, nullptr, source, {short_fn}, c);
    train::trainer<B, decltype(m)> t(m, c.args);
    CHECK_THROWS_WITH_AS(t.train(), doctest::Contains("reward function 'short' returned 1 scores"),
                         rlhf::data_error);
  }
  SUBCASE("an infinite score") {
    train::reward_function inf_fn{"inf", 1.0f, [](const train::completion_batch& b) {
                                    return std::vector<float>(b.size(), INFINITY);
                                  }};
    train::grpo_method<B, Tok> m(policy, nullptr, source, {inf_fn}, c);
    train::trainer<B, decltype(m)> t(m, c.args);
    CHECK_THROWS_WITH_AS(t.train(), doctest::Contains("reward function 'inf' returned inf"),
                         rlhf::data_error);
  }
  SUBCASE("no reward function, duplicate names") {
    using M = train::grpo_method<B, Tok>;
    CHECK_THROWS_WITH_AS(M(policy, nullptr, source, {}, c), doctest::Contains("reward_functions"),
                         rlhf::config_error);
    CHECK_THROWS_WITH_AS(M(policy, nullptr, source, {even_tokens(), even_tokens()}, c),
                         doctest::Contains("reward_functions[1].name"), rlhf::config_error);
  }
  SUBCASE("a generation batch that is not whole groups") {
    c.args.per_device_train_batch_size = 6;  // 6 completions, G = 4
    CHECK_THROWS_WITH_AS((train::grpo_method<B, Tok>(policy, nullptr, source, {even_tokens()}, c)),
                         doctest::Contains("must be a multiple of num_generations"),
                         rlhf::config_error);
  }
  SUBCASE("beta > 0 without a reference") {
    c.loss.beta = 0.1f;
    CHECK_THROWS_WITH_AS((train::grpo_method<B, Tok>(policy, nullptr, source, {even_tokens()}, c)),
                         doctest::Contains("reference"), rlhf::config_error);
  }
  SUBCASE("a completion length the context cannot hold") {
    c.loss.max_completion_length = 32;
    CHECK_THROWS_WITH_AS((train::grpo_method<B, Tok>(policy, nullptr, source, {even_tokens()}, c)),
                         doctest::Contains("max_completion_length"), rlhf::config_error);
  }
}

namespace {

/// Two completions, "yes" and "no", of the prompt "q".
train::completion_batch two_completions() {
  train::completion_batch b;
  for (const std::string c : {"yes", "no"}) {
    rlhf::data::content p;
    p.text = "q";
    b.prompts.push_back(p);
    b.completions.push_back(c);
    b.prompt_ids.push_back({'q'});
    b.completion_ids.push_back(std::vector<std::int32_t>(c.begin(), c.end()));
    b.truncated.push_back(false);
  }
  return b;
}

train::reward_function shell_reward(const std::string& script, int timeout_ms = 10000) {
  train::command_reward_options o;
  o.argv = {"/bin/sh", "-c", script};
  o.timeout = std::chrono::milliseconds(timeout_ms);
  o.name = "verifier";
  return train::command_reward(o);
}

}  // namespace

TEST_CASE("an external command as a reward: success, exit status, garbage, timeout") {
  const auto b = two_completions();
  SUBCASE("one JSON line per completion in, one number or null per line out") {
    const auto f = shell_reward(
        R"(while IFS= read -r l; do case "$l" in *'"completion":"yes"'*) echo 1.5;; )"
        R"(*'"prompt":"q"'*) echo null;; *) echo 0;; esac; done)");
    const auto s = f.score(b);
    REQUIRE(s.size() == 2);
    CHECK(s[0] == 1.5f);
    CHECK(std::isnan(s[1]));
  }
  SUBCASE("a non-zero exit names the status and the end of stderr") {
    CHECK_THROWS_WITH_AS(
        shell_reward("cat >/dev/null; echo broken verifier >&2; exit 3").score(b),
        doctest::Contains("exited with status 3, its stderr ends: broken verifier"),
        rlhf::io_error);
  }
  SUBCASE("output that is not a number names the line") {
    CHECK_THROWS_WITH_AS(shell_reward("cat >/dev/null; echo 1; echo hello").score(b),
                         doctest::Contains("output line 2 is not a number or null: 'hello'"),
                         rlhf::data_error);
    CHECK_THROWS_WITH_AS(shell_reward("cat >/dev/null; echo 1").score(b),
                         doctest::Contains("wrote 1 scores for 2 completions"), rlhf::data_error);
  }
  SUBCASE("a command that does not answer in time is killed") {
    CHECK_THROWS_WITH_AS(shell_reward("sleep 20", 300).score(b),
                         doctest::Contains("no answer within 300 ms; killed"), rlhf::io_error);
  }
  SUBCASE("a program that does not exist, and one that never reads its input") {
    train::command_reward_options o;
    o.argv = {"/nonexistent/verifier"};
    CHECK_THROWS_WITH_AS(train::command_reward(o).score(b), doctest::Contains("cannot start"),
                         rlhf::io_error);
    const auto s = shell_reward("echo 2; echo 3").score(b);
    CHECK(s == std::vector<float>{2.0f, 3.0f});
  }
}

TEST_CASE("a reward model scores each row at its last real token, as a lone forward does") {
  model::gpt<B> trunk(tiny_config(), /*trainable=*/false);
  trunk.init(21);
  auto head = model::make_reward_head<B>(tiny_config().n_embd, /*trainable=*/false);
  head.init(22, 0.5f);
  CHECK(trunk.grads().size() == 0);
  CHECK(head.grads().size() == 0);
  const auto b = two_completions();
  const auto s = train::model_reward<B>(trunk, head, Tok{}.pad_id()).score(b);
  REQUIRE(s.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    std::vector<std::int32_t> ids = b.prompt_ids[i];
    ids.insert(ids.end(), b.completion_ids[i].begin(), b.completion_ids[i].end());
    const auto t = static_cast<rlhf::index_t>(ids.size());
    model::gpt_activations<B> acts(tiny_config(), 1, t);
    model::gpt_forward<B>(
        trunk, acts,
        rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids), rlhf::shape{1, t}));
    typename B::tensor values(rlhf::shape{1, t});
    model::value_head_forward<B>(values, acts.lnf, head.weight(), head.bias());
    CHECK(s[i] == doctest::Approx(rlhf::ops::to_host<B>(values).back()).epsilon(1e-5));
  }
}

TEST_CASE("reward ensembles and length-normalised rewards") {
  const auto b = two_completions();
  auto fixed = [](std::string name, std::vector<float> v) {
    return train::reward_function{std::move(name), 1.0f,
                                  [v](const train::completion_batch&) { return v; }};
  };
  std::vector<train::reward_function> members{fixed("a", {1.0f, 2.0f}), fixed("b", {3.0f, NAN}),
                                              fixed("c", {-1.0f, 0.0f})};
  using R = rlhf::losses::ensemble_reduction;
  CHECK(train::reward_ensemble(members, R::mean).score(b)[0] == doctest::Approx(1.0));
  CHECK(train::reward_ensemble(members, R::min).score(b)[0] == -1.0f);
  // {1, 3, -1}: mean 1, population std sqrt(8/3).
  CHECK(train::reward_ensemble(members, R::mean_minus_std, 0.5f).score(b)[0] ==
        doctest::Approx(1.0 - 0.5 * std::sqrt(8.0 / 3.0)));
  CHECK(std::isnan(train::reward_ensemble(members, R::mean).score(b)[1]));  // b has no score
  // "yes" has 3 tokens, "no" 2.
  const auto n = train::length_normalized(fixed("a", {1.0f, 2.0f}), Tok{}.eos_id());
  CHECK(n.name == "a/length");
  CHECK(n.score(b) == std::vector<float>{1.0f / 3.0f, 1.0f});
}

namespace {

/// A training record with the fields the monitors read.
train::metrics_record record(int step, double reward, double spread, double length, double entropy,
                             double kl) {
  train::metrics_record r;
  r["step"] = step;
  r["reward"] = reward;
  r["reward_std"] = spread;
  r["completions/mean_length"] = length;
  r["entropy"] = entropy;
  r["kl"] = kl;
  return r;
}

}  // namespace

TEST_CASE("the monitors fire once on each constructed failure and stay silent on a healthy run") {
  train::monitor_config cfg;  // baseline of 3 logs, 2 sigma, 10 %, entropy 0.05, x2, KL 10
  auto run = [&](const std::vector<train::metrics_record>& records) {
    train::run_monitors m(cfg);
    std::vector<std::string> all;
    for (auto r : records) {
      for (const auto& w : m.review(r)) all.push_back(w);
      CHECK(r.contains("monitor/reward_drift"));
    }
    return all;
  };
  // Healthy: the reward creeps up within its spread, lengths and entropy hold.
  std::vector<train::metrics_record> healthy;
  for (int s = 1; s <= 12; ++s) healthy.push_back(record(s, 0.5 + 0.01 * s, 0.2, 20, 2.0, 0.5));
  CHECK(run(healthy).empty());

  // A reward that pays for length: reward and length climb together.
  std::vector<train::metrics_record> hacked = healthy;
  for (int s = 13; s <= 16; ++s)
    hacked.push_back(record(s, 0.6 + 0.2 * (s - 12), 0.2, 20.0 * (s - 10), 2.0, 0.5));
  const auto w = run(hacked);
  REQUIRE(w.size() == 2);  // each fires once, though the condition persists
  CHECK(w[0].find("step 13: length runaway") == 0);  // 60 tokens > 2 x 20
  CHECK(w[1].find("step 14: reward drift") == 0);    // |1.0 - 0.52| > 2 x 0.2

  // A collapsing policy: the spread of rewards vanishes, then the entropy.
  std::vector<train::metrics_record> collapsing = healthy;
  collapsing.push_back(record(13, 0.63, 0.01, 20, 2.0, 0.5));
  collapsing.push_back(record(14, 0.63, 0.3, 20, 2.0, 0.5));   // clears: re-armed
  collapsing.push_back(record(15, 0.63, 0.3, 20, 0.01, 0.5));  // fires again on entropy
  collapsing.push_back(record(16, 0.63, 0.3, 20, 2.0, 12.0));  // and the KL ceiling
  const auto c = run(collapsing);
  REQUIRE(c.size() == 3);
  CHECK(c[0].find("step 13: mode collapse: reward_std") == 0);
  CHECK(c[1].find("step 15: mode collapse: the policy's entropy") == 0);
  CHECK(c[2].find("step 16: KL ceiling") == 0);

  // The state carries the baseline and the firing flags across a resume.
  train::run_monitors a(cfg), b(cfg);
  for (int s = 0; s < 13; ++s) {
    auto r = hacked[static_cast<std::size_t>(s)];
    (void)a.review(r);
  }
  b.restore(nlohmann::json::parse(a.state().dump()));
  for (int s = 13; s < 16; ++s) {
    auto ra = hacked[static_cast<std::size_t>(s)], rb = ra;
    CHECK(a.review(ra) == b.review(rb));
    CHECK(ra == rb);
  }
  // PPO's names, and no reward_std: the drift compares with the baseline records' spread
  // (scores 1.0, 1.2, 1.1: std 0.1), the entropy is policy/entropy_avg, the KL objective/kl.
  {
    train::run_monitors m(cfg);
    std::vector<std::string> all;
    const double scores[] = {1.0, 1.2, 1.1, 1.25, 1.4};
    for (int s = 0; s < 5; ++s) {
      train::metrics_record r;
      r["step"] = s + 1;
      r["objective/scores"] = scores[s];
      r["policy/entropy_avg"] = s == 4 ? 0.01 : 3.0;
      r["objective/kl"] = 1.0;
      for (const auto& warning : m.review(r)) all.push_back(warning);
    }
    REQUIRE(all.size() == 2);
    CHECK(all[0].find("step 5: reward drift") == 0);  // |1.4 - 1.1| > 2 x 0.1; 1.25 is not
    CHECK(all[1].find("step 5: mode collapse: the policy's entropy") == 0);
  }
  cfg.baseline_logs = 0;
  CHECK_THROWS_WITH_AS(train::run_monitors{cfg}, doctest::Contains("baseline_logs"),
                       rlhf::config_error);
}

TEST_CASE("a GRPO run that collapses onto one kind of token raises the mode-collapse warning") {
  auto run = [&](const std::string& name, float lr, rlhf::index_t steps) {
    const auto dir = scratch(name);
    model::gpt<B> policy(tiny_config());
    policy.init(3);
    auto source = prompts(prompt_file(name + ".jsonl"));
    auto c = grpo_cfg(dir, steps);
    c.args.learning_rate = lr;
    train::grpo_method<B, Tok> method(policy, nullptr, source, {even_tokens()}, c);
    std::vector<std::string> warnings;
    train::callbacks cb;
    cb.on_warning = [&](const std::string& w) { warnings.push_back(w); };
    train::trainer<B, decltype(method)> t(method, c.args, cb);
    t.train();
    return warnings;
  };
  const auto healthy = run("gentle", 1e-3f, 8);
  CHECK(healthy.empty());
  const auto collapsed = run("collapse", 3e-2f, 40);
  bool found = false;
  for (const auto& w : collapsed) found = found || w.find("mode collapse") != std::string::npos;
  INFO("warnings: " << collapsed.size());
  CHECK(found);
}

TEST_CASE("best-of-N keeps each prompt's highest-scoring sample") {
  model::gpt<B> policy(tiny_config(), /*trainable=*/false);
  policy.init(9);
  std::vector<rlhf::data::content> ps(5);
  for (std::size_t i = 0; i < ps.size(); ++i)
    ps[i].text = std::string(1, static_cast<char>('a' + i));
  const std::vector<train::reward_function> rewards{even_tokens()};
  train::best_of_n_config c;
  c.max_completion_length = 8;
  c.prompts_per_batch = 2;  // 3 batches
  c.n = 8;
  const auto best = train::best_of_n<B>(policy, Tok{}, ps, rewards, c);
  REQUIRE(best.size() == 5);
  double mean_best = 0, mean_all = 0;
  for (const auto& r : best) {
    REQUIRE(r.candidates.size() == 8);
    const float top = *std::max_element(r.scores.begin(), r.scores.end());
    CHECK(r.score == top);
    CHECK(r.scores[r.best] == top);
    CHECK(r.completion == r.candidates[r.best]);
    // The score is the reward function's on the kept completion.
    train::completion_batch one;
    one.completion_ids = {r.completion_ids};
    CHECK(even_tokens().score(one)[0] == r.score);
    mean_best += r.score / 5.0;
    for (const float s : r.scores) mean_all += s / 40.0;
  }
  CHECK(mean_best > mean_all);
  // Seeded: the same call gives the same samples; another seed other samples.
  const auto again = train::best_of_n<B>(policy, Tok{}, ps, rewards, c);
  for (std::size_t i = 0; i < 5; ++i) CHECK(again[i].candidates == best[i].candidates);
  c.seed = 1;
  const auto other = train::best_of_n<B>(policy, Tok{}, ps, rewards, c);
  CHECK(other[0].candidates != best[0].candidates);
  // No score anywhere: NaN, the first candidate.
  const std::vector<train::reward_function> none{
      {"none", 1.0f,
       [](const train::completion_batch& b) { return std::vector<float>(b.size(), NAN); }}};
  const auto unscored = train::best_of_n<B>(policy, Tok{}, ps, none, c);
  CHECK(std::isnan(unscored[0].score));
  CHECK(unscored[0].best == 0);
  c.n = 0;
  CHECK_THROWS_WITH_AS(train::best_of_n<B>(policy, Tok{}, ps, rewards, c), doctest::Contains("n"),
                       rlhf::config_error);
}

TEST_CASE("evaluate_policy: greedy reward and length, and the KL to a reference") {
  model::gpt<B> policy(tiny_config(), /*trainable=*/false);
  policy.init(9);
  // A reference with ten times the weights: much sharper next-token distributions.
  model::gpt<B> other(tiny_config(), /*trainable=*/false);
  {
    auto w = rlhf::ops::to_host<B>(policy.params());
    for (auto& x : w) x *= 10.0f;
    rlhf::ops::copy_from_host<B>(std::span<const float>(w), other.params());
  }
  std::vector<rlhf::data::content> ps(20);
  for (std::size_t i = 0; i < ps.size(); ++i)
    ps[i].text = std::string(1, static_cast<char>('a' + i));
  // A reward read off the text: the completion's length in bytes.
  const std::vector<train::reward_function> bytes{
      {"bytes", 1.0f, [](const train::completion_batch& b) {
         std::vector<float> s;
         for (const auto& c : b.completions) s.push_back(static_cast<float>(c.size()));
         return s;
       }}};
  train::policy_eval_config c;
  c.max_completion_length = 8;
  c.prompts_per_batch = 6;
  const auto self = train::evaluate_policy<B>(policy, &policy, Tok{}, ps, bytes, c);
  REQUIRE(self.completions.size() == 20);
  double mean = 0;
  for (const auto& s : self.completions) mean += static_cast<double>(s.size()) / 20.0;
  CHECK(self.reward == doctest::Approx(mean));
  CHECK(self.unscorable == 0.0);
  CHECK(self.mean_length >= 1.0);
  CHECK(self.kl == 0.0);  // the same model: every log-ratio is exactly 0
  // Greedy answers are what generate() gives at temperature 0.
  model::generation_config g;
  g.max_new_tokens = 8;
  g.sampling.temperature = 0.0f;
  g.stop_tokens = {Tok{}.eos_id()};
  g.pad_token = Tok{}.pad_id();
  const auto first = model::generate<B>(policy, {{static_cast<std::int32_t>('a')}}, g);
  const auto toks = rlhf::ops::to_host<B>(first.tokens);
  std::vector<std::int32_t> gen(toks.begin() + first.prompt_width,
                                toks.begin() + first.prompt_width + first.lengths[0]);
  CHECK(self.completions[0] == Tok{}.decode(gen));
  // Another model: a KL well above 0, and no KL without a reference.
  const auto far = train::evaluate_policy<B>(policy, &other, Tok{}, ps, bytes, c);
  CHECK(far.kl > 1.0);
  CHECK(far.reward == self.reward);
  CHECK(std::isnan(train::evaluate_policy<B>(policy, nullptr, Tok{}, ps, bytes, c).kl));
}

}  // namespace test_online_methods_cases
