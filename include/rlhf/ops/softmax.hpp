// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Softmax and log-softmax over the last axis (rows of the row convention).
// out may be x itself. NaN in a row makes the row NaN; a row of all -inf gives NaN in
// softmax and -inf - (-inf) = NaN in log_softmax, as in PyTorch.
#pragma once

#include <cmath>

#include "rlhf/core/overrides.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/detail/row_kernels.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {
namespace detail {

template <class B>
void generic_softmax_rows(const typename B::tensor& x, typename B::tensor& out) {
  const float* xp = B::data(x);
  float* o = B::data(out);
  const index_t cols = x.shape().cols();
  B::parallel_for(x.shape().rows(), RLHF_LAMBDA(index_t r) {
    const float* xr = xp + r * cols;
    float* orow = o + r * cols;
    const float m = row_max_kernel(xr, cols);
    float s = 0.0f;
    for (index_t c = 0; c < cols; ++c) {
      orow[c] = std::exp(xr[c] - m);
      s += orow[c];
    }
    const float inv = 1.0f / s;
    for (index_t c = 0; c < cols; ++c) orow[c] *= inv;
  });
}

template <class B>
void generic_log_softmax_rows(const typename B::tensor& x, typename B::tensor& out) {
  const float* xp = B::data(x);
  float* o = B::data(out);
  const index_t cols = x.shape().cols();
  B::parallel_for(x.shape().rows(), RLHF_LAMBDA(index_t r) {
    const float* xr = xp + r * cols;
    float* orow = o + r * cols;
    const float lse = row_logsumexp_kernel(xr, cols);
    for (index_t c = 0; c < cols; ++c) orow[c] = xr[c] - lse;
  });
}

}  // namespace detail

/// out = softmax of each row of x (rows of the last axis); out has x's shape and may be x.
template <class B>
void softmax_rows(const typename B::tensor& x, typename B::tensor& out) {
  assert_tensor_backend<B>();
  check_same_shape("softmax_rows", "x", x.shape(), "out", out.shape());
  if constexpr (::rlhf::detail::has_softmax_rows_override<B>) {
    B::softmax_rows(x, out);
  } else {
    detail::generic_softmax_rows<B>(x, out);
  }
}

/// out = log-softmax of each row of x (rows of the last axis); out has x's shape and may
/// be x.
template <class B>
void log_softmax_rows(const typename B::tensor& x, typename B::tensor& out) {
  assert_tensor_backend<B>();
  check_same_shape("log_softmax_rows", "x", x.shape(), "out", out.shape());
  if constexpr (::rlhf::detail::has_log_softmax_rows_override<B>) {
    B::log_softmax_rows(x, out);
  } else {
    detail::generic_log_softmax_rows<B>(x, out);
  }
}

}  // namespace ops
}  // namespace v0
}  // namespace rlhf
