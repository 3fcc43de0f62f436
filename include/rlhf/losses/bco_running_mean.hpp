// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The running mean δ of implicit rewards shared by the BCO loss (rlhf/losses/bco.hpp) and
// DPO's bco_pair type (rlhf/losses/dpo.hpp): a count and a mean in double on the host,
// merged batch by batch with rl::running_moments' update.
#pragma once

#include <span>

#include "rlhf/rl/running_moments.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {

/// Running mean of the implicit rewards (δ). Kept in double on the host.
struct bco_running_mean {
  double count = 0.0;  ///< rewards seen (TRL starts at 1e-24 to avoid 0/0; the same to 1e-24)
  double mean = 0.0;   ///< δ; 0 before the first update (TRL's initial value)

  /// Merges a batch given by its mean and size (rl::running_moments::merge without the
  /// second moment, which δ does not use); a batch_count <= 0 changes nothing.
  void update(double batch_mean, double batch_count) {
    if (!(batch_count > 0.0)) return;
    rl::running_moments m(count, mean, 0.0);
    m.merge(batch_count, batch_mean, 0.0);
    count = m.count();
    mean = m.mean();
  }
  /// Merges host values (their mean computed in double).
  void update(std::span<const float> values) {
    if (values.empty()) return;
    double s = 0.0;
    for (const float v : values) s += static_cast<double>(v);
    update(s / static_cast<double>(values.size()), static_cast<double>(values.size()));
  }
};

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
