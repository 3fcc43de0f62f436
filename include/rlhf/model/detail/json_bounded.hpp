// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// JSON from files we do not trust: parsing with a nesting limit, and short renderings of
// parsed values for error messages.
//
// nlohmann-json's parser keeps its own stack, but building, printing and destroying a value
// nested 100,000 levels deep recurses once per level and overflows the thread's stack. The
// files rlhf++ reads (safetensors headers, checkpoint metadata, model configs) are at most a
// few levels deep, so anything deeper than max_json_depth is refused while parsing, before
// the value is built. Values quoted in messages go through json_excerpt, which never prints
// more than a bounded number of characters.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"  // detail::concat

namespace rlhf {
inline namespace v0 {
namespace detail {

/// The deepest nesting accepted from a file: a safetensors header is 3 levels deep, a
/// checkpoint's metadata values and model configs 2.
inline constexpr int max_json_depth = 16;

/// Parses `text` as JSON of type Json (nlohmann::json or ordered_json), refusing nesting
/// deeper than max_depth. Throws Error(fn + ": " + what + ...) on a syntax error or too deep
/// a value; `callback`, when given, is nlohmann's parser callback and sees every event.
template <class Json, class Error = io_error, class Callback = std::nullptr_t>
[[nodiscard]] Json parse_json_bounded(std::string_view text, std::string_view fn,
                                      std::string_view what, int max_depth = max_json_depth,
                                      Callback callback = nullptr) {
  bool too_deep = false;
  auto guard = [&](int depth, typename Json::parse_event_t event, Json& parsed) -> bool {
    // The depth of an object/array start event is that of its parent: +1 for itself.
    const bool opens = event == Json::parse_event_t::object_start ||
                       event == Json::parse_event_t::array_start;
    if (depth + (opens ? 1 : 0) > max_depth) {
      too_deep = true;
      throw Error(concat(fn, ": ", what, " is nested deeper than ", max_depth, " levels"));
    }
    if constexpr (std::is_same_v<Callback, std::nullptr_t>) {
      (void)parsed;
      return true;
    } else {
      return callback(depth, event, parsed);
    }
  };
  try {
    return Json::parse(text.begin(), text.end(), guard);
  } catch (const typename Json::exception& e) {
    throw Error(concat(fn, ": ", what, " is not valid JSON: ", e.what()));
  }
}

/// At most `limit` characters of v's JSON text (with "..." when cut), for error messages.
/// Structured values in messages come from parses bounded by max_json_depth, so dump()
/// recurses at most that far; the text is then cut.
template <class Json>
[[nodiscard]] std::string json_excerpt(const Json& v, std::size_t limit = 80) {
  std::string s = v.dump();
  if (s.size() > limit) s = s.substr(0, limit) + "...";
  return s;
}

}  // namespace detail
}  // namespace v0
}  // namespace rlhf
