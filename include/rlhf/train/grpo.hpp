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
#include "rlhf/train/online_sampling.hpp"
#include "rlhf/train/reward_functions.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// TRL GRPOConfig's fields (see the top of this file for the deviations): the shared
/// sampling fields (temperature, top_p, top_k, num_generations_eval,
/// mask_truncated_completions, disable_dropout, monitors), the trainer arguments and the loss.
struct grpo_config : online_sampling {
  training_args args = training_args::with_learning_rate(1e-6f);  ///< the shared arguments
  /// Loss, advantages and their options (num_generations, beta, epsilon, loss_type,
  /// scale_rewards, importance_sampling_level, max_completion_length, ...).
  losses::grpo_config loss{};
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
      : base("grpo", policy, reference, cfg.loss.beta, source, cfg.args, cfg.loss.num_generations,
             cfg.loss.max_completion_length, cfg, std::move(reward_functions)),
        loss_(cfg.loss) {}

 private:
  using tensor = typename B::tensor;

  /// Rewards -> group advantages (TRL's _generate_and_score_completions).
  named_metrics advantages(const detail::group_rollout&, const tensor& per_func,
                           const tensor& rewards, bool train, tensor& out) {
    losses::grpo_config c = loss_;
    c.num_generations = train ? loss_.num_generations : this->eval_generations();
    losses::grpo_advantage_inputs<B> in{rewards};
    in.rewards_per_func = &per_func;
    in.reward_weights = this->weights_;
    return losses::grpo_advantages<B>(in, c, out).named();
  }

  /// grpo_loss over one share; the backward when training.
  named_metrics loss(const detail::rollout_share& share, float num_items, bool train) {
    const auto s = this->stack(share.rows);
    const tensor mask = s.mask();
    const auto& logps = this->policy_logps(s, mask, train);
    std::optional<tensor> ref;
    if (loss_.beta != 0.0f) ref.emplace(this->reference_logps(s, mask));
    const tensor adv = detail::on_backend<B>(std::span<const float>(share.advantages));
    losses::grpo_inputs<B> in{logps, adv, mask};
    if (ref) in.ref_per_token_logps = &*ref;
    in.num_items_in_batch = num_items;
    in.entropies = &this->policy_entropies();
    const auto r = losses::grpo_loss<B>(in, loss_);
    if (train) {
      this->policy_backward(r.grad_per_token_logps,
                            loss_.entropy_coef != 0.0f ? &r.grad_entropies : nullptr);
    }
    named_metrics out{{"loss", r.loss}};
    for (const auto& m : r.metrics.named()) out.push_back(m);
    return out;
  }

  losses::grpo_config loss_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
