// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What the log-prob based methods (DPO, ORPO, CPO, KTO, BCO) share: token sequences stacked
// into one right-padded (R, T) batch, a frozen model's sequence log-probs, and the policy's
// token log-probs with the backward pass from per-token gradients.
//
//   stack_sequences    R encoded sequences -> ids (R, T) on the backend, both masks on the
//                      host, per-row predicted-token counts (positions t >= 1)
//   frozen_logps       Σ_{t>=1} completion log-probs (R,) of a model without gradients
//   policy_tokens      forward -> token log-probs (R, T) under a mask; backward from
//                      d loss / d token log-probs (R, T) into the policy's gradients
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "rlhf/core/config.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/forward_cache.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {
namespace detail {

/// A frozen reference must score the policy's tokens in the policy's context.
inline void check_same_model_shape(std::string_view method, const model::gpt_config& policy,
                                   const model::gpt_config& reference) {
  check_config(policy.vocab_size == reference.vocab_size, method, "reference.vocab_size",
               rlhf::detail::concat("the policy's (", policy.vocab_size, ")"),
               reference.vocab_size);
  check_config(policy.max_seq_len == reference.max_seq_len, method, "reference.max_seq_len",
               rlhf::detail::concat("the policy's (", policy.max_seq_len, ")"),
               reference.max_seq_len);
}

/// R sequences, right-padded to T, ids on the backend.
template <class B>
struct sequence_batch {
  model::padded_batch host;              ///< ids, attention and completion masks (R, T)
  typename B::index_tensor ids;          ///< (R, T)
  std::vector<float> completion_tokens;  ///< (R,) Σ_{t>=1} completion mask
  std::vector<float> attention_tokens;   ///< (R,) Σ_{t>=1} attention mask

  [[nodiscard]] index_t rows() const { return host.rows; }
  [[nodiscard]] index_t cols() const { return host.cols; }
  /// The completion mask (or, with `all_tokens`, the attention mask) on the backend.
  [[nodiscard]] typename B::tensor mask(bool all_tokens = false) const {
    const auto& m = all_tokens ? host.attention_mask : host.completion_mask;
    return ops::from_host<B>(std::span<const float>(m), host.shape());
  }
};

/// Stacks `rows` into one batch padded to the cache's length for the longest row.
template <class B>
sequence_batch<B> stack_sequences(std::span<const model::encoded_chat> rows, std::int32_t pad_id,
                                  const forward_cache<B>& cache) {
  index_t longest = 0;
  for (const auto& r : rows) longest = std::max(longest, static_cast<index_t>(r.ids.size()));
  sequence_batch<B> s;
  s.host = model::pad_batch(rows, pad_id, model::padding_side::right, cache.padded_length(longest));
  const index_t t = s.host.cols;
  s.completion_tokens.assign(static_cast<std::size_t>(s.host.rows), 0.0f);
  s.attention_tokens.assign(static_cast<std::size_t>(s.host.rows), 0.0f);
  for (index_t r = 0; r < s.host.rows; ++r) {
    for (index_t c = 1; c < t; ++c) {
      const auto k = static_cast<std::size_t>(r * t + c);
      s.completion_tokens[static_cast<std::size_t>(r)] += s.host.completion_mask[k];
      s.attention_tokens[static_cast<std::size_t>(r)] += s.host.attention_mask[k];
    }
  }
  s.ids = ops::index_from_host<B>(std::span<const std::int32_t>(s.host.ids), s.host.shape());
  return s;
}

/// The chosen sequences of preference examples, then the rejected ones (2N rows).
inline std::vector<model::encoded_chat> pair_rows(std::span<const data::tokenized_example> pairs) {
  std::vector<model::encoded_chat> rows;
  rows.reserve(2 * pairs.size());
  for (const auto& e : pairs) rows.push_back(e.chosen);
  for (const auto& e : pairs) rows.push_back(e.rejected);
  return rows;
}

/// (n,) floats on the backend.
template <class B>
typename B::tensor on_backend(std::span<const float> v) {
  return ops::from_host<B>(v, shape{static_cast<index_t>(v.size())});
}

/// Completion token log-probs (R, T) of `model` under `mask` (logits as `opt` says),
/// without gradients or dropout.
template <class B>
typename B::tensor frozen_token_logps(const model::gpt<B>& model, forward_cache<B>& cache,
                                      const sequence_batch<B>& s, const typename B::tensor& mask,
                                      const ops::logprob_options& opt = {}) {
  auto& acts = cache.get(s.rows(), s.cols(), false);
  model::gpt_forward<B>(model, acts, s.ids);
  return ops::token_logprobs<B>(acts.logits, s.ids, mask, opt).logps;
}

/// Σ_{t>=1} completion token log-probs (R,) of `model`, without gradients or dropout.
template <class B>
std::vector<float> frozen_logps(const model::gpt<B>& model, forward_cache<B>& cache,
                                const sequence_batch<B>& s) {
  const auto mask = s.mask();
  return ops::to_host<B>(ops::sequence_logprobs<B>(frozen_token_logps(model, cache, s, mask), mask,
                                                   ops::logprob_columns::shifted));
}

/// The policy's token log-probs of one batch and the way back to its gradients.
template <class B>
class policy_tokens {
 public:
  /// Forward through `policy` (train: dropout and saved activations), then the token
  /// log-probs (R, T) under `mask` (zero where the mask is 0).
  const typename B::tensor& forward(model::gpt<B>& policy, forward_cache<B>& cache,
                                    const sequence_batch<B>& s, typename B::tensor mask, bool train,
                                    const ops::logprob_options& opt = {}) {
    policy_ = &policy;
    batch_ = &s;
    acts_ = &cache.get(s.rows(), s.cols(), train);
    model::gpt_forward<B>(policy, *acts_, s.ids);
    cache.commit();
    mask_.emplace(std::move(mask));
    opt_ = opt;
    tok_.emplace(ops::token_logprobs<B>(acts_->logits, s.ids, *mask_, opt));
    return tok_->logps;
  }

  /// The forward's token results (argmax hits, entropy when asked for).
  [[nodiscard]] const ops::token_logprobs_result<B>& result() const { return *tok_; }
  /// The forward's logits (R, T, V).
  [[nodiscard]] const typename B::tensor& logits() const { return acts_->logits; }

  /// The forward's token log-probs on the host, (R·T) row-major.
  [[nodiscard]] std::vector<float> logps_host() const { return ops::to_host<B>(tok_->logps); }

  /// Adds d loss / dθ to the policy's gradients from d loss / d token log-probs (R, T) and,
  /// when given, d loss / d token entropies (R, T) (the forward must have computed them).
  void backward(const typename B::tensor& grad_tokens,
                const typename B::tensor* grad_entropy = nullptr) {
    if (!grad_logits_ || grad_logits_->shape() != acts_->logits.shape()) {
      grad_logits_.emplace(acts_->logits.shape());
    }
    ops::token_logprobs_backward<B>(acts_->logits, batch_->ids, *mask_, *tok_, grad_tokens,
                                    *grad_logits_, opt_, grad_entropy);
    model::gpt_backward<B>(*policy_, *acts_, batch_->ids, *grad_logits_);
  }

 private:
  model::gpt<B>* policy_ = nullptr;
  const sequence_batch<B>* batch_ = nullptr;
  model::gpt_activations<B>* acts_ = nullptr;
  std::optional<typename B::tensor> mask_;
  ops::logprob_options opt_;
  std::optional<ops::token_logprobs_result<B>> tok_;
  std::optional<typename B::tensor> grad_logits_;
};

}  // namespace detail
}  // namespace train
}  // namespace v0
}  // namespace rlhf
