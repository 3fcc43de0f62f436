// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The length limits the preference and unpaired-feedback methods share (DPO, KTO, ORPO, CPO,
// BCO), under TRL's field names; each method's config derives from it, so they read as
// TRL's flat configs (cfg.max_length, cfg.truncation_mode, ...).
#pragma once

#include <cstddef>

#include "rlhf/data/tokenize.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// Longest prompt, completion and sequence, and which end of a long one stays.
struct sequence_limits {
  std::size_t max_prompt_length = 512;    ///< longest prompt part (cut per truncation_mode)
  std::size_t max_completion_length = 0;  ///< longest completion part; 0: no limit
  std::size_t max_length = 1024;          ///< longest prompt + completion
  data::truncation_mode truncation_mode = data::truncation_mode::keep_end;  ///< TRL's default

  /// The tokenization these limits ask for.
  [[nodiscard]] data::tokenize_options tokenize_options() const {
    data::tokenize_options o;
    o.max_prompt_length = max_prompt_length;
    o.max_completion_length = max_completion_length;
    o.max_length = max_length;
    o.truncation = truncation_mode;
    return o;
  }
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
