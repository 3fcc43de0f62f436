// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// A JSONL dataset read on demand: one streaming pass checks every line and records the byte
// offset of each example; an example is then read by seeking to its line (docs/data.md,
// "Memory").
//
//   rlhf::data::jsonl_dataset  size(), format(), get(i) → example, position_of(i)
//
// Memory: 8 bytes per example (its offset) plus 16 bytes per run of examples after a
// blank or skipped line (to give line numbers in messages), plus one line and the reader's
// 64 KiB buffer. Examples are never all loaded.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/data/formats.hpp"
#include "rlhf/data/jsonl.hpp"

namespace rlhf {
inline namespace v0 {
namespace data {

/// The examples of one JSONL file, indexed by one streaming pass and read by seek.
/// get() moves the dataset's reader: one jsonl_dataset is not for concurrent use.
class jsonl_dataset {
 public:
  /// Reads `path` once: every line is parsed and checked with parse_example. The file has
  /// one format: `expected`, or else the first example's; a line of another format is a bad
  /// line. Bad lines raise or are skipped (and left out of the index) per options.errors.
  explicit jsonl_dataset(const std::filesystem::path& path, jsonl_options options = {},
                         std::optional<format> expected = std::nullopt)
      : reader_(path, options), format_(expected) {
    nlohmann::json obj;
    std::uint64_t extra = 0;  // lines before the current example that are not examples
    jsonl_line line;
    while (reader_.next_line(line)) {
      try {
        const auto ex = parse_example(jsonl_reader::parse_object(line.text, reader_.where()),
                                      reader_.where(), format_);
        if (!format_) format_ = ex.kind;
      } catch (const data_error& e) {
        reader_.reject(e);
        continue;
      }
      const std::uint64_t index = offsets_.size();
      const std::uint64_t before = line.number - 1;  // lines before this one
      if (before - index != extra) {
        extra = before - index;
        gaps_.emplace_back(index, extra);
      }
      offsets_.push_back(line.offset);
    }
  }

  /// Number of examples (bad lines skipped at indexing are not counted).
  [[nodiscard]] std::size_t size() const noexcept { return offsets_.size(); }

  /// The file's format; nullopt for a file without examples and no `expected` format.
  [[nodiscard]] std::optional<data::format> format() const noexcept { return format_; }

  /// Bad lines skipped while indexing (on_error::skip) and the first messages.
  [[nodiscard]] std::uint64_t skipped() const noexcept { return reader_.skipped(); }
  /// The messages of the first skipped lines.
  [[nodiscard]] const std::vector<std::string>& messages() const noexcept {
    return reader_.messages();
  }

  /// Where example `i`'s line starts (a reader seeked there reads it next).
  [[nodiscard]] jsonl_position position_of(std::size_t i) const {
    check_index(i);
    // The last gap at or before i gives the number of non-example lines before it.
    auto it = std::upper_bound(gaps_.begin(), gaps_.end(), std::uint64_t{i},
                               [](std::uint64_t v, const auto& g) { return v < g.first; });
    const std::uint64_t extra = it == gaps_.begin() ? 0 : std::prev(it)->second;
    return jsonl_position{offsets_[i], i + extra};
  }

  /// Example `i`, read from the file now. A line that no longer parses (the file changed
  /// since indexing) is a data_error whatever the error policy.
  [[nodiscard]] example get(std::size_t i) {
    reader_.seek(position_of(i));
    jsonl_line line;
    if (!reader_.next_line(line)) {
      throw data_error(rlhf::detail::concat(reader_.where(), ": example ", i,
                                            " is missing (the file changed since indexing)"));
    }
    return parse_example(jsonl_reader::parse_object(line.text, reader_.where()), reader_.where(),
                         format_);
  }

  /// Bytes held by the index: offsets and line-number corrections.
  [[nodiscard]] std::size_t index_bytes() const noexcept {
    return offsets_.capacity() * sizeof(std::uint64_t) +
           gaps_.capacity() * sizeof(std::pair<std::uint64_t, std::uint64_t>);
  }

 private:
  void check_index(std::size_t i) const {
    if (i >= offsets_.size()) {
      throw data_error(rlhf::detail::concat(reader_.path().string(), ": example ", i,
                                            " is out of range [0, ", offsets_.size(), ")"));
    }
  }

  jsonl_reader reader_;
  std::optional<data::format> format_;
  std::vector<std::uint64_t> offsets_;  // (N,) byte offset of each example's line
  // (example index, non-example lines before it), one entry where that count changes.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps_;
};

}  // namespace data
}  // namespace v0
}  // namespace rlhf
