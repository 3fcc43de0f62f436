// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Metrics of a training run: running means over a logging window, and the JSONL file a run
// writes them to (one JSON object per logged step, `metrics.jsonl` in the output folder).
//
//   metric_window   sums and counts per name, in double, in first-seen order; saved with a
//                   checkpoint exactly (hexadecimal floating point), so a resumed run logs
//                   the same means as an uninterrupted one
//   metrics_file    appends one line per record (one write, then flush); on resume the lines
//                   past the checkpoint's step are dropped (the file is rewritten atomically)
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/atomic_file.hpp"
#include "rlhf/model/detail/json_bounded.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

namespace detail {

/// `v` in hexadecimal floating point ("%a"): exact, and read back by parse_exact_double.
inline std::string exact_double(double v) {
  std::array<char, 64> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), "%a", v);
  if (n <= 0 || static_cast<std::size_t>(n) >= buf.size()) {
    throw io_error("exact_double: cannot format a value");
  }
  return std::string(buf.data(), static_cast<std::size_t>(n));
}

/// The value exact_double wrote; anything else is an io_error naming `where`.
inline double parse_exact_double(const std::string& text, std::string_view where) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0') {
    throw io_error(rlhf::detail::concat(where, ": bad number '", text.substr(0, 40), "'"));
  }
  return v;
}

}  // namespace detail

/// Named means, in first-seen order.
using metric_means = std::vector<std::pair<std::string, double>>;

/// Running means of named values over a logging window.
class metric_window {
 public:
  /// Adds one observation of each value.
  void add(const named_metrics& values) {
    for (const auto& [name, v] : values) add(name, v);
  }
  /// Adds one observation of `name`.
  void add(const std::string& name, double v) {
    for (auto& e : entries_) {
      if (e.name == name) {
        e.sum += v;
        ++e.count;
        return;
      }
    }
    entries_.push_back({name, v, 1});
  }
  /// The mean of every name seen since the last clear(), in first-seen order.
  [[nodiscard]] metric_means means() const {
    metric_means out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) out.emplace_back(e.name, e.sum / static_cast<double>(e.count));
    return out;
  }
  /// True when nothing was added since the last clear().
  [[nodiscard]] bool empty() const { return entries_.empty(); }
  /// Starts a new window.
  void clear() { entries_.clear(); }

  /// The window as JSON, sums in hexadecimal floating point (exact).
  [[nodiscard]] nlohmann::json to_json() const {
    auto arr = nlohmann::json::array();
    for (const auto& e : entries_) {
      arr.push_back({{"name", e.name}, {"sum", detail::exact_double(e.sum)}, {"count", e.count}});
    }
    return arr;
  }
  /// A window saved by to_json(); a malformed one is an io_error naming `where`.
  static metric_window from_json(const nlohmann::json& j, std::string_view where) {
    metric_window w;
    if (!j.is_array()) throw io_error(rlhf::detail::concat(where, ": metric window: not a list"));
    for (const auto& e : j) {
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("sum") ||
          !e["sum"].is_string() || !e.contains("count") || !e["count"].is_number_unsigned()) {
        throw io_error(rlhf::detail::concat(where, ": metric window: malformed entry ",
                                            rlhf::detail::json_excerpt(e)));
      }
      const double sum = detail::parse_exact_double(
          e["sum"].get<std::string>(), rlhf::detail::concat(where, ": metric window sum"));
      w.entries_.push_back({e["name"].get<std::string>(), sum, e["count"].get<std::uint64_t>()});
    }
    return w;
  }

 private:
  struct entry {
    std::string name;
    double sum = 0.0;
    std::uint64_t count = 0;
  };
  std::vector<entry> entries_;
};

/// One logged record: the step, and named values (a JSON object, keys in insertion order).
using metrics_record = nlohmann::ordered_json;

/// The metrics JSONL file of a run.
class metrics_file {
 public:
  /// Opens (creating) `path` for appending.
  explicit metrics_file(std::filesystem::path path) : path_(std::move(path)) {}

  /// Appends `record` as one line and flushes it.
  void append(const metrics_record& record) const {
    std::ofstream out(path_, std::ios::app | std::ios::binary);
    const std::string line = record.dump() + "\n";
    out.write(line.data(), static_cast<std::streamsize>(line.size()));
    out.flush();
    if (!out) {
      throw io_error(rlhf::detail::concat("metrics_file: cannot append to ", path_.string()));
    }
  }

  /// Keeps only the records whose "step" is <= `step` (resuming from a checkpoint at `step`:
  /// what the interrupted run logged after it is logged again). Rewrites the file through a
  /// temporary and a rename; no file is fine.
  void truncate_after(std::int64_t step) const {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return;
    std::string kept, line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto j = rlhf::detail::parse_json_bounded<nlohmann::json>(line, "metrics_file",
                                                                      path_.string());
      if (j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
          j["step"].get<std::int64_t>() > step) {
        break;  // records are in step order
      }
      kept += line;
      kept += '\n';
    }
    in.close();
    rlhf::detail::write_file_atomically(path_, kept, "metrics_file");
  }

  /// The file's path.
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
