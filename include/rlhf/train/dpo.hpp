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
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/method_base.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// TRL DPOConfig's fields (see the top of this file for the deviations).
struct dpo_config {
  training_args args = [] {
    training_args a;
    a.learning_rate = 1e-6f;
    return a;
  }();                                    ///< the shared trainer arguments
  losses::dpo_config loss{};              ///< beta, loss_type, label_smoothing, ...
  std::size_t max_prompt_length = 512;    ///< longest prompt part (cut per truncation_mode)
  std::size_t max_completion_length = 0;  ///< longest completion part; 0: no limit
  std::size_t max_length = 1024;          ///< longest prompt + completion
  data::truncation_mode truncation_mode = data::truncation_mode::keep_end;  ///< TRL's default
  bool precompute_ref_log_probs = false;  ///< reference log-probs once, before training
};

/// The tokenization a dpo_config asks for.
[[nodiscard]] inline data::tokenize_options dpo_tokenize_options(const dpo_config& c) {
  data::tokenize_options o;
  o.max_prompt_length = c.max_prompt_length;
  o.max_completion_length = c.max_completion_length;
  o.max_length = c.max_length;
  o.truncation = c.truncation_mode;
  return o;
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
        ref_cache_(reference.config(), cfg.args.seed) {
    const auto& a = policy.config();
    const auto& b = reference.config();
    check_config(a.vocab_size == b.vocab_size, "dpo", "reference.vocab_size",
                 rlhf::detail::concat("the policy's (", a.vocab_size, ")"), b.vocab_size);
    check_config(a.max_seq_len == b.max_seq_len, "dpo", "reference.max_seq_len",
                 rlhf::detail::concat("the policy's (", a.max_seq_len, ")"), b.max_seq_len);
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

  /// A collated micro-batch on the backend: (2N, T) ids and masks, chosen rows first.
  struct stacked {
    index_t pairs = 0;
    typename B::index_tensor ids;
    tensor mask;
    std::vector<float> lengths;  // (2N,) completion tokens per row
  };

  stacked collate(std::span<const std::uint64_t> idx) {
    const auto examples = source_.get(idx);
    index_t longest = 0;
    for (const auto& e : examples) {
      longest = std::max({longest, static_cast<index_t>(e.chosen.ids.size()),
                          static_cast<index_t>(e.rejected.ids.size())});
    }
    const index_t t = cache_.padded_length(longest);
    const auto pb = data::collate_preferences(examples, source_.tokenizer().pad_id(), t);
    stacked s;
    s.pairs = pb.chosen.rows;
    std::vector<std::int32_t> ids = pb.chosen.ids;
    ids.insert(ids.end(), pb.rejected.ids.begin(), pb.rejected.ids.end());
    std::vector<float> mask = pb.chosen.completion_mask;
    mask.insert(mask.end(), pb.rejected.completion_mask.begin(), pb.rejected.completion_mask.end());
    const shape sh{2 * s.pairs, t};
    s.lengths.assign(static_cast<std::size_t>(2 * s.pairs), 0.0f);
    for (index_t r = 0; r < 2 * s.pairs; ++r) {
      for (index_t c = 1; c < t; ++c)
        s.lengths[static_cast<std::size_t>(r)] += mask[static_cast<std::size_t>(r * t + c)];
    }
    s.ids = ops::index_from_host<B>(std::span<const std::int32_t>(ids), sh);
    s.mask = ops::from_host<B>(std::span<const float>(mask), sh);
    return s;
  }

  /// Sequence log-probs (2N,) of the frozen reference.
  std::vector<float> reference_logps(const stacked& s) {
    auto& acts = ref_cache_.get(s.ids.shape()[0], s.ids.shape()[1], false);
    model::gpt_forward<B>(reference_, acts, s.ids);
    const auto tok = ops::token_logprobs<B>(acts.logits, s.ids, s.mask);
    return ops::to_host<B>(ops::sequence_logprobs<B>(tok.logps, s.mask));
  }

  void precompute() {
    auto fill = [&](const std::vector<std::uint64_t>& idx) {
      const auto b = static_cast<std::size_t>(cfg_.args.per_device_eval_batch_size);
      for (std::size_t i = 0; i < idx.size(); i += b) {
        const std::size_t n = std::min(b, idx.size() - i);
        const std::span<const std::uint64_t> part(idx.data() + i, n);
        const auto lp = reference_logps(collate(part));
        for (std::size_t k = 0; k < n; ++k) {
          precomputed_[part[k]] = {lp[k], lp[n + k]};
        }
      }
    };
    fill(source_.train_indices());
    fill(source_.eval_indices());
  }

  static tensor on_backend(const std::vector<float>& v) {
    return ops::from_host<B>(std::span<const float>(v), shape{static_cast<index_t>(v.size())});
  }

  named_metrics run(std::span<const std::uint64_t> idx, bool train) {
    const stacked s = collate(idx);
    const auto n = static_cast<std::size_t>(s.pairs);
    // Reference (N,) chosen and rejected.
    std::vector<float> ref(2 * n);
    if (cfg_.precompute_ref_log_probs) {
      for (std::size_t k = 0; k < n; ++k) {
        const auto& p = precomputed_.at(idx[k]);
        ref[k] = p.first;
        ref[n + k] = p.second;
      }
    } else {
      ref = reference_logps(s);
    }
    // Policy.
    auto& acts = cache_.get(s.ids.shape()[0], s.ids.shape()[1], train);
    model::gpt_forward<B>(policy_, acts, s.ids);
    cache_.commit();
    const auto tok = ops::token_logprobs<B>(acts.logits, s.ids, s.mask);
    const auto seq = ops::to_host<B>(ops::sequence_logprobs<B>(tok.logps, s.mask));
    auto half = [&](const std::vector<float>& v, bool second) {
      const auto b = v.begin() + static_cast<std::ptrdiff_t>(second ? n : 0);
      return on_backend(std::vector<float>(b, b + static_cast<std::ptrdiff_t>(n)));
    };
    const tensor lc = half(seq, false), lr = half(seq, true);
    const tensor rc = half(ref, false), rr = half(ref, true);
    const tensor nc = half(s.lengths, false), nr = half(s.lengths, true);
    losses::dpo_inputs<B> in{lc, lr, rc, rr};
    in.chosen_lengths = &nc;
    in.rejected_lengths = &nr;
    const auto r = losses::dpo_loss<B>(in, cfg_.loss);
    if (train) {
      std::vector<float> g = ops::to_host<B>(r.grad_policy_chosen_logps);
      const auto gr = ops::to_host<B>(r.grad_policy_rejected_logps);
      g.insert(g.end(), gr.begin(), gr.end());
      const tensor grad_tokens = ops::sequence_logprobs_backward<B>(on_backend(g), s.mask);
      if (!grad_logits_ || grad_logits_->shape() != acts.logits.shape()) {
        grad_logits_.emplace(acts.logits.shape());
      }
      ops::token_logprobs_backward<B>(acts.logits, s.ids, s.mask, tok, grad_tokens, *grad_logits_);
      model::gpt_backward<B>(policy_, acts, s.ids, *grad_logits_);
    }
    named_metrics out{{"loss", r.loss}};
    for (const auto& m : r.metrics.named()) out.push_back(m);
    return out;
  }

  const model::gpt<B>& reference_;
  dpo_config cfg_;
  forward_cache<B> ref_cache_;
  std::optional<tensor> grad_logits_;
  std::unordered_map<std::uint64_t, std::pair<float, float>> precomputed_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
