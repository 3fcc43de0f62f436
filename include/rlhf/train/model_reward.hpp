// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Learned rewards as reward functions (train/reward_functions.hpp), and the combinators every
// online trainer can use on any reward:
//
//   model_reward(trunk, head)        a reward model: the head's score at the last real token
//                                    of prompt + completion (B, T) -> (B,), no gradients
//   reward_ensemble(members, how)    mean, min or mean − k·std of several rewards
//                                    (losses::ensemble_reduction; Coste et al. 2024)
//   length_normalized(f)             f's score / the completion's token count (EOS aside):
//                                    a guard against rewarding length itself
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/losses/reward.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/reward_functions.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// A frozen reward model (`trunk` + scalar `head`, both kept by reference) as a reward
/// function named `name`: rows prompt_ids + completion_ids, right-padded with `pad_id`, one
/// forward, the head at each row's last real token. config_error when the head's width is
/// not the trunk's; a row longer than the trunk's context is a data_error.
template <class B>
reward_function model_reward(const model::gpt<B>& trunk, const model::scalar_head<B>& head,
                             std::int32_t pad_id, std::string name = "reward_model",
                             float weight = 1.0f) {
  check_config(head.n_embd() == trunk.config().n_embd, "model_reward", "head.n_embd",
               rlhf::detail::concat("the trunk's n_embd (", trunk.config().n_embd, ")"),
               head.n_embd());
  return {std::move(name), weight, [&trunk, &head, pad_id](const completion_batch& b) {
            const auto n = static_cast<index_t>(b.size());
            index_t t = 1;
            for (std::size_t i = 0; i < b.size(); ++i) {
              t = std::max(
                  t, static_cast<index_t>(b.prompt_ids[i].size() + b.completion_ids[i].size()));
            }
            if (t > trunk.config().max_seq_len) {
              throw data_error(
                  rlhf::detail::concat("model_reward: a prompt + completion of ", t,
                                       " tokens is longer than the reward model's context (",
                                       trunk.config().max_seq_len, ")"));
            }
            std::vector<std::int32_t> ids(static_cast<std::size_t>(n * t), pad_id);
            std::vector<float> mask(static_cast<std::size_t>(n * t), 0.0f);
            for (std::size_t i = 0; i < b.size(); ++i) {
              std::size_t c = static_cast<std::size_t>(t) * i;
              for (const auto* part : {&b.prompt_ids[i], &b.completion_ids[i]}) {
                for (const auto id : *part) ids[c] = id, mask[c] = 1.0f, ++c;
              }
            }
            const shape sh{n, t};
            const auto tokens = ops::index_from_host<B>(std::span<const std::int32_t>(ids), sh);
            const auto m = ops::from_host<B>(std::span<const float>(mask), sh);
            model::gpt_activations<B> acts(trunk.config(), n, t);
            model::gpt_forward<B>(trunk, acts, tokens);
            typename B::tensor scores(shape{n});
            typename B::index_tensor last(shape{n});
            model::reward_head_forward<B>(scores, last, acts.lnf, m, head.weight(), head.bias());
            return ops::to_host<B>(scores);
          }};
}

/// Several rewards as one, named `name`: per completion, the reduction `how` of the
/// members' scores (mean_minus_std: mean − k·std, population std). A completion some
/// member does not score (NaN) gets NaN (no score). config_error on no members or a bad k.
inline reward_function reward_ensemble(std::vector<reward_function> members,
                                       losses::ensemble_reduction how, float k = 1.0f,
                                       std::string name = "ensemble", float weight = 1.0f) {
  validate_reward_functions("reward_ensemble", members);
  check_config(std::isfinite(k) && k >= 0.0f, "reward_ensemble", "k", "finite and >= 0", k);
  return {
      std::move(name), weight, [members = std::move(members), how, k](const completion_batch& b) {
        const auto per = score_completions(members, b);  // (N, M)
        const std::size_t m = members.size();
        std::vector<float> out(b.size());
        for (std::size_t i = 0; i < b.size(); ++i) {
          const std::span<const float> row(per.data() + i * m, m);
          if (std::any_of(row.begin(), row.end(), [](float v) { return std::isnan(v); })) {
            out[i] = std::nanf("");
            continue;
          }
          double sum = 0, lo = row[0];
          for (const float v : row) sum += v, lo = std::min<double>(lo, v);
          const double mean = sum / static_cast<double>(m);
          double ss = 0;
          for (const float v : row) ss += (v - mean) * (v - mean);
          const double sd = std::sqrt(ss / static_cast<double>(m));
          out[i] = static_cast<float>(how == losses::ensemble_reduction::min    ? lo
                                      : how == losses::ensemble_reduction::mean ? mean
                                                                                : mean - k * sd);
        }
        return out;
      }};
}

/// `f` with each score divided by the completion's length in tokens (EOS aside; at least
/// 1), named "<f.name>/length".
inline reward_function length_normalized(reward_function f, std::int32_t eos_id) {
  std::string name = f.name + "/length";
  const float weight = f.weight;
  return {std::move(name), weight, [f = std::move(f), eos_id](const completion_batch& b) {
            auto s = f.score(b);
            if (s.size() != b.size()) {
              throw data_error(rlhf::detail::concat("reward function '", f.name, "' returned ",
                                                    s.size(), " scores for ", b.size(),
                                                    " completions"));
            }
            for (std::size_t i = 0; i < s.size(); ++i) {
              const auto& ids = b.completion_ids[i];
              const auto len = static_cast<float>(std::count_if(
                  ids.begin(), ids.end(), [&](std::int32_t id) { return id != eos_id; }));
              s[i] /= std::max(len, 1.0f);
            }
            return s;
          }};
}

}  // namespace train
}  // namespace v0
}  // namespace rlhf
