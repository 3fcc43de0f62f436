// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Streaming reader of JSON Lines files (one JSON object per line), the on-disk form of the
// datasets of rlhf/data/formats.hpp (docs/data.md).
//
//   rlhf::data::jsonl_reader    line by line, bounded memory, restartable at a position
//   rlhf::data::jsonl_position  {byte offset, line number}: where reading continues
//   rlhf::data::on_error        raise (data_error) or skip (count and keep a few messages)
//
// The reader holds one line (at most max_line_bytes) and a 64 KiB read buffer, never the
// file. Blank lines (empty or only spaces/tabs) are skipped, a trailing "\r" is dropped
// (CRLF files), and the last line needs no final newline. Errors read
// "file:line: what", e.g. "train.jsonl:12: field 'chosen': expected a string, got 123".
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/json_bounded.hpp"

namespace rlhf {
inline namespace v0 {
namespace data {

/// What a reader does with a bad line (over-long, not JSON, not an object, wrong fields).
enum class on_error {
  raise,  ///< throw data_error naming the file, the line number and the field
  skip,   ///< count the line, keep the first few messages, and go on with the next line
};

/// Where reading continues: the byte offset of the next unread byte and the number of lines
/// (blank ones included) before it. A line's number is 1-based: the first line of a file is
/// line 1, read from position {0, 0}.
struct jsonl_position {
  std::uint64_t byte_offset = 0;  ///< offset of the next unread byte
  std::uint64_t line = 0;         ///< lines before byte_offset
  /// Equal when both members are.
  friend bool operator==(const jsonl_position&, const jsonl_position&) = default;
};

/// Options of jsonl_reader.
struct jsonl_options {
  /// Longest accepted line in bytes (without its "\n"); a longer one is a bad line. The
  /// reader never holds more than this plus its read buffer.
  std::size_t max_line_bytes = std::size_t{16} << 20;
  /// What a bad line does.
  on_error errors = on_error::raise;
  /// With on_error::skip: how many messages of skipped lines are kept (the rest are counted).
  std::size_t max_kept_messages = 8;
};

/// One non-blank line as read: its text (no "\n", no trailing "\r"), its 1-based number and
/// the byte offset where it starts. `text` stays valid until the next read or seek.
struct jsonl_line {
  std::string_view text;     ///< the line's bytes
  std::uint64_t number = 0;  ///< 1-based line number
  std::uint64_t offset = 0;  ///< byte offset of its first byte
};

/// Reads a JSONL file line by line; see the top of this header.
class jsonl_reader {
 public:
  /// Opens `path` and starts reading at `start` (a position() saved earlier, or the start
  /// of the file). A file that cannot be opened is an io_error.
  explicit jsonl_reader(std::filesystem::path path, jsonl_options options = {},
                        jsonl_position start = {})
      : path_(std::move(path)), name_(path_.string()), options_(options) {
    in_.open(path_, std::ios::binary);
    if (!in_) throw io_error(rlhf::detail::concat(name_, ": cannot open for reading"));
    buffer_.resize(buffer_bytes);
    seek(start);
  }

  /// Continues reading at `pos` (from position() of a reader of the same file). A position
  /// past the end of the file is a data_error.
  void seek(jsonl_position pos) {
    in_.clear();
    in_.seekg(0, std::ios::end);
    const auto size = static_cast<std::uint64_t>(in_.tellg());
    if (pos.byte_offset > size) {
      throw data_error(rlhf::detail::concat(name_, ": cannot seek to byte ", pos.byte_offset,
                                            ", the file has ", size, " bytes"));
    }
    in_.seekg(static_cast<std::streamoff>(pos.byte_offset), std::ios::beg);
    pos_ = pos;
    begin_ = end_ = 0;
    eof_ = false;
  }

  /// Where the next read starts.
  [[nodiscard]] jsonl_position position() const noexcept { return pos_; }

  /// The file being read.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  /// The options it reads with.
  [[nodiscard]] const jsonl_options& options() const noexcept { return options_; }

  /// The next non-blank line, or false at the end of the file. An over-long line is a bad
  /// line (see on_error).
  bool next_line(jsonl_line& out) {
    for (;;) {
      const std::uint64_t start = pos_.byte_offset;
      bool too_long = false;
      if (!read_raw(line_, too_long)) return false;
      ++pos_.line;
      if (too_long) {
        reject(data_error(rlhf::detail::concat(where(), ": line is longer than ",
                                               options_.max_line_bytes, " bytes")));
        continue;
      }
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (line_.find_first_not_of(" \t") == std::string::npos) continue;  // blank
      out = jsonl_line{line_, pos_.line, start};
      return true;
    }
  }

  /// The next line that is a JSON object, or false at the end of the file. Invalid JSON,
  /// nesting deeper than 16 levels, a value that is not an object and a top-level key given
  /// twice are bad lines (see on_error).
  bool next_object(nlohmann::json& out) {
    jsonl_line line;
    while (next_line(line)) {
      try {
        out = parse_object(line.text, where());
        return true;
      } catch (const data_error& e) {
        reject(e);
      }
    }
    return false;
  }

  /// "file:line" of the line read last: the prefix of every message about it.
  [[nodiscard]] std::string where() const { return rlhf::detail::concat(name_, ":", pos_.line); }

  /// Applies the error policy to `e`, an error about the line read last: rethrows it
  /// (on_error::raise) or counts it (on_error::skip). Callers that check a line's fields
  /// report through this, so that one policy covers the file.
  void reject(const data_error& e) {
    if (options_.errors == on_error::raise) throw e;
    ++skipped_;
    if (messages_.size() < options_.max_kept_messages) messages_.emplace_back(e.what());
  }

  /// Bad lines skipped so far (on_error::skip).
  [[nodiscard]] std::uint64_t skipped() const noexcept { return skipped_; }

  /// The messages of the first max_kept_messages skipped lines.
  [[nodiscard]] const std::vector<std::string>& messages() const noexcept { return messages_; }

  /// Parses one line's text as a JSON object; `where` ("file:line") starts the messages.
  [[nodiscard]] static nlohmann::json parse_object(std::string_view text, std::string_view where) {
    nlohmann::json value;
    rlhf::detail::bounded_json_builder<nlohmann::json> builder(value);
    rlhf::detail::build_json_bounded<nlohmann::json, data_error>(text, where, "the line", builder);
    if (!value.is_object()) {
      throw data_error(rlhf::detail::concat(where, ": expected a JSON object, got ",
                                            rlhf::detail::json_excerpt(value)));
    }
    if (!builder.duplicate_key.empty()) {
      throw data_error(rlhf::detail::concat(
          where, ": field '", rlhf::detail::json_excerpt(nlohmann::json(builder.duplicate_key), 60),
          "' appears twice"));
    }
    return value;
  }

  /// Size of the read buffer in bytes.
  static constexpr std::size_t buffer_bytes = std::size_t{64} << 10;

 private:
  // Reads up to the next '\n' (consumed, not stored) into `line`; false at the end of the
  // file with nothing read. Past max_line_bytes the rest of the line is discarded and
  // too_long is set.
  bool read_raw(std::string& line, bool& too_long) {
    line.clear();
    bool any = false;
    for (;;) {
      if (begin_ == end_ && !fill()) return any;
      any = true;
      const char* first = buffer_.data() + begin_;
      const std::size_t avail = end_ - begin_;
      const void* nl = std::memchr(first, '\n', avail);
      const std::size_t take = nl != nullptr
                                   ? static_cast<std::size_t>(static_cast<const char*>(nl) - first)
                                   : avail;
      if (!too_long) {
        if (line.size() + take > options_.max_line_bytes) {
          too_long = true;
          line.clear();
          line.shrink_to_fit();
        } else {
          line.append(first, take);
        }
      }
      const std::size_t consumed = take + (nl != nullptr ? 1 : 0);
      begin_ += consumed;
      pos_.byte_offset += consumed;
      if (nl != nullptr) return true;
    }
  }

  bool fill() {
    if (eof_) return false;
    in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    const auto got = static_cast<std::size_t>(in_.gcount());
    if (got == 0) {
      if (in_.bad()) throw io_error(rlhf::detail::concat(name_, ": read failed"));
      eof_ = true;
      return false;
    }
    begin_ = 0;
    end_ = got;
    return true;
  }

  std::filesystem::path path_;
  std::string name_;
  jsonl_options options_;
  std::ifstream in_;
  std::vector<char> buffer_;  // (buffer_bytes,) bytes read ahead
  std::size_t begin_ = 0;     // unread part of buffer_ is [begin_, end_)
  std::size_t end_ = 0;
  bool eof_ = false;
  std::string line_;  // the current line, at most max_line_bytes
  jsonl_position pos_;
  std::uint64_t skipped_ = 0;
  std::vector<std::string> messages_;
};

}  // namespace data
}  // namespace v0
}  // namespace rlhf
