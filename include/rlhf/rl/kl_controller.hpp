// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// KL-penalty coefficient controllers (the β of rewards_t = -β·kl_t). docs/algorithms/kl.md.
//
//   fixed     β constant. Current TRL (PPOConfig.kl_coef) defaults to 0.05; classic TRL 0.11
//             (FixedKLController, init_kl_coef) to 0.2.
//   adaptive  Ziegler et al. 2019, §2.2 (TRL 0.11 AdaptiveKLController, adap_kl_ctrl=True):
//               e = clip(KL_now / target - 1, -0.2, 0.2)
//               β ← β · (1 + e · n_steps / horizon)
//             init 0.2, target 6.0, horizon 10000. KL_now is the batch mean of the
//             per-sequence summed k1 KL (rl::mean_sequence_kl); TRL 0.11 passes
//             n_steps = the batch size (number of episodes of the step).
// Host-side state in double, as TRL keeps Python floats.
#pragma once

#include <algorithm>
#include <cmath>
#include <string_view>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace rl {
namespace detail {
/// A measured KL must be finite: a NaN or ±Inf there is a data_error (bad data, not a bad
/// option).
inline void check_measured_kl(std::string_view fn, double current_kl) {
  if (std::isfinite(current_kl)) return;
  throw data_error(rlhf::detail::concat(fn, ": current_kl must be finite, got ", current_kl));
}
}  // namespace detail

/// β that never changes; update() only validates its arguments.
struct fixed_kl_controller {
  static constexpr double current_trl_default = 0.05;  ///< PPOConfig.kl_coef
  static constexpr double classic_trl_default = 0.2;   ///< TRL 0.11 init_kl_coef

  double value = current_trl_default;  ///< β, the KL coefficient.

  fixed_kl_controller() = default;
  /// β = kl_coef (finite and >= 0, else config_error).
  explicit fixed_kl_controller(double kl_coef) : value(kl_coef) {
    check_config(std::isfinite(kl_coef) && kl_coef >= 0.0, "fixed_kl_controller", "kl_coef",
                 "finite and >= 0", kl_coef);
  }
  /// Checks that current_kl is finite (data_error: it is measured) and n_steps finite and
  /// >= 0 (config_error); β stays.
  void update(double current_kl, double n_steps) const {
    detail::check_measured_kl("fixed_kl_controller::update", current_kl);
    check_config(std::isfinite(n_steps) && n_steps >= 0.0, "fixed_kl_controller::update",
                 "n_steps", "finite and >= 0", n_steps);
  }
};

/// Proportional controller of Ziegler et al.: β moves by at most ±20%·n_steps/horizon per
/// update toward KL_now = target.
struct adaptive_kl_controller {
  double value = 0.2;        ///< TRL 0.11 init_kl_coef
  double target = 6.0;       ///< TRL 0.11 target
  double horizon = 10000.0;  ///< TRL 0.11 horizon

  adaptive_kl_controller() = default;
  /// Starts at β = init_kl_coef (>= 0) aiming at target_kl (> 0) over horizon_steps (> 0).
  adaptive_kl_controller(double init_kl_coef, double target_kl, double horizon_steps)
      : value(init_kl_coef), target(target_kl), horizon(horizon_steps) {
    constexpr const char* fn = "adaptive_kl_controller";
    check_config(std::isfinite(init_kl_coef) && init_kl_coef >= 0.0, fn, "init_kl_coef",
                 "finite and >= 0", init_kl_coef);
    check_config(std::isfinite(target_kl) && target_kl > 0.0, fn, "target", "finite and > 0",
                 target_kl);
    check_config(std::isfinite(horizon_steps) && horizon_steps > 0.0, fn, "horizon",
                 "finite and > 0", horizon_steps);
  }

  /// One update with the KL measured on the last batch and the number of steps (episodes)
  /// it covered. Returns the new β.
  double update(double current_kl, double n_steps) {
    constexpr const char* fn = "adaptive_kl_controller::update";
    detail::check_measured_kl(fn, current_kl);
    check_config(std::isfinite(n_steps) && n_steps >= 0.0, fn, "n_steps", "finite and >= 0",
                 n_steps);
    const double error = std::clamp(current_kl / target - 1.0, -0.2, 0.2);
    value *= 1.0 + error * n_steps / horizon;
    return value;
  }
};

}  // namespace rl
}  // namespace v0
}  // namespace rlhf
