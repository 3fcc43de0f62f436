// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// A reward model as a preference judge: prob_a = σ(r_a − r_b), the Bradley-Terry
// probability the reward model was trained to give (Ouyang et al. 2022; losses/reward.hpp).
//
//   response_scorer          (prompts (N), responses (N)) -> N rewards (NaN: no score)
//   reward_function_scorer   a train::reward_function (e.g. train::model_reward) as one:
//                            chat-template prompt ids + response ids (+ EOS)
//   reward_model_judge       one scorer call over the 2N (prompt, response) rows of N queries
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlhf/cai/judge.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/data/formats.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/reward_functions.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {

/// Rewards of responses to prompts, one per (prompts[i], responses[i]); NaN: no score.
using response_scorer = std::function<std::vector<float>(
    const std::vector<std::string>& prompts, const std::vector<std::string>& responses)>;

/// `f` as a response_scorer: each prompt through `tmpl` (prompt_ids) and each response
/// encoded and ended with EOS (when tmpl.add_eos), as the online trainers build rows for
/// their reward functions. config_error on an invalid `f`.
template <model::tokenizer Tok = model::byte_tokenizer>
[[nodiscard]] response_scorer reward_function_scorer(train::reward_function f, Tok tok = {},
                                                     model::chat_template tmpl = {}) {
  train::validate_reward_functions("reward_function_scorer",
                                   std::span<const train::reward_function>(&f, 1));
  return [f = std::move(f), tok = std::move(tok), tmpl = std::move(tmpl)](
             const std::vector<std::string>& prompts, const std::vector<std::string>& responses) {
    train::completion_batch b;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      data::content c;
      c.text = prompts[i];
      b.prompts.push_back(std::move(c));
      b.completions.push_back(responses[i]);
      b.prompt_ids.push_back(tmpl.prompt_ids(tok, prompts[i]));
      auto ids = tok.encode(responses[i]);
      if (tmpl.add_eos) ids.push_back(static_cast<std::int32_t>(tok.eos_id()));
      b.completion_ids.push_back(std::move(ids));
      b.truncated.push_back(false);
    }
    return train::score_completions(std::span<const train::reward_function>(&f, 1), b);
  };
}

/// A judge from a response_scorer: prob_a = σ(r_a − r_b); a NaN or infinite reward of
/// either response gives no judgment. data_error when the scorer returns the wrong number of
/// rewards.
class reward_model_judge {
 public:
  /// config_error when `scorer` is empty.
  explicit reward_model_judge(response_scorer scorer) : scorer_(std::move(scorer)) {
    check_config(static_cast<bool>(scorer_), "reward_model_judge", "scorer", "a callable", "empty");
  }

  /// One judgment per query (reason: both rewards).
  std::vector<judgment> judge(const std::vector<judge_query>& queries) {
    std::vector<std::string> prompts, responses;
    for (const auto& q : queries) {
      prompts.push_back(q.prompt);
      responses.push_back(q.response_a);
      prompts.push_back(q.prompt);
      responses.push_back(q.response_b);
    }
    std::vector<float> r;
    if (!queries.empty()) r = scorer_(prompts, responses);
    if (r.size() != prompts.size()) {
      throw data_error(rlhf::detail::concat("reward_model_judge: the scorer returned ", r.size(),
                                            " rewards for ", prompts.size(), " responses"));
    }
    std::vector<judgment> out(queries.size());
    for (std::size_t i = 0; i < queries.size(); ++i) {
      const float ra = r[2 * i], rb = r[2 * i + 1];
      out[i].reason = rlhf::detail::concat("r(A)=", ra, ", r(B)=", rb);
      if (std::isfinite(ra) && std::isfinite(rb)) {
        out[i].prob_a = static_cast<float>(1.0 / (1.0 + std::exp(static_cast<double>(rb) - ra)));
      }
    }
    return out;
  }

 private:
  response_scorer scorer_;
};

static_assert(preference_judge<reward_model_judge>);

}  // namespace cai
}  // namespace v0
}  // namespace rlhf
