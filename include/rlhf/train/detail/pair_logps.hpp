// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Sequence log-probs of preference pairs for the reference-free methods (ORPO, CPO/SimPO),
// and their way back to per-token gradients.
//
// Rows 0..N-1 are the chosen sequences, N..2N-1 the rejected ones; logps (2N, T) are the
// policy's token log-probs under the forward mask (t >= 1 only; position 0 predicts
// nothing). With c = completion mask, n_r = Σ_{t>=1} c[r, t]:
//   value_r      Σ_t c·logps  (sum)   or   Σ_t c·logps / n_r  (mean; n_r = 0 is a data_error)
//   nll_sum_r    Σ_t logps over the NLL's tokens (the forward mask: the completion for CPO,
//                every real token for ORPO), chosen rows only
// and back: d/d logps[r, t] = g_r·c[r, t]·(1 or 1/n_r) + (chosen rows) g_nll_r.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/detail/sequences.hpp"
#include "rlhf/train/forward_cache.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {
namespace detail {

/// The reduced values of 2N rows (see the top of this file).
struct pair_logps {
  std::vector<float> chosen;      ///< (N,) value of the chosen rows
  std::vector<float> rejected;    ///< (N,) value of the rejected rows
  std::vector<float> nll_sums;    ///< (N,) Σ log-probs over the NLL's tokens, chosen rows
  std::vector<float> nll_counts;  ///< (N,) the NLL's tokens, chosen rows
};

/// Reduces host token log-probs (2N·T) of `batch`; `nll_counts` (2N,) counts the forward
/// mask's tokens per row. `method` names the caller in errors.
inline pair_logps reduce_pairs(std::string_view method, std::span<const float> logps,
                               const model::padded_batch& batch,
                               std::span<const float> completion_tokens,
                               std::span<const float> nll_counts, bool mean) {
  const auto rows = static_cast<std::size_t>(batch.rows);
  const auto t = static_cast<std::size_t>(batch.cols);
  const std::size_t n = rows / 2;
  pair_logps out;
  out.chosen.resize(n);
  out.rejected.resize(n);
  out.nll_sums.resize(n);
  out.nll_counts.assign(nll_counts.begin(), nll_counts.begin() + static_cast<std::ptrdiff_t>(n));
  for (std::size_t r = 0; r < rows; ++r) {
    float value = 0.0f, all = 0.0f;
    for (std::size_t c = 1; c < t; ++c) {
      value += batch.completion_mask[r * t + c] * logps[r * t + c];
      all += logps[r * t + c];
    }
    if (mean) {
      if (!(completion_tokens[r] > 0.0f)) {
        throw data_error(rlhf::detail::concat(
            method, ": the ", r < n ? "chosen" : "rejected", " completion of pair ", r % n,
            " of the batch has no tokens left after truncation; its mean log-prob is undefined "
            "(raise max_length or lower max_prompt_length)"));
      }
      value /= completion_tokens[r];
    }
    (r < n ? out.chosen[r] : out.rejected[r - n]) = value;
    if (r < n) out.nll_sums[r] = all;
  }
  return out;
}

/// d loss / d logps (2N·T) from d loss / d value of the chosen (N,) and rejected (N,) rows
/// and d loss / d nll_sums (N,; empty when there is no NLL term).
inline std::vector<float> pair_token_grads(const model::padded_batch& batch,
                                           std::span<const float> completion_tokens, bool mean,
                                           std::span<const float> grad_chosen,
                                           std::span<const float> grad_rejected,
                                           std::span<const float> grad_nll_sums) {
  const auto rows = static_cast<std::size_t>(batch.rows);
  const auto t = static_cast<std::size_t>(batch.cols);
  const std::size_t n = rows / 2;
  std::vector<float> g(rows * t, 0.0f);
  for (std::size_t r = 0; r < rows; ++r) {
    float per_token = r < n ? grad_chosen[r] : grad_rejected[r - n];
    if (mean) per_token /= completion_tokens[r];
    const float nll = r < n && !grad_nll_sums.empty() ? grad_nll_sums[r] : 0.0f;
    for (std::size_t c = 1; c < t; ++c) {
      g[r * t + c] = per_token * batch.completion_mask[r * t + c] + nll;
    }
  }
  return g;
}

/// One micro-batch of a reference-free pair method: forward, reduce, and back.
template <class B>
class pair_pass {
 public:
  /// Stacks `pairs` (chosen rows first), runs the policy forward (`dropout`: in training
  /// mode) under the NLL's mask (every real token with `nll_all_tokens`, else the
  /// completion) and reduces to sums or, with `mean`, per-token means.
  pair_logps forward(std::string_view method, model::gpt<B>& policy, forward_cache<B>& cache,
                     std::span<const data::tokenized_example> pairs, std::int32_t pad_id,
                     bool nll_all_tokens, bool mean, bool dropout) {
    const auto rows = pair_rows(pairs);
    batch_.emplace(stack_sequences<B>(rows, pad_id, cache));
    mean_ = mean;
    const auto& b = *batch_;
    (void)tokens_.forward(policy, cache, b, b.mask(nll_all_tokens), dropout);
    const auto logps = tokens_.logps_host();
    const auto& nll_counts = nll_all_tokens ? b.attention_tokens : b.completion_tokens;
    return reduce_pairs(method, logps, b.host, b.completion_tokens, nll_counts, mean);
  }

  /// Adds d loss / dθ to the policy's gradients from d loss / d values of the chosen and
  /// rejected rows and d loss / d nll_sums (empty: no NLL term).
  void backward(std::span<const float> grad_chosen, std::span<const float> grad_rejected,
                std::span<const float> grad_nll_sums) {
    const auto& b = *batch_;
    const auto g = pair_token_grads(b.host, b.completion_tokens, mean_, grad_chosen, grad_rejected,
                                    grad_nll_sums);
    tokens_.backward(ops::from_host<B>(std::span<const float>(g), b.host.shape()));
  }

 private:
  std::optional<sequence_batch<B>> batch_;
  policy_tokens<B> tokens_;
  bool mean_ = false;
};

}  // namespace detail
}  // namespace train
}  // namespace v0
}  // namespace rlhf
