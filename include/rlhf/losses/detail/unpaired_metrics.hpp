// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The per-class sums and counts that TRL's unpaired trainers (KTO, BCO) log. TRL divides
// at logging time, so a batch without one class stays defined; a class's entries are left
// out of the log when the batch has none of it.
#pragma once

#include <vector>

#include "rlhf/core/config.hpp"
#include "rlhf/core/metrics.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {
namespace detail {

/// Rows 1..5 of a loss's (6, N) statistics tensor for example i (row 0 is the loss's own):
/// desirable flag, then reward and log-prob into the chosen or the rejected rows.
RLHF_HD inline void write_class_stats(float* st, index_t n, index_t i, bool desirable,
                                      float reward, float logp) {
  st[1 * n + i] = desirable ? 1.0f : 0.0f;
  st[2 * n + i] = desirable ? reward : 0.0f;
  st[3 * n + i] = desirable ? logp : 0.0f;
  st[4 * n + i] = desirable ? 0.0f : reward;
  st[5 * n + i] = desirable ? 0.0f : logp;
}

struct unpaired_class_sums {
  float rewards_chosen_sum = 0;    // Σ over desirable examples of the implicit reward
  float logps_chosen_sum = 0;      // Σ over desirable examples of policy_logps
  float count_chosen = 0;          // number of desirable examples
  float rewards_rejected_sum = 0;  // the same over undesirable examples
  float logps_rejected_sum = 0;
  float count_rejected = 0;

  /// Fills the sums from the row sums of the statistics written by write_class_stats.
  void set_from_row_sums(const std::vector<float>& s, index_t n) {
    count_chosen = s[1];
    count_rejected = static_cast<float>(n) - s[1];
    rewards_chosen_sum = s[2];
    logps_chosen_sum = s[3];
    rewards_rejected_sum = s[4];
    logps_rejected_sum = s[5];
  }

  /// `head` (e.g. {"kl", z0}) followed by the class entries, as TRL logs them.
  [[nodiscard]] named_metrics named_with(named_metrics head) const {
    if (count_chosen > 0) {
      head.insert(head.end(), {{"rewards/chosen_sum", rewards_chosen_sum},
                               {"logps/chosen_sum", logps_chosen_sum},
                               {"count/chosen", count_chosen}});
    }
    if (count_rejected > 0) {
      head.insert(head.end(), {{"rewards/rejected_sum", rewards_rejected_sum},
                               {"logps/rejected_sum", logps_rejected_sum},
                               {"count/rejected", count_rejected}});
    }
    return head;
  }
};

}  // namespace detail
}  // namespace losses
}  // namespace v0
}  // namespace rlhf
