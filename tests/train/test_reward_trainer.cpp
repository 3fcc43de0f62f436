// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Reward modeling (train/reward.hpp) through the trainer loop on a tiny GPT with a "score"
// head and generated pairs: separable pairs are ranked on held-out data, the guidance
// warnings fire when they should, a run stopped at step k and resumed from its checkpoint
// (trunk, head and both AdamW states) logs every metric bit for bit as the uninterrupted
// run, and the data's margins enter the loss.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/model/safetensors.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/reward.hpp"
#include "rlhf/train/trainer.hpp"
#include "train_fixture.hpp"

namespace test_reward_trainer_cases {

namespace {

using B = rlhf::eigen_backend;
namespace fs = std::filesystem;
namespace model = rlhf::model;
namespace train = rlhf::train;
using rlhf::index_t;
using namespace train_fixture;

fs::path scratch(const std::string& name) { return train_fixture::scratch("reward_trainer", name); }

/// Pairs nothing can learn: both answers drawn the same way (three letters of a-f), which
/// one is "chosen" decided by a coin.
std::vector<std::string> unlearnable_lines(int n) {
  std::uint64_t s = 0x9E3779B97F4A7C15ull;
  auto next = [&s] {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<unsigned>(s >> 33);
  };
  auto word = [&] {
    std::string w;
    for (int k = 0; k < 3; ++k) w.push_back(static_cast<char>('a' + next() % 6));
    return w;
  };
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const char c = static_cast<char>('a' + next() % 6);
    out.push_back(pair_line(c, word(), word()));
  }
  return out;
}

/// How one reward run is set up.
struct run_options {
  int stop_at = 0;                               ///< request a stop after this step when > 0
  fs::path resume;                               ///< resume from this checkpoint when given
  float eval_fraction = 0.25f;                   ///< held-out share of the pairs
  bool use_soft_labels = false;                  ///< train on the data's soft labels
  index_t max_steps = 20;                        ///< optimizer steps
  std::vector<std::string>* warnings = nullptr;  ///< collects on_warning's messages
};

/// A whole reward-model run in `dir` from a fixed initial trunk and head.
train::train_result run_reward(const fs::path& dir, const fs::path& data,
                               const run_options& o = {}) {
  train::reward_config cfg;
  cfg.args = test_args(dir, 5e-3f, o.eval_fraction);
  cfg.args.max_steps = o.max_steps;
  cfg.args.warmup_steps = 2;
  cfg.loss.center_rewards_coefficient = 0.01f;
  cfg.max_length = 32;
  cfg.use_soft_labels = o.use_soft_labels;
  model::gpt<B> trunk(tiny_config());
  trunk.init(11);
  auto head = model::make_reward_head<B>(tiny_config().n_embd);
  head.init(12);
  train::example_source<model::byte_tokenizer> source(
      {data, {}, {}}, rlhf::data::format::preference, model::byte_tokenizer{},
      train::reward_tokenize_options(cfg), cfg.args.seed, cfg.args.eval_fraction);
  train::reward_method<B, model::byte_tokenizer> method(trunk, head, source, cfg);
  train::callbacks cb;
  cb.on_warning = [&](const std::string& w) {
    if (o.warnings != nullptr) o.warnings->push_back(w);
  };
  return train_stopping_at<B>(method, cfg.args, o.stop_at, o.resume, cb);
}

bool any_contains(const std::vector<std::string>& v, const std::string& part) {
  for (const auto& s : v) {
    if (s.find(part) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("reward trainer: separable pairs reach held-out accuracy >= 0.9 and the loss falls") {
  const auto data = scratch("separable.jsonl");
  write_lines(data, separable_pairs(48));
  const auto dir = scratch("separable_run");
  std::vector<std::string> warnings;
  run_options o;
  o.warnings = &warnings;
  const auto r = run_reward(dir, data, o);
  CHECK(r.global_step == 20);
  REQUIRE(r.last_eval.contains("eval_accuracy"));
  const double acc = r.last_eval["eval_accuracy"].get<double>();
  MESSAGE("eval accuracy ", acc, ", margin ", r.last_eval["eval_margin"].get<double>(), ", loss ",
          r.last_eval["eval_loss"].get<double>());
  CHECK(acc >= 0.9);
  CHECK(r.last_eval["eval_margin"].get<double>() > 0.0);

  const auto lines = read_lines(dir / "metrics.jsonl");
  const auto first = nlohmann::json::parse(lines.front());
  for (const char* k : {"loss", "accuracy", "margin", "min_reward", "mean_reward", "max_reward",
                        "grad_norm", "learning_rate", "step", "epoch"}) {
    CAPTURE(k);
    CHECK(first.contains(k));
  }
  // A head of N(0, 0.02) weights starts near r_c = r_r: loss ≈ log 2.
  CHECK(first["loss"].get<double>() == doctest::Approx(std::log(2.0)).epsilon(0.02));
  CHECK(r.last_log["loss"].get<double>() < 0.5 * first["loss"].get<double>());

  // The held-out accuracy is fine; the data set is small.
  CHECK_FALSE(any_contains(warnings, "below 0.70"));
  CHECK_FALSE(any_contains(warnings, "no held-out"));
  CHECK(any_contains(warnings, "fewer than 10,000 preference pairs"));

  // The head and its AdamW state are in the checkpoint.
  const auto ckpt = dir / "checkpoint-20";
  const auto weights = model::load_safetensors(ckpt / "model.safetensors");
  CHECK(weights.find("score.weight") != nullptr);
  CHECK(weights.find("score.bias") != nullptr);
  const auto adam = model::load_safetensors(ckpt / "heads_optimizer.safetensors");
  CHECK(adam.find("score.exp_avg") != nullptr);
  CHECK(adam.find("score.exp_avg_sq") != nullptr);
}

TEST_CASE("reward trainer: guidance warnings") {
  SUBCASE("fewer than 10,000 pairs names the count") {
    const auto data = scratch("few.jsonl");
    write_lines(data, separable_pairs(16));
    std::vector<std::string> warnings;
    run_options o;
    o.warnings = &warnings;
    o.eval_fraction = 0.0f;
    o.max_steps = 2;
    (void)run_reward(scratch("few_run"), data, o);
    CHECK(any_contains(warnings, "reward model trained on 16 pairs; fewer than 10,000"));
    CHECK(any_contains(warnings, "no held-out pairs"));
    CHECK_FALSE(any_contains(warnings, "below 0.70"));
  }
  SUBCASE("unlearnable pairs end below 0.70 held-out accuracy") {
    const auto data = scratch("unlearnable.jsonl");
    write_lines(data, unlearnable_lines(256));
    std::vector<std::string> warnings;
    run_options o;
    o.warnings = &warnings;
    o.eval_fraction = 0.5f;
    const auto r = run_reward(scratch("unlearnable_run"), data, o);
    REQUIRE(r.last_eval.contains("eval_accuracy"));
    MESSAGE("eval accuracy on unlearnable pairs ", r.last_eval["eval_accuracy"].get<double>());
    CHECK(r.last_eval["eval_accuracy"].get<double>() < 0.70);
    CHECK(any_contains(warnings, "held-out pairwise accuracy"));
    CHECK(any_contains(warnings, "below 0.70"));
    CHECK_FALSE(any_contains(warnings, "no held-out"));
  }
}

TEST_CASE(
    "reward trainer: stop at step k, resume, and every logged metric equals the run that "
    "did not stop") {
  const auto data = scratch("resume.jsonl");
  write_lines(data, separable_pairs(48));
  const auto full = scratch("full");
  (void)run_reward(full, data);
  const auto part = scratch("part");
  run_options stop;
  stop.stop_at = 7;
  const auto first = run_reward(part, data, stop);
  CHECK(first.stopped_early);
  CHECK(first.global_step == 7);
  REQUIRE(fs::exists(part / "checkpoint-7" / "heads_optimizer.safetensors"));
  run_options resume;
  resume.resume = part / "checkpoint-7";
  const auto second = run_reward(part, data, resume);
  CHECK(second.global_step == 20);
  const auto a = read_lines(full / "metrics.jsonl");
  const auto b = read_lines(part / "metrics.jsonl");
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a[i] == b[i]);  // the text of each record: every value bit for bit
  }
}

TEST_CASE("reward trainer: the data's \"margin\" field enters the loss") {
  // With every margin 1 and a head that starts near r_c = r_r, the first loss is
  // -logσ(-1) = log(1 + e).
  std::vector<std::string> lines = separable_pairs(16);
  for (auto& l : lines) l.insert(l.size() - 1, R"(, "margin": 1.0)");
  const auto data = scratch("margins.jsonl");
  write_lines(data, lines);
  run_options o;
  o.eval_fraction = 0.0f;
  o.max_steps = 1;
  const auto r = run_reward(scratch("margins_run"), data, o);
  CHECK(r.last_log["loss"].get<double>() ==
        doctest::Approx(std::log1p(std::exp(1.0))).epsilon(0.02));
}

TEST_CASE("reward trainer: soft labels are the targets (0 everywhere learns the reverse order)") {
  std::vector<std::string> lines = separable_pairs(48);
  for (auto& l : lines) l.insert(l.size() - 1, R"(, "soft_label": 0)");
  const auto data = scratch("soft_zero.jsonl");
  write_lines(data, lines);
  run_options o;
  o.use_soft_labels = true;
  const auto r = run_reward(scratch("soft_zero_run"), data, o);
  REQUIRE(r.last_eval.contains("eval_accuracy"));
  // Accuracy counts r_c > r_r: labels of 0 say rejected is the better one.
  CHECK(r.last_eval["eval_accuracy"].get<double>() <= 0.1);
  CHECK(r.last_eval["eval_margin"].get<double>() < 0.0);
  // The same file read without use_soft_labels ignores the field.
  o.use_soft_labels = false;
  const auto plain = run_reward(scratch("soft_zero_plain"), data, o);
  CHECK(plain.last_eval["eval_accuracy"].get<double>() >= 0.9);
}

}  // namespace test_reward_trainer_cases
