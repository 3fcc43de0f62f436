// The per-class sums and counts that TRL's unpaired trainers (KTO, BCO) log. TRL divides
// at logging time, so a batch without one class stays defined; a class's entries are left
// out of the log when the batch has none of it.
#pragma once

#include "rlhf/core/metrics.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {
namespace detail {

struct unpaired_class_sums {
  float rewards_chosen_sum = 0;    // Σ over desirable examples of the implicit reward
  float logps_chosen_sum = 0;      // Σ over desirable examples of policy_logps
  float count_chosen = 0;          // number of desirable examples
  float rewards_rejected_sum = 0;  // the same over undesirable examples
  float logps_rejected_sum = 0;
  float count_rejected = 0;

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
