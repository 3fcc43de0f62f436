// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The progress display of a training run on stderr: on a terminal one line that rewrites
// itself (step/total, steps per second, ETA, latest loss); otherwise one plain line per
// logged step, without any control character.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

namespace rlhf_cli {

/// Seconds as "1h02m03s", "2m03s" or "3s".
inline std::string format_duration(double seconds) {
  if (!(seconds >= 0.0) || seconds > 1e9) return "?";
  auto s = static_cast<std::int64_t>(seconds + 0.5);
  const auto h = s / 3600;
  const auto m = (s % 3600) / 60;
  s %= 60;
  char buf[64];
  if (h > 0) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm%02llds", static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(s));
  } else if (m > 0) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(m),
                  static_cast<long long>(s));
  } else {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  }
  return buf;
}

/// Step counter with rate and ETA.
class progress {
 public:
  explicit progress(std::int64_t total, std::int64_t first_step = 0)
      : total_(total), first_(first_step), tty_(::isatty(STDERR_FILENO) == 1),
        start_(std::chrono::steady_clock::now()) {}

  /// A logged training record (has "step" and usually "loss").
  void step(const nlohmann::ordered_json& rec) {
    std::string line = counter(rec.value("step", std::int64_t{0}), "step ", "", "steps");
    if (rec.contains("loss") && rec["loss"].is_number()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " | loss %.4f", rec["loss"].get<double>());
      line += buf;
    }
    show(line);
  }

  /// Work done outside training steps: "done/total unit | rate | ETA" (without a terminal,
  /// at every tenth of the total and at the end).
  void count(std::int64_t done, const char* unit) {
    if (!tty_ && done < total_ && (done - shown_) * 10 < total_) return;
    shown_ = done;
    show(counter(done, "", std::string(" ") + unit, unit));
  }

  /// A message on its own line (an evaluation, a checkpoint, a warning).
  void note(const std::string& text) {
    end_line();
    std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
  }

  /// Ends the self-updating line, if any.
  void end_line() {
    if (open_line_) {
      std::fprintf(stderr, "\n");
      open_line_ = false;
    }
  }

 private:
  /// "<prefix>done/total<suffix> | rate unit/s | ETA time".
  [[nodiscard]] std::string counter(std::int64_t done, const char* prefix,
                                    const std::string& suffix, const char* unit) const {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = elapsed > 0.0 ? static_cast<double>(done - first_) / elapsed : 0.0;
    const double eta = rate > 0.0 ? static_cast<double>(total_ - done) / rate : -1.0;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s%lld/%lld%s | %.2f %s/s | ETA %s", prefix,
                  static_cast<long long>(done), static_cast<long long>(total_), suffix.c_str(),
                  rate, unit, format_duration(eta).c_str());
    return buf;
  }

  void show(const std::string& line) {
    if (tty_) {
      std::fprintf(stderr, "\r\x1b[K%s", line.c_str());
      open_line_ = true;
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }

  std::int64_t total_;
  std::int64_t first_;
  bool tty_;
  bool open_line_ = false;
  std::int64_t shown_ = 0;  // the last count() shown
  std::chrono::steady_clock::time_point start_;
};

}  // namespace rlhf_cli
