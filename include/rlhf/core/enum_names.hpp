// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Names of enumerators, both ways, from one table per enum.
//
// An enum E gets its names by specialising rlhf::enum_names<E> next to its definition:
//
//   template <>
//   struct enum_names<losses::kto_loss_type> {
//     static constexpr std::array<enum_name<losses::kto_loss_type>, 2> values{{
//         {losses::kto_loss_type::kto, "kto"},
//         {losses::kto_loss_type::apo_zero_unpaired, "apo_zero_unpaired"},
//     }};
//   };
//   static_assert(enum_table_covers<losses::kto_loss_type>(2));
//
// `values` lists every enumerator once, in declaration order (entry i is the enumerator
// with value i), each with its canonical name, a string literal. An optional `aliases`
// array of the same element type holds further accepted spellings (TRL's "kl" for k1).
// to_string(e) gives the canonical name; enum_from_string<E>(text, fn, arg) parses a
// canonical name or an alias and throws config_error naming fn and arg and listing the
// accepted names otherwise.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {

/// One enumerator and its name (a string literal, so `name.data()` is null-terminated).
template <class E>
struct enum_name {
  E value;                ///< The enumerator.
  std::string_view name;  ///< Its name.
};

/// The names of E's enumerators: specialised for every enum that has names, with a
/// `static constexpr std::array<enum_name<E>, K> values` (one entry per enumerator, in
/// order) and optionally `aliases` (further accepted spellings). Unspecialised for others.
template <class E>
struct enum_names;

/// An enum with an enum_names specialisation.
template <class E>
concept named_enum = std::is_enum_v<E> && requires {
  enum_names<E>::values;
};

namespace detail {

template <class E>
concept enum_with_aliases = named_enum<E> && requires {
  enum_names<E>::aliases;
};

/// The aliases of E (an empty array when it has none).
template <named_enum E>
constexpr auto enum_aliases() {
  if constexpr (enum_with_aliases<E>) {
    return enum_names<E>::aliases;
  } else {
    return std::array<enum_name<E>, 0>{};
  }
}

}  // namespace detail

/// True when E's table lists `count` enumerators, entry i being the enumerator of value i,
/// with distinct non-empty names, and every alias names a listed enumerator: the condition
/// every table is static_assert-ed with.
template <named_enum E>
constexpr bool enum_table_covers(std::size_t count) {
  const auto& v = enum_names<E>::values;
  if (v.size() != count) return false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (static_cast<std::size_t>(static_cast<std::underlying_type_t<E>>(v[i].value)) != i) {
      return false;
    }
    if (v[i].name.empty()) return false;
    for (std::size_t j = 0; j < i; ++j) {
      if (v[j].name == v[i].name) return false;
    }
  }
  // Not an index loop: over an empty alias array nvcc flags `k < 0` as a pointless comparison.
  return std::ranges::all_of(detail::enum_aliases<E>(), [count](const auto& alias) {
    return static_cast<std::size_t>(static_cast<std::underlying_type_t<E>>(alias.value)) < count;
  });
}

/// The `values` of an enum_names table made from a traits table whose rows have the members
/// `type` (an E) and `name` (a string_view): for families that keep one row per enumerator.
template <class E, class Row, std::size_t K>
constexpr std::array<enum_name<E>, K> enum_names_from(const std::array<Row, K>& rows) {
  std::array<enum_name<E>, K> out{};
  for (std::size_t i = 0; i < K; ++i) out[i] = {rows[i].type, rows[i].name};
  return out;
}

/// The number of enumerators of E (the size of its table).
template <named_enum E>
inline constexpr std::size_t enum_count = enum_names<E>::values.size();

/// check_enum with the count taken from E's table: an out-of-range value of a named enum is
/// a config_error naming the field.
template <named_enum E>
void check_enum(std::string_view fn, std::string_view name, E value) {
  check_enum(fn, name, value, static_cast<int>(enum_count<E>));
}

/// The canonical name of `e`; "unknown" for a value outside the enum.
template <named_enum E>
[[nodiscard]] constexpr std::string_view to_string(E e) noexcept {
  for (const auto& entry : enum_names<E>::values) {
    if (entry.value == e) return entry.name;
  }
  return "unknown";
}

/// The enumerator named `text` (a canonical name or an alias); nullopt when none is.
template <named_enum E>
[[nodiscard]] constexpr std::optional<E> enum_find(std::string_view text) noexcept {
  for (const auto& entry : enum_names<E>::values) {
    if (entry.name == text) return entry.value;
  }
  for (const auto& entry : detail::enum_aliases<E>()) {
    if (entry.name == text) return entry.value;
  }
  return std::nullopt;
}

/// The accepted names of E for messages: the canonical names, comma-separated, each
/// followed by its aliases in parentheses ("k1 (kl), abs, mse (k2), k3, full").
template <named_enum E>
[[nodiscard]] std::string enum_accepted_names() {
  std::string out;
  for (const auto& entry : enum_names<E>::values) {
    if (!out.empty()) out += ", ";
    out += entry.name;
    std::string aliases;
    for (const auto& a : detail::enum_aliases<E>()) {
      if (a.value != entry.value) continue;
      if (!aliases.empty()) aliases += ", ";
      aliases += a.name;
    }
    if (!aliases.empty()) out += detail::concat(" (", aliases, ")");
  }
  return out;
}

/// The enumerator named `text`; otherwise a config_error
/// "<fn>: unknown <arg> '<text>'; accepted: <enum_accepted_names>".
template <named_enum E>
[[nodiscard]] E enum_from_string(std::string_view text, std::string_view fn, std::string_view arg) {
  if (const std::optional<E> e = enum_find<E>(text)) return *e;
  throw config_error(
      detail::concat(fn, ": unknown ", arg, " '", text, "'; accepted: ", enum_accepted_names<E>()));
}

}  // namespace v0
}  // namespace rlhf
