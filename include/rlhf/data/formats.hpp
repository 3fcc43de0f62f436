// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Typed examples of TRL's dataset formats, and their detection from a JSON object
// (docs/data.md, "Formats").
//
//   format                keys (standard: strings; conversational: lists of messages)
//   language_modeling     "text"                       | "messages"
//   prompt_completion     "prompt", "completion"
//   preference            ["prompt"], "chosen", "rejected", optional "margin" (number) and
//                         "soft_label" (number in [0, 1]: P(chosen is the better one))
//   unpaired_preference   "prompt", "completion", "label" (bool)
//   prompt_only           "prompt"
//
// A preference example without "prompt" has an implicit prompt: chosen and rejected are full
// texts and their longest common prefix becomes the prompt (string level for text, message
// level for conversations; see extract_prompt). Other keys are ignored (datasets carry extra
// columns). A field of the wrong type is a data_error naming it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/json_bounded.hpp"

namespace rlhf {
inline namespace v0 {
namespace data {

/// TRL's dataset types (the "type" axis; standard vs conversational is the other).
enum class format {
  language_modeling,    ///< "text" / "messages"
  prompt_completion,    ///< "prompt", "completion"
  preference,           ///< ["prompt"], "chosen", "rejected" [, "margin"]
  unpaired_preference,  ///< "prompt", "completion", "label"
  prompt_only,          ///< "prompt"
};

}  // namespace data

/// The names of the dataset formats, as written in messages and docs.
template <>
struct enum_names<data::format> {
  /// Every format with its name, in declaration order.
  static constexpr std::array<enum_name<data::format>, 5> values{{
      {data::format::language_modeling, "language_modeling"},
      {data::format::prompt_completion, "prompt_completion"},
      {data::format::preference, "preference"},
      {data::format::unpaired_preference, "unpaired_preference"},
      {data::format::prompt_only, "prompt_only"},
  }};
};
static_assert(enum_table_covers<data::format>(5));

namespace data {

/// The name of a format as written in messages and docs ("preference", ...).
[[nodiscard]] constexpr std::string_view format_name(format f) noexcept {
  return rlhf::to_string(f);
}

/// One chat message: {"role": ..., "content": ...}.
struct message {
  std::string role;     ///< "system", "user" or "assistant"
  std::string content;  ///< the text
  /// Equal when role and content are.
  friend bool operator==(const message&, const message&) = default;
};

/// A field's value: text (standard format) or a list of messages (conversational format).
struct content {
  bool conversational = false;    ///< which of the two members holds the value
  std::string text;               ///< standard format
  std::vector<message> messages;  ///< conversational format
  /// Equal when all members are.
  friend bool operator==(const content&, const content&) = default;
};

/// One example of any format. Members a format does not have stay empty.
struct example {
  format kind = format::language_modeling;  ///< the detected format
  bool conversational = false;              ///< every field is a list of messages
  content text;                             ///< language_modeling: "text" or "messages"
  content prompt;      ///< all formats but language_modeling (preference: maybe extracted)
  content completion;  ///< prompt_completion, unpaired_preference
  content chosen;      ///< preference (without the prompt when it was implicit)
  content rejected;    ///< preference (without the prompt when it was implicit)
  std::optional<double> margin;  ///< preference: optional "margin"
  /// preference: optional "soft_label" in [0, 1], the probability that chosen is the better
  /// response (an AI judge's, for example); read by the trainers that ask for soft labels.
  std::optional<double> soft_label;
  std::optional<bool> label;     ///< unpaired_preference: "label" (true = desirable)
  bool implicit_prompt = false;  ///< preference without "prompt": prompt was extracted
};

namespace detail {

[[nodiscard]] inline data_error field_error(std::string_view where, std::string_view field,
                                            std::string_view expected, const nlohmann::json& got) {
  return data_error(rlhf::detail::concat(where, ": field '", field, "': expected ", expected,
                                         ", got ", rlhf::detail::json_excerpt(got)));
}

[[nodiscard]] inline std::string string_field(const nlohmann::json& v, std::string_view where,
                                              std::string_view field) {
  if (!v.is_string()) throw field_error(where, field, "a string", v);
  return v.get<std::string>();
}

[[nodiscard]] inline std::vector<message> messages_field(const nlohmann::json& v,
                                                         std::string_view where,
                                                         std::string_view field) {
  std::vector<message> out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto& m = v[i];
    const std::string name = rlhf::detail::concat(field, "[", i, "]");
    if (!m.is_object()) throw field_error(where, name, R"(a message {"role", "content"})", m);
    const auto role = m.find("role");
    const auto text = m.find("content");
    if (role == m.end())
      throw data_error(rlhf::detail::concat(where, ": field '", name, ".role' is missing"));
    if (text == m.end())
      throw data_error(rlhf::detail::concat(where, ": field '", name, ".content' is missing"));
    out.push_back(message{string_field(*role, where, name + ".role"),
                          string_field(*text, where, name + ".content")});
  }
  return out;
}

// A string (standard) or a list of messages (conversational).
[[nodiscard]] inline content content_field(const nlohmann::json& v, std::string_view where,
                                           std::string_view field) {
  content c;
  if (v.is_string()) {
    c.text = v.get<std::string>();
  } else if (v.is_array()) {
    c.conversational = true;
    c.messages = messages_field(v, where, field);
  } else {
    throw field_error(where, field, "a string or a list of messages", v);
  }
  return c;
}

}  // namespace detail

/// Splits an implicit-prompt preference pair into prompt, chosen and rejected, as TRL's
/// extract_prompt does. Text: the longest common byte prefix, moved back to a UTF-8
/// character boundary and, when the byte before the split is a space, back before that space
/// (the space starts the responses). Conversations: the longest common prefix of whole
/// messages. `chosen` and `rejected` keep what follows the prefix.
inline void extract_prompt(content& prompt, content& chosen, content& rejected) {
  prompt = content{};
  prompt.conversational = chosen.conversational;
  if (chosen.conversational) {
    std::size_t n = 0;
    while (n < chosen.messages.size() && n < rejected.messages.size() &&
           chosen.messages[n] == rejected.messages[n]) {
      ++n;
    }
    const auto cut = static_cast<std::ptrdiff_t>(n);
    prompt.messages.assign(chosen.messages.begin(), chosen.messages.begin() + cut);
    chosen.messages.erase(chosen.messages.begin(), chosen.messages.begin() + cut);
    rejected.messages.erase(rejected.messages.begin(), rejected.messages.begin() + cut);
    return;
  }
  const std::string& a = chosen.text;
  const std::string& b = rejected.text;
  std::size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  // Not inside a UTF-8 sequence: back up over continuation bytes (10xxxxxx).
  while (n > 0 && n < a.size() && (static_cast<unsigned char>(a[n]) & 0xC0u) == 0x80u) --n;
  if (n > 0 && (n < a.size() || n < b.size()) && a[n - 1] == ' ') --n;
  prompt.text = a.substr(0, n);
  chosen.text.erase(0, n);
  rejected.text.erase(0, n);
}

/// The format an object's keys say, or nullopt when it has none of the known keys. Order:
/// "messages"/"text" → language_modeling; "chosen" and "rejected" → preference; "prompt",
/// "completion" and "label" → unpaired_preference; "prompt" and "completion" →
/// prompt_completion; "prompt" → prompt_only.
[[nodiscard]] inline std::optional<format> detect_format(const nlohmann::json& obj) {
  if (!obj.is_object()) return std::nullopt;
  const auto has = [&](const char* k) { return obj.contains(k); };
  if (has("messages") || has("text")) return format::language_modeling;
  if (has("chosen") || has("rejected")) return format::preference;
  if (has("prompt") && has("completion")) {
    return has("label") ? format::unpaired_preference : format::prompt_completion;
  }
  if (has("prompt")) return format::prompt_only;
  return std::nullopt;
}

/// Whether an object has the fields of format `f` (it may have others: a row of one dataset
/// can serve several trainers, e.g. "messages" for SFT beside "prompt"/"chosen"/"rejected").
[[nodiscard]] inline bool has_fields_of(const nlohmann::json& obj, format f) {
  if (!obj.is_object()) return false;
  const auto has = [&](const char* k) { return obj.contains(k); };
  switch (f) {
    case format::language_modeling: return has("messages") || has("text");
    case format::preference: return has("chosen") && has("rejected");
    case format::unpaired_preference: return has("prompt") && has("completion") && has("label");
    case format::prompt_completion: return has("prompt") && has("completion");
    case format::prompt_only: return has("prompt");
  }
  return false;
}

/// Reads one example from a JSON object. `where` ("file:line") starts every message;
/// `expected`, when given, is the format the object must have (a file holds one format); an
/// object with the fields of `expected` is read as that format whatever else it holds.
/// Missing or mistyped fields, a mix of text and message lists, and a format other than
/// `expected` are data_errors.
[[nodiscard]] inline example parse_example(const nlohmann::json& obj, std::string_view where,
                                           std::optional<format> expected = std::nullopt) {
  using rlhf::detail::concat;
  if (!obj.is_object()) {
    throw data_error(
        concat(where, ": expected a JSON object, got ", rlhf::detail::json_excerpt(obj)));
  }
  const auto kind = expected && has_fields_of(obj, *expected) ? std::optional(*expected)
                                                              : detect_format(obj);
  if (!kind) {
    throw data_error(concat(where,
                            ": no field of a known format (text, messages, prompt, "
                            "completion, chosen, rejected, label)"));
  }
  if (expected && *kind != *expected) {
    throw data_error(concat(where, ": a ", format_name(*kind), " example, expected ",
                            format_name(*expected), " (the format of the file)"));
  }
  example ex;
  ex.kind = *kind;
  const auto required = [&](const char* key) -> const nlohmann::json& {
    const auto it = obj.find(key);
    if (it == obj.end()) {
      throw data_error(
          concat(where, ": field '", key, "' is missing (", format_name(*kind), " format)"));
    }
    return *it;
  };
  switch (*kind) {
    case format::language_modeling:
      if (obj.contains("messages")) {
        const auto& m = obj["messages"];
        if (!m.is_array()) throw detail::field_error(where, "messages", "a list of messages", m);
        ex.text = detail::content_field(m, where, "messages");
      } else {
        ex.text.text = detail::string_field(obj["text"], where, "text");
      }
      ex.conversational = ex.text.conversational;
      return ex;
    case format::preference:
      ex.chosen = detail::content_field(required("chosen"), where, "chosen");
      ex.rejected = detail::content_field(required("rejected"), where, "rejected");
      if (obj.contains("margin")) {
        const auto& m = obj["margin"];
        if (!m.is_number()) throw detail::field_error(where, "margin", "a number", m);
        ex.margin = m.get<double>();
      }
      if (obj.contains("soft_label")) {
        const auto& p = obj["soft_label"];
        if (!p.is_number() || !(p.get<double>() >= 0.0 && p.get<double>() <= 1.0)) {
          throw detail::field_error(where, "soft_label", "a number in [0, 1]", p);
        }
        ex.soft_label = p.get<double>();
      }
      if (obj.contains("prompt")) {
        ex.prompt = detail::content_field(obj["prompt"], where, "prompt");
      }
      break;
    case format::unpaired_preference: {
      const auto& l = required("label");
      if (!l.is_boolean()) throw detail::field_error(where, "label", "a bool", l);
      ex.label = l.get<bool>();
      [[fallthrough]];
    }
    case format::prompt_completion:
      ex.prompt = detail::content_field(required("prompt"), where, "prompt");
      ex.completion = detail::content_field(required("completion"), where, "completion");
      break;
    case format::prompt_only:
      ex.prompt = detail::content_field(required("prompt"), where, "prompt");
      break;
  }
  // Every field present must be of the same kind: all text or all message lists.
  const content* first = nullptr;
  const char* first_name = nullptr;
  const std::pair<const char*, const content*> fields[] = {{"prompt", &ex.prompt},
                                                           {"completion", &ex.completion},
                                                           {"chosen", &ex.chosen},
                                                           {"rejected", &ex.rejected}};
  for (const auto& [name, c] : fields) {
    if (!obj.contains(name)) continue;
    if (first == nullptr) {
      first = c;
      first_name = name;
    } else if (c->conversational != first->conversational) {
      throw data_error(concat(where, ": field '", name, "' is ",
                              c->conversational ? "a list of messages" : "a string", " but field '",
                              first_name, "' is ",
                              first->conversational ? "a list of messages" : "a string"));
    }
  }
  ex.conversational = first != nullptr && first->conversational;
  if (ex.kind == format::preference && !obj.contains("prompt")) {
    ex.implicit_prompt = true;
    extract_prompt(ex.prompt, ex.chosen, ex.rejected);
  }
  return ex;
}

}  // namespace data
}  // namespace v0
}  // namespace rlhf
