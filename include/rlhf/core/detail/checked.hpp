// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Overflow-checked integer arithmetic for sizes: element counts, byte counts, offsets.
// Each helper stores the exact result in `out` and returns true, or returns false (leaving
// `out` unspecified) when the result does not fit the type. The callers turn a false into
// the typed error of their context (shape_error, config_error, backend_error).
#pragma once

#include <limits>
#include <type_traits>

namespace rlhf {
inline namespace v0 {
namespace detail {

#if defined(__has_builtin)
#if __has_builtin(__builtin_mul_overflow) && __has_builtin(__builtin_add_overflow)
#define RLHF_DETAIL_HAS_OVERFLOW_BUILTINS 1
#endif
#elif defined(__GNUC__)
#define RLHF_DETAIL_HAS_OVERFLOW_BUILTINS 1
#endif

/// out = a * b; false when the product overflows I. I is a built-in integer type.
template <class I>
[[nodiscard]] constexpr bool checked_mul(I a, I b, I& out) noexcept {
  static_assert(std::is_integral_v<I> && !std::is_same_v<I, bool>);
#ifdef RLHF_DETAIL_HAS_OVERFLOW_BUILTINS
  return !__builtin_mul_overflow(a, b, &out);
#else
  using lim = std::numeric_limits<I>;
  if (a == 0 || b == 0) {
    out = 0;
    return true;
  }
  if constexpr (std::is_signed_v<I>) {
    if (a > 0) {
      if (b > 0 ? a > lim::max() / b : b < lim::min() / a) return false;
    } else {
      if (b > 0 ? a < lim::min() / b : a < lim::max() / b) return false;
    }
  } else {
    if (a > lim::max() / b) return false;
  }
  out = static_cast<I>(a * b);
  return true;
#endif
}

/// out = a + b; false when the sum overflows I. I is a built-in integer type.
template <class I>
[[nodiscard]] constexpr bool checked_add(I a, I b, I& out) noexcept {
  static_assert(std::is_integral_v<I> && !std::is_same_v<I, bool>);
#ifdef RLHF_DETAIL_HAS_OVERFLOW_BUILTINS
  return !__builtin_add_overflow(a, b, &out);
#else
  using lim = std::numeric_limits<I>;
  if constexpr (std::is_signed_v<I>) {
    if (b > 0 ? a > lim::max() - b : a < lim::min() - b) return false;
  } else {
    if (a > lim::max() - b) return false;
  }
  out = static_cast<I>(a + b);
  return true;
#endif
}

}  // namespace detail
}  // namespace v0
}  // namespace rlhf
