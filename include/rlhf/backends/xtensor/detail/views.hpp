// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Non-owning xtensor adaptors over raw rows of the xtensor backend's buffers (a row of the
// row convention, a column block, a row of a GEMM output).
#pragma once

#include <array>
#include <cstddef>

#include <xtensor/xadapt.hpp>

#include "rlhf/core/config.hpp"

namespace rlhf {
inline namespace v0 {
namespace detail {
namespace xtensor {

inline std::size_t usize(index_t n) noexcept { return static_cast<std::size_t>(n); }

/// (n,) contiguous elements from p; P is float or const float.
template <class P>
auto adapt_row(P* p, index_t n) {
  return xt::adapt(p, usize(n), xt::no_ownership(), std::array<std::size_t, 1>{usize(n)});
}

}  // namespace xtensor
}  // namespace detail
}  // namespace v0
}  // namespace rlhf
