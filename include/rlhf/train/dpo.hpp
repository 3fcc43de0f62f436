// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Direct preference optimisation as a training method (train/trainer.hpp): preference data
// ({"prompt", "chosen", "rejected"}, standard or conversational, or with an implicit prompt),
// every loss of losses/dpo.hpp, a frozen reference model.
//
// One micro-batch of N pairs:
//   chosen and rejected, right-padded to one length T, stacked to (2N, T) ids and completion
//   masks -> one policy forward -> token log-probs -> sequence log-probs lc, lr (N,) each
//   reference: the same through the frozen model without gradients (or looked up, when
//   precompute_ref_log_probs computed them once for the whole dataset) -> rc, rr
//   dpo_loss -> d loss / d (lc, lr) -> per token -> d loss / d logits -> gpt_backward
//
// dpo_config follows TRL's DPOConfig: learning_rate 1e-6, beta 0.1, loss_type [sigmoid],
// max_prompt_length 512, max_length 1024, truncation_mode keep_end,
// precompute_ref_log_probs false; the loss fields are those of losses::dpo_config.
// use_soft_labels (ours, not TRL's): each pair's "soft_label" p (the probability that chosen
// is the better response, e.g. from an AI judge) becomes its own cDPO ε = 1 - p, so the
// sigmoid loss is the cross-entropy -p·logσ(z) - (1-p)·logσ(-z) against the judge.
// Deviations: with gradient accumulation the loss is the mean of the micro-batches' means;
// no padding-free batching; the reference is a second model object the caller provides
// (TRL makes it from the policy when none is given).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/metrics.hpp"
#include "rlhf/data/batcher.hpp"
#include "rlhf/losses/dpo.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/slice.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/detail/sequences.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/limits.hpp"
#include "rlhf/train/method_base.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// TRL DPOConfig's fields (see the top of this file for the deviations).
struct dpo_config : sequence_limits {
  training_args args = training_args::with_learning_rate(1e-6f);  ///< the shared trainer arguments
  losses::dpo_config loss{};              ///< beta, loss_type, label_smoothing, ...
  bool precompute_ref_log_probs = false;  ///< reference log-probs once, before training
  /// Train on each pair's "soft_label" (a data_error where one is missing): ε_i = 1 - p_i
  /// per pair in the sigmoid loss (losses::dpo_inputs::label_smoothing).
  bool use_soft_labels = false;
};

/// The tokenization a dpo_config asks for.
[[nodiscard]] inline data::tokenize_options dpo_tokenize_options(const dpo_config& c) {
  return c.tokenize_options();
}

/// DPO of `policy` against the frozen `reference` over the pairs of `source`.
template <class B, model::tokenizer Tok>
class dpo_method : public method_base<B, Tok> {
 public:
  /// Every argument is kept by reference. The two models must have the same vocabulary and
  /// context; the reference needs no gradient arena (gpt(cfg, /*trainable=*/false)).
  dpo_method(model::gpt<B>& policy, const model::gpt<B>& reference, example_source<Tok>& source,
             const dpo_config& cfg)
      : method_base<B, Tok>("dpo", policy, source, cfg.args.seed), reference_(reference), cfg_(cfg),
        loss_(cfg.loss), ref_cache_(reference.config(), cfg.args.seed) {
    loss_.ld_alpha.reset();
    if (cfg_.loss.ld_alpha) {
      check_config(*cfg_.loss.ld_alpha >= 0.0f && *cfg_.loss.ld_alpha <= 1.0f, "dpo",
                   "loss.ld_alpha", "in [0, 1]", *cfg_.loss.ld_alpha);
    }
    detail::check_same_model_shape("dpo", policy.config(), reference.config());
    if (cfg_.precompute_ref_log_probs) precompute();
  }

  /// Loss, d loss / dθ added to the policy's gradients, and TRL's DPO metrics.
  named_metrics train_micro_batch(std::span<const std::uint64_t> idx) { return run(idx, true); }
  /// The same metrics without gradients or dropout.
  named_metrics eval_batch(std::span<const std::uint64_t> idx) { return run(idx, false); }

 private:
  using tensor = typename B::tensor;
  using method_base<B, Tok>::policy_;
  using method_base<B, Tok>::source_;
  using method_base<B, Tok>::cache_;

  using batch = detail::sequence_batch<B>;

  /// (2N, T): chosen rows first, then rejected.
  batch collate(std::span<const data::tokenized_example> examples) {
    const auto rows = detail::pair_rows(examples);
    return detail::stack_sequences<B>(rows, source_.tokenizer().pad_id(), cache_);
  }

  /// The (2N,) sequence log-probs of token log-probs (2N, T) under the completion `mask`:
  /// Σ_t, or LD-DPO's length-desensitised sums when ld_alpha is set (chosen rows against
  /// the rejected masks and back); `weights` (when given) receives LD's token weights.
  tensor reduce(const tensor& logps, const tensor& mask, index_t n, tensor* weights) const {
    if (!cfg_.loss.ld_alpha) {
      return ops::sequence_logprobs<B>(logps, mask, ops::logprob_columns::shifted);
    }
    const tensor lc = ops::slice_rows<B>(logps, 0, n), lr = ops::slice_rows<B>(logps, n, n);
    const tensor mc = ops::slice_rows<B>(mask, 0, n), mr = ops::slice_rows<B>(mask, n, n);
    tensor sc(shape{n}), sr(shape{n}), wc(mc.shape()), wr(mr.shape());
    losses::ld_sequence_logps<B>(lc, mc, mr, *cfg_.loss.ld_alpha, sc, &wc);
    losses::ld_sequence_logps<B>(lr, mr, mc, *cfg_.loss.ld_alpha, sr, &wr);
    if (weights != nullptr) *weights = ops::concat_rows<B>(wc, wr);
    return ops::concat_rows<B>(sc, sr);
  }

  /// The reference's (2N,) sequence log-probs of `s`.
  tensor reference_logps(const batch& s) {
    const tensor mask = s.mask();
    return reduce(detail::frozen_token_logps<B>(reference_, ref_cache_, s, mask), mask,
                  s.rows() / 2, nullptr);
  }

  void precompute() {
    auto fill = [&](const std::vector<std::uint64_t>& idx) {
      const auto b = static_cast<std::size_t>(cfg_.args.per_device_eval_batch_size);
      for (std::size_t i = 0; i < idx.size(); i += b) {
        const std::size_t n = std::min(b, idx.size() - i);
        const std::span<const std::uint64_t> part(idx.data() + i, n);
        const auto lp = ops::to_host<B>(reference_logps(collate(source_.get(part))));
        for (std::size_t k = 0; k < n; ++k) {
          precomputed_[part[k]] = {lp[k], lp[n + k]};
        }
      }
    };
    fill(source_.train_indices());
    fill(source_.eval_indices());
  }

  named_metrics run(std::span<const std::uint64_t> idx, bool train) {
    const auto examples = source_.get(idx);
    const batch s = collate(examples);
    const index_t n = s.rows() / 2;
    // Reference (2N,): chosen then rejected.
    tensor ref(shape{2 * n});
    if (cfg_.precompute_ref_log_probs) {
      std::vector<float> host(static_cast<std::size_t>(2 * n));
      for (std::size_t k = 0; k < static_cast<std::size_t>(n); ++k) {
        const auto& p = precomputed_.at(idx[k]);
        host[k] = p.first;
        host[static_cast<std::size_t>(n) + k] = p.second;
      }
      ref = detail::on_backend<B>(std::span<const float>(host));
    } else {
      ref = reference_logps(s);
    }
    // Policy.
    const tensor mask = s.mask();
    ops::logprob_options opt;
    opt.compute_entropy = true;  // TRL's entropy metric
    const auto& logps = tokens_.forward(policy_, cache_, s, mask, train, opt);
    tensor ld_weights(shape{0});
    const tensor seq = reduce(logps, mask, n, cfg_.loss.ld_alpha ? &ld_weights : nullptr);
    const tensor lc = ops::slice_rows<B>(seq, 0, n), lr = ops::slice_rows<B>(seq, n, n);
    const tensor rc = ops::slice_rows<B>(ref, 0, n), rr = ops::slice_rows<B>(ref, n, n);
    const std::span<const float> counts(s.completion_tokens);
    const tensor nc = detail::on_backend<B>(counts.subspan(0, static_cast<std::size_t>(n)));
    const tensor nr = detail::on_backend<B>(counts.subspan(static_cast<std::size_t>(n)));
    losses::dpo_inputs<B> in{lc, lr, rc, rr};
    in.chosen_lengths = &nc;
    in.rejected_lengths = &nr;
    std::optional<tensor> eps;  // soft labels: ε_i = 1 - p_i
    if (cfg_.use_soft_labels) {
      std::vector<float> e = data::soft_labels(examples, idx, "dpo");
      for (float& v : e) v = 1.0f - v;
      eps = detail::on_backend<B>(std::span<const float>(e));
      in.label_smoothing = &*eps;
    }
    const auto r = losses::dpo_loss<B>(in, loss_);
    if (train) {
      const tensor g = ops::concat_rows<B>(r.grad_policy_chosen_logps,
                                           r.grad_policy_rejected_logps);
      tokens_.backward(cfg_.loss.ld_alpha ? losses::ld_sequence_logps_backward<B>(g, ld_weights)
                                          : ops::sequence_logprobs_backward<B>(
                                                g, mask, ops::logprob_columns::shifted));
    }
    named_metrics out{{"loss", r.loss}};
    for (const auto& m : r.metrics.named()) out.push_back(m);
    token_metrics(s, mask, out);
    // TRL's num_tokens: Σ attention mask of the [chosen; rejected] rows (the prompt twice).
    this->report_input_tokens(s.host.attention_mask, train, out);
    return out;
  }

  /// TRL 1.16's token-level DPO metrics of the forward just run, over completion tokens:
  /// logits/chosen and logits/rejected (the mean over a side's tokens of the vocabulary-mean
  /// logit predicting each; 0 without tokens), mean_token_accuracy (the chosen tokens that
  /// are their row's argmax) and entropy (over chosen and rejected tokens).
  void token_metrics(const batch& s, const tensor& mask, named_metrics& out) const {
    const auto means = ops::to_host<B>(ops::predicting_logit_means<B>(tokens_.logits(), mask));
    const auto hits = ops::to_host<B>(tokens_.result().correct);
    const auto entropy = ops::to_host<B>(tokens_.result().entropy);
    const auto& m = s.host.completion_mask;
    const auto half = static_cast<std::size_t>(s.rows() / 2 * s.cols());
    double logit[2] = {0, 0}, count[2] = {0, 0}, hit = 0, ent = 0;
    for (std::size_t k = 0; k < m.size(); ++k) {
      if (k % static_cast<std::size_t>(s.cols()) == 0 || m[k] == 0.0f) continue;
      const int side = k < half ? 0 : 1;
      logit[side] += static_cast<double>(means[k]);
      count[side] += static_cast<double>(m[k]);
      if (side == 0) hit += static_cast<double>(hits[k]);
      ent += static_cast<double>(m[k] * entropy[k]);
    }
    auto ratio = [](double a, double b) { return static_cast<float>(b > 0.0 ? a / b : 0.0); };
    out.push_back({"logits/chosen", ratio(logit[0], count[0])});
    out.push_back({"logits/rejected", ratio(logit[1], count[1])});
    out.push_back({"mean_token_accuracy", ratio(hit, count[0])});
    out.push_back({"entropy", ratio(ent, count[0] + count[1])});
  }

  const model::gpt<B>& reference_;
  dpo_config cfg_;
  losses::dpo_config loss_;  // cfg_.loss without ld_alpha (applied here, not by dpo_loss)
  forward_cache<B> ref_cache_;
  detail::policy_tokens<B> tokens_;
  std::unordered_map<std::uint64_t, std::pair<float, float>> precomputed_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
