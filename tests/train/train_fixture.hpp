// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What the trainer tests share: a per-process scratch folder, JSONL files written and read
// line by line, the tiny GPT they train, and preference pairs such a model can separate.
#pragma once

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include "rlhf/model/config.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/trainer.hpp"

namespace train_fixture {

namespace fs = std::filesystem;

/// `name` in this process's scratch folder for the test source `test` (rlhf_<test>_<pid>),
/// removed at exit. One folder per source: the sources share one test binary, and two of them
/// may use the same name.
inline fs::path scratch(const std::string& test, const std::string& name) {
  static struct roots {
    std::set<fs::path> paths;
    roots() = default;
    roots(const roots&) = delete;
    roots& operator=(const roots&) = delete;
    ~roots() {
      for (const auto& p : paths) {
        std::error_code ec;
        fs::remove_all(p, ec);
      }
    }
  } made;
  const fs::path root = fs::temp_directory_path() /
                        ("rlhf_" + test + "_" + std::to_string(::getpid()));
  if (made.paths.insert(root).second) fs::create_directories(root);
  return root / name;
}

/// Writes `lines`, one per line.
inline void write_lines(const fs::path& p, const std::vector<std::string>& lines) {
  std::ofstream out(p, std::ios::binary);
  for (const auto& l : lines) out << l << "\n";
}

/// The lines of `p`.
inline std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

/// One preference pair as a JSONL line.
inline std::string pair_line(char letter, const std::string& chosen, const std::string& rejected) {
  return std::string(R"({"prompt": "say )") + letter + R"(", "chosen": ")" + chosen +
         R"(", "rejected": ")" + rejected + R"("})";
}

/// Pairs a tiny model can separate: the chosen answer repeats the prompt's letter, the
/// rejected one is a fixed other string.
inline std::vector<std::string> separable_pairs(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const char c = static_cast<char>('a' + i % 6);
    out.push_back(pair_line(c, std::string(3, c), "zq"));
  }
  return out;
}

/// The GPT the trainer tests train: byte vocabulary, 1 layer, width 32, context 32.
inline rlhf::model::gpt_config tiny_config() {
  rlhf::model::gpt_config c;
  c.vocab_size = rlhf::model::byte_tokenizer::vocab;
  c.max_seq_len = 32;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 32;
  return c;
}

/// The arguments the trainer tests share: micro-batches of 4, 2 per step, 30 steps,
/// a log every step and an evaluation every 10, output in `dir`.
inline rlhf::train::training_args test_args(const fs::path& dir, float learning_rate,
                                            float eval_fraction) {
  rlhf::train::training_args a;
  a.output_dir = dir.string();
  a.learning_rate = learning_rate;
  a.per_device_train_batch_size = 4;
  a.gradient_accumulation_steps = 2;
  a.max_steps = 30;
  a.logging_steps = 1;
  a.eval_steps = 10;
  a.eval_fraction = eval_fraction;
  return a;
}

/// Trains `method` with `args` (and the callbacks `cb`): from the checkpoint folder `resume`
/// when given, and asking the trainer to stop after the log of step `stop_at` when > 0.
template <class B, class M>
rlhf::train::train_result train_stopping_at(M& method, const rlhf::train::training_args& args,
                                            int stop_at, const fs::path& resume,
                                            rlhf::train::callbacks cb = {}) {
  rlhf::train::trainer<B, M>* self = nullptr;
  cb.on_step = [&](const rlhf::train::metrics_record& r) {
    if (stop_at > 0 && r["step"].template get<rlhf::index_t>() == stop_at) self->request_stop();
  };
  rlhf::train::trainer<B, M> t(method, args, cb);
  self = &t;
  return t.train(resume);
}

}  // namespace train_fixture
