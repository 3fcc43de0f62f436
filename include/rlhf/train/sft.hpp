// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Supervised fine-tuning as a training method (train/trainer.hpp): language-modeling
// ({"text"} / {"messages"}) or prompt-completion data, the token-mean NLL of
// losses/sft.hpp on the completion tokens (or on every token).
//
// sft_config follows TRL's SFTConfig: max_length 1024, completion_only_loss (TRL: None,
// meaning true for prompt-completion data), loss_type "nll" | "dft", learning_rate 2e-5.
// Metrics: "loss", then TRL SFTTrainer's num_tokens (the cumulative non-padding input tokens
// of training, prompt included; method_base), mean_token_accuracy and entropy.
// Deviations: with gradient accumulation the loss is the mean of the micro-batches' token
// means (TRL normalises by the tokens of the whole accumulated batch); no packing or
// padding-free batching; the dataset is read from JSONL files (example_source).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/metrics.hpp"
#include "rlhf/data/batcher.hpp"
#include "rlhf/losses/sft.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/method_base.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// TRL SFTConfig's fields (see the top of this file for the deviations).
struct sft_config {
  training_args args = training_args::with_learning_rate(2e-5f);  ///< the shared trainer arguments
  std::size_t max_length = 1024;     ///< longest tokenized sequence (cut at its end)
  bool completion_only_loss = true;  ///< prompt-completion data: loss on completions only
  losses::sft_loss_type loss_type = losses::sft_loss_type::nll;  ///< nll or dft
};

/// The tokenization SFT wants: sequences cut to max_length at their end (TRL's SFT keeps
/// the start).
[[nodiscard]] inline data::tokenize_options sft_tokenize_options(const sft_config& c) {
  data::tokenize_options o;
  o.max_length = c.max_length;
  o.truncation = data::truncation_mode::keep_start;
  return o;
}

/// SFT on `policy` over the examples of `source`.
template <class B, model::tokenizer Tok>
class sft_method : public method_base<B, Tok> {
 public:
  /// `policy` and `source` are kept by reference.
  sft_method(model::gpt<B>& policy, example_source<Tok>& source, const sft_config& cfg)
      : method_base<B, Tok>("sft", policy, source, cfg.args.seed), cfg_(cfg) {}

  /// Loss, d loss / dθ added to the policy's gradients, and TRL's SFT metrics.
  named_metrics train_micro_batch(std::span<const std::uint64_t> idx) { return run(idx, true); }
  /// The same metrics without gradients or dropout.
  named_metrics eval_batch(std::span<const std::uint64_t> idx) { return run(idx, false); }

 private:
  using method_base<B, Tok>::policy_;
  using method_base<B, Tok>::source_;
  using method_base<B, Tok>::cache_;

  named_metrics run(std::span<const std::uint64_t> idx, bool train) {
    const auto examples = source_.get(idx);
    index_t longest = 0;
    for (const auto& e : examples) {
      longest = std::max(longest, static_cast<index_t>(e.sequence.ids.size()));
    }
    const index_t t = cache_.padded_length(longest);
    const auto batch = data::collate(examples, source_.tokenizer().pad_id(), t);
    // The tokens the loss covers: the completion (prompt-completion data, when
    // completion_only_loss) or every real token.
    const bool completion_only = cfg_.completion_only_loss && !examples.empty() &&
                                 examples.front().kind == data::format::prompt_completion;
    const auto& mask_host = completion_only ? batch.completion_mask : batch.attention_mask;
    const auto ids = ops::index_from_host<B>(std::span<const std::int32_t>(batch.ids),
                                             batch.shape());
    const auto mask = ops::from_host<B>(std::span<const float>(mask_host), batch.shape());
    auto& acts = cache_.get(batch.rows, batch.cols, train);
    model::gpt_forward<B>(policy_, acts, ids);
    cache_.commit();
    if (!grad_logits_ || grad_logits_->shape() != acts.logits.shape()) {
      grad_logits_.emplace(acts.logits.shape());
    }
    losses::sft_config lc;
    lc.loss_type = cfg_.loss_type;
    const auto r = losses::sft_loss<B>({acts.logits, ids, mask}, *grad_logits_, lc);
    if (train) model::gpt_backward<B>(policy_, acts, ids, *grad_logits_);
    named_metrics out{{"loss", r.loss}};
    for (const auto& m : r.metrics.named()) {
      // TRL's num_tokens is the cumulative input tokens of training, not sft_loss' count of
      // this batch's loss tokens.
      if (m.first == "num_tokens") {
        this->report_input_tokens(batch.attention_mask, train, out);
      } else {
        out.push_back(m);
      }
    }
    return out;
  }

  sft_config cfg_;
  std::optional<typename B::tensor> grad_logits_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
