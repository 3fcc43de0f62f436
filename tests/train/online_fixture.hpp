// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What the online-method tests (GRPO, RLOO, PPO, best-of-N) share: a file of one-letter
// prompts, the prompt source reading it, and a reward a tiny model can learn.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "rlhf/data/formats.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/reward_functions.hpp"
#include "train_fixture.hpp"

namespace online_fixture {

/// Writes 24 one-letter prompts ({"prompt"} lines) to `path` and returns it.
inline std::filesystem::path write_prompts(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  for (int i = 0; i < 24; ++i) {
    lines.push_back(std::string(R"({"prompt": ")") + static_cast<char>('a' + i % 12) + R"("})");
  }
  train_fixture::write_lines(path, lines);
  return path;
}

/// The prompts of `file` (seed 7; `eval_fraction` of them held out).
inline rlhf::train::example_source<rlhf::model::byte_tokenizer> prompt_source(
    const std::filesystem::path& file, float eval_fraction = 0.0f) {
  return {rlhf::train::data_files{file, {}, {}},
          rlhf::data::format::prompt_only,
          rlhf::model::byte_tokenizer{},
          {},
          7,
          eval_fraction};
}

/// The learnable reward: the share of a completion's tokens (EOS aside) with an even id;
/// about 1/2 for a random policy, 1 at best.
inline rlhf::train::reward_function even_tokens() {
  return {"even_tokens", 1.0f, [](const rlhf::train::completion_batch& b) {
            std::vector<float> out;
            for (const auto& ids : b.completion_ids) {
              double even = 0, n = 0;
              for (const auto id : ids) {
                if (id == rlhf::model::byte_tokenizer{}.eos_id()) continue;
                n += 1;
                even += id % 2 == 0 ? 1 : 0;
              }
              out.push_back(n > 0 ? static_cast<float>(even / n) : 0.0f);
            }
            return out;
          }};
}

}  // namespace online_fixture
