// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// One GRPO step on the "small" GPT (V=259, the byte tokenizer's vocabulary, T=128, C=256,
// L=4, H=4), as a user runs it: train::trainer driving train::grpo_method. bench/grpo_step.py
// drives it next to the same step in PyTorch (docs/benchmarks.md).
//
// The step (the trainer's one_step with an online method, TRL's GRPOTrainer defaults):
//   8 prompts of 16 tokens (16 letters; the byte tokenizer adds no BOS to them) drawn from a
//   JSONL file
//   -> 4 completions each, sampled with the KV cache (temperature 1, top-k/top-p off), at
//      most 64 new tokens, a row stops at the byte tokenizer's EOS (model/generate.hpp)
//   -> the reward: the share of even ids among a completion's tokens (EOS aside)
//   -> group advantages (mean, scale_rewards group: / (std + 1e-4))
//   -> policy forward over the 32 prompt + completion rows, per-token log-probs and
//      entropies, the dapo loss at ratio 1 (beta 0: no reference), backward
//   -> gradient-norm clip (1.0), AdamW (lr 1e-6, constant; weight decay 0), one metrics
//      line in metrics.jsonl (logging_steps 1, so that every step reaches the callback)
//
// Modes (one per process):
//   bench_grpo --serve       trains with the trainer; after 2 warm-up steps it reads
//                            "step K" lines on stdin from inside the on_step callback, runs
//                            K steps, answers "TOTAL GEN" (seconds for the K steps, and the
//                            part of them spent before the reward function was called:
//                            drawing prompts, tokenizing, sampling); "quit" ends.
//   bench_grpo --overhead R K  the trainer beside the bare step of the same method
//                            (prepare_step, train_micro_batch, gradient clip, AdamW called
//                            directly on a second copy), K steps each, alternating, R rounds
//                            after one warm-up round. Prints one JSON object:
//                            {"trainer": [seconds per K steps...], "bare": [...]}.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "online_bench.hpp"
#include "rlhf/backends/eigen.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/optim.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/grpo.hpp"
#include "rlhf/train/reward_functions.hpp"
#include "rlhf/train/trainer.hpp"

namespace {

using B = rlhf::eigen_backend;
using bench::clock_type;
using bench::seconds;
using bench::small_config;
using bench::Tok;
namespace fs = std::filesystem;
namespace model = rlhf::model;
namespace train = rlhf::train;
using rlhf::index_t;

constexpr index_t prompts_per_step = 8;
constexpr index_t generations = 4;
constexpr index_t new_tokens = 64;
constexpr index_t prompt_len = 16;  // 16 bytes (a prompt-only text gets no BOS)

/// The share of a completion's tokens (EOS aside) with an even id; `called` is set to the
/// time of each call (the end of sampling).
train::reward_function even_tokens(clock_type::time_point* called) {
  return {"even_tokens", 1.0f, [called](const train::completion_batch& b) {
            if (called != nullptr) {
              *called = clock_type::now();
              static bool shown = false;
              if (!shown) {  // the shapes really are the ones stated above
                std::size_t longest = 0;
                for (const auto& ids : b.completion_ids) longest = std::max(longest, ids.size());
                std::fprintf(stderr,
                             "bench_grpo: %zu rows, prompt %zu tokens, longest completion %zu\n",
                             b.size(), b.prompt_ids.front().size(), longest);
                shown = true;
              }
            }
            std::vector<float> out;
            out.reserve(b.size());
            for (const auto& ids : b.completion_ids) {
              double even = 0, n = 0;
              for (const auto id : ids) {
                if (id == Tok::eos) continue;
                n += 1;
                even += id % 2 == 0 ? 1 : 0;
              }
              out.push_back(n > 0 ? static_cast<float>(even / n) : 0.0f);
            }
            return out;
          }};
}

train::grpo_config grpo_cfg(const fs::path& dir, index_t steps) {
  train::grpo_config c;
  c.args.output_dir = dir.string();
  c.args.per_device_train_batch_size = prompts_per_step * generations;  // one micro-batch
  c.args.gradient_accumulation_steps = 1;
  c.args.max_steps = steps;
  c.args.logging_steps = 1;
  c.args.eval_steps = 0;
  c.args.lr_scheduler_type = model::lr_schedule_type::constant;
  c.loss.num_generations = generations;
  c.loss.max_completion_length = new_tokens;
  return c;  // temperature 1, beta 0, loss_type dapo, scale_rewards group: the defaults
}

/// A scratch folder with 64 prompts, removed at the end.
struct scratch_dir : bench::scratch_dir {
  explicit scratch_dir(const std::string& tag)
      : bench::scratch_dir("grpo_" + tag, 64, prompt_len) {}
};

int serve() {
  const scratch_dir scratch("serve");
  model::gpt<B> policy(small_config());
  policy.init(1234);
  auto source = bench::prompt_source(scratch.prompts());
  clock_type::time_point gen_end{};
  const auto cfg = grpo_cfg(scratch.dir / "run", 1'000'000);
  train::grpo_method<B, Tok> method(policy, nullptr, source, {even_tokens(&gen_end)}, cfg);

  // After 2 warm-up steps, "step K" requests; the part: seconds before the reward call.
  bench::step_server server("bench_grpo", 2);
  train::trainer<B, decltype(method)>* tp = nullptr;
  train::callbacks cb;
  cb.on_step = [&](const train::metrics_record& rec) {
    (void)rec["loss"].get<double>();  // what a progress display reads
    server.add_part(seconds(server.step_start(), gen_end));
    server.on_step([&] { tp->request_stop(); });
  };
  train::trainer<B, decltype(method)> t(method, cfg.args, cb);
  tp = &t;
  (void)t.train();
  return 0;
}

/// The step without the trainer: what one_step does for an online method with one
/// micro-batch, minus the metrics window, the log line and the callback.
struct bare_step {
  scratch_dir scratch{"bare"};
  model::gpt<B> policy{small_config()};
  train::example_source<Tok> source = bench::prompt_source(scratch.prompts());
  train::grpo_config cfg = grpo_cfg(scratch.dir / "run", 1'000'000);
  train::grpo_method<B, Tok> method{policy, nullptr, source, {even_tokens(nullptr)}, cfg};
  model::adamw<B> opt{policy.num_params()};
  std::vector<model::param_range> ranges;
  index_t step = 0;
  std::uint64_t next_prompt = 0;

  bare_step() {
    policy.init(1234);
    ranges = model::decay_ranges(policy);
  }

  void operator()() {
    std::vector<std::uint64_t> idx;
    for (index_t i = 0; i < prompts_per_step; ++i) idx.push_back(next_prompt++ % 64);
    policy.zero_grads();
    (void)method.prepare_step(std::span<const std::uint64_t>(idx), step);
    (void)method.train_micro_batch({});
    const double norm = model::grad_norm<B>(policy.grads());
    if (norm > cfg.args.max_grad_norm) {
      model::scale_grads<B>(policy.grads(),
                            static_cast<float>(cfg.args.max_grad_norm / (norm + 1e-6)));
    }
    opt.step(policy.params(), policy.grads(), std::span<const model::param_range>(ranges),
             cfg.args.learning_rate);
    ++step;
  }
};

int overhead(int rounds, int k) {
  const scratch_dir scratch("trainer");
  model::gpt<B> policy(small_config());
  policy.init(1234);
  auto source = bench::prompt_source(scratch.prompts());
  const auto cfg = grpo_cfg(scratch.dir / "run", (rounds + 1) * k);
  train::grpo_method<B, Tok> method(policy, nullptr, source, {even_tokens(nullptr)}, cfg);
  bare_step bare;
  std::vector<double> trainer_s, bare_s;
  auto mark = clock_type::now();
  double last_loss = 0.0;
  train::callbacks cb;
  cb.on_step = [&](const train::metrics_record& rec) {
    last_loss = rec["loss"].get<double>();
    const auto step = rec["step"].get<index_t>();
    if (step % k != 0) return;
    const auto now = clock_type::now();
    if (step > k) trainer_s.push_back(seconds(mark, now));
    const auto b0 = clock_type::now();
    for (int i = 0; i < k; ++i) bare();
    if (step > k) bare_s.push_back(seconds(b0, clock_type::now()));  // the first round warms up
    mark = clock_type::now();
  };
  train::trainer<B, decltype(method)> t(method, cfg.args, cb);
  (void)t.train();
  std::printf(
      "%s\n",
      nlohmann::json{{"trainer", trainer_s}, {"bare", bare_s}, {"k", k}, {"last_loss", last_loss}}
          .dump()
          .c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "--serve") return serve();
  if (mode == "--overhead" && argc == 4) return overhead(std::stoi(argv[2]), std::stoi(argv[3]));
  std::fprintf(stderr, "usage: bench_grpo --serve | --overhead ROUNDS K\n");
  return 2;
}
