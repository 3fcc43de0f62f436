// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// REINFORCE leave-one-out (Ahmadian et al. 2024, "Back to Basics") as a training method
// (train/trainer.hpp): prompts ({"prompt"}), G sampled completions per prompt scored by user
// reward functions, the baseline of each completion the mean reward of the other G - 1,
// the KL to a frozen reference folded into the reward (beta > 0), losses/rloo.hpp's
// sequence-level clipped loss.
//
// One optimizer step (TRL's RLOOTrainer with num_iterations 1, its default):
//   P = per_device_train_batch_size · gradient_accumulation_steps / G prompts
//   -> generate G completions each -> reward functions -> grpo_combine_rewards (N,)
//   -> [policy and reference token log-probs of all N rows, no gradients (beta > 0)]
//   -> rloo_advantages (clip, r - β·Σ(old - ref), leave-one-out baseline) (N,)
//   -> shuffle, cut into gradient_accumulation_steps micro-batches; each:
//        policy forward -> token log-probs (R, T) -> rloo_loss (on-policy, ratio 1)
//        -> d loss / d log-probs -> d loss / d logits -> gpt_backward
//
// rloo_config follows TRL's RLOOConfig: learning_rate 1e-6, num_generations 2, beta 0.05,
// max_completion_length 512, temperature 1, top_p 1, top_k 0, normalize_advantages false,
// disable_dropout false. Metrics (TRL's names): loss, clip_ratio/*, entropy, kl (beta > 0),
// completions/*, rewards/<function>/mean|std, reward, reward_std, frac_reward_zero_std, and
// rlhf++'s frac_reward_unscorable.
// Deviations: as GRPO's (train/grpo.hpp): num_iterations 1 only; long prompts keep their end.
#pragma once

#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "rlhf/core/metrics.hpp"
#include "rlhf/losses/grpo.hpp"
#include "rlhf/losses/rloo.hpp"
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

/// TRL RLOOConfig's fields (see the top of this file for the deviations): the shared
/// sampling fields (temperature, top_p, top_k, num_generations_eval,
/// mask_truncated_completions, disable_dropout, monitors), the trainer arguments, the loss.
struct rloo_config : online_sampling {
  training_args args = training_args::with_learning_rate(1e-6f);  ///< the shared arguments
  /// num_generations, beta, epsilon, epsilon_high, normalize_advantages, reward_clip_range.
  losses::rloo_config loss{};
  index_t max_completion_length = 512;  ///< new tokens at most (EOS included)
};

/// RLOO of `policy` with `reward_functions` over the prompts of `source`; `reference` is
/// read when loss.beta > 0 (pass nullptr otherwise).
template <class B, model::tokenizer Tok>
class rloo_method : public detail::group_method_base<B, Tok, rloo_method<B, Tok>> {
  using base = detail::group_method_base<B, Tok, rloo_method<B, Tok>>;
  friend base;

 public:
  /// Every argument but the functions is kept by reference.
  rloo_method(model::gpt<B>& policy, const model::gpt<B>* reference, example_source<Tok>& source,
              std::vector<reward_function> reward_functions, const rloo_config& cfg)
      : base("rloo", policy, reference, cfg.loss.beta, source, cfg.args, cfg.loss.num_generations,
             cfg.max_completion_length, cfg, std::move(reward_functions)),
        loss_(cfg.loss), old_cache_(policy.config(), cfg.args.seed) {}

 private:
  using tensor = typename B::tensor;

  /// Rewards (and the KL to the reference) -> leave-one-out advantages.
  named_metrics advantages(const detail::group_rollout& ro, const tensor&, const tensor& rewards,
                           bool train, tensor& out) {
    losses::rloo_config c = loss_;
    c.num_generations = train ? loss_.num_generations : this->eval_generations();
    losses::rloo_advantage_inputs<B> in{rewards};
    std::optional<tensor> mask, old, ref;
    if (c.beta != 0.0f) {
      // The KL penalty of the reward: Σ_t (old - ref) over each completion, no gradients.
      const auto s = this->stack(ro.rows);
      mask.emplace(s.mask());
      old.emplace(this->frozen_logps(this->policy_, old_cache_, s, *mask));
      ref.emplace(this->reference_logps(s, *mask));
      in.completion_mask = &*mask;
      in.old_per_token_logps = &*old;
      in.ref_per_token_logps = &*ref;
    }
    return losses::rloo_advantages<B>(in, c, out).named();
  }

  /// rloo_loss over one share; the backward when training.
  named_metrics loss(const detail::rollout_share& share, float, bool train) {
    const auto s = this->stack(share.rows);
    const tensor mask = s.mask();
    const auto& logps = this->policy_logps(s, mask, train);
    const tensor adv = detail::on_backend<B>(std::span<const float>(share.advantages));
    const auto r = losses::rloo_loss<B>({logps, adv, mask}, loss_);
    if (train) this->policy_backward(r.grad_per_token_logps);
    named_metrics out{{"loss", r.loss}};
    for (const auto& m : r.metrics.named()) out.push_back(m);
    out.emplace_back("entropy", token_mean(this->policy_entropies(), s));
    return out;
  }

  /// Σ m·x / max(Σ m, 1) over the completion tokens of `s` (TRL's token-weighted mean).
  static float token_mean(const tensor& x, const detail::sequence_batch<B>& s) {
    const auto v = ops::to_host<B>(x);
    const auto& m = s.host.completion_mask;
    double num = 0, den = 0;
    for (std::size_t k = 0; k < m.size(); ++k) {
      if (k % static_cast<std::size_t>(s.cols()) == 0) continue;  // no token predicted there
      num += static_cast<double>(m[k]) * v[k];
      den += static_cast<double>(m[k]);
    }
    return static_cast<float>(num / std::max(den, 1.0));
  }

  losses::rloo_config loss_;
  forward_cache<B> old_cache_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
