// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What the unpaired-feedback methods (KTO, BCO) share: labels of a batch and, for BCO, the
// class sums each micro-batch reports and their logging as class means (the last TRL with
// a BCOTrainer logged them this way; KTO logs per-batch means, losses/kto.hpp).
//
// BCO's micro-batches report, always (zeros for a class they lack):
//   rewards/chosen_sum, logps/chosen_sum, count/chosen, and the same for rejected
// so that over a window mean(sum) / mean(count) = Σ sum / Σ count, the per-example mean
// TRL logs as rewards/chosen, logps/chosen, ... (and rewards/margins when both classes
// were seen).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/losses/detail/unpaired_metrics.hpp"
#include "rlhf/train/metrics_log.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {
namespace detail {

/// (N,) labels of unpaired examples: 1 desirable, 0 undesirable.
inline std::vector<float> unpaired_labels(std::span<const data::tokenized_example> batch) {
  std::vector<float> out;
  out.reserve(batch.size());
  for (const auto& e : batch) out.push_back(e.label.value_or(false) ? 1.0f : 0.0f);
  return out;
}

/// The class sums and counts of a batch, every one of them (see the top of this file).
inline named_metrics class_sums(const losses::detail::unpaired_class_sums& m) {
  return {{"rewards/chosen_sum", m.rewards_chosen_sum},
          {"logps/chosen_sum", m.logps_chosen_sum},
          {"count/chosen", m.count_chosen},
          {"rewards/rejected_sum", m.rewards_rejected_sum},
          {"logps/rejected_sum", m.logps_rejected_sum},
          {"count/rejected", m.count_rejected}};
}

/// Replaces the class sums and counts of `v` by TRL's logged class means (a class with no
/// examples in the window is left out) and adds rewards/margins when both are present.
inline void class_sums_to_means(metric_means& v) {
  auto find = [&](const std::string& name) -> const double* {
    for (const auto& [n, x] : v) {
      if (n == name) return &x;
    }
    return nullptr;
  };
  metric_means means;
  for (const char* split : {"chosen", "rejected"}) {
    const double* count = find(std::string("count/") + split);
    if (count == nullptr || !(*count > 0.0)) continue;
    for (const char* what : {"rewards", "logps"}) {
      const double* sum = find(std::string(what) + "/" + split + "_sum");
      if (sum != nullptr) means.emplace_back(std::string(what) + "/" + split, *sum / *count);
    }
  }
  const auto first = std::find_if(v.begin(), v.end(), [](const auto& e) {
    return e.first.rfind("count/", 0) == 0 || e.first.ends_with("_sum");
  });
  const auto at = static_cast<std::size_t>(first - v.begin());
  std::erase_if(v, [](const auto& e) {
    return e.first.rfind("count/", 0) == 0 || e.first.ends_with("_sum");
  });
  double chosen = 0.0, rejected = 0.0;
  bool has_c = false, has_r = false;
  for (const auto& [n, x] : means) {
    if (n == "rewards/chosen") {
      chosen = x;
      has_c = true;
    } else if (n == "rewards/rejected") {
      rejected = x;
      has_r = true;
    }
  }
  if (has_c && has_r) means.emplace_back("rewards/margins", chosen - rejected);
  v.insert(v.begin() + static_cast<std::ptrdiff_t>(std::min(at, v.size())), means.begin(),
           means.end());
}

}  // namespace detail
}  // namespace train
}  // namespace v0
}  // namespace rlhf
