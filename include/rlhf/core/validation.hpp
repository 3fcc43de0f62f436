// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// How much input checking the library does: the validation level.
//
//   full   every check (the default): shapes, configurations and the O(n) data scans
//          (every value finite, mask weights finite and >= 0, probabilities in [0, 1],
//          AdamW's gradient arena finite every step). On a backend the host cannot read,
//          the scans copy flags or values to the host.
//   cheap  shapes, configurations and O(1) / scalar checks only: no scan over a tensor's
//          values and no copy to the host.
//   none   only the checks that keep memory accesses in bounds (shapes, token-id ranges);
//          a NaN in the data flows into the results instead of throwing.
//
// The compile-time default is full; defining RLHF_DEFAULT_VALIDATION to cheap or none
// (before including any rlhf header) changes it. At run time set_validation changes the
// level process-wide and scoped_validation changes it for a scope. O(n) data checks are
// written `if (validating(validation::full)) ops::check_finite<B>(...)`.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "rlhf/core/enum_names.hpp"

#ifndef RLHF_DEFAULT_VALIDATION
/// The validation level a program starts with: full, cheap or none (an enumerator name).
#define RLHF_DEFAULT_VALIDATION full
#endif

namespace rlhf {
inline namespace v0 {

/// How much input checking the library does; each level includes the checks of the next.
enum class validation : std::uint8_t {
  none,   ///< Only checks that prevent out-of-bounds accesses (shapes, index ranges).
  cheap,  ///< Also configurations and O(1) / scalar checks; no scan over tensor values.
  full,   ///< Also the O(n) data scans (finite values, mask weights); the default.
};

/// Names of the validation levels: "none", "cheap", "full".
template <>
struct enum_names<validation> {
  /// One entry per level, in declaration order.
  static constexpr std::array<enum_name<validation>, 3> values{{
      {validation::none, "none"},
      {validation::cheap, "cheap"},
      {validation::full, "full"},
  }};
};
static_assert(enum_table_covers<validation>(3));

namespace detail {
/// The process-wide level, initialised from RLHF_DEFAULT_VALIDATION.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): the runtime switch
inline std::atomic<validation> validation_state{validation::RLHF_DEFAULT_VALIDATION};
}  // namespace detail

/// The current validation level (process-wide).
[[nodiscard]] inline validation validation_level() noexcept {
  return detail::validation_state.load(std::memory_order_relaxed);
}

/// Sets the process-wide validation level; returns the previous one.
inline validation set_validation(validation level) noexcept {
  return detail::validation_state.exchange(level, std::memory_order_relaxed);
}

/// True when the current level includes the checks of `at_least` (e.g.
/// `validating(validation::full)` guards the O(n) data scans).
[[nodiscard]] inline bool validating(validation at_least) noexcept {
  return static_cast<int>(validation_level()) >= static_cast<int>(at_least);
}

/// Sets the validation level for a scope and restores the previous one on exit.
class scoped_validation {
 public:
  /// Switches to `level`, remembering the current level.
  explicit scoped_validation(validation level) noexcept : previous_(set_validation(level)) {}
  /// Restores the level that was current at construction.
  ~scoped_validation() { set_validation(previous_); }
  scoped_validation(const scoped_validation&) = delete;
  scoped_validation& operator=(const scoped_validation&) = delete;
  scoped_validation(scoped_validation&&) = delete;
  scoped_validation& operator=(scoped_validation&&) = delete;

 private:
  validation previous_;
};

}  // namespace v0
}  // namespace rlhf
