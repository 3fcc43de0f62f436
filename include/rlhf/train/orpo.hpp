// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// ORPO (Hong et al. 2024) as a training method (train/trainer.hpp): preference data
// ({"prompt", "chosen", "rejected"}, standard or conversational, or with an implicit
// prompt), the loss of losses/orpo.hpp, no reference model.
//
// One micro-batch of N pairs:
//   chosen and rejected stacked to (2N, T) -> one policy forward -> token log-probs on every
//   real token -> per pair: lc, lr = mean completion log-probs; the chosen rows' Σ log-probs
//   over prompt + completion and their token counts (the NLL term, TRL's ORPO)
//   -> orpo_loss -> d loss / d (lc, lr, NLL sums) -> per token -> gpt_backward
//
// orpo_config follows TRL's ORPOConfig: learning_rate 1e-6, beta 0.1, max_length 1024,
// max_prompt_length 512, truncation_mode keep_end, disable_dropout true. Deviations: with
// gradient accumulation the loss is the mean of the micro-batches' losses (TRL's NLL is a
// token mean per micro-batch too); a completion cut to nothing is a data_error naming the
// pair (its mean log-prob is undefined; TRL gives NaN).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "rlhf/core/metrics.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/losses/orpo.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/detail/pair_logps.hpp"
#include "rlhf/train/detail/sequences.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/limits.hpp"
#include "rlhf/train/method_base.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// TRL ORPOConfig's fields (see the top of this file for the deviations).
struct orpo_config : sequence_limits {
  training_args args = training_args::with_learning_rate(1e-6f);  ///< the shared trainer arguments
  losses::orpo_config loss{};                                     ///< beta (λ of the paper)
  bool disable_dropout = true;  ///< no dropout in the policy (TRL's default)
};

/// The tokenization an orpo_config asks for.
[[nodiscard]] inline data::tokenize_options orpo_tokenize_options(const orpo_config& c) {
  return c.tokenize_options();
}

/// ORPO of `policy` over the pairs of `source`.
template <class B, model::tokenizer Tok>
class orpo_method : public method_base<B, Tok> {
 public:
  /// `policy` and `source` are kept by reference.
  orpo_method(model::gpt<B>& policy, example_source<Tok>& source, const orpo_config& cfg)
      : method_base<B, Tok>("orpo", policy, source, cfg.args.seed), cfg_(cfg) {}

  /// Loss, d loss / dθ added to the policy's gradients, and TRL's ORPO metrics.
  named_metrics train_micro_batch(std::span<const std::uint64_t> idx) { return run(idx, true); }
  /// The same metrics without gradients or dropout.
  named_metrics eval_batch(std::span<const std::uint64_t> idx) { return run(idx, false); }

 private:
  using tensor = typename B::tensor;
  using method_base<B, Tok>::policy_;
  using method_base<B, Tok>::source_;
  using method_base<B, Tok>::cache_;

  named_metrics run(std::span<const std::uint64_t> idx, bool train) {
    const auto examples = source_.get(idx);
    const bool all_tokens = cfg_.loss.nll == losses::nll_tokens::prompt_and_completion;
    const auto p = pass_.forward("orpo", policy_, cache_, examples, source_.tokenizer().pad_id(),
                                 all_tokens, /*mean=*/true, train && !cfg_.disable_dropout);
    auto dev = [](const std::vector<float>& v) {
      return detail::on_backend<B>(std::span<const float>(v));
    };
    const tensor lc = dev(p.chosen), lr = dev(p.rejected);
    const tensor counts = dev(p.nll_counts), sums = dev(p.nll_sums);
    losses::orpo_inputs<B> in{lc, lr, counts};
    in.chosen_nll_logp_sums = &sums;
    const auto r = losses::orpo_loss<B>(in, cfg_.loss);
    if (train) {
      pass_.backward(ops::to_host<B>(r.grad_policy_chosen_logps),
                     ops::to_host<B>(r.grad_policy_rejected_logps),
                     ops::to_host<B>(r.grad_chosen_nll_logp_sums));
    }
    named_metrics out{{"loss", r.loss}};
    for (const auto& m : r.metrics.named()) out.push_back(m);
    return out;
  }

  orpo_config cfg_;
  detail::pair_pass<B> pass_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
