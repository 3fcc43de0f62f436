// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf++ version: the single place the version is written.
// CMakeLists.txt and conanfile.py read the three numbers below.
/// \file
/// The rlhf++ version, as macros and as constants.
#pragma once

#include "rlhf/core/config.hpp"  // first: the C++20 check

// The three #define lines must stay alone on their line (CMake and Conan match them).
/// Major version.
#define RLHF_VERSION_MAJOR 0
/// Minor version.
#define RLHF_VERSION_MINOR 1
/// Patch version.
#define RLHF_VERSION_PATCH 0

/// Helper of RLHF_VERSION_STRING: stringizes the three numbers.
#define RLHF_VERSION_STRING_IMPL2(a, b, c) #a "." #b "." #c
/// Helper of RLHF_VERSION_STRING: expands the three macros first.
#define RLHF_VERSION_STRING_IMPL(a, b, c) RLHF_VERSION_STRING_IMPL2(a, b, c)
/// The version as a string literal, "major.minor.patch".
#define RLHF_VERSION_STRING \
  RLHF_VERSION_STRING_IMPL(RLHF_VERSION_MAJOR, RLHF_VERSION_MINOR, RLHF_VERSION_PATCH)

namespace rlhf {
inline namespace v0 {
inline constexpr int version_major = RLHF_VERSION_MAJOR;  ///< Major version.
inline constexpr int version_minor = RLHF_VERSION_MINOR;  ///< Minor version.
inline constexpr int version_patch = RLHF_VERSION_PATCH;  ///< Patch version.
/// The version as "major.minor.patch".
inline constexpr const char* version_string = RLHF_VERSION_STRING;
}  // namespace v0
}  // namespace rlhf
