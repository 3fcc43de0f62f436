// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Test support: skipping a case at run time. doctest has no runtime skip, so a case whose
// dependency is missing (a Python, a Python module) calls rlhf_test::skip(reason) and returns;
// tests/doctest_main.cpp then exits with skip_exit_code (77) when nothing failed, and ctest,
// told SKIP_RETURN_CODE 77, reports the test as "Skipped" instead of "Passed". .ci/run fails
// when any test is skipped, since CI installs every dependency.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>

namespace rlhf_test {

/// The exit status of a test binary whose cases passed but at least one was skipped.
inline constexpr int skip_exit_code = 77;

/// Set once a case of this process called skip().
inline std::atomic<bool>& skip_recorded() {
  static std::atomic<bool> recorded{false};
  return recorded;
}

/// Marks the running case as not run (the binary exits with skip_exit_code) and says why.
inline void skip(const std::string& reason) {
  MESSAGE("SKIPPED: " << reason);
  skip_recorded() = true;
}

/// True when `python` names an existing interpreter that can import every one of `modules`;
/// otherwise records a skip naming what is missing and returns false. Use as
/// `if (!rlhf_test::python_with(python, {"torch"})) return;`.
inline bool python_with(const std::string& python, std::initializer_list<const char*> modules,
                        const std::string& what = "the Python cross-check") {
  if (python.empty() || python.find("NOTFOUND") != std::string::npos) {
    skip(what + ": no Python found or configured (scripts/test configures it)");
    return false;
  }
  if (!std::filesystem::exists(python)) {
    skip(what + ": " + python + " does not exist");
    return false;
  }
  for (const char* module : modules) {
    const std::string cmd = python + " -c 'import " + module + "' > /dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      skip(what + ": " + python + " cannot import " + module +
           " (scripts/install-deps installs it)");
      return false;
    }
  }
  return true;
}

}  // namespace rlhf_test
