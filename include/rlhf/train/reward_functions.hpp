// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Reward functions of the online trainers (GRPO, RLOO): user callables that score a batch of
// sampled completions, as TRL's reward_funcs do. A verifier ("is the sum right?"), a format
// check or a learned reward model all plug in the same way; several functions are combined
// with weights (losses::grpo_combine_rewards).
//
//   completion_batch (N completions)  --reward_function::score-->  N floats
//   score_completions(functions, batch) -> rewards_per_func (N, F) row-major
//
// A score of NaN means "this function does not apply to this completion" (TRL: the function
// returned None). A completion no function scores is unscorable: it gets advantage 0 and is
// left out of the group statistics. ±Inf, or a result of the wrong length, is a data_error
// naming the function.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/data/formats.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// N sampled completions and the prompts they answer (row i of every member belongs to
/// completion i; the G completions of one prompt are consecutive rows).
struct completion_batch {
  std::vector<data::content> prompts;    ///< the prompt as the data holds it (text or messages)
  std::vector<std::string> completions;  ///< decoded completion text
  std::vector<std::vector<std::int32_t>> prompt_ids;      ///< the prompt part the model saw
  std::vector<std::vector<std::int32_t>> completion_ids;  ///< generated ids (EOS included)
  std::vector<bool> truncated;                            ///< no EOS within max_completion_length

  /// Rows.
  [[nodiscard]] std::size_t size() const { return completions.size(); }
};

/// One scoring rule: N completions in, N scores out (NaN = no score for that completion).
struct reward_function {
  std::string name;     ///< logged as `rewards/NAME/mean` and `rewards/NAME/std`
  float weight = 1.0f;  ///< GRPOConfig.reward_weights' entry for this function
  std::function<std::vector<float>(const completion_batch&)> score;  ///< the rule
};

/// The weights of `functions` in order (reward_weights).
[[nodiscard]] inline std::vector<float> reward_weights(std::span<const reward_function> functions) {
  std::vector<float> w;
  w.reserve(functions.size());
  for (const auto& f : functions) w.push_back(f.weight);
  return w;
}

/// The names of `functions` in order.
[[nodiscard]] inline std::vector<std::string> reward_names(
    std::span<const reward_function> functions) {
  std::vector<std::string> n;
  n.reserve(functions.size());
  for (const auto& f : functions) n.push_back(f.name);
  return n;
}

/// config_error unless there is at least one function, each with a name, a finite weight
/// and a callable; names must be distinct (they name metrics).
inline void validate_reward_functions(std::string_view fn,
                                      std::span<const reward_function> functions) {
  check_config(!functions.empty(), fn, "reward_functions", "at least one", 0);
  for (std::size_t j = 0; j < functions.size(); ++j) {
    const auto& f = functions[j];
    const std::string field = rlhf::detail::concat("reward_functions[", j, "]");
    check_config(!f.name.empty(), fn, field + ".name", "not empty", "\"\"");
    check_config(std::isfinite(f.weight), fn, field + ".weight", "finite", f.weight);
    check_config(static_cast<bool>(f.score), fn, field + ".score", "a callable", "empty");
    for (std::size_t k = 0; k < j; ++k) {
      check_config(functions[k].name != f.name, fn, field + ".name",
                   "distinct from every other function's name", f.name);
    }
  }
}

/// Scores `batch` with every function: (N, F) row-major, entry [i·F + j] = function j's
/// score of completion i. data_error naming the function when one returns the wrong number
/// of scores or an infinite score (NaN is allowed: no score).
[[nodiscard]] inline std::vector<float> score_completions(
    std::span<const reward_function> functions, const completion_batch& batch) {
  const std::size_t n = batch.size(), f = functions.size();
  std::vector<float> out(n * f);
  for (std::size_t j = 0; j < f; ++j) {
    const auto scores = functions[j].score(batch);
    if (scores.size() != n) {
      throw data_error(rlhf::detail::concat("reward function '", functions[j].name, "' returned ",
                                            scores.size(), " scores for ", n, " completions"));
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (std::isinf(scores[i])) {
        throw data_error(rlhf::detail::concat("reward function '", functions[j].name, "' returned ",
                                              scores[i], " for completion ", i,
                                              " (finite scores, or NaN for none)"));
      }
      out[i * f + j] = scores[i];
    }
  }
  return out;
}

}  // namespace train
}  // namespace v0
}  // namespace rlhf
