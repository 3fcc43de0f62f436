// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// A whole small text file (a model folder's config.json, tokenizer.json, merges.txt) read
// into a string, with an io_error naming the caller and the path when it cannot be read.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"  // detail::concat

namespace rlhf {
inline namespace v0 {
namespace detail {

/// The whole content of `path`; io_error "fn: path: ..." when it cannot be read.
inline std::string read_text_file(const std::filesystem::path& path, std::string_view fn) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw io_error(concat(fn, ": ", path.string(), ": no such file"));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  if (!in) throw io_error(concat(fn, ": ", path.string(), ": read error"));
  return s.str();
}

}  // namespace detail
}  // namespace v0
}  // namespace rlhf
