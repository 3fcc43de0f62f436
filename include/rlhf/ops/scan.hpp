// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Reverse linear recurrence along each row: for x seen as (R, T),
//   y[r, T-1] = b[r, T-1],   y[r, t] = b[r, t] + a[r, t] * y[r, t+1].
// GAE is this with a = gamma*lambda (0 past a sequence's end) and b = delta
// (Schulman et al. 2016, eq. 16); discounted returns are a = gamma, b = rewards.
// y may be the same tensor as a or b. A first-order linear recurrence is an associative
// scan, so a GPU backend can override this with a parallel scan.
#pragma once

#include "rlhf/core/overrides.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {
namespace detail {

template <class B>
void generic_reverse_linear_scan_rows(const typename B::tensor& a, const typename B::tensor& b,
                                      typename B::tensor& y) {
  const float* ap = B::data(a);
  const float* bp = B::data(b);
  float* yp = B::data(y);
  const index_t cols = a.shape().cols();
  B::parallel_for(a.shape().rows(), RLHF_LAMBDA(index_t r) {
    float carry = 0.0f;
    for (index_t t = cols - 1; t >= 0; --t) {
      const index_t i = r * cols + t;
      carry = bp[i] + ap[i] * carry;
      yp[i] = carry;
    }
  });
}

}  // namespace detail

/// For a, b, y of one shape seen as (R, T): y[r, T-1] = b[r, T-1] and
/// y[r, t] = b[r, t] + a[r, t] * y[r, t+1]; y may alias a or b.
template <class B>
void reverse_linear_scan_rows(const typename B::tensor& a, const typename B::tensor& b,
                              typename B::tensor& y) {
  assert_tensor_backend<B>();
  check_same_shape("reverse_linear_scan_rows", "a", a.shape(), "b", b.shape());
  check_same_shape("reverse_linear_scan_rows", "a", a.shape(), "y", y.shape());
  if constexpr (::rlhf::detail::has_reverse_linear_scan_rows_override<B>) {
    B::reverse_linear_scan_rows(a, b, y);
  } else {
    detail::generic_reverse_linear_scan_rows<B>(a, b, y);
  }
}

}  // namespace ops
}  // namespace v0
}  // namespace rlhf
