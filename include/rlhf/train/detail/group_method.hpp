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
// Derived supplies:
//   score(rollout, rewards_per_func, train) -> {advantages (N,) host, metrics}
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
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/detail/rollouts.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/method_base.hpp"
#include "rlhf/train/monitors.hpp"
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

/// How a group method samples: G, the evaluation's G and the sampling options.
struct group_sampling {
  index_t num_generations = 8;       ///< G, completions per prompt in training
  index_t num_generations_eval = 0;  ///< G in evaluation; 0 = num_generations
  sampling_options sampling;         ///< lengths, temperature, top-k/p, truncation masking
  monitor_config monitors;           ///< thresholds of the failure-mode monitors
};

template <class B, model::tokenizer Tok, class Derived>
class group_method_base : public method_base<B, Tok> {
 public:
  /// Prompts per optimizer step: per_device_train_batch_size · gradient_accumulation_steps
  /// / G (TRL's generation batch, in prompts).
  [[nodiscard]] index_t examples_per_step() const {
    return args_.per_device_train_batch_size * args_.gradient_accumulation_steps /
           g_.num_generations;
  }
  /// Prompts per evaluation batch: per_device_eval_batch_size / the evaluation's G.
  [[nodiscard]] index_t examples_per_eval_batch() const {
    return args_.per_device_eval_batch_size / eval_generations();
  }

  /// Samples and scores the generation batch of `idx` (the step's prompts).
  named_metrics prepare_step(std::span<const std::uint64_t> idx, index_t step) {
    const auto s = static_cast<std::uint64_t>(step);
    auto ro = sample_groups<B>(this->policy_, this->source_, idx, g_.num_generations, g_.sampling,
                               derived_seed(args_.seed, 0x67656e74u /* "gent" */, s));
    auto scored = score_rollout(ro, true);
    // TRL's num_tokens: each prompt once per completion, plus the completions.
    this->num_tokens_ += static_cast<std::uint64_t>(ro.tokens_seen);
    this->counts_tokens_ = true;
    scored.metrics.emplace_back("num_tokens", static_cast<float>(this->num_tokens_));
    num_items_ = 0;
    for (const auto& r : ro.rows) {
      for (const float m : r.completion_mask) num_items_ += static_cast<double>(m);
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
    auto ro = sample_groups<B>(this->policy_, this->source_, idx, eval_generations(), g_.sampling,
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
  group_method_base(std::string_view name, model::gpt<B>& policy, example_source<Tok>& source,
                    const training_args& args, const group_sampling& g,
                    std::vector<reward_function> functions)
      : method_base<B, Tok>(name, policy, source, args.seed), args_(args), g_(g),
        functions_(std::move(functions)), weights_(reward_weights(functions_)),
        names_(reward_names(functions_)), monitors_(g.monitors) {
    validate_reward_functions(name, functions_);
    check_config(g_.num_generations >= 1, name, "num_generations", ">= 1", g_.num_generations);
    check_config(g_.num_generations_eval >= 0, name, "num_generations_eval",
                 ">= 0 (0 = num_generations)", g_.num_generations_eval);
    const index_t rows = args_.per_device_train_batch_size * args_.gradient_accumulation_steps;
    if (rows % g_.num_generations != 0) {
      throw config_error(rlhf::detail::concat(
          name, ": per_device_train_batch_size · gradient_accumulation_steps (", rows,
          ", the generation batch) must be a multiple of num_generations (", g_.num_generations,
          ")"));
    }
    if (args_.per_device_eval_batch_size % eval_generations() != 0) {
      throw config_error(rlhf::detail::concat(
          name, ": per_device_eval_batch_size (", args_.per_device_eval_batch_size,
          ") must be a multiple of the evaluation's num_generations (", eval_generations(), ")"));
    }
    const auto& s = g_.sampling;
    check_config(
        s.max_completion_length >= 1 && s.max_completion_length < policy.config().max_seq_len, name,
        "max_completion_length",
        rlhf::detail::concat("in [1, max_seq_len = ", policy.config().max_seq_len, ")"),
        s.max_completion_length);
    check_config(std::isfinite(s.temperature) && s.temperature > 0.0f, name, "temperature",
                 "finite and > 0", s.temperature);
  }

  /// G of evaluation.
  [[nodiscard]] index_t eval_generations() const {
    return g_.num_generations_eval > 0 ? g_.num_generations_eval : g_.num_generations;
  }

  training_args args_;                      ///< the trainer's arguments
  group_sampling g_;                        ///< how completions are sampled
  std::vector<reward_function> functions_;  ///< the reward functions
  std::vector<float> weights_;              ///< their weights
  std::vector<std::string> names_;          ///< their names

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }

  scored_rollout score_rollout(const group_rollout& ro, bool train) {
    const auto per_func = score_completions(functions_, ro.batch);
    auto out = derived().score(ro, per_func, train);
    const auto c = completion_metrics(ro.batch);
    out.metrics.insert(out.metrics.begin(), c.begin(), c.end());
    return out;
  }

  run_monitors monitors_;
  std::vector<rollout_share> shares_;
  std::size_t next_share_ = 0;
  double num_items_ = 0;
};

}  // namespace detail
}  // namespace train
}  // namespace v0
}  // namespace rlhf
