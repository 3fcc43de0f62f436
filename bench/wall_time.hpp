// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Wall time of k calls, for the benchmarks' serve modes (the C++ side of an interleaved
// comparison with PyTorch answers each request with it).
#pragma once

#include <chrono>

namespace bench {

/// Wall time in seconds of k calls of f (steady clock).
template <class F>
double seconds_of(F&& f, int k) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < k; ++i) (void)f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace bench
