// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Metrics of a loss as (name, value) pairs, named as TRL logs them ("rewards/chosen",
// "clipfrac", ...), so a trainer can log every loss the same way.
#pragma once

#include "rlhf/core/config.hpp"  // first: the C++20 check

#include <string>
#include <utility>
#include <vector>

namespace rlhf {
inline namespace v0 {

/// (name, value) pairs of a loss's metrics, in TRL's metric names.
using named_metrics = std::vector<std::pair<std::string, float>>;

/// The value of `name` in `m`, or `fallback` when absent.
inline float metric_or(const named_metrics& m, const std::string& name, float fallback) {
  for (const auto& [k, v] : m) {
    if (k == name) return v;
  }
  return fallback;
}

}  // namespace v0
}  // namespace rlhf
