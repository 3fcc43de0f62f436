// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The required primitives of the tensor-backend concept for CPU backends whose tensors hold
// their elements in host memory behind data(): data access, memcpy host copies, and an
// OpenMP parallel_for; plus the elementwise transforms (plain loops over OpenMP chunks or
// rows, vectorised by the compiler where the functor allows). rlhf::eigen_backend and
// rlhf::xtensor_backend inherit them (static members are found through the base), so the
// two differ only in their tensor types and their row/GEMM overrides.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "rlhf/backends/detail/openmp_parallel.hpp"
#include "rlhf/core/config.hpp"

namespace rlhf {
inline namespace v0 {
namespace detail {
namespace openmp {

template <class Tensor, class IndexTensor>
struct host_primitives {
  static constexpr bool host_accessible = true;

  static float* data(Tensor& t) noexcept { return t.data(); }
  static const float* data(const Tensor& t) noexcept { return t.data(); }
  static std::int32_t* data(IndexTensor& t) noexcept { return t.data(); }
  static const std::int32_t* data(const IndexTensor& t) noexcept { return t.data(); }

  static void copy_from_host(std::span<const float> src, Tensor& dst) {
    if (!src.empty()) std::memcpy(dst.data(), src.data(), src.size_bytes());
  }
  static void copy_from_host(std::span<const std::int32_t> src, IndexTensor& dst) {
    if (!src.empty()) std::memcpy(dst.data(), src.data(), src.size_bytes());
  }
  static void copy_to_host(const Tensor& src, std::span<float> dst) {
    if (!dst.empty()) std::memcpy(dst.data(), src.data(), dst.size_bytes());
  }
  static void copy_to_host(const IndexTensor& src, std::span<std::int32_t> dst) {
    if (!dst.empty()) std::memcpy(dst.data(), src.data(), dst.size_bytes());
  }

  /// f(i) for i in [0, n); one OpenMP parallel loop (f must not throw). The cost of one
  /// f(i) is unknown here (an element or a whole row), so any n >= 16 goes parallel; the
  /// backends override the cheap elementwise ops with their own grain.
  template <class F>
  static void parallel_for(index_t n, F f) {
    run_parallel(n, n >= 16 ? parallel_grain : 0, f);
  }

  // ---- elementwise op overrides (rlhf/ops/elementwise.hpp) -----------------------------

  template <class F, class... In>
  static void transform(Tensor& out, F f, const In&... in) {
    float* o = out.data();
    run_chunks(out.size(), [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) o[i] = f(in.data()[i]...);
    });
  }

  template <class F>
  static void transform_rows(Tensor& out, F f, const Tensor& x, const Tensor& v) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    const float* xp = x.data();
    const float* vp = v.data();
    float* o = out.data();
    run_parallel(rows, rows * cols, [&](index_t r) {
      const float vr = vp[r];
      for (index_t c = 0; c < cols; ++c) o[r * cols + c] = f(xp[r * cols + c], vr);
    });
  }

  template <class F>
  static void transform_cols(Tensor& out, F f, const Tensor& x, const Tensor& v) {
    const index_t rows = x.shape().rows(), cols = x.shape().cols();
    const float* xp = x.data();
    const float* vp = v.data();
    float* o = out.data();
    run_parallel(rows, rows * cols, [&](index_t r) {
      for (index_t c = 0; c < cols; ++c) o[r * cols + c] = f(xp[r * cols + c], vp[c]);
    });
  }
};

}  // namespace openmp
}  // namespace detail
}  // namespace v0
}  // namespace rlhf
