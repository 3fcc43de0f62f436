// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// KTO (Ethayarajh et al. 2024) as a training method (train/trainer.hpp): unpaired feedback
// ({"prompt", "completion", "label"}, standard or conversational), the losses of
// losses/kto.hpp, a frozen reference model.
//
// One micro-batch of N examples:
//   rows 0..N-1   prompt_i + completion_i                       (trained)
//   rows N..2N-1  prompt_i + completion_{(i-1) mod N}           (the mismatched "KL" pairs,
//                 loss_type kto only; no gradient flows through them)
//   one policy forward over the 2N rows, one reference forward without gradients
//   -> Σ completion log-probs -> kto_loss (z0 = max(0, mean KL-pair log-ratio), detached)
//   -> d loss / d logps of rows 0..N-1 -> gpt_backward
//
// Metrics: "loss", then TRL 1.16 KTOTrainer's kl, rewards/*, logps/*, rewards/margins (a
// class only when the micro-batch has it), entropy (the examples' completion tokens),
// logits/chosen, logits/rejected (only when that class has tokens) and num_tokens (the
// cumulative non-padding tokens of the examples' rows, KL pairs excluded; method_base).
//
// kto_config follows TRL's KTOConfig: learning_rate 1e-6, beta 0.1, loss_type kto,
// desirable_weight = undesirable_weight = 1, max_length 1024, max_prompt_length 512,
// truncation_mode keep_end, disable_dropout true. A KL pair longer than max_length is cut
// like any sequence (truncation_mode). TRL refuses a micro-batch size of 1 with loss_type
// kto (the KL pair would be the example itself); so does this method. Deviations: no
// precompute_ref_log_probs; the class-balance advice is given once, before training, over
// the training split.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "rlhf/core/metrics.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/losses/kto.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/detail/sequences.hpp"
#include "rlhf/train/detail/unpaired.hpp"  // unpaired_labels
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/limits.hpp"
#include "rlhf/train/method_base.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// TRL KTOConfig's fields (see the top of this file for the deviations).
struct kto_config : sequence_limits {
  training_args args = training_args::with_learning_rate(1e-6f);  ///< the shared trainer arguments
  losses::kto_config loss{};    ///< beta, loss_type, desirable/undesirable_weight
  bool disable_dropout = true;  ///< no dropout in the policy (TRL's default)
};

/// The tokenization a kto_config asks for.
[[nodiscard]] inline data::tokenize_options kto_tokenize_options(const kto_config& c) {
  return c.tokenize_options();
}

/// KTO of `policy` against the frozen `reference` over the unpaired examples of `source`.
template <class B, model::tokenizer Tok>
class kto_method : public method_base<B, Tok> {
 public:
  /// Every argument is kept by reference. The two models must have the same vocabulary and
  /// context; the reference needs no gradient arena (gpt(cfg, /*trainable=*/false)).
  kto_method(model::gpt<B>& policy, const model::gpt<B>& reference, example_source<Tok>& source,
             const kto_config& cfg)
      : method_base<B, Tok>("kto", policy, source, cfg.args.seed), reference_(reference), cfg_(cfg),
        ref_cache_(reference.config(), cfg.args.seed) {
    detail::check_same_model_shape("kto", policy.config(), reference.config());
    if (cfg_.loss.loss_type == losses::kto_loss_type::kto) {
      check_config(cfg_.args.per_device_train_batch_size >= 2, "kto",
                   "args.per_device_train_batch_size",
                   ">= 2 with loss_type kto (the KL pairs mismatch examples of one micro-batch)",
                   cfg_.args.per_device_train_batch_size);
    }
  }

  /// Loss, d loss / dθ added to the policy's gradients, and TRL's KTO metrics.
  named_metrics train_micro_batch(std::span<const std::uint64_t> idx) { return run(idx, true); }
  /// The same metrics without gradients or dropout.
  named_metrics eval_batch(std::span<const std::uint64_t> idx) { return run(idx, false); }

  /// TRL's advice on the class weights (KTO paper eq. 8), over the training split.
  [[nodiscard]] std::vector<std::string> start_warnings() const {
    index_t desirable = 0, undesirable = 0;
    for (const auto i : source_.train_indices()) {
      (source_.raw(i).label.value_or(false) ? desirable : undesirable) += 1;
    }
    const auto w = losses::kto_class_balance_warning(desirable, undesirable, cfg_.loss);
    if (w) return {*w};
    return {};
  }

 private:
  using tensor = typename B::tensor;
  using method_base<B, Tok>::policy_;
  using method_base<B, Tok>::source_;
  using method_base<B, Tok>::cache_;

  /// prompt of `p` + completion of `c`, cut like any sequence.
  [[nodiscard]] model::encoded_chat kl_pair(const model::encoded_chat& p,
                                            const model::encoded_chat& c) const {
    const auto pl = static_cast<std::ptrdiff_t>(p.prompt_length);
    const auto cl = static_cast<std::ptrdiff_t>(c.prompt_length);
    return data::detail::join(std::vector<std::int32_t>(p.ids.begin(), p.ids.begin() + pl),
                              std::vector<std::int32_t>(c.ids.begin() + cl, c.ids.end()),
                              source_.tokenize_options());
  }

  named_metrics run(std::span<const std::uint64_t> idx, bool train) {
    const auto examples = source_.get(idx);
    const std::size_t n = examples.size();
    const bool use_kl = cfg_.loss.loss_type == losses::kto_loss_type::kto;
    std::vector<model::encoded_chat> rows;
    rows.reserve(use_kl ? 2 * n : n);
    for (const auto& e : examples) rows.push_back(e.sequence);
    if (use_kl) {
      for (std::size_t i = 0; i < n; ++i) {
        rows.push_back(kl_pair(examples[i].sequence, examples[(i + n - 1) % n].sequence));
      }
    }
    const auto s = detail::stack_sequences<B>(rows, source_.tokenizer().pad_id(), cache_);
    const auto ref = detail::frozen_logps<B>(reference_, ref_cache_, s);
    const tensor mask = s.mask();
    ops::logprob_options opt;
    opt.compute_entropy = true;  // TRL's entropy metric
    const auto& logps = tokens_.forward(policy_, cache_, s, mask, train && !cfg_.disable_dropout,
                                        opt);
    const auto seq = ops::to_host<B>(
        ops::sequence_logprobs<B>(logps, mask, ops::logprob_columns::shifted));
    auto part = [&](const std::vector<float>& v, bool kl) {
      return detail::on_backend<B>(std::span<const float>(v).subspan(kl ? n : 0, n));
    };
    const tensor lp = part(seq, false), rp = part(ref, false);
    const auto labels_host = detail::unpaired_labels(examples);
    const tensor labels = detail::on_backend<B>(std::span<const float>(labels_host));
    losses::kto_inputs<B> in{lp, rp, labels};
    std::optional<tensor> lkl, rkl;
    if (use_kl) {
      lkl.emplace(part(seq, true));
      rkl.emplace(part(ref, true));
      in.policy_kl_logps = &*lkl;
      in.reference_kl_logps = &*rkl;
    }
    const auto r = losses::kto_loss<B>(in, cfg_.loss);
    if (train) {
      std::vector<float> g = ops::to_host<B>(r.grad_policy_logps);
      g.resize(rows.size(), 0.0f);  // the KL pairs carry no gradient
      tokens_.backward(ops::sequence_logprobs_backward<B>(
          detail::on_backend<B>(std::span<const float>(g)), mask, ops::logprob_columns::shifted));
    }
    named_metrics out{{"loss", r.loss}};
    for (const auto& m : r.metrics.named()) out.push_back(m);
    token_metrics(s, mask, labels_host, out);
    // TRL's num_tokens: Σ attention mask of the N examples' rows (not the KL pairs).
    const auto main_rows = static_cast<std::size_t>(n) * static_cast<std::size_t>(s.cols());
    this->report_input_tokens(std::span<const float>(s.host.attention_mask).subspan(0, main_rows),
                              train, out);
    return out;
  }

  /// TRL 1.16's token-level KTO metrics of the forward just run, over the completion tokens
  /// of the N examples (rows 0..N-1; the KL pairs are left out): entropy (over every
  /// example's tokens; 0 without tokens), logits/chosen and logits/rejected (the mean over
  /// the desirable / undesirable examples' tokens of the vocabulary-mean logit predicting
  /// each; reported only when that side has tokens, as TRL appends them).
  void token_metrics(const detail::sequence_batch<B>& s, const tensor& mask,
                     const std::vector<float>& labels, named_metrics& out) const {
    const auto means = ops::to_host<B>(ops::predicting_logit_means<B>(tokens_.logits(), mask));
    const auto entropy = ops::to_host<B>(tokens_.result().entropy);
    const auto& m = s.host.completion_mask;
    const auto cols = static_cast<std::size_t>(s.cols());
    const std::size_t main_rows = labels.size() * cols;
    double logit[2] = {0, 0}, count[2] = {0, 0}, ent = 0;
    for (std::size_t k = 0; k < main_rows; ++k) {
      if (k % cols == 0 || m[k] == 0.0f) continue;
      const int side = labels[k / cols] != 0.0f ? 0 : 1;  // 0: desirable (chosen)
      logit[side] += static_cast<double>(means[k]);
      count[side] += static_cast<double>(m[k]);
      ent += static_cast<double>(m[k] * entropy[k]);
    }
    const double tokens = count[0] + count[1];
    out.push_back({"entropy", static_cast<float>(tokens > 0.0 ? ent / tokens : 0.0)});
    if (count[0] > 0.0) out.push_back({"logits/chosen", static_cast<float>(logit[0] / count[0])});
    if (count[1] > 0.0) {
      out.push_back({"logits/rejected", static_cast<float>(logit[1] / count[1])});
    }
  }

  const model::gpt<B>& reference_;
  kto_config cfg_;
  forward_cache<B> ref_cache_;
  detail::policy_tokens<B> tokens_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
