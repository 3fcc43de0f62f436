// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Must not compile. ctest builds this file with -std=c++17 -Wfatal-errors and checks that
// the one error is rlhf/core/config.hpp's sentence asking for C++20 (tests/CMakeLists.txt,
// concept_diagnostic_cxx20_*). RLHF_HEADER is the public header under test, e.g.
// -DRLHF_HEADER=<rlhf/losses/dpo.hpp>.
#include RLHF_HEADER

int main() {}
