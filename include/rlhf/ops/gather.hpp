// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Gather along the last axis: out[r] = x[r, index[r]] for x seen as (R, C).
// This is how a token's logit or log-prob is picked out of a (B, T, V) tensor.
// An index outside [0, C) yields NaN for that row (device code cannot throw); callers that
// own token ids validate them on the host first.
#pragma once

#include <limits>

#include "rlhf/core/overrides.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {
namespace detail {

template <class B>
void generic_gather_last(const typename B::tensor& x, const typename B::index_tensor& index,
                         typename B::tensor& out) {
  const float* xp = B::data(x);
  const std::int32_t* ip = B::data(index);
  float* o = B::data(out);
  const index_t cols = x.shape().cols();
  B::parallel_for(x.shape().rows(), RLHF_LAMBDA(index_t r) {
    const index_t j = ip[r];
    o[r] = (j >= 0 && j < cols) ? xp[r * cols + j] : std::numeric_limits<float>::quiet_NaN();
  });
}

}  // namespace detail

/// out[r] = x[r, index[r]] for x seen as (R, C) and index, out of R elements; an index
/// outside [0, C) gives NaN for that row.
template <class B>
void gather_last(const typename B::tensor& x, const typename B::index_tensor& index,
                 typename B::tensor& out) {
  assert_tensor_backend<B>();
  check_dim("gather_last", "index's element count (one per row of x)", index.size(),
            x.shape().rows());
  check_dim("gather_last", "out's element count (one per row of x)", out.size(),
            x.shape().rows());
  if constexpr (::rlhf::detail::has_gather_last_override<B>) {
    B::gather_last(x, index, out);
  } else {
    detail::generic_gather_last<B>(x, index, out);
  }
}

}  // namespace ops
}  // namespace v0
}  // namespace rlhf
