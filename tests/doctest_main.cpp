// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The doctest main of every test binary: doctest's own, except that a run in which nothing
// failed but a case was skipped (support/skip.hpp) exits with 77, which ctest reports as
// "Skipped" (the tests carry SKIP_RETURN_CODE 77).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "support/skip.hpp"

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (context.shouldExit() || result != 0) {
    return result;
  }
  return rlhf_test::skip_recorded() ? rlhf_test::skip_exit_code : 0;
}
