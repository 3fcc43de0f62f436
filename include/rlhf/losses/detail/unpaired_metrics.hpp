// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The per-class sums and counts of the unpaired losses (KTO, BCO), and the per-batch class
// means TRL 1.16's KTOTrainer logs from them. The sums stay available (under the "_sum" and
// "count/" names) for a reduction across processes or a logging window; a class's entries
// are left out when the batch has none of it.
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

  /// `head` (e.g. {"kl", z0}) followed by the batch's class means as TRL 1.16's KTO logs
  /// them: rewards/chosen, logps/chosen (desirable examples present), rewards/rejected,
  /// logps/rejected (undesirable present), rewards/margins (both present).
  [[nodiscard]] named_metrics means_with(named_metrics head) const {
    if (count_chosen > 0) {
      head.insert(head.end(), {{"rewards/chosen", rewards_chosen_sum / count_chosen},
                               {"logps/chosen", logps_chosen_sum / count_chosen}});
    }
    if (count_rejected > 0) {
      head.insert(head.end(), {{"rewards/rejected", rewards_rejected_sum / count_rejected},
                               {"logps/rejected", logps_rejected_sum / count_rejected}});
    }
    if (count_chosen > 0 && count_rejected > 0) {
      head.push_back({"rewards/margins",
                      rewards_chosen_sum / count_chosen - rewards_rejected_sum / count_rejected});
    }
    return head;
  }

  /// `head` followed by the class sums and counts (rewards/chosen_sum, logps/chosen_sum,
  /// count/chosen, ...), the form that sums across processes or a logging window.
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
