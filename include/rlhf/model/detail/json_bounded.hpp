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
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"  // detail::concat

namespace rlhf {
inline namespace v0 {
namespace detail {

/// The deepest nesting accepted from a file: a safetensors header is 3 levels deep, a
/// checkpoint's metadata values and model configs 2.
inline constexpr int max_json_depth = 16;

/// Builds a JSON value from nlohmann's SAX events in time linear in the text: refuses
/// nesting deeper than max_depth as each container opens (before anything deeper is built),
/// and records the top-level object's keys in text order and the first key seen twice there.
/// (nlohmann's callback parser scans the parent object each time an object ends: quadratic
/// for an object of n objects, such as a safetensors header of n tensors.)
template <class Json>
class bounded_json_builder {
 public:
  explicit bounded_json_builder(Json& root, int max_depth = max_json_depth)
      : root_(root), max_depth_(max_depth) {}

  bool null() { return add(nullptr) != nullptr; }
  bool boolean(bool v) { return add(v) != nullptr; }
  bool number_integer(typename Json::number_integer_t v) { return add(v) != nullptr; }
  bool number_unsigned(typename Json::number_unsigned_t v) { return add(v) != nullptr; }
  bool number_float(typename Json::number_float_t v, const typename Json::string_t&) {
    return add(v) != nullptr;
  }
  bool string(typename Json::string_t& v) { return add(std::move(v)) != nullptr; }
  bool binary(typename Json::binary_t& v) { return add(Json::binary(std::move(v))) != nullptr; }
  bool start_object(std::size_t) { return open(Json::object()); }
  bool start_array(std::size_t) { return open(Json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(typename Json::string_t& k) {
    if (stack_.size() == 1) {
      if (keys_.insert(k).second) {
        top_level_keys.push_back(k);
      } else if (duplicate_key.empty()) {
        duplicate_key = k;
      }
    }
    slot_ = &(*stack_.back())[std::move(k)];
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const typename Json::exception& e) {
    error = e.what();
    return false;
  }

  bool too_deep = false;                    ///< a container opened below max_depth
  std::string error;                        ///< nlohmann's message for a syntax error
  std::vector<std::string> top_level_keys;  ///< the top-level keys, first occurrences in order
  std::string duplicate_key;                ///< the first top-level key seen twice

 private:
  Json* add(Json v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    if (stack_.back()->is_array()) {
      stack_.back()->push_back(std::move(v));
      return &stack_.back()->back();
    }
    *slot_ = std::move(v);
    return slot_;
  }
  bool open(Json v) {
    if (stack_.size() + 1 > static_cast<std::size_t>(max_depth_)) {
      too_deep = true;
      return false;
    }
    stack_.push_back(add(std::move(v)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  Json& root_;
  int max_depth_;
  std::vector<Json*> stack_;
  Json* slot_ = nullptr;
  std::unordered_set<std::string> keys_;
};

/// Runs `builder` over `text`; throws Error(fn + ": " + what + ...) when the text is too deep
/// or not valid JSON (nlohmann's message, which quotes the last token read, cut to 200
/// characters).
template <class Json, class Error = io_error>
void build_json_bounded(std::string_view text, std::string_view fn, std::string_view what,
                        bounded_json_builder<Json>& builder, int max_depth = max_json_depth) {
  bool ok = false;
  try {
    ok = Json::sax_parse(text.begin(), text.end(), &builder);
  } catch (const typename Json::exception& e) {  // e.g. invalid UTF-8 in a string
    builder.error = e.what();
  }
  if (builder.too_deep) {
    throw Error(concat(fn, ": ", what, " is nested deeper than ", max_depth, " levels"));
  }
  if (!ok || !builder.error.empty()) {
    std::string why = builder.error.empty() ? std::string("parse error") : builder.error;
    if (why.size() > 200) why = why.substr(0, 200) + "...";
    throw Error(concat(fn, ": ", what, " is not valid JSON: ", why));
  }
}

/// Parses `text` as JSON of type Json (nlohmann::json or ordered_json) in linear time,
/// refusing nesting deeper than max_depth; see build_json_bounded for the errors.
template <class Json, class Error = io_error>
[[nodiscard]] Json parse_json_bounded(std::string_view text, std::string_view fn,
                                      std::string_view what, int max_depth = max_json_depth) {
  Json out;
  bounded_json_builder<Json> builder(out, max_depth);
  build_json_bounded<Json, Error>(text, fn, what, builder, max_depth);
  return out;
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
