// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// One DPO step on the "small" GPT (V=256, T=128, C=256, L=4, H=4), 4 pairs = 8 sequences of
// 128 tokens (a 32-token prompt, a 96-token completion), and the trainer's overhead beside
// it. bench/dpo_step.py drives it next to the same step in PyTorch (docs/benchmarks.md).
//
// The bare step, written with the public ops as a user would:
//   policy: gpt_forward (2N, T) -> token_logprobs under the completion mask ->
//           sequence_logprobs -> lc, lr
//   reference: the same through a frozen model (no gradient arena) -> rc, rr
//   dpo_loss (sigmoid, beta 0.1) -> sequence_logprobs_backward -> token_logprobs_backward
//   -> zero_grads -> gpt_backward -> AdamW step
//
// Modes (one per process):
//   bench_dpo --serve       reads "step K" lines on stdin, runs K bare steps, answers with
//                           their wall time in seconds; "quit" ends. The driver times
//                           PyTorch between two answers, so the two sides alternate.
//   bench_dpo --overhead R K  trains with train::trainer + dpo_method on a JSONL file of
//                           pairs of exactly the same shapes (logging every step, a
//                           callback on each step, no evaluation); every K trainer steps the
//                           on_step callback runs K bare steps on a separate copy of the
//                           models, so the two alternate too. Prints one JSON object:
//                           {"trainer": [seconds per K steps...], "bare": [...]}.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/losses/dpo.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/optim.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/dpo.hpp"
#include "rlhf/train/trainer.hpp"
#include "wall_time.hpp"

namespace {

using B = rlhf::eigen_backend;
using tensor = B::tensor;
namespace model = rlhf::model;
namespace ops = rlhf::ops;
using rlhf::index_t;
using rlhf::shape;

constexpr index_t pairs = 4;
constexpr index_t seq_len = 128;
constexpr index_t prompt_len = 32;

model::gpt_config small_config() {
  auto c = model::gpt_config::small();
  c.vocab_size = std::max<index_t>(c.vocab_size, model::byte_tokenizer::vocab);
  return c;
}

/// The bare DPO step on fixed random tokens.
struct dpo_step {
  model::gpt<B> policy{small_config()};
  model::gpt<B> reference{small_config(), /*trainable=*/false};
  model::gpt_activations<B> acts{small_config(), 2 * pairs, seq_len};
  model::gpt_activations<B> ref_acts{small_config(), 2 * pairs, seq_len};
  model::adamw<B> opt{policy.num_params()};
  std::vector<model::param_range> ranges;
  typename B::index_tensor ids{shape{2 * pairs, seq_len}};
  tensor mask{shape{2 * pairs, seq_len}};
  tensor grad_logits{acts.logits.shape()};
  rlhf::losses::dpo_config loss;

  dpo_step() {
    policy.init(1234);
    ops::copy_from_host<B>(std::span<const float>(ops::to_host<B>(policy.params())),
                           reference.params());
    ranges = model::decay_ranges(policy);
    std::mt19937 gen(7);
    std::uniform_int_distribution<std::int32_t> tok(0, 255);
    std::vector<std::int32_t> host(static_cast<std::size_t>(ids.size()));
    for (auto& y : host) y = tok(gen);
    ops::copy_from_host<B>(std::span<const std::int32_t>(host), ids);
    std::vector<float> m(static_cast<std::size_t>(mask.size()), 0.0f);
    for (index_t r = 0; r < 2 * pairs; ++r) {
      for (index_t t = prompt_len; t < seq_len; ++t)
        m[static_cast<std::size_t>(r * seq_len + t)] = 1;
    }
    ops::copy_from_host<B>(std::span<const float>(m), mask);
  }

  /// (2N,) sequence log-probs of `acts`' logits.
  tensor halves(const tensor& seq, bool second) const {
    tensor out(shape{pairs});
    const auto host = ops::to_host<B>(seq);
    ops::copy_from_host<B>(std::span<const float>(host).subspan(second ? pairs : 0, pairs), out);
    return out;
  }

  float operator()() {
    model::gpt_forward<B>(policy, acts, ids);
    const auto tok = ops::token_logprobs<B>(acts.logits, ids, mask);
    const tensor seq = ops::sequence_logprobs<B>(tok.logps, mask, ops::logprob_columns::shifted);
    model::gpt_forward<B>(reference, ref_acts, ids);
    const auto ref_tok = ops::token_logprobs<B>(ref_acts.logits, ids, mask);
    const tensor ref_seq = ops::sequence_logprobs<B>(ref_tok.logps, mask,
                                                     ops::logprob_columns::shifted);
    const tensor lc = halves(seq, false), lr = halves(seq, true);
    const tensor rc = halves(ref_seq, false), rr = halves(ref_seq, true);
    const auto r = rlhf::losses::dpo_loss<B>({lc, lr, rc, rr}, loss);
    std::vector<float> g = ops::to_host<B>(r.grad_policy_chosen_logps);
    const auto gr = ops::to_host<B>(r.grad_policy_rejected_logps);
    g.insert(g.end(), gr.begin(), gr.end());
    tensor gseq(shape{2 * pairs});
    ops::copy_from_host<B>(std::span<const float>(g), gseq);
    const tensor gtok = ops::sequence_logprobs_backward<B>(gseq, mask,
                                                           ops::logprob_columns::shifted);
    ops::token_logprobs_backward<B>(acts.logits, ids, mask, tok, gtok, grad_logits);
    policy.zero_grads();
    model::gpt_backward<B>(policy, acts, ids, grad_logits);
    opt.step(policy.params(), policy.grads(), std::span<const model::param_range>(ranges), 1e-6f);
    return r.loss;
  }
};

using bench::seconds_of;

int serve() {
  dpo_step step;
  (void)seconds_of(step, 2);  // warm up
  std::string cmd;
  int k = 0;
  while (std::cin >> cmd) {
    if (cmd == "quit") break;
    if (cmd != "step" || !(std::cin >> k) || k < 1) {
      std::fprintf(stderr, "bench_dpo: expected 'step K' or 'quit'\n");
      return 2;
    }
    std::printf("%.9f\n", seconds_of(step, k));
    std::fflush(stdout);
  }
  return 0;
}

/// Pairs whose byte tokenization is exactly seq_len tokens: BOS + 31 prompt bytes, then
/// 95 completion bytes + EOS.
void write_pairs(const std::filesystem::path& p, int n) {
  std::ofstream out(p);
  std::mt19937 gen(11);
  std::uniform_int_distribution<int> letter('a', 'z');
  auto text = [&](index_t len) {
    std::string s;
    for (index_t i = 0; i < len; ++i) s.push_back(static_cast<char>(letter(gen)));
    return s;
  };
  for (int i = 0; i < n; ++i) {
    out << nlohmann::json{{"prompt", text(prompt_len - 1)},
                          {"chosen", text(seq_len - prompt_len - 1)},
                          {"rejected", text(seq_len - prompt_len - 1)}}
               .dump()
        << "\n";
  }
}

int overhead(int rounds, int k) {
  namespace fs = std::filesystem;
  namespace train = rlhf::train;
  const fs::path dir = fs::temp_directory_path() / ("rlhf_bench_dpo_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path data = dir / "pairs.jsonl";
  write_pairs(data, 64);
  train::dpo_config cfg;
  cfg.args.output_dir = (dir / "run").string();
  cfg.args.per_device_train_batch_size = pairs;
  cfg.args.max_steps = (rounds + 1) * k;
  cfg.args.logging_steps = 1;
  cfg.max_length = seq_len;
  cfg.max_prompt_length = prompt_len;
  model::gpt<B> policy(small_config());
  policy.init(1234);
  model::gpt<B> reference(small_config(), false);
  ops::copy_from_host<B>(std::span<const float>(ops::to_host<B>(policy.params())),
                         reference.params());
  train::example_source<model::byte_tokenizer> source(
      {data, {}, {}}, rlhf::data::format::preference, model::byte_tokenizer{},
      train::dpo_tokenize_options(cfg), 0, 0.0);
  train::dpo_method<B, model::byte_tokenizer> method(policy, reference, source, cfg);
  dpo_step bare;
  std::vector<double> trainer_s, bare_s;
  auto mark = std::chrono::steady_clock::now();
  double last_loss = 0.0;
  train::callbacks cb;
  cb.on_step = [&](const train::metrics_record& rec) {
    last_loss = rec["loss"].get<double>();  // what a progress display reads
    const auto step = rec["step"].get<index_t>();
    if (step % k != 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (step > k) trainer_s.push_back(std::chrono::duration<double>(now - mark).count());
    const double b = seconds_of(bare, k);
    if (step == k) {  // the first round warms both up
      (void)b;
    } else {
      bare_s.push_back(b);
    }
    mark = std::chrono::steady_clock::now();
  };
  train::trainer<B, decltype(method)> t(method, cfg.args, cb);
  (void)t.train();
  std::error_code ec;
  fs::remove_all(dir, ec);
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
  std::fprintf(stderr, "usage: bench_dpo --serve | --overhead ROUNDS K\n");
  return 2;
}
