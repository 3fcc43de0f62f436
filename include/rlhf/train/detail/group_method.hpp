// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The loop GRPO and RLOO share (TRL's GRPOTrainer / RLOOTrainer with num_iterations 1, the
// default): one generation batch per optimizer step, sampled by the current policy.
//
//   prepare_step(P prompts, step):
//     sample G completions per prompt (seeded by (seed, step)) -> N = P·G rows
//     score them with every reward function -> rewards_per_func (N, F)
//     the method's advantages (N,) and generation metrics (Derived::score)
//     shuffle the N rows (seeded by (seed, step)), cut into gradient_accumulation_steps
//     shares of per_device_train_batch_size rows
//   train_micro_batch():  the method's loss over the next share, backward (Derived::loss)
//
// Data parallel (join(comm), called by the trainer): rank r's P prompts are its share of
// the global batch, so its rows sample from the Philox streams of their global places
// (r·P·G + i) and the token count the dapo-style normalisers divide by is the global batch's
// (summed over the ranks, per rank's share): R ranks give one process's gradient. The
// advantages stay per group, so scale_rewards "batch" normalises per rank.
//
// Derived supplies:
//   advantages(rollout, rewards_per_func (N, F), rewards (N,), train, out (N,)) -> the
//       advantage metrics (reward, reward_std, ...); the rewards are the functions' weighted
//       sum (losses::grpo_combine_rewards, NaN = unscorable)
//   loss(share, num_items, train) -> metrics, "loss" first
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/dist/communicator.hpp"
#include "rlhf/losses/grpo.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/detail/rollouts.hpp"
#include "rlhf/train/detail/sequences.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/method_base.hpp"
#include "rlhf/train/monitors.hpp"
#include "rlhf/train/online_sampling.hpp"
#include "rlhf/train/reward_functions.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {
namespace detail {

/// Rows of one micro-batch and their advantages.
struct rollout_share {
  std::vector<model::encoded_chat> rows;  ///< prompt + completion
  std::vector<float> advantages;          ///< (rows,)
};

/// What Derived::score returns.
struct scored_rollout {
  std::vector<float> advantages;  ///< (N,)
  named_metrics metrics;          ///< reward, reward_std, ... as TRL logs them
};

template <class B, model::tokenizer Tok, class Derived>
class group_method_base : public method_base<B, Tok> {
 public:
  /// Prompts per optimizer step: per_device_train_batch_size · gradient_accumulation_steps
  /// / G (TRL's generation batch, in prompts).
  [[nodiscard]] index_t examples_per_step() const {
    return args_.per_device_train_batch_size * args_.gradient_accumulation_steps / generations_;
  }
  /// Prompts per evaluation batch: per_device_eval_batch_size / the evaluation's G.
  [[nodiscard]] index_t examples_per_eval_batch() const {
    return args_.per_device_eval_batch_size / eval_generations();
  }

  /// Trains as one rank of `comm` (the trainer calls it; see the top of this file).
  void join(dist::any_communicator comm) { comm_ = std::move(comm); }

  /// Samples and scores the generation batch of `idx` (the step's prompts).
  named_metrics prepare_step(std::span<const std::uint64_t> idx, index_t step) {
    const auto s = static_cast<std::uint64_t>(step);
    const auto first_row = static_cast<std::int32_t>(
        static_cast<index_t>(comm_.rank()) * static_cast<index_t>(idx.size()) * generations_);
    auto ro = sample_groups<B>(this->policy_, this->source_, idx, generations_, sampling_,
                               derived_seed(args_.seed, 0x67656e74u /* "gent" */, s), first_row,
                               &generation_buffers_);
    auto scored = score_rollout(ro, true);
    // TRL's num_tokens: each prompt once per completion, plus the completions.
    this->num_tokens_ += static_cast<std::uint64_t>(ro.tokens_seen);
    this->counts_tokens_ = true;
    scored.metrics.emplace_back("num_tokens", static_cast<float>(this->num_tokens_));
    num_items_ = 0;
    for (const auto& r : ro.rows) {
      for (const float m : r.completion_mask) num_items_ += static_cast<double>(m);
    }
    if (comm_.size() > 1) {  // the global batch's tokens, per rank (exact below 2^24)
      auto total = static_cast<float>(num_items_);
      comm_.all_reduce(&total, 1, dist::reduce_op::mean);
      num_items_ = static_cast<double>(total);
    }
    // TRL shuffles the generation batch before cutting it into micro-batches.
    const auto order = seeded_permutation(ro.rows.size(),
                                          derived_seed(args_.seed, 0x73687566u /* "shuf" */, s));
    const auto per = static_cast<std::size_t>(args_.per_device_train_batch_size);
    shares_.assign(static_cast<std::size_t>(args_.gradient_accumulation_steps), {});
    for (std::size_t k = 0; k < order.size(); ++k) {
      auto& share = shares_[k / per];
      share.rows.push_back(std::move(ro.rows[order[k]]));
      share.advantages.push_back(scored.advantages[order[k]]);
    }
    next_share_ = 0;
    return scored.metrics;
  }

  /// The failure-mode monitors' fields and warnings for a logged training record.
  std::vector<std::string> review_log(metrics_record& rec) { return monitors_.review(rec); }

  /// The dropout position, the tokens seen and the monitors' baseline.
  [[nodiscard]] nlohmann::json state() const {
    auto j = method_base<B, Tok>::state();
    j["monitors"] = monitors_.state();
    return j;
  }
  /// Continues from state().
  void restore(const nlohmann::json& j) {
    method_base<B, Tok>::restore(j);
    if (!j.contains("monitors")) {
      throw io_error(rlhf::detail::concat(this->name_, ": trainer_state.method has no monitors"));
    }
    monitors_.restore(j["monitors"]);
  }

  /// The loss of the step's next share, its gradients added to the policy's.
  named_metrics train_micro_batch(std::span<const std::uint64_t>) {
    if (next_share_ >= shares_.size()) {
      throw config_error(
          rlhf::detail::concat(this->name_, ": train_micro_batch without a prepared step"));
    }
    // dapo-style normalisers divide by the generation batch's tokens; the trainer divides
    // the summed micro-batch gradients by gradient_accumulation_steps again.
    const double items = num_items_ / static_cast<double>(args_.gradient_accumulation_steps);
    return derived().loss(shares_[next_share_++], static_cast<float>(items), true);
  }

  /// Samples the evaluation's G completions of each prompt of `idx` (seeded by the prompts,
  /// so every evaluation of a prompt draws the same stream), scores them and reports the
  /// generation metrics and the loss's, without gradients.
  named_metrics eval_batch(std::span<const std::uint64_t> idx) {
    auto ro = sample_groups<B>(this->policy_, this->source_, idx, eval_generations(), sampling_,
                               derived_seed(args_.seed, 0x6576616cu /* "eval" */, idx.front()));
    auto scored = score_rollout(ro, false);
    rollout_share share{std::move(ro.rows), std::move(scored.advantages)};
    double items = 0;
    for (const auto& r : share.rows) {
      for (const float m : r.completion_mask) items += static_cast<double>(m);
    }
    auto out = derived().loss(share, static_cast<float>(items), false);
    out.insert(out.end(), scored.metrics.begin(), scored.metrics.end());
    out.emplace_back("num_tokens",
                     static_cast<float>(this->num_tokens_));  // TRL: the training total
    return out;
  }

 protected:
  /// `policy`, `reference` (read when `beta` != 0; may be null otherwise) and `source` are
  /// kept by reference; G = `generations` completions per prompt of at most
  /// `max_completion_length` tokens.
  group_method_base(std::string_view name, model::gpt<B>& policy, const model::gpt<B>* reference,
                    float beta, example_source<Tok>& source, const training_args& args,
                    index_t generations, index_t max_completion_length,
                    const online_sampling& sampling, std::vector<reward_function> functions)
      : method_base<B, Tok>(name, policy, source, args.seed), args_(args), opt_(sampling),
        generations_(generations), sampling_{max_completion_length, sampling.temperature,
                                             sampling.top_p, sampling.top_k,
                                             sampling.mask_truncated_completions},
        reference_(beta != 0.0f ? reference : nullptr),
        ref_cache_(reference != nullptr ? reference->config() : policy.config(), args.seed),
        functions_(std::move(functions)), weights_(reward_weights(functions_)),
        names_(reward_names(functions_)), monitors_(sampling.monitors) {
    validate_reward_functions(name, functions_);
    if (beta != 0.0f) {
      check_config(reference != nullptr, name, "reference", "a model when loss.beta != 0",
                   "nullptr");
      check_same_model_shape(name, policy.config(), reference->config());
    }
    check_config(generations_ >= 1, name, "num_generations", ">= 1", generations_);
    check_config(opt_.num_generations_eval >= 0, name, "num_generations_eval",
                 ">= 0 (0 = num_generations)", opt_.num_generations_eval);
    const index_t rows = args_.per_device_train_batch_size * args_.gradient_accumulation_steps;
    if (rows % generations_ != 0) {
      throw config_error(rlhf::detail::concat(
          name, ": per_device_train_batch_size · gradient_accumulation_steps (", rows,
          ", the generation batch) must be a multiple of num_generations (", generations_, ")"));
    }
    if (args_.per_device_eval_batch_size % eval_generations() != 0) {
      throw config_error(rlhf::detail::concat(
          name, ": per_device_eval_batch_size (", args_.per_device_eval_batch_size,
          ") must be a multiple of the evaluation's num_generations (", eval_generations(), ")"));
    }
    const index_t context = policy.config().max_seq_len;
    check_config(max_completion_length >= 1 && max_completion_length < context, name,
                 "max_completion_length",
                 rlhf::detail::concat("in [1, max_seq_len = ", context, ")"),
                 max_completion_length);
    check_config(std::isfinite(opt_.temperature) && opt_.temperature > 0.0f, name, "temperature",
                 "finite and > 0", opt_.temperature);
  }

  /// The policy's token log-probs (R, T) of `s` under `mask`, logits divided by the
  /// temperature, entropies computed (TRL's entropy metric); kept for policy_backward().
  const typename B::tensor& policy_logps(const sequence_batch<B>& s, const typename B::tensor& mask,
                                         bool train) {
    ops::logprob_options opt;
    opt.temperature = opt_.temperature;
    opt.compute_entropy = true;
    return tokens_.forward(this->policy_, this->cache_, s, mask, train && !opt_.disable_dropout,
                           opt);
  }
  /// The entropies (R, T) of the last policy_logps().
  [[nodiscard]] const typename B::tensor& policy_entropies() const {
    return tokens_.result().entropy;
  }
  /// Adds d loss / dθ to the policy's gradients (see policy_tokens::backward).
  void policy_backward(const typename B::tensor& grad_logps,
                       const typename B::tensor* grad_entropy = nullptr) {
    tokens_.backward(grad_logps, grad_entropy);
  }

  /// Token log-probs (R, T) of the frozen `m` (the reference, or the policy without
  /// gradients, through `cache`) on `s` under `mask`, at the sampling temperature.
  typename B::tensor frozen_logps(const model::gpt<B>& m, forward_cache<B>& cache,
                                  const sequence_batch<B>& s,
                                  const typename B::tensor& mask) const {
    ops::logprob_options opt;
    opt.temperature = opt_.temperature;
    return frozen_token_logps<B>(m, cache, s, mask, opt);
  }
  /// The reference's token log-probs (R, T) (beta != 0 only).
  typename B::tensor reference_logps(const sequence_batch<B>& s, const typename B::tensor& mask) {
    return frozen_logps(*reference_, ref_cache_, s, mask);
  }

  /// `rows` stacked and right-padded.
  sequence_batch<B> stack(const std::vector<model::encoded_chat>& rows) {
    return stack_sequences<B>(rows, this->source_.tokenizer().pad_id(), this->cache_);
  }

  /// G of evaluation.
  [[nodiscard]] index_t eval_generations() const {
    return opt_.num_generations_eval > 0 ? opt_.num_generations_eval : generations_;
  }

  training_args args_;         ///< the trainer's arguments
  online_sampling opt_;        ///< sampling, evaluation and monitor fields
  index_t generations_;        ///< G
  sampling_options sampling_;  ///< what sample_groups reads
  /// generate()'s KV cache and transposed weights, kept from one step's sampling to the next
  /// (a few tens of MB beside the update's activations; no reallocation every step).
  model::generation_workspace<B> generation_buffers_;
  const model::gpt<B>* reference_;          ///< the frozen reference (null when beta = 0)
  forward_cache<B> ref_cache_;              ///< its activations
  std::vector<reward_function> functions_;  ///< the reward functions
  std::vector<float> weights_;              ///< their weights
  std::vector<std::string> names_;          ///< their names

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }

  /// Scores a rollout: completions/*, rewards/<name>/*, then the method's advantages.
  scored_rollout score_rollout(const group_rollout& ro, bool train) {
    using tensor = typename B::tensor;
    const auto n = static_cast<index_t>(ro.rows.size());
    const auto f = static_cast<index_t>(functions_.size());
    const auto scores = score_completions(functions_, ro.batch);
    const tensor per_func = ops::from_host<B>(std::span<const float>(scores), shape{n, f});
    tensor rewards(shape{n}), adv(shape{n});
    const auto fm = losses::grpo_combine_rewards<B>(per_func, weights_, rewards);
    const auto am = derived().advantages(ro, per_func, rewards, train, adv);
    scored_rollout out{ops::to_host<B>(adv), global_completion_metrics(ro.batch)};
    for (const auto& m : fm.named(names_)) out.metrics.push_back(m);
    out.metrics.insert(out.metrics.end(), am.begin(), am.end());
    return out;
  }

  /// completion_metrics over every rank's completions (TRL gathers them before logging).
  named_metrics global_completion_metrics(const completion_batch& b) {
    auto [lengths, truncated] = completion_lengths(b);
    if (comm_.size() == 1) return completion_metrics(lengths, truncated);
    std::string mine;  // "length,cut;" per completion
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      mine += std::to_string(lengths[i]) + (truncated[i] ? ",1;" : ",0;");
    }
    lengths.clear();
    truncated.clear();
    for (const auto& text : comm_.all_gather(mine)) {
      for (std::size_t at = 0; at < text.size();) {
        const std::size_t comma = text.find(',', at), end = text.find(';', comma);
        lengths.push_back(std::stoull(text.substr(at, comma - at)));
        truncated.push_back(text[comma + 1] == '1');
        at = end + 1;
      }
    }
    return completion_metrics(lengths, truncated);
  }

  run_monitors monitors_;
  policy_tokens<B> tokens_;
  std::vector<rollout_share> shares_;
  std::size_t next_share_ = 0;
  double num_items_ = 0;
  dist::any_communicator comm_;  ///< the data-parallel group (one process unless joined)
};

}  // namespace detail
}  // namespace train
}  // namespace v0
}  // namespace rlhf
