// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Watchers of an online run for the failure modes of RLHF: reward hacking (the reward moves
// far from where it started), mode collapse (every sample scores alike, or the policy's
// entropy vanishes), length exploitation (answers grow because length pays) and drifting
// too far from the reference (the KL above a ceiling).
//
// They read each logged training record (the window means of reward or objective/scores,
// reward_std, entropy or policy/entropy_avg, completions/mean_length, kl or objective/kl),
// compare with a baseline taken from the
// first `baseline_logs` records, add one 0/1 field per monitor to the record
// ("monitor/reward_drift", "monitor/mode_collapse", "monitor/length_runaway",
// "monitor/kl_ceiling") and return a warning each time a monitor starts firing (once per
// episode: it re-arms when the condition clears). A metric the method does not log leaves
// its monitor silent.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/train/metrics_log.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// Thresholds of the monitors; a threshold <= 0 turns its monitor off.
struct monitor_config {
  index_t baseline_logs = 3;  ///< logged records averaged into the baseline (>= 1)
  /// Reward drift: |reward - baseline reward| > reward_drift_sigmas · baseline spread (the
  /// spread of rewards across samples, reward_std, when the run started; without reward_std
  /// (PPO) the std of the baseline records' rewards; at least 1e-3).
  double reward_drift_sigmas = 2.0;
  /// Mode collapse: reward_std below this fraction of the baseline reward_std ...
  double collapse_std_fraction = 0.1;
  /// ... or the policy's mean token entropy (nats) below this.
  double min_entropy = 0.05;
  /// Length runaway: completions/mean_length above this multiple of the baseline's.
  double length_growth = 2.0;
  /// KL ceiling: kl (GRPO, RLOO) or objective/kl (PPO) above this (nats, in the unit the
  /// method logs).
  double max_kl = 10.0;

  /// config_error naming the first bad field.
  void validate() const {
    constexpr const char* fn = "monitor_config";
    check_config(baseline_logs >= 1, fn, "baseline_logs", ">= 1", baseline_logs);
    for (const auto& [name, v] :
         {std::pair{"reward_drift_sigmas", reward_drift_sigmas},
          std::pair{"collapse_std_fraction", collapse_std_fraction},
          std::pair{"min_entropy", min_entropy}, std::pair{"length_growth", length_growth},
          std::pair{"max_kl", max_kl}}) {
      check_config(std::isfinite(v), fn, name, "finite (<= 0 turns the monitor off)", v);
    }
  }
};

/// The four monitors of one run, with their baseline (resumable through state()).
class run_monitors {
 public:
  /// Monitors with thresholds `cfg` (validated).
  explicit run_monitors(monitor_config cfg = {}) : cfg_(cfg) { cfg_.validate(); }

  /// Reads one logged training record, adds the monitor fields to it and returns the
  /// warnings of monitors that start firing.
  std::vector<std::string> review(metrics_record& rec) {
    std::vector<std::string> out;
    const double reward = either(rec, "reward", "objective/scores");
    const double spread = number(rec, "reward_std");
    const double length = number(rec, "completions/mean_length");
    if (seen_ < cfg_.baseline_logs) {
      add(base_reward_, reward);
      add(base_reward_sq_, reward * reward);
      add(base_std_, spread);
      add(base_length_, length);
      ++seen_;
    }
    const bool ready = seen_ >= cfg_.baseline_logs;
    const auto n = static_cast<double>(cfg_.baseline_logs);
    const double b_reward = base_reward_ / n, b_len = base_length_ / n;
    // The spread of rewards: the samples' (reward_std) when the method logs it, else that
    // of the baseline records' means (PPO), which needs two of them.
    double b_std = base_std_ / n;
    if (!std::isfinite(b_std) && cfg_.baseline_logs >= 2) {
      b_std = std::sqrt(std::max(0.0, (base_reward_sq_ - base_reward_ * b_reward) / (n - 1)));
    }

    const bool drift = ready && cfg_.reward_drift_sigmas > 0 && std::isfinite(reward) &&
                       std::isfinite(b_reward) &&
                       std::abs(reward - b_reward) >
                           cfg_.reward_drift_sigmas * std::max(b_std, 1e-3);
    const double entropy = either(rec, "entropy", "policy/entropy_avg");
    const bool low_spread = ready && cfg_.collapse_std_fraction > 0 && std::isfinite(spread) &&
                            b_std > 0 && spread < cfg_.collapse_std_fraction * b_std;
    const bool low_entropy = cfg_.min_entropy > 0 && std::isfinite(entropy) &&
                             entropy < cfg_.min_entropy;
    const bool collapse = low_spread || low_entropy;
    const bool runaway = ready && cfg_.length_growth > 0 && std::isfinite(length) && b_len > 0 &&
                         length > cfg_.length_growth * b_len;
    const double kl = either(rec, "kl", "objective/kl");
    const bool over_kl = cfg_.max_kl > 0 && std::isfinite(kl) && kl > cfg_.max_kl;

    const auto step = rec.contains("step") ? rec["step"].dump() : std::string("?");
    auto fire = [&](int k, bool on, const char* field, const std::string& why) {
      rec[field] = on ? 1 : 0;
      if (on && !firing_[k]) out.push_back("step " + step + ": " + why);
      firing_[k] = on;
    };
    fire(0, drift, "monitor/reward_drift",
         rlhf::detail::concat("reward drift: the mean reward ", reward, " is more than ",
                              cfg_.reward_drift_sigmas, " baseline standard deviations (", b_std,
                              ") from its baseline ", b_reward,
                              "; check samples for reward hacking"));
    fire(1, collapse, "monitor/mode_collapse",
         low_spread ? rlhf::detail::concat("mode collapse: reward_std ", spread, " is below ",
                                           cfg_.collapse_std_fraction, " x its baseline ", b_std,
                                           "; the samples score alike (raise beta or add an "
                                           "entropy bonus)")
                    : rlhf::detail::concat("mode collapse: the policy's entropy ", entropy,
                                           " is below ", cfg_.min_entropy,
                                           "; it samples nearly one answer (raise beta or add "
                                           "an entropy bonus)"));
    fire(2, runaway, "monitor/length_runaway",
         rlhf::detail::concat("length runaway: completions average ", length, " tokens, over ",
                              cfg_.length_growth, " x the baseline ", b_len,
                              "; the reward may pay for length (normalise it by length)"));
    fire(3, over_kl, "monitor/kl_ceiling",
         rlhf::detail::concat("KL ceiling: the KL to the reference ", kl, " exceeds ", cfg_.max_kl,
                              "; the policy drifts away from the reference (raise beta)"));
    return out;
  }

  /// The baseline and which monitors are firing.
  [[nodiscard]] nlohmann::json state() const {
    return {{"seen", seen_},
            {"reward", base_reward_},
            {"reward_sq", base_reward_sq_},
            {"reward_std", base_std_},
            {"length", base_length_},
            {"firing", {firing_[0], firing_[1], firing_[2], firing_[3]}}};
  }
  /// Continues from state(); io_error when it is not one.
  void restore(const nlohmann::json& j) {
    const bool ok = j.is_object() && j.contains("seen") && j["seen"].is_number_integer() &&
                    j.contains("firing") && j["firing"].is_array() && j["firing"].size() == 4;
    if (!ok) throw io_error("run_monitors: trainer_state.method.monitors is malformed");
    seen_ = j["seen"].get<index_t>();
    base_reward_ = nan_or(j, "reward");
    base_reward_sq_ = nan_or(j, "reward_sq");
    base_std_ = nan_or(j, "reward_std");
    base_length_ = nan_or(j, "length");
    for (int k = 0; k < 4; ++k) firing_[k] = j["firing"][static_cast<std::size_t>(k)].get<bool>();
  }

 private:
  static double number(const metrics_record& rec, const char* name) {
    if (!rec.contains(name) || !rec[name].is_number()) return std::nan("");
    return rec[name].get<double>();
  }
  /// `name`, or `fallback` when the record has no `name`.
  static double either(const metrics_record& rec, const char* name, const char* fallback) {
    const double v = number(rec, name);
    return std::isfinite(v) ? v : number(rec, fallback);
  }
  static double nan_or(const nlohmann::json& j, const char* name) {
    return j.contains(name) && j[name].is_number() ? j[name].get<double>() : std::nan("");
  }
  static void add(double& sum, double v) { sum += v; }  // NaN stays NaN: no baseline

  monitor_config cfg_;
  index_t seen_ = 0;
  double base_reward_ = 0, base_reward_sq_ = 0, base_std_ = 0, base_length_ = 0;
  bool firing_[4] = {false, false, false, false};
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
