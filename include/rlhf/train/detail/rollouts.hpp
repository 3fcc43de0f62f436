// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What the online methods share: sampling G completions per prompt with the policy and the
// KV cache (model/generate.hpp), the rows the training forward reads, TRL's completions/*
// metrics, and the seeded streams that make a run reproducible and resumable.
//
//   sample_groups(policy, prompts (P prompts), G, ...) -> group_rollout
//       rows:  P·G sequences prompt + completion (the G of one prompt consecutive), each
//              row's completion mask 1 on the generated tokens (EOS included)
//       batch: what the reward functions read (texts, ids, truncation flags)
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/config.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/losses/grpo.hpp"
#include "rlhf/model/generate.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/reward_functions.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {
namespace detail {

/// A 64-bit key derived from (seed, purpose tag, counter) by Philox: the sampling seed of
/// step s, the shuffle of step s, ... are pure functions of the run's seed and s, so a
/// resumed run draws what the uninterrupted one drew.
[[nodiscard]] inline std::uint64_t derived_seed(std::uint64_t seed, std::uint32_t tag,
                                                std::uint64_t counter) {
  const philox_block b = philox_draw(seed, tag, counter);
  return (static_cast<std::uint64_t>(b.w[0]) << 32) | b.w[1];
}

/// A seeded permutation of 0..n-1 (sorted by Philox keys of `seed`).
[[nodiscard]] inline std::vector<std::size_t> seeded_permutation(std::size_t n,
                                                                 std::uint64_t seed) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::vector<std::uint32_t> key(n);
  for (std::size_t i = 0; i < n; ++i) key[i] = philox_draw(seed, 0x7065726du /* "perm" */, i).w[0];
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return key[a] < key[b]; });
  return order;
}

/// How completions are sampled (TRL's GRPOConfig / RLOOConfig generation fields).
struct sampling_options {
  index_t max_completion_length = 512;      ///< new tokens at most (EOS included)
  float temperature = 1.0f;                 ///< τ > 0 (also divides the training forward's logits)
  float top_p = 1.0f;                       ///< nucleus mass; 1 = off
  index_t top_k = 0;                        ///< 0 = off
  bool mask_truncated_completions = false;  ///< completions without EOS get mask 0
};

/// P prompts × G completions each, sampled by the policy.
struct group_rollout {
  std::vector<model::encoded_chat> rows;  ///< prompt + completion per completion
  completion_batch batch;                 ///< what reward functions read
  /// Σ prompt tokens + Σ completion tokens (each prompt once per completion): TRL's
  /// num_input_tokens_seen increment.
  double tokens_seen = 0;
};

/// The prompt ids of a prompt-only example, cut at the start so that the prompt and
/// `max_new` tokens fit a context of `context` (a model has no room for more).
inline std::vector<std::int32_t> prompt_that_fits(const model::encoded_chat& e, index_t max_new,
                                                  index_t context) {
  const auto room = static_cast<std::size_t>(context - max_new);
  if (e.ids.size() <= room) return e.ids;
  return {e.ids.end() - static_cast<std::ptrdiff_t>(room), e.ids.end()};
}

/// The ids of prompts[first, first + count) (prompt-only examples tokenized with
/// `tokenize`, cut to fit `max_new` more tokens into `context`); data_error naming `fn` and
/// the prompt when one is empty.
template <model::tokenizer Tok>
std::vector<std::vector<std::int32_t>> prompt_ids(
    const Tok& tok, std::span<const data::content> prompts, std::size_t first, std::size_t count,
    const data::tokenize_options& tokenize, index_t max_new, index_t context, std::string_view fn) {
  std::vector<std::vector<std::int32_t>> ids;
  for (std::size_t i = first; i < first + count; ++i) {
    data::example ex;
    ex.kind = data::format::prompt_only;
    ex.conversational = prompts[i].conversational;
    ex.prompt = prompts[i];
    ids.push_back(prompt_that_fits(data::tokenize(tok, ex, tokenize).sequence, max_new, context));
    if (ids.back().empty()) throw data_error(rlhf::detail::concat(fn, ": prompt ", i, " is empty"));
  }
  return ids;
}

/// Samples `g` completions of each prompt (`ids`, and `contents` as the data holds it) with
/// `policy` (no gradients), seeded by `seed` (row r of the batch draws from stream
/// first_row + r: a data-parallel rank passes its rows' place in the global batch);
/// `workspace` (optional) keeps generate()'s buffers from one step to the next.
template <class B, model::tokenizer Tok>
group_rollout sample_groups_of(const model::gpt<B>& policy, const Tok& tok,
                               std::span<const std::vector<std::int32_t>> ids,
                               std::span<const data::content> contents, index_t g,
                               const sampling_options& opt, std::uint64_t seed,
                               std::int32_t first_row = 0,
                               model::generation_workspace<B>* workspace = nullptr) {
  group_rollout out;
  std::vector<std::vector<std::int32_t>> prompts;
  prompts.reserve(ids.size() * static_cast<std::size_t>(g));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    for (index_t k = 0; k < g; ++k) {
      prompts.push_back(ids[i]);
      out.batch.prompts.push_back(contents[i]);
    }
  }
  model::generation_config gc;
  gc.max_new_tokens = opt.max_completion_length;
  gc.sampling.temperature = opt.temperature;
  gc.sampling.top_p = opt.top_p;
  gc.sampling.top_k = opt.top_k;
  gc.sampling.seed = seed;
  gc.stop_tokens = {static_cast<std::int32_t>(tok.eos_id())};
  gc.pad_token = static_cast<std::int32_t>(tok.pad_id());
  if (first_row != 0) {
    gc.row_ids.resize(prompts.size());
    std::iota(gc.row_ids.begin(), gc.row_ids.end(), first_row);
  }
  const auto res = model::generate<B>(policy, prompts, gc, workspace);
  const auto tokens = ops::to_host<B>(res.tokens);
  const index_t width = res.prompt_width + opt.max_completion_length;
  const auto eos = static_cast<std::int32_t>(tok.eos_id());
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    const auto len = static_cast<std::size_t>(res.lengths[r]);
    const auto* first = tokens.data() + static_cast<index_t>(r) * width + res.prompt_width;
    std::vector<std::int32_t> completion(first, first + len);
    const bool truncated = completion.empty() || completion.back() != eos;
    model::encoded_chat row;
    row.prompt_length = prompts[r].size();
    row.ids = prompts[r];
    row.ids.insert(row.ids.end(), completion.begin(), completion.end());
    row.completion_mask.assign(row.ids.size(), 0.0f);
    if (!(truncated && opt.mask_truncated_completions)) {
      std::fill(row.completion_mask.begin() + static_cast<std::ptrdiff_t>(row.prompt_length),
                row.completion_mask.end(), 1.0f);
    }
    out.tokens_seen += static_cast<double>(row.ids.size());
    out.batch.completions.push_back(tok.decode(std::span<const std::int32_t>(completion)));
    out.batch.prompt_ids.push_back(prompts[r]);
    out.batch.completion_ids.push_back(std::move(completion));
    out.batch.truncated.push_back(truncated);
    out.rows.push_back(std::move(row));
  }
  return out;
}

/// Samples `g` completions of each prompt of `idx` (prompt-only examples of `source`).
template <class B, model::tokenizer Tok>
group_rollout sample_groups(const model::gpt<B>& policy, example_source<Tok>& source,
                            std::span<const std::uint64_t> idx, index_t g,
                            const sampling_options& opt, std::uint64_t seed,
                            std::int32_t first_row = 0,
                            model::generation_workspace<B>* workspace = nullptr) {
  const index_t context = policy.config().max_seq_len;
  std::vector<std::vector<std::int32_t>> ids;
  std::vector<data::content> contents;
  for (const auto i : idx) {
    const auto raw = source.raw(i);
    const auto ex = data::tokenize(source.tokenizer(), raw, source.tokenize_options());
    ids.push_back(prompt_that_fits(ex.sequence, opt.max_completion_length, context));
    if (ids.back().empty()) {
      throw data_error(rlhf::detail::concat("online trainer: example ", i, " has an empty prompt"));
    }
    contents.push_back(raw.prompt);
  }
  return sample_groups_of<B>(
      policy, source.tokenizer(), std::span<const std::vector<std::int32_t>>(ids),
      std::span<const data::content>(contents), g, opt, seed, first_row, workspace);
}

/// Each completion's weighted reward under `functions` (losses::grpo_combine_rewards: NaN
/// scores count 0, NaN when no function scored the completion).
template <class B>
std::vector<float> combined_rewards(std::span<const reward_function> functions,
                                    const completion_batch& batch) {
  const auto n = static_cast<index_t>(batch.size());
  const auto scores = score_completions(functions, batch);
  const auto per_func = ops::from_host<B>(std::span<const float>(scores),
                                          shape{n, static_cast<index_t>(functions.size())});
  typename B::tensor out(shape{n});
  (void)losses::grpo_combine_rewards<B>(per_func, reward_weights(functions), out);
  return ops::to_host<B>(out);
}

/// TRL's completions/* metrics of a rollout: mean/min/max length, the share without EOS
/// (clipped_ratio) and the lengths of the terminated ones (0 when none terminated).
[[nodiscard]] inline named_metrics completion_metrics(const std::vector<std::size_t>& lengths,
                                                      const std::vector<bool>& truncated) {
  double sum = 0, tsum = 0, clipped = 0;
  std::size_t mn = SIZE_MAX, mx = 0, tmn = SIZE_MAX, tmx = 0, terminated = 0;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    const std::size_t len = lengths[i];
    sum += static_cast<double>(len);
    mn = std::min(mn, len), mx = std::max(mx, len);
    if (truncated[i]) {
      clipped += 1;
    } else {
      ++terminated;
      tsum += static_cast<double>(len);
      tmn = std::min(tmn, len), tmx = std::max(tmx, len);
    }
  }
  const auto n = static_cast<double>(lengths.size());
  auto f = [](double x) { return static_cast<float>(x); };
  return {
      {"completions/mean_length", f(sum / n)},
      {"completions/min_length", f(static_cast<double>(mn))},
      {"completions/max_length", f(static_cast<double>(mx))},
      {"completions/clipped_ratio", f(clipped / n)},
      {"completions/mean_terminated_length",
       f(terminated > 0 ? tsum / static_cast<double>(terminated) : 0.0)},
      {"completions/min_terminated_length", f(terminated > 0 ? static_cast<double>(tmn) : 0.0)},
      {"completions/max_terminated_length", f(terminated > 0 ? static_cast<double>(tmx) : 0.0)}};
}

/// The completion lengths of `b` (first) and whether each was cut at max_completion_length.
[[nodiscard]] inline std::pair<std::vector<std::size_t>, std::vector<bool>> completion_lengths(
    const completion_batch& b) {
  std::pair<std::vector<std::size_t>, std::vector<bool>> out;
  for (std::size_t i = 0; i < b.size(); ++i) {
    out.first.push_back(b.completion_ids[i].size());
    out.second.push_back(b.truncated[i]);
  }
  return out;
}

/// completion_metrics of a batch's completions.
[[nodiscard]] inline named_metrics completion_metrics(const completion_batch& b) {
  const auto [lengths, truncated] = completion_lengths(b);
  return completion_metrics(lengths, truncated);
}

}  // namespace detail
}  // namespace train
}  // namespace v0
}  // namespace rlhf
