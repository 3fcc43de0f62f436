// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The fields TRL's GRPOConfig and RLOOConfig share besides the loss: how completions are
// sampled and evaluated, and the run's failure-mode monitors. grpo_config and rloo_config
// derive from it.
#pragma once

#include "rlhf/core/config.hpp"
#include "rlhf/train/monitors.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// Sampling, evaluation and monitoring fields of the online methods (TRL's defaults).
struct online_sampling {
  index_t num_generations_eval = 0;         ///< G of evaluation; 0 = the training G
  float temperature = 1.0f;                 ///< sampling and training-forward temperature
  float top_p = 1.0f;                       ///< nucleus sampling; 1 = off
  index_t top_k = 0;                        ///< top-k sampling; 0 = off
  bool mask_truncated_completions = false;  ///< completions without EOS get no loss
  bool disable_dropout = false;             ///< train without the policy's dropout
  monitor_config monitors{};                ///< failure-mode warnings (train/monitors.hpp)
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
