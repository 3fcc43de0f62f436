// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Validation helpers used by every public entry point. Each throws the matching
// rlhf:: exception with a message of the form
//   "<function>: <argument> <what was expected>, got <what was found>".
#pragma once

#include <cmath>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/shape.hpp"

namespace rlhf {
inline namespace v0 {
namespace detail {

template <class... Parts>
[[nodiscard]] std::string concat(const Parts&... parts) {
  std::ostringstream os;
  os.precision(9);
  (os << ... << parts);
  return os.str();
}

}  // namespace detail

/// `arg` must have exactly the shape `expected`.
inline void check_shape(std::string_view fn, std::string_view arg, const shape& actual,
                        const shape& expected, std::string_view why = {}) {
  if (actual == expected) return;
  throw shape_error(detail::concat(fn, ": ", arg, " has shape ", actual.str(), ", expected ",
                                   expected.str(), why.empty() ? "" : " (", why,
                                   why.empty() ? "" : ")"));
}

/// `a` and `b` must have the same shape.
inline void check_same_shape(std::string_view fn, std::string_view a_name, const shape& a,
                             std::string_view b_name, const shape& b) {
  if (a == b) return;
  throw shape_error(detail::concat(fn, ": ", a_name, " has shape ", a.str(), " but ", b_name,
                                   " has shape ", b.str(), "; they must match"));
}

/// `arg` must have rank in [lo, hi].
inline void check_rank(std::string_view fn, std::string_view arg, const shape& s, int lo,
                       int hi) {
  if (s.rank() >= lo && s.rank() <= hi) return;
  throw shape_error(detail::concat(fn, ": ", arg, " must have rank ", lo,
                                   lo == hi ? "" : detail::concat("..", hi), ", got shape ",
                                   s.str()));
}

/// A named size that must equal another one, e.g. the inner dimension of a product.
inline void check_dim(std::string_view fn, std::string_view what, index_t actual,
                      index_t expected) {
  if (actual == expected) return;
  throw shape_error(
      detail::concat(fn, ": ", what, " must be ", expected, ", got ", actual));
}

/// A hyper-parameter condition: `ok` or config_error("fn: name must be <rule>, got value").
template <class T>
void check_config(bool ok, std::string_view fn, std::string_view name, std::string_view rule,
                  const T& value) {
  if (ok) return;
  throw config_error(detail::concat(fn, ": ", name, " must be ", rule, ", got ", value));
}

/// An enum option must hold one of its `count` enumerators, numbered 0 .. count - 1: an
/// out-of-range integer cast to the enum is a config_error naming the field and the value.
template <class E>
requires std::is_enum_v<E>
void check_enum(std::string_view fn, std::string_view name, E value, int count) {
  const auto v = static_cast<long long>(static_cast<std::underlying_type_t<E>>(value));
  if (v >= 0 && v < count) return;
  throw config_error(detail::concat(fn, ": ", name, " must be one of its ", count,
                                    " enumerators (0..", count - 1, "), got ", v));
}

/// Every value of `values` must be finite; reports the first offender and its index.
inline void check_finite(std::string_view fn, std::string_view arg,
                         std::span<const float> values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      throw data_error(detail::concat(fn, ": ", arg, " must be finite, got ", values[i],
                                      " at flat index ", i));
    }
  }
}

}  // namespace v0
}  // namespace rlhf
