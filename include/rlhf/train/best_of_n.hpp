// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Best-of-N sampling (rejection sampling; Nakano et al. 2021, Touvron et al. 2023): sample N
// completions of each prompt and keep the one the reward scores highest. It needs no
// training, so it is the baseline every trained method should beat at equal reward, and a
// way to make SFT data from a reward model.
//
//   prompts (P) -> P·N completions (model::generate, seeded) -> reward functions
//   -> weighted sum per completion (NaN = no function scored it) -> argmax per prompt
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
#include "rlhf/data/tokenize.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/detail/rollouts.hpp"
#include "rlhf/train/reward_functions.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// How best_of_n samples.
struct best_of_n_config {
  index_t n = 4;                       ///< completions per prompt (>= 1)
  index_t max_completion_length = 64;  ///< new tokens at most (EOS included)
  float temperature = 1.0f;            ///< > 0
  float top_p = 1.0f;                  ///< nucleus mass; 1 = off
  index_t top_k = 0;                   ///< 0 = off
  std::uint64_t seed = 0;              ///< sampling seed
  index_t prompts_per_batch = 8;       ///< prompts generated together (memory)
  data::tokenize_options tokenize{};   ///< how prompts become ids (chat template, ...)
  /// Called after each batch with (prompts done, prompts in all); may be empty.
  std::function<void(std::size_t, std::size_t)> on_progress;
};

/// The best of one prompt's N completions.
struct best_of_n_result {
  std::string completion;                    ///< the highest-scoring completion
  std::vector<std::int32_t> completion_ids;  ///< its ids (EOS included)
  float score = 0;                           ///< its reward (NaN when none was scorable)
  std::size_t best = 0;                      ///< its index among the candidates
  std::vector<std::string> candidates;       ///< all N completions, in sampling order
  std::vector<float> scores;                 ///< their rewards (NaN = unscorable)
};

/// Best-of-N of each prompt under `policy` with the weighted `rewards`. config_error on a
/// bad config or reward list; data_error on an empty prompt or a bad score.
template <class B, model::tokenizer Tok>
std::vector<best_of_n_result> best_of_n(const model::gpt<B>& policy, const Tok& tok,
                                        std::span<const data::content> prompts,
                                        std::span<const reward_function> rewards,
                                        const best_of_n_config& cfg) {
  constexpr const char* fn = "best_of_n";
  validate_reward_functions(fn, rewards);
  check_config(cfg.n >= 1, fn, "n", ">= 1", cfg.n);
  check_config(cfg.prompts_per_batch >= 1, fn, "prompts_per_batch", ">= 1", cfg.prompts_per_batch);
  const index_t context = policy.config().max_seq_len;
  check_config(cfg.max_completion_length >= 1 && cfg.max_completion_length < context, fn,
               "max_completion_length", rlhf::detail::concat("in [1, max_seq_len = ", context, ")"),
               cfg.max_completion_length);
  check_config(std::isfinite(cfg.temperature) && cfg.temperature > 0.0f, fn, "temperature",
               "finite and > 0", cfg.temperature);
  detail::sampling_options opt{cfg.max_completion_length, cfg.temperature, cfg.top_p, cfg.top_k,
                               false};
  std::vector<best_of_n_result> out;
  const auto per = static_cast<std::size_t>(cfg.prompts_per_batch);
  for (std::size_t first = 0; first < prompts.size(); first += per) {
    const std::size_t count = std::min(per, prompts.size() - first);
    const auto ids = detail::prompt_ids(tok, prompts, first, count, cfg.tokenize,
                                        cfg.max_completion_length, context, fn);
    // Each batch of prompts draws from its own seed (the run's seed and its first prompt).
    const auto seed = detail::derived_seed(cfg.seed, 0x626f6e00u /* "bon" */, first);
    const auto ro = detail::sample_groups_of<B>(policy, tok,
                                                std::span<const std::vector<std::int32_t>>(ids),
                                                prompts.subspan(first, count), cfg.n, opt, seed);
    const auto scores = detail::combined_rewards<B>(rewards, ro.batch);
    for (std::size_t p = 0; p < count; ++p) {
      best_of_n_result r;
      bool any = false;
      for (std::size_t k = 0; k < static_cast<std::size_t>(cfg.n); ++k) {
        const std::size_t row = p * static_cast<std::size_t>(cfg.n) + k;
        const float score = scores[row];
        r.candidates.push_back(ro.batch.completions[row]);
        r.scores.push_back(score);
        if (!std::isnan(score) && (!any || score > r.score)) {
          any = true;
          r.score = score;
          r.best = k;
        }
      }
      if (!any) r.score = std::nanf("");
      const std::size_t row = p * static_cast<std::size_t>(cfg.n) + r.best;
      r.completion = ro.batch.completions[row];
      r.completion_ids = ro.batch.completion_ids[row];
      out.push_back(std::move(r));
    }
    if (cfg.on_progress) cfg.on_progress(first + count, prompts.size());
  }
  return out;
}

}  // namespace train
}  // namespace v0
}  // namespace rlhf
