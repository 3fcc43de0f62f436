// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What the trainer tests share: a per-process scratch folder, JSONL files written and read
// line by line, the tiny GPT they train, and preference pairs such a model can separate.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include "rlhf/model/config.hpp"
#include "rlhf/model/tokenizer.hpp"

namespace train_fixture {

namespace fs = std::filesystem;

/// `name` in a scratch folder of this process (tagged `test`), removed at exit.
inline fs::path scratch(const std::string& test, const std::string& name) {
  static const fs::path root = [&] {
    const fs::path p = fs::temp_directory_path() /
                       ("rlhf_" + test + "_" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p;
  }();
  static const struct cleanup {
    ~cleanup() {
      std::error_code ec;
      fs::remove_all(root, ec);
    }
  } c;
  (void)c;
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

}  // namespace train_fixture
