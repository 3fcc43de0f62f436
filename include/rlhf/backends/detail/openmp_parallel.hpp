// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// OpenMP helpers shared by the CPU backends (Eigen, xtensor). Without OpenMP everything
// runs serially.
#pragma once

#include "rlhf/core/config.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace rlhf {
inline namespace v0 {
namespace detail {
namespace openmp {

/// Below this many scalar operations a parallel region costs more than it saves.
inline constexpr index_t parallel_grain = 1 << 15;

/// body(i) for i in [0, n); parallel when `work` (total scalar operations) is worth it
/// and we are not already inside a parallel region.
template <class F>
void run_parallel(index_t n, index_t work, F&& body) {
#if defined(_OPENMP)
  if (n > 1 && work >= parallel_grain && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (index_t i = 0; i < n; ++i) body(i);
    return;
  }
#else
  (void)work;
#endif
  for (index_t i = 0; i < n; ++i) body(i);
}

/// body(begin, end) over contiguous chunks of [0, n): for vectorised inner loops.
template <class F>
void run_chunks(index_t n, F&& body) {
#if defined(_OPENMP)
  if (n >= parallel_grain && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel
    {
      const index_t threads = omp_get_num_threads();
      const index_t id = omp_get_thread_num();
      // 16-element (64-byte) aligned chunk boundaries keep SIMD loops aligned.
      const index_t per = ((n + threads - 1) / threads + 15) / 16 * 16;
      const index_t begin = id * per;
      const index_t end = begin + per < n ? begin + per : n;
      if (begin < end) body(begin, end);
    }
    return;
  }
#endif
  body(index_t{0}, n);
}

}  // namespace openmp
}  // namespace detail
}  // namespace v0
}  // namespace rlhf
