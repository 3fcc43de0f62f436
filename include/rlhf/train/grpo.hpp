// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Group relative policy optimisation (Shao et al. 2024, DeepSeekMath) as a training method
// (train/trainer.hpp): prompts ({"prompt"}, standard or conversational), G sampled
// completions per prompt scored by user reward functions, every loss of losses/grpo.hpp,
// an optional frozen reference (beta > 0).
//
// One optimizer step (TRL's GRPOTrainer with num_iterations 1, steps_per_generation =
// gradient_accumulation_steps, its defaults):
//   P = per_device_train_batch_size · gradient_accumulation_steps / G prompts
//   -> generate G completions each with the policy (KV cache, temperature/top-k/top-p)
//   -> reward functions -> rewards_per_func (N, F) -> grpo_combine_rewards
//   -> grpo_advantages (group mean, scale_rewards, unscorable rows 0) (N,)
//   -> shuffle, cut into gradient_accumulation_steps micro-batches; each:
//        policy forward (logits / temperature) -> token log-probs, entropies (R, T)
//        [reference forward -> token log-probs (R, T)]
//        grpo_loss (on-policy: old = the log-probs detached, ratio 1, the gradient flows)
//        -> d loss / d log-probs (and d / d entropies) -> d loss / d logits -> gpt_backward
//
// grpo_config follows TRL's GRPOConfig: learning_rate 1e-6, num_generations 8,
// max_completion_length 512, temperature 1, top_p 1, top_k 0, beta 0, loss_type dapo,
// scale_rewards group, disable_dropout false; the loss fields are losses::grpo_config's.
// Metrics (TRL's names): loss, clip_ratio/*, kl (beta > 0), entropy, completions/*,
// rewards/<function>/mean|std, reward, reward_std, frac_reward_zero_std, and rlhf++'s
// frac_reward_unscorable.
// Deviations: num_iterations > 1 (reusing a generation batch for several steps) is not
// supported; prompts longer than max_seq_len - max_completion_length keep their end (TRL
// leaves that to the model); no vLLM, tools or multimodal inputs.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlhf/core/metrics.hpp"
#include "rlhf/losses/grpo.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/detail/group_method.hpp"
#include "rlhf/train/detail/sequences.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/monitors.hpp"
#include "rlhf/train/reward_functions.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// TRL GRPOConfig's fields (see the top of this file for the deviations).
struct grpo_config {
  training_args args = training_args::with_learning_rate(1e-6f);  ///< the shared arguments
  /// Loss, advantages and their options (num_generations, beta, epsilon, loss_type,
  /// scale_rewards, importance_sampling_level, max_completion_length, ...).
  losses::grpo_config loss{};
  index_t num_generations_eval = 0;         ///< G of evaluation; 0 = loss.num_generations
  float temperature = 1.0f;                 ///< sampling and training-forward temperature
  float top_p = 1.0f;                       ///< nucleus sampling; 1 = off
  index_t top_k = 0;                        ///< top-k sampling; 0 = off
  bool mask_truncated_completions = false;  ///< completions without EOS get no loss
  bool disable_dropout = false;             ///< train without the policy's dropout
  monitor_config monitors{};                ///< failure-mode warnings (train/monitors.hpp)
};

/// GRPO of `policy` with `reward_functions` over the prompts of `source`; `reference` is
/// read when loss.beta > 0 (pass nullptr otherwise).
template <class B, model::tokenizer Tok>
class grpo_method : public detail::group_method_base<B, Tok, grpo_method<B, Tok>> {
  using base = detail::group_method_base<B, Tok, grpo_method<B, Tok>>;
  friend base;

 public:
  /// Every argument but the functions is kept by reference.
  grpo_method(model::gpt<B>& policy, const model::gpt<B>* reference, example_source<Tok>& source,
              std::vector<reward_function> reward_functions, const grpo_config& cfg)
      : base("grpo", policy, source, cfg.args, sampling_of(cfg), std::move(reward_functions)),
        cfg_(cfg), reference_(reference),
        ref_cache_(reference != nullptr ? reference->config() : policy.config(), cfg.args.seed) {
    if (cfg_.loss.beta != 0.0f) {
      check_config(reference_ != nullptr, "grpo", "reference", "a model when loss.beta != 0",
                   "nullptr");
      detail::check_same_model_shape("grpo", policy.config(), reference_->config());
    }
  }

 private:
  using tensor = typename B::tensor;

  static detail::group_sampling sampling_of(const grpo_config& c) {
    detail::group_sampling g;
    g.num_generations = c.loss.num_generations;
    g.num_generations_eval = c.num_generations_eval;
    g.sampling = {c.loss.max_completion_length, c.temperature, c.top_p, c.top_k,
                  c.mask_truncated_completions};
    g.monitors = c.monitors;
    return g;
  }

  /// Rewards -> advantages (TRL's _generate_and_score_completions).
  detail::scored_rollout score(const detail::group_rollout& ro, std::span<const float> per_func,
                               bool train) {
    const auto n = static_cast<index_t>(ro.rows.size());
    const auto f = static_cast<index_t>(this->functions_.size());
    const tensor pf = ops::from_host<B>(per_func, shape{n, f});
    tensor rewards(shape{n}), adv(shape{n});
    const auto fm = losses::grpo_combine_rewards<B>(pf, this->weights_, rewards);
    losses::grpo_config c = cfg_.loss;
    c.num_generations = train ? cfg_.loss.num_generations : this->eval_generations();
    losses::grpo_advantage_inputs<B> in{rewards};
    in.rewards_per_func = &pf;
    in.reward_weights = this->weights_;
    const auto am = losses::grpo_advantages<B>(in, c, adv);
    detail::scored_rollout out;
    out.advantages = ops::to_host<B>(adv);
    out.metrics = fm.named(this->names_);
    for (const auto& m : am.named()) out.metrics.push_back(m);
    return out;
  }

  /// grpo_loss over one share; the backward when training.
  named_metrics loss(const detail::rollout_share& share, float num_items, bool train) {
    const auto s = detail::stack_sequences<B>(share.rows, this->source_.tokenizer().pad_id(),
                                              this->cache_);
    const tensor mask = s.mask();
    ops::logprob_options opt;
    opt.temperature = cfg_.temperature;
    opt.compute_entropy = true;  // TRL's entropy metric (and the entropy mask / bonus)
    const auto& logps = tokens_.forward(this->policy_, this->cache_, s, mask,
                                        train && !cfg_.disable_dropout, opt);
    std::optional<tensor> ref;
    if (cfg_.loss.beta != 0.0f) {
      auto& acts = ref_cache_.get(s.rows(), s.cols(), false);
      model::gpt_forward<B>(*reference_, acts, s.ids);
      ops::logprob_options ropt;
      ropt.temperature = cfg_.temperature;
      ref.emplace(ops::token_logprobs<B>(acts.logits, s.ids, mask, ropt).logps);
    }
    const tensor adv = detail::on_backend<B>(std::span<const float>(share.advantages));
    losses::grpo_inputs<B> in{logps, adv, mask};
    if (ref) in.ref_per_token_logps = &*ref;
    in.num_items_in_batch = num_items;
    in.entropies = &tokens_.result().entropy;
    const auto r = losses::grpo_loss<B>(in, cfg_.loss);
    if (train) {
      tokens_.backward(r.grad_per_token_logps,
                       cfg_.loss.entropy_coef != 0.0f ? &r.grad_entropies : nullptr);
    }
    named_metrics out{{"loss", r.loss}};
    for (const auto& m : r.metrics.named()) out.push_back(m);
    return out;
  }

  grpo_config cfg_;
  const model::gpt<B>* reference_;
  forward_cache<B> ref_cache_;
  detail::policy_tokens<B> tokens_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
