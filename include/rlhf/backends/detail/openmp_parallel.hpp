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

/// The tiles of an (m, n) product's C that run_gemm_tiles hands out: rows × cols each
/// (smaller at the bottom and right edges). A function of the shape alone, never of the
/// thread count.
struct gemm_tiling {
  index_t rows = 0, cols = 0;            ///< a tile's size
  index_t row_tiles = 0, col_tiles = 0;  ///< how many across C

  /// 128 × 256 tiles, halved (columns down to 64, then rows down to 32) while C has fewer
  /// than 16 of them: the GPT's (B·T, C..4C) products get 16–32 tiles, enough to share
  /// evenly between threads, and a decode step's (B, C) rows are cut along the columns,
  /// while each call stays large enough for a packed kernel (docs/backends.md).
  static gemm_tiling of(index_t m, index_t n) {
    gemm_tiling t{128, 256, 0, 0};
    for (;;) {
      t.row_tiles = (m + t.rows - 1) / t.rows;
      t.col_tiles = (n + t.cols - 1) / t.cols;
      if (t.row_tiles * t.col_tiles >= 16) break;
      if (t.cols > 64 && n > 64) {
        t.cols /= 2;
      } else if (t.rows > 32 && m > 32) {
        t.rows /= 2;
      } else {
        break;
      }
    }
    return t;
  }
};

/// tile[r·ld + j] = row[j] for r in [0, rows), j in [0, cols): a tile of C set to a bias
/// row before a product accumulates onto it.
inline void fill_tile_rows(float* tile, index_t ld, index_t rows, index_t cols, const float* row) {
  for (index_t r = 0; r < rows; ++r) {
    float* t = tile + r * ld;
    for (index_t j = 0; j < cols; ++j) t[j] = row[j];
  }
}

/// body(i0, j0, rows, cols) for each tile of gemm_tiling::of(m, n), in parallel when `work`
/// is worth it; each body runs with omp_get_max_threads() = 1, so a GEMM library it calls
/// stays on that thread. The tiles do not depend on the thread count, so neither does the
/// result: a library left to its own threads may split the inner dimension K across them
/// (oneDNN does for few elements of C and a long K) or block K by the thread count (Eigen),
/// changing the order of a sum and its last bit.
template <class F>
void run_gemm_tiles(index_t m, index_t n, index_t work, F&& body) {
  const gemm_tiling t = gemm_tiling::of(m, n);
  run_parallel(t.row_tiles * t.col_tiles, work, [&](index_t tile) {
    const index_t i0 = (tile / t.col_tiles) * t.rows;
    const index_t j0 = (tile % t.col_tiles) * t.cols;
    const index_t rows = m - i0 < t.rows ? m - i0 : t.rows;
    const index_t cols = n - j0 < t.cols ? n - j0 : t.cols;
#if defined(_OPENMP)
    // Inside a parallel region this changes the calling task's setting only; outside one
    // (a single tile, or one thread) it is restored below.
    const int saved_threads = omp_get_max_threads();
    omp_set_num_threads(1);
    body(i0, j0, rows, cols);
    omp_set_num_threads(saved_threads);
#else
    body(i0, j0, rows, cols);
#endif
  });
}

}  // namespace openmp
}  // namespace detail
}  // namespace v0
}  // namespace rlhf
