// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// BCO (Jung et al. 2024) as a training method (train/trainer.hpp): unpaired feedback
// ({"prompt", "completion", "label"}, standard or conversational), the loss of
// losses/bco.hpp, a frozen reference model.
//
// One micro-batch of N examples:
//   prompt_i + completion_i -> one policy forward, one reference forward without gradients
//   -> Σ completion log-probs -> r_i = β·(logp_i - ref_logp_i)
//   training: the running mean δ of the rewards absorbs the batch first (TRL's
//   RunningMoments), then L_i = -logσ(±(r_i - δ)); evaluation uses δ without updating it
//   -> d loss / d logps -> gpt_backward
// δ is part of the resumable state (exactly, as hexadecimal floating point), so a resumed
// run continues with the same δ.
//
// bco_config follows TRL's BCOConfig: beta 0.1, max_length 1024, max_completion_length
// none, truncation_mode keep_end, disable_dropout true, learning_rate as TrainingArguments
// (5e-5). Deviations: no underlying-distribution-matching (the embedding classifier of
// prompt_sample_size / min_density_ratio / max_density_ratio); no precompute_ref_log_probs;
// a max_prompt_length option (0, no limit, by default) as the other methods have.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/losses/bco.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/detail/sequences.hpp"
#include "rlhf/train/detail/unpaired.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/limits.hpp"
#include "rlhf/train/method_base.hpp"
#include "rlhf/train/metrics_log.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// TRL BCOConfig's fields (see the top of this file for the deviations).
struct bco_config : sequence_limits {
  bco_config() { max_prompt_length = 0; }  // TRL's BCOConfig has no prompt limit
  training_args args{};                    ///< the shared trainer arguments
  losses::bco_config loss{};               ///< beta
  bool disable_dropout = true;             ///< no dropout in the policy (TRL's default)
};

/// The tokenization a bco_config asks for.
[[nodiscard]] inline data::tokenize_options bco_tokenize_options(const bco_config& c) {
  return c.tokenize_options();
}

/// BCO of `policy` against the frozen `reference` over the unpaired examples of `source`.
template <class B, model::tokenizer Tok>
class bco_method : public method_base<B, Tok> {
 public:
  /// Every argument is kept by reference. The two models must have the same vocabulary and
  /// context; the reference needs no gradient arena (gpt(cfg, /*trainable=*/false)).
  bco_method(model::gpt<B>& policy, const model::gpt<B>& reference, example_source<Tok>& source,
             const bco_config& cfg)
      : method_base<B, Tok>("bco", policy, source, cfg.args.seed), reference_(reference), cfg_(cfg),
        ref_cache_(reference.config(), cfg.args.seed) {
    detail::check_same_model_shape("bco", policy.config(), reference.config());
  }

  /// Loss, d loss / dθ added to the policy's gradients, and TRL's BCO metrics.
  named_metrics train_micro_batch(std::span<const std::uint64_t> idx) { return run(idx, true); }
  /// The same metrics without gradients, dropout or a δ update.
  named_metrics eval_batch(std::span<const std::uint64_t> idx) { return run(idx, false); }

  /// The running mean δ so far.
  [[nodiscard]] const losses::bco_running_mean& running_mean() const { return running_; }

  /// The dropout position and δ.
  [[nodiscard]] nlohmann::json state() const {
    auto j = method_base<B, Tok>::state();
    j["running_count"] = detail::exact_double(running_.count);
    j["running_mean"] = detail::exact_double(running_.mean);
    return j;
  }
  /// Continues from state(); anything else is an io_error.
  void restore(const nlohmann::json& j) {
    method_base<B, Tok>::restore(j);
    for (const char* k : {"running_count", "running_mean"}) {
      if (!j.contains(k) || !j[k].is_string()) {
        throw io_error(rlhf::detail::concat("bco: trainer_state.method must hold ", k));
      }
    }
    constexpr std::string_view where = "bco: trainer_state.method";
    running_.count = detail::parse_exact_double(j["running_count"].get<std::string>(), where);
    running_.mean = detail::parse_exact_double(j["running_mean"].get<std::string>(), where);
  }

  /// TRL's logged class means from the window's class sums.
  void finish_log(metric_means& v) const { detail::class_sums_to_means(v); }

 private:
  using tensor = typename B::tensor;
  using method_base<B, Tok>::policy_;
  using method_base<B, Tok>::source_;
  using method_base<B, Tok>::cache_;

  named_metrics run(std::span<const std::uint64_t> idx, bool train) {
    const auto examples = source_.get(idx);
    std::vector<model::encoded_chat> rows;
    rows.reserve(examples.size());
    for (const auto& e : examples) rows.push_back(e.sequence);
    const auto s = detail::stack_sequences<B>(rows, source_.tokenizer().pad_id(), cache_);
    const auto ref_host = detail::frozen_logps<B>(reference_, ref_cache_, s);
    const tensor mask = s.mask();
    const auto& logps = tokens_.forward(policy_, cache_, s, mask, train && !cfg_.disable_dropout);
    const tensor lp = ops::sequence_logprobs<B>(logps, mask, ops::logprob_columns::shifted);
    const tensor rp = detail::on_backend<B>(std::span<const float>(ref_host));
    const auto labels_host = detail::unpaired_labels(examples);
    const tensor labels = detail::on_backend<B>(std::span<const float>(labels_host));
    const auto r = losses::bco_loss<B>({lp, rp, labels}, running_, cfg_.loss, train);
    if (train)
      tokens_.backward(ops::sequence_logprobs_backward<B>(r.grad_policy_logps, mask,
                                                          ops::logprob_columns::shifted));
    named_metrics out{{"loss", r.loss}, {"delta", r.metrics.delta}};
    for (const auto& m : detail::class_sums(r.metrics)) out.push_back(m);
    return out;
  }

  const model::gpt<B>& reference_;
  bco_config cfg_;
  forward_cache<B> ref_cache_;
  detail::policy_tokens<B> tokens_;
  losses::bco_running_mean running_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
