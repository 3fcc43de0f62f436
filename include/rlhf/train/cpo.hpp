// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// CPO and its relatives SimPO, AlphaPO (Xu et al. 2024; Meng et al. 2024; Gupta et al.
// 2025) as a training method (train/trainer.hpp): preference data ({"prompt", "chosen",
// "rejected"}, standard or conversational, or with an implicit prompt), the losses of
// losses/cpo.hpp, no reference model.
//
// One micro-batch of N pairs:
//   chosen and rejected stacked to (2N, T) -> one policy forward -> completion token
//   log-probs -> per pair: lc, lr = Σ (sigmoid, hinge) or mean (ipo, simpo, alphapo) over
//   the completion; the chosen rows' Σ and token count (the NLL term, weight cpo_alpha)
//   -> cpo_loss -> d loss / d (lc, lr, NLL sums) -> per token -> gpt_backward
// SimPO is loss_type simpo with cpo_alpha 0 (TRL's recipe); AlphaPO is loss_type alphapo
// (simpo with the NLL term off) and alpha != 0.
//
// cpo_config follows TRL's CPOConfig: learning_rate 1e-6, beta 0.1, loss_type sigmoid,
// label_smoothing 0, cpo_alpha 1, simpo_gamma 0.5, alpha 0, max_length 1024,
// max_prompt_length 512, truncation_mode keep_end, disable_dropout true. Deviation: with
// mean log-probs a completion cut to nothing is a data_error naming the pair.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "rlhf/core/metrics.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/losses/cpo.hpp"
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

/// TRL CPOConfig's fields (see the top of this file for the deviations).
struct cpo_config : sequence_limits {
  training_args args = training_args::with_learning_rate(1e-6f);  ///< the shared trainer arguments
  losses::cpo_config loss{};    ///< beta, loss_type, cpo_alpha, simpo_gamma, ...
  bool disable_dropout = true;  ///< no dropout in the policy (TRL's default)
};

/// The tokenization a cpo_config asks for.
[[nodiscard]] inline data::tokenize_options cpo_tokenize_options(const cpo_config& c) {
  return c.tokenize_options();
}

/// CPO (or SimPO, AlphaPO) of `policy` over the pairs of `source`.
template <class B, model::tokenizer Tok>
class cpo_method : public method_base<B, Tok> {
 public:
  /// `policy` and `source` are kept by reference.
  cpo_method(model::gpt<B>& policy, example_source<Tok>& source, const cpo_config& cfg)
      : method_base<B, Tok>("cpo", policy, source, cfg.args.seed), cfg_(cfg) {}

  /// Loss, d loss / dθ added to the policy's gradients, and TRL's CPO metrics.
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
    const auto& lc_cfg = cfg_.loss;
    const bool nll = lc_cfg.cpo_alpha != 0.0f && lc_cfg.loss_type != losses::cpo_loss_type::alphapo;
    const bool all_tokens = lc_cfg.nll == losses::nll_tokens::prompt_and_completion;
    const auto p = pass_.forward("cpo", policy_, cache_, examples, source_.tokenizer().pad_id(),
                                 all_tokens, losses::cpo_uses_mean_logps(lc_cfg.loss_type),
                                 train && !cfg_.disable_dropout);
    auto dev = [](const std::vector<float>& v) {
      return detail::on_backend<B>(std::span<const float>(v));
    };
    const tensor lc = dev(p.chosen), lr = dev(p.rejected);
    const tensor counts = dev(p.nll_counts), sums = dev(p.nll_sums);
    losses::cpo_inputs<B> in{lc, lr};
    if (nll) {
      in.chosen_nll_token_counts = &counts;
      in.chosen_nll_logp_sums = &sums;
    }
    const auto r = losses::cpo_loss<B>(in, lc_cfg);
    if (train) {
      const std::vector<float> g_nll = nll ? ops::to_host<B>(r.grad_chosen_nll_logp_sums)
                                           : std::vector<float>{};
      pass_.backward(ops::to_host<B>(r.grad_policy_chosen_logps),
                     ops::to_host<B>(r.grad_policy_rejected_logps), g_nll);
    }
    named_metrics out{{"loss", r.loss}};
    for (const auto& m : r.metrics.named()) out.push_back(m);
    return out;
  }

  cpo_config cfg_;
  detail::pair_pass<B> pass_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
