// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// A JSONL file written one row at a time that a killed run can continue:
//
//   recover_rows(path, key)   reads the rows already there (their `key` fields, or the key a
//                             function finds in each row), and repairs a torn end: a last
//                             line cut by a kill (no final "\n", or not valid JSON) is
//                             removed, or completed with "\n" when it is a whole row; an
//                             invalid line before the last is a data_error
//   row_appender              one write of line + "\n" per row (or of a group of rows), then
//                             a flush (and fsync when asked): a kill leaves whole rows and at
//                             most one torn line
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/platform_file.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {
namespace detail {

/// What recover_rows found.
struct recovered_rows {
  std::set<std::string> keys;       ///< the rows' keys
  std::size_t rows = 0;             ///< rows read (duplicates of a key included)
  bool repaired = false;            ///< a torn last line was removed or completed
  std::vector<std::string> order;   ///< each row's key, in the file's order
  std::vector<std::uint64_t> ends;  ///< each row's end in the file (after its "\n")
};

/// A row's key (nullopt: the row has none, and is not a valid row).
using row_key_function = std::function<std::optional<std::string>(const nlohmann::json&)>;

/// The rows of `path` (none when it does not exist) keyed by `key_of`; a JSON object for
/// which it returns nullopt is not a row (`missing` says why, in messages). Repairs a torn
/// last line (see the top of this header). `fn` starts every message.
inline recovered_rows recover_rows(const std::filesystem::path& path,
                                   const row_key_function& key_of, std::string_view missing,
                                   std::string_view fn) {
  using rlhf::detail::concat;
  recovered_rows out;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return out;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(concat(fn, ": ", path.string(), ": cannot open for reading"));
  const std::string name = path.string();
  std::uint64_t offset = 0;    // start of the current line
  std::uint64_t good_end = 0;  // end of the last good line (its "\n" included)
  std::uint64_t number = 0;
  std::string line;
  struct bad_line {
    std::uint64_t number = 0, offset = 0;
    std::string why;
  };
  bool have_bad = false;
  bad_line bad;
  bool torn_whole_row = false;  // the last line is a whole row without its "\n"
  while (std::getline(in, line)) {
    ++number;
    const bool newline = !in.eof();
    const std::uint64_t next = offset + line.size() + (newline ? 1 : 0);
    std::string_view text(line);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == std::string_view::npos) {
      offset = next;
      if (!have_bad) good_end = next;
      continue;
    }
    if (have_bad) {  // an invalid line followed by another: not a torn end
      throw data_error(concat(name, ":", bad.number, ": ", bad.why,
                              " (only the last line may be torn; refusing to guess)"));
    }
    std::string why;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception&) {
      why = "not valid JSON";
    }
    std::optional<std::string> k;
    if (why.empty()) {
      if (!j.is_object()) {
        why = "not a JSON object";
      } else if (k = key_of(j); !k) {
        why = std::string(missing);
      }
    }
    if (!why.empty()) {
      have_bad = true;
      bad = {number, offset, why};
      offset = next;
      continue;
    }
    out.keys.insert(*k);
    out.order.push_back(std::move(*k));
    out.ends.push_back(next + (newline ? 0 : 1));  // a completed last line gains its "\n"
    ++out.rows;
    if (!newline) torn_whole_row = true;
    offset = next;
    good_end = next;
  }
  in.close();
  if (have_bad) {
    std::filesystem::resize_file(path, good_end, ec);
    if (ec) {
      throw io_error(concat(fn, ": ", name, ": cannot remove the torn last line: ", ec.message()));
    }
    out.repaired = true;
  } else if (torn_whole_row) {
    std::FILE* f = std::fopen(name.c_str(), "ab");
    if (f == nullptr || std::fputc('\n', f) == EOF || std::fclose(f) != 0) {
      throw io_error(concat(fn, ": ", name, ": cannot complete the last line"));
    }
    out.repaired = true;
  }
  return out;
}

/// recover_rows keyed by the string field `key` of each row.
inline recovered_rows recover_rows(const std::filesystem::path& path, std::string_view key,
                                   std::string_view fn) {
  const std::string k(key);
  return recover_rows(
      path,
      [&k](const nlohmann::json& j) -> std::optional<std::string> {
        if (!j.contains(k) || !j[k].is_string()) return std::nullopt;
        return j[k].get<std::string>();
      },
      rlhf::detail::concat("field '", key, "' is missing or not a string"), fn);
}

/// Cuts `path` to its first `size` bytes (rows of an unfinished unit of work at its end).
inline void truncate_rows(const std::filesystem::path& path, std::uint64_t size,
                          std::string_view fn) {
  std::error_code ec;
  std::filesystem::resize_file(path, size, ec);
  if (ec) {
    throw io_error(rlhf::detail::concat(fn, ": ", path.string(),
                                        ": cannot remove an unfinished end: ", ec.message()));
  }
}

/// Appends rows to a JSONL file: one write per row, then a flush (and an fsync with
/// `durable`). io_error naming the file when it cannot be opened or written.
class row_appender {
 public:
  /// Opens (creating) `path` for appending.
  row_appender(std::filesystem::path path, bool durable, std::string fn)
      : path_(std::move(path)), durable_(durable), fn_(std::move(fn)) {
    f_ = std::fopen(path_.string().c_str(), "ab");
    if (f_ == nullptr) {
      throw io_error(
          rlhf::detail::concat(fn_, ": ", path_.string(), ": cannot open for appending"));
    }
  }
  ~row_appender() {
    if (f_ != nullptr) (void)std::fclose(f_);
  }
  row_appender(const row_appender&) = delete;
  row_appender& operator=(const row_appender&) = delete;
  row_appender(row_appender&&) = delete;
  row_appender& operator=(row_appender&&) = delete;

  /// Writes `row` (compact; invalid UTF-8 replaced by U+FFFD) and "\n", then flushes.
  void append(const nlohmann::ordered_json& row) { write(line_of(row)); }

  /// Writes `rows` as consecutive lines in one write, then flushes (nothing when empty).
  void append(const std::vector<nlohmann::ordered_json>& rows) {
    std::string text;
    for (const auto& r : rows) text += line_of(r);
    if (!text.empty()) write(text);
  }

 private:
  static std::string line_of(const nlohmann::ordered_json& row) {
    std::string line = row.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    line.push_back('\n');
    return line;
  }
  void write(const std::string& text) {
    const bool ok = std::fwrite(text.data(), 1, text.size(), f_) == text.size() &&
                    std::fflush(f_) == 0 &&
                    (!durable_ || rlhf::detail::platform::sync(::fileno(f_)) == 0);
    if (!ok)
      throw io_error(rlhf::detail::concat(fn_, ": ", path_.string(), ": cannot append a row"));
  }

  std::filesystem::path path_;
  bool durable_;
  std::string fn_;
  std::FILE* f_ = nullptr;
};

}  // namespace detail
}  // namespace cai
}  // namespace v0
}  // namespace rlhf
