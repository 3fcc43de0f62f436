// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::testing::minimal_backend: only the required primitives of the concept, on host
// memory, serial. Every op therefore runs its generic implementation, which is how the
// test suite checks those fallbacks; it is also the smallest complete backend to read.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "rlhf/core/host_tensor.hpp"
#include "rlhf/core/overrides.hpp"
#include "rlhf/core/tensor_backend.hpp"

namespace rlhf {
inline namespace v0 {
namespace testing {

struct minimal_backend {
  using backend_category = tensor_backend_tag;
  using tensor = host_tensor<float>;
  using index_tensor = host_tensor<std::int32_t>;
  static constexpr bool host_accessible = true;
  static constexpr const char* name = "minimal";

  static float* data(tensor& t) noexcept { return t.data(); }
  static const float* data(const tensor& t) noexcept { return t.data(); }
  static std::int32_t* data(index_tensor& t) noexcept { return t.data(); }
  static const std::int32_t* data(const index_tensor& t) noexcept { return t.data(); }

  template <class T>
  static void copy_from_host(std::span<const T> src, host_tensor<T>& dst) {
    if (!src.empty()) std::memcpy(dst.data(), src.data(), src.size_bytes());
  }
  template <class T>
  static void copy_to_host(const host_tensor<T>& src, std::span<T> dst) {
    if (!dst.empty()) std::memcpy(dst.data(), src.data(), dst.size_bytes());
  }

  template <class F>
  static void parallel_for(index_t n, F f) {
    for (index_t i = 0; i < n; ++i) f(i);
  }
};

static_assert(!rlhf::detail::has_any_override<minimal_backend>,
              "rlhf: minimal_backend must override no op: it is the reference for the generic "
              "paths");

}  // namespace testing
}  // namespace v0
}  // namespace rlhf
