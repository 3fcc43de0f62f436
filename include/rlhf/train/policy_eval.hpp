// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What a trained policy bought, measured on held-out prompts the way an RLHF report states
// it: the reward of its greedy answers (with a verifier as the reward: the task accuracy),
// their length, and how far it moved from a reference (the SFT model) in KL.
//
//   prompts (P) -> greedy completions (temperature 0) -> reward functions -> mean reward,
//                  mean length, share unscorable
//              -> one sampled completion each (temperature 1) -> Σ_t log π(y_t) - log π_ref(y_t)
//                  -> mean over prompts: a Monte-Carlo estimate of KL(π ‖ π_ref) per answer
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/data/formats.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/detail/rollouts.hpp"
#include "rlhf/train/detail/sequences.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/reward_functions.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// How evaluate_policy samples.
struct policy_eval_config {
  index_t max_completion_length = 64;  ///< new tokens at most (EOS included)
  std::uint64_t seed = 0;              ///< the sampled completions' seed (KL)
  index_t prompts_per_batch = 16;      ///< prompts generated together (memory)
  data::tokenize_options tokenize{};   ///< how prompts become ids
};

/// The measurements of evaluate_policy.
struct policy_eval_result {
  std::size_t prompts = 0;  ///< prompts evaluated
  double reward = 0;        ///< mean weighted reward of the greedy completions (scorable ones)
  double unscorable = 0;    ///< share of greedy completions no reward scored
  double mean_length = 0;   ///< mean length of the greedy completions in tokens (EOS included)
  double kl = std::nan(
      "");  ///< mean Σ_t log π - log π_ref of sampled completions (NaN: no reference)
  std::vector<std::string> completions;  ///< the greedy completions, in prompt order
  std::vector<float> rewards;            ///< their rewards (NaN = unscorable)
};

/// Greedy reward and length of `policy` on `prompts`, and its KL to `reference` (when not
/// null) on sampled completions. config_error on a bad config or reward list.
template <class B, model::tokenizer Tok>
policy_eval_result evaluate_policy(const model::gpt<B>& policy, const model::gpt<B>* reference,
                                   const Tok& tok, std::span<const data::content> prompts,
                                   std::span<const reward_function> rewards,
                                   const policy_eval_config& cfg) {
  constexpr const char* fn = "evaluate_policy";
  validate_reward_functions(fn, rewards);
  const index_t context = policy.config().max_seq_len;
  check_config(cfg.max_completion_length >= 1 && cfg.max_completion_length < context, fn,
               "max_completion_length", rlhf::detail::concat("in [1, max_seq_len = ", context, ")"),
               cfg.max_completion_length);
  check_config(cfg.prompts_per_batch >= 1, fn, "prompts_per_batch", ">= 1", cfg.prompts_per_batch);
  check_config(!prompts.empty(), fn, "prompts", "at least one", 0);
  if (reference != nullptr)
    detail::check_same_model_shape(fn, policy.config(), reference->config());
  policy_eval_result out;
  out.prompts = prompts.size();
  forward_cache<B> pc(policy.config(), 0), rc(policy.config(), 0);
  double reward_sum = 0, scored = 0, length = 0, kl = 0;
  const auto per = static_cast<std::size_t>(cfg.prompts_per_batch);
  for (std::size_t first = 0; first < prompts.size(); first += per) {
    const std::size_t count = std::min(per, prompts.size() - first);
    const auto ids = detail::prompt_ids(tok, prompts, first, count, cfg.tokenize,
                                        cfg.max_completion_length, context, fn);
    const std::span<const std::vector<std::int32_t>> id_span(ids);
    const auto contents = prompts.subspan(first, count);
    // Greedy answers: reward, length.
    detail::sampling_options greedy{cfg.max_completion_length, 0.0f, 1.0f, 0, false};
    const auto g = detail::sample_groups_of<B>(policy, tok, id_span, contents, 1, greedy, 0);
    const auto scores = detail::combined_rewards<B>(rewards, g.batch);
    for (std::size_t i = 0; i < count; ++i) {
      out.rewards.push_back(scores[i]);
      if (!std::isnan(scores[i])) reward_sum += scores[i], scored += 1;
      length += static_cast<double>(g.batch.completion_ids[i].size());
      out.completions.push_back(g.batch.completions[i]);
    }
    // Sampled answers: Σ_t log π - log π_ref over each completion.
    if (reference != nullptr) {
      detail::sampling_options sampled{cfg.max_completion_length, 1.0f, 1.0f, 0, false};
      const auto seed = detail::derived_seed(cfg.seed, 0x6b6c0000u /* "kl" */, first);
      const auto s = detail::sample_groups_of<B>(policy, tok, id_span, contents, 1, sampled, seed);
      const auto batch = detail::stack_sequences<B>(s.rows, static_cast<std::int32_t>(tok.pad_id()),
                                                    pc);
      const auto mask = batch.mask();
      const auto lp = ops::sequence_logprobs<B>(
          detail::frozen_token_logps<B>(policy, pc, batch, mask), mask,
          ops::logprob_columns::shifted);
      const auto lr = ops::sequence_logprobs<B>(
          detail::frozen_token_logps<B>(*reference, rc, batch, mask), mask,
          ops::logprob_columns::shifted);
      const auto a = ops::to_host<B>(lp), b = ops::to_host<B>(lr);
      for (std::size_t i = 0; i < count; ++i) kl += static_cast<double>(a[i]) - b[i];
    }
  }
  const auto n = static_cast<double>(prompts.size());
  out.reward = scored > 0 ? reward_sum / scored : std::nan("");
  out.unscorable = (n - scored) / n;
  out.mean_length = length / n;
  if (reference != nullptr) out.kl = kl / n;
  return out;
}

}  // namespace train
}  // namespace v0
}  // namespace rlhf
