// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Small text helpers of the cai headers: a stable 64-bit hash of a string (the key of a
// prompt, the stream of its random draws), and single-pass placeholder substitution.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/config.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {
namespace detail {

/// FNV-1a, 64 bits, of the bytes of `s`: the same on every platform.
[[nodiscard]] inline std::uint64_t fnv1a64(std::string_view s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

/// `v` as 16 lowercase hexadecimal digits.
[[nodiscard]] inline std::string hex16(std::uint64_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = digits[v & 0xf];
  return s;
}

/// `text` with every "{name}" of `values` replaced by its value, in one left-to-right pass:
/// substituted text is never scanned again (a "{critique}" inside a response stays as it
/// is), and braces that name no value are kept.
[[nodiscard]] inline std::string substitute(
    std::string_view text,
    const std::vector<std::pair<std::string_view, std::string_view>>& values) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    bool replaced = false;
    if (text[i] == '{') {
      for (const auto& [name, value] : values) {
        if (text.size() - i >= name.size() + 2 && text.compare(i + 1, name.size(), name) == 0 &&
            text[i + 1 + name.size()] == '}') {
          out.append(value);
          i += name.size() + 2;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(text[i++]);
  }
  return out;
}

/// True when `text` holds "{name}".
[[nodiscard]] inline bool has_placeholder(std::string_view text, std::string_view name) {
  std::string p;
  p.reserve(name.size() + 2);
  p.append("{").append(name).append("}");
  return text.find(p) != std::string_view::npos;
}

}  // namespace detail
}  // namespace cai
}  // namespace v0
}  // namespace rlhf
