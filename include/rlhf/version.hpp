// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf++ version: the single place the version is written.
// CMakeLists.txt and conanfile.py read the three numbers below.
#pragma once

#define RLHF_VERSION_MAJOR 0
#define RLHF_VERSION_MINOR 1
#define RLHF_VERSION_PATCH 0

#define RLHF_VERSION_STRING_IMPL2(a, b, c) #a "." #b "." #c
#define RLHF_VERSION_STRING_IMPL(a, b, c) RLHF_VERSION_STRING_IMPL2(a, b, c)
#define RLHF_VERSION_STRING \
  RLHF_VERSION_STRING_IMPL(RLHF_VERSION_MAJOR, RLHF_VERSION_MINOR, RLHF_VERSION_PATCH)

namespace rlhf {
inline namespace v0 {
inline constexpr int version_major = RLHF_VERSION_MAJOR;
inline constexpr int version_minor = RLHF_VERSION_MINOR;
inline constexpr int version_patch = RLHF_VERSION_PATCH;
inline constexpr const char* version_string = RLHF_VERSION_STRING;
}  // namespace v0
}  // namespace rlhf
