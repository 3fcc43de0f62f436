// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What the online-method benchmarks (bench_grpo.cpp, bench_ppo.cpp) share: the "small" GPT at
// the byte tokenizer's vocabulary, a scratch folder with a JSONL file of random-letter
// prompts and the prompt source reading it, and the "step K" server that their drivers
// (grpo_step.py, ppo_step.py) talk to from inside the trainer's on_step callback.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <system_error>
#include <utility>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "rlhf/data/formats.hpp"
#include "rlhf/model/config.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/example_source.hpp"

namespace bench {

using Tok = rlhf::model::byte_tokenizer;
using clock_type = std::chrono::steady_clock;

/// "small" (V=256, T=128, C=256, L=4, H=4) with the byte tokenizer's 259 ids.
inline rlhf::model::gpt_config small_config() {
  auto c = rlhf::model::gpt_config::small();
  c.vocab_size = std::max<rlhf::index_t>(c.vocab_size, Tok::vocab);
  return c;
}

inline double seconds(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

/// `n` prompts of `len` random letters ({"prompt"} lines; a prompt-only text gets no BOS,
/// so each is `len` tokens).
inline void write_prompts(const std::filesystem::path& p, int n, rlhf::index_t len) {
  std::ofstream out(p);
  std::mt19937 gen(11);
  std::uniform_int_distribution<int> letter('a', 'z');
  for (int i = 0; i < n; ++i) {
    std::string s;
    for (rlhf::index_t k = 0; k < len; ++k) s.push_back(static_cast<char>(letter(gen)));
    out << nlohmann::json{{"prompt", s}}.dump() << "\n";
  }
}

/// The prompts of `file` (seed 7, nothing held out).
inline rlhf::train::example_source<Tok> prompt_source(const std::filesystem::path& file) {
  return {
      rlhf::train::data_files{file, {}, {}}, rlhf::data::format::prompt_only, Tok{}, {}, 7, 0.0};
}

/// A scratch folder holding prompts.jsonl (`n` prompts of `len` letters), removed at the end.
struct scratch_dir {
  std::filesystem::path dir;
  scratch_dir(const std::string& tag, int n, rlhf::index_t len)
      : dir(std::filesystem::temp_directory_path() /
            ("rlhf_bench_" + tag + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir);
    write_prompts(dir / "prompts.jsonl", n, len);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  [[nodiscard]] std::filesystem::path prompts() const { return dir / "prompts.jsonl"; }
};

/// Serves "step K" requests from the trainer's on_step callback (logging_steps 1): the first
/// `warm_up` steps run unasked, then each request runs K trainer steps and is answered with
/// "TOTAL PART": the seconds of the K steps and the seconds added to `part` during them (the
/// caller's share of interest, e.g. sampling). "quit" or the end of stdin stops the trainer.
class step_server {
 public:
  step_server(const char* name, int warm_up) : name_(name), left_(warm_up) {}

  /// When the current step began (the previous on_step, or the request).
  [[nodiscard]] clock_type::time_point step_start() const { return step_start_; }
  /// Adds to the current request's part.
  void add_part(double s) { part_ += s; }

  /// Call at the end of on_step; `stop()` asks the trainer to stop.
  template <class Stop>
  void on_step(Stop&& stop) {
    if (--left_ > 0) {
      step_start_ = clock_type::now();
      return;
    }
    if (!warm_up_) {
      std::printf("%.9f %.9f\n", seconds(request_start_, clock_type::now()), part_);
      std::fflush(stdout);
    }
    warm_up_ = false;
    std::string cmd;
    int k = 0;
    if (!(std::cin >> cmd) || cmd == "quit") {
      std::forward<Stop>(stop)();
      left_ = 1'000'000'000;
      return;
    }
    if (cmd != "step" || !(std::cin >> k) || k < 1) {
      std::fprintf(stderr, "%s: expected 'step K' or 'quit'\n", name_);
      std::exit(2);
    }
    left_ = k;
    part_ = 0.0;
    request_start_ = step_start_ = clock_type::now();
  }

 private:
  const char* name_;
  int left_;
  bool warm_up_ = true;
  double part_ = 0.0;
  clock_type::time_point request_start_ = clock_type::now(), step_start_ = request_start_;
};

}  // namespace bench
