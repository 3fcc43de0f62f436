// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The arguments every trainer shares: batch sizes, the optimizer and its schedule, clipping,
// logging, evaluation and checkpoint cadence. Field names and defaults follow transformers'
// TrainingArguments (which TRL's SFTConfig, DPOConfig, RewardConfig... extend); deviations:
//   logging_steps   10 (transformers: 500), so short runs log at all
//   eval_steps      0 = evaluate only at the end of training (transformers: eval_strategy)
//   save_steps      0 = save only at the end (transformers: 500 with save_strategy "steps")
//   eval_fraction   the share of the training file held out for evaluation when no eval
//                   file is given (TRL takes a separate eval dataset)
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "rlhf/core/config.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/core/validation.hpp"
#include "rlhf/model/optim.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// What every trainer takes; each method's config (sft_config, dpo_config, ...) holds one.
struct training_args {
  /// The defaults with another learning rate (each method's config uses TRL's for it).
  [[nodiscard]] static training_args with_learning_rate(float lr) {
    training_args a;
    a.learning_rate = lr;
    return a;
  }

  std::string output_dir = "rlhf-output";   ///< metrics, checkpoints and plots go here
  float learning_rate = 5e-5f;              ///< peak learning rate of the schedule
  index_t per_device_train_batch_size = 8;  ///< examples per micro-batch
  index_t per_device_eval_batch_size = 8;   ///< examples per evaluation batch
  index_t gradient_accumulation_steps = 1;  ///< micro-batches per optimizer step
  double num_train_epochs = 3.0;            ///< used when max_steps <= 0
  index_t max_steps = -1;                   ///< optimizer steps; > 0 overrides the epochs
  model::lr_schedule_type lr_scheduler_type = model::lr_schedule_type::linear;  ///< schedule
  index_t warmup_steps = 0;      ///< linear warm-up steps (wins over warmup_ratio when > 0)
  float warmup_ratio = 0.0f;     ///< warm-up as a fraction of the total steps
  float weight_decay = 0.0f;     ///< AdamW decoupled weight decay (matrices only)
  float adam_beta1 = 0.9f;       ///< AdamW β1
  float adam_beta2 = 0.999f;     ///< AdamW β2
  float adam_epsilon = 1e-8f;    ///< AdamW ε
  float max_grad_norm = 1.0f;    ///< global gradient-norm clip; <= 0 disables it
  index_t logging_steps = 10;    ///< log the running means every this many optimizer steps
  index_t eval_steps = 0;        ///< evaluate every this many steps; 0: only at the end
  index_t save_steps = 0;        ///< checkpoint every this many steps; 0: only at the end
  index_t save_total_limit = 0;  ///< keep at most this many checkpoints; 0: all
  std::uint64_t seed = 42;       ///< data order, initialisation and dropout
  float eval_fraction = 0.0f;    ///< held-out share of the training data, in [0, 1)
  /// Input checking during training (set for the run with scoped_validation): full checks
  /// every tensor's values, cheap only shapes and scalars, none only what keeps memory
  /// accesses in bounds.
  rlhf::validation validation = rlhf::validation::full;

  /// config_error naming the first bad field.
  void validate() const {
    constexpr std::string_view fn = "training_args";
    check_config(!output_dir.empty(), fn, "output_dir", "not empty", "\"\"");
    check_config(std::isfinite(learning_rate) && learning_rate >= 0.0f, fn, "learning_rate",
                 "finite and >= 0", learning_rate);
    check_config(per_device_train_batch_size >= 1, fn, "per_device_train_batch_size", ">= 1",
                 per_device_train_batch_size);
    check_config(per_device_eval_batch_size >= 1, fn, "per_device_eval_batch_size", ">= 1",
                 per_device_eval_batch_size);
    check_config(gradient_accumulation_steps >= 1, fn, "gradient_accumulation_steps", ">= 1",
                 gradient_accumulation_steps);
    check_config(max_steps > 0 || (std::isfinite(num_train_epochs) && num_train_epochs > 0.0), fn,
                 "num_train_epochs", "finite and > 0 (or max_steps > 0)", num_train_epochs);
    check_enum(fn, "lr_scheduler_type", lr_scheduler_type);
    check_config(warmup_steps >= 0, fn, "warmup_steps", ">= 0", warmup_steps);
    check_config(std::isfinite(warmup_ratio) && warmup_ratio >= 0.0f && warmup_ratio < 1.0f, fn,
                 "warmup_ratio", "in [0, 1)", warmup_ratio);
    check_config(std::isfinite(max_grad_norm), fn, "max_grad_norm", "finite", max_grad_norm);
    check_config(logging_steps >= 1, fn, "logging_steps", ">= 1", logging_steps);
    check_config(eval_steps >= 0, fn, "eval_steps", ">= 0", eval_steps);
    check_config(save_steps >= 0, fn, "save_steps", ">= 0", save_steps);
    check_config(save_total_limit >= 0, fn, "save_total_limit", ">= 0", save_total_limit);
    check_config(std::isfinite(eval_fraction) && eval_fraction >= 0.0f && eval_fraction < 1.0f, fn,
                 "eval_fraction", "in [0, 1)", eval_fraction);
    check_enum(fn, "validation", validation);
    model::detail::optim::validate(adam());
  }

  /// The AdamW hyper-parameters these arguments set.
  [[nodiscard]] model::adamw_config adam() const {
    model::adamw_config c;
    c.lr = learning_rate;
    c.beta1 = adam_beta1;
    c.beta2 = adam_beta2;
    c.eps = adam_epsilon;
    c.weight_decay = weight_decay;
    return c;
  }

  /// Optimizer steps of the run for `train_examples` examples: max_steps when > 0, else
  /// ceil(epochs · ceil(examples / (batch · accumulation))).
  [[nodiscard]] index_t total_steps(index_t train_examples) const {
    if (max_steps > 0) return max_steps;
    const index_t per_step = per_device_train_batch_size * gradient_accumulation_steps;
    const index_t per_epoch = std::max<index_t>(1, (train_examples + per_step - 1) / per_step);
    return static_cast<index_t>(std::ceil(num_train_epochs * static_cast<double>(per_epoch)));
  }

  /// The learning-rate schedule over `total` steps.
  [[nodiscard]] model::lr_schedule schedule(index_t total) const {
    model::lr_schedule s;
    s.type = lr_scheduler_type;
    s.lr = learning_rate;
    s.total_steps = total;
    s.warmup_steps = warmup_steps > 0 ? warmup_steps
                                      : static_cast<index_t>(
                                            std::ceil(warmup_ratio * static_cast<float>(total)));
    if (s.type != model::lr_schedule_type::constant && s.total_steps <= s.warmup_steps) {
      s.total_steps = s.warmup_steps + 1;  // a run shorter than its warm-up
    }
    return s;
  }
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
