// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The trainer loop (train/trainer.hpp) with its methods on a tiny GPT and generated data:
// losses go down, DPO separates pairs a tiny model can separate, and a run stopped at step k
// and resumed from its checkpoint logs every metric bit for bit as the uninterrupted run.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/dpo.hpp"
#include "rlhf/train/sft.hpp"
#include "rlhf/train/trainer.hpp"
#include "train_fixture.hpp"

namespace test_trainer_cases {

namespace {

using B = rlhf::eigen_backend;
namespace fs = std::filesystem;
namespace model = rlhf::model;
namespace train = rlhf::train;
using rlhf::index_t;
using namespace train_fixture;

fs::path scratch(const std::string& name) { return train_fixture::scratch("trainer", name); }

/// Prompt-completion pairs a tiny model learns quickly: the completion repeats a letter of
/// the prompt.
std::vector<std::string> sft_lines(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const char c = static_cast<char>('a' + i % 6);
    out.push_back(std::string(R"({"prompt": "say )") + c + R"(", "completion": ")" +
                  std::string(3, c) + R"("})");
  }
  return out;
}

/// A whole SFT run in `dir`: stops after `stop_at` steps when > 0 (a checkpoint is saved),
/// or resumes from `resume` when given.
train::train_result run_sft(const fs::path& dir, const fs::path& data, int stop_at = 0,
                            const fs::path& resume = {}) {
  train::sft_config cfg;
  cfg.args = test_args(dir, 1e-2f, 0.2f);
  cfg.args.warmup_steps = 2;
  cfg.max_length = 32;
  model::gpt<B> policy(tiny_config());
  policy.init(7);
  train::example_source<model::byte_tokenizer> source(
      {data, {}, {}}, rlhf::data::format::prompt_completion, model::byte_tokenizer{},
      train::sft_tokenize_options(cfg), cfg.args.seed, cfg.args.eval_fraction);
  train::sft_method<B, model::byte_tokenizer> method(policy, source, cfg);
  return train_stopping_at<B>(method, cfg.args, stop_at, resume);
}

}  // namespace

TEST_CASE("sft trainer: the loss goes down and metrics.jsonl has TRL's names") {
  const auto data = scratch("sft.jsonl");
  write_lines(data, sft_lines(40));
  const auto dir = scratch("sft_run");
  const auto r = run_sft(dir, data);
  CHECK(r.global_step == 30);
  CHECK_FALSE(r.stopped_early);
  const auto lines = read_lines(dir / "metrics.jsonl");
  std::vector<double> losses;
  int evals = 0;
  for (const auto& l : lines) {
    const auto j = nlohmann::json::parse(l);
    if (j.contains("loss")) {
      losses.push_back(j["loss"].get<double>());
      for (const char* k : {"step", "epoch", "grad_norm", "learning_rate", "num_tokens",
                            "mean_token_accuracy", "entropy"}) {
        CAPTURE(k);
        CHECK(j.contains(k));
      }
    }
    if (j.contains("eval_loss")) ++evals;
  }
  REQUIRE(losses.size() == 30);
  CHECK(losses.back() < 0.6 * losses.front());
  CHECK(evals == 3);  // steps 10 and 20, and once at the end
  CHECK(fs::exists(dir / "checkpoint-30" / "model.safetensors"));
}

TEST_CASE(
    "sft trainer: stop at step k, resume, and every logged metric equals the run that "
    "did not stop") {
  const auto data = scratch("sft_resume.jsonl");
  write_lines(data, sft_lines(40));
  const auto full = scratch("sft_full");
  (void)run_sft(full, data);
  const auto part = scratch("sft_part");
  const auto first = run_sft(part, data, /*stop_at=*/13);
  CHECK(first.stopped_early);
  CHECK(first.global_step == 13);
  REQUIRE(fs::exists(part / "checkpoint-13"));
  const auto second = run_sft(part, data, 0, part / "checkpoint-13");
  CHECK(second.global_step == 30);
  const auto a = read_lines(full / "metrics.jsonl");
  const auto b = read_lines(part / "metrics.jsonl");
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a[i] == b[i]);  // the text of each record: every value bit for bit
  }
}

namespace {

/// A whole DPO run in `dir` from a fixed initial policy (the reference is its copy).
train::train_result run_dpo(const fs::path& dir, const fs::path& data, int stop_at = 0,
                            const fs::path& resume = {}, bool precompute = false) {
  train::dpo_config cfg;
  cfg.args = test_args(dir, 5e-3f, 0.25f);
  cfg.args.lr_scheduler_type = model::lr_schedule_type::constant;
  cfg.max_length = 32;
  cfg.precompute_ref_log_probs = precompute;
  model::gpt<B> policy(tiny_config());
  policy.init(11);
  model::gpt<B> reference(tiny_config(), /*trainable=*/false);
  rlhf::ops::transform<B>(reference.params(), rlhf::fn::identity{}, policy.params());
  train::example_source<model::byte_tokenizer> source(
      {data, {}, {}}, rlhf::data::format::preference, model::byte_tokenizer{},
      train::dpo_tokenize_options(cfg), cfg.args.seed, cfg.args.eval_fraction);
  train::dpo_method<B, model::byte_tokenizer> method(policy, reference, source, cfg);
  return train_stopping_at<B>(method, cfg.args, stop_at, resume);
}

}  // namespace

TEST_CASE("dpo trainer: separable pairs reach eval reward accuracy >= 0.9") {
  const auto data = scratch("dpo.jsonl");
  write_lines(data, separable_pairs(48));
  const auto dir = scratch("dpo_run");
  const auto r = run_dpo(dir, data);
  REQUIRE(r.last_eval.contains("eval_rewards/accuracies"));
  const double acc = r.last_eval["eval_rewards/accuracies"].get<double>();
  const double margin = r.last_eval["eval_rewards/margins"].get<double>();
  MESSAGE("eval reward accuracy ", acc, ", margin ", margin, ", loss ",
          r.last_eval["eval_loss"].get<double>());
  CHECK(acc >= 0.9);
  CHECK(margin > 0.0);
  const auto lines = read_lines(dir / "metrics.jsonl");
  const auto first = nlohmann::json::parse(lines.front());
  CHECK(first["loss"].get<double>() == doctest::Approx(std::log(2.0)).epsilon(1e-3));
  CHECK(r.last_log["loss"].get<double>() < 0.5 * first["loss"].get<double>());
  // The same run with the reference log-probs computed once up front (in other batches, so
  // padded to other lengths: equal to float round-off, not bit for bit).
  const auto pre = scratch("dpo_pre");
  const auto rp = run_dpo(pre, data, 0, {}, /*precompute=*/true);
  CHECK(rp.last_log["loss"].get<double>() ==
        doctest::Approx(r.last_log["loss"].get<double>()).epsilon(1e-4));
  CHECK(rp.last_eval["eval_rewards/accuracies"].get<double>() == acc);
}

TEST_CASE(
    "dpo trainer: stop at step k, resume, and every logged metric equals the run that "
    "did not stop") {
  const auto data = scratch("dpo_resume.jsonl");
  write_lines(data, separable_pairs(48));
  const auto full = scratch("dpo_full");
  (void)run_dpo(full, data);
  const auto part = scratch("dpo_part");
  const auto first = run_dpo(part, data, /*stop_at=*/17);
  CHECK(first.stopped_early);
  REQUIRE(fs::exists(part / "checkpoint-17"));
  (void)run_dpo(part, data, 0, part / "checkpoint-17");
  const auto a = read_lines(full / "metrics.jsonl");
  const auto b = read_lines(part / "metrics.jsonl");
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a[i] == b[i]);
  }
}

}  // namespace test_trainer_cases
