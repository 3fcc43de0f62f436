// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Elementwise ops: fill, n-ary transform, multi-output for_each, and the two row/column
// broadcasts every layer needs. Functors come from rlhf/core/functors.hpp or are user
// structs with a RLHF_HD call operator (so they also run on a GPU).
//
// Aliasing: an output may be the same tensor as an input (in-place); partial overlap is
// impossible because tensors own their storage.
#pragma once

#include <tuple>
#include <type_traits>

#include "rlhf/core/overrides.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/detail/elementwise_generic.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {

/// t[i] = value for every element.
template <class B>
void fill(typename B::tensor& t, float value) {
  assert_tensor_backend<B>();
  if constexpr (::rlhf::detail::has_fill_override<B>) {
    B::fill(t, value);
  } else {
    detail::generic_fill<B>(t, value);
  }
}

/// out[i] = f(in0[i], in1[i], ...), 1 to 4 inputs, every shape equal to out's.
template <class B, class F, class... In>
void transform(typename B::tensor& out, F f, const In&... in) {
  assert_tensor_backend<B>();
  static_assert(sizeof...(In) >= 1 && sizeof...(In) <= 4, "transform takes 1 to 4 inputs");
  static_assert((std::is_same_v<In, typename B::tensor> && ...),
                "transform: every input must be the backend's tensor type");
  (check_same_shape("transform", "out", out.shape(), "input", in.shape()), ...);
  if constexpr (::rlhf::detail::has_transform_override<B, F, In...>) {
    B::transform(out, f, in...);
  } else {
    detail::generic_transform<B>(out, f, in...);
  }
}

/// f(t0[i], t1[i], ...) for every i, 1 to 5 tensors; f takes float& for a non-const tensor and
/// const float& for a const one, so one pass can update several outputs (AdamW).
template <class B, class F, class... T>
void for_each(F f, T&... t) {
  assert_tensor_backend<B>();
  static_assert(sizeof...(T) >= 1 && sizeof...(T) <= 5, "for_each takes 1 to 5 tensors");
  static_assert((std::is_same_v<std::remove_const_t<T>, typename B::tensor> && ...),
                "for_each: every argument must be the backend's tensor type");
  const auto& first = std::get<0>(std::forward_as_tuple(t...));
  (check_same_shape("for_each", "first tensor", first.shape(), "tensor", t.shape()), ...);
  if constexpr (::rlhf::detail::has_for_each_override<B, F, T...>) {
    B::for_each(f, t...);
  } else {
    detail::generic_for_each<B>(f, t...);
  }
}

/// Row broadcast: out[r, c] = f(x[r, c], v[r]). x and out are (R, C) in the row convention
/// of rlhf::shape; v has R elements.
template <class B, class F>
void transform_rows(typename B::tensor& out, F f, const typename B::tensor& x,
                    const typename B::tensor& v) {
  assert_tensor_backend<B>();
  check_same_shape("transform_rows", "out", out.shape(), "x", x.shape());
  check_dim("transform_rows", "v's element count (one per row of x)", v.size(),
            x.shape().rows());
  if constexpr (::rlhf::detail::has_transform_rows_override<B, F>) {
    B::transform_rows(out, f, x, v);
  } else {
    detail::generic_transform_rows<B>(out, f, x, v);
  }
}

/// Column broadcast: out[r, c] = f(x[r, c], v[c]); v has C elements (a bias, a gain).
template <class B, class F>
void transform_cols(typename B::tensor& out, F f, const typename B::tensor& x,
                    const typename B::tensor& v) {
  assert_tensor_backend<B>();
  check_same_shape("transform_cols", "out", out.shape(), "x", x.shape());
  check_dim("transform_cols", "v's element count (one per column of x)", v.size(),
            x.shape().cols());
  if constexpr (::rlhf::detail::has_transform_cols_override<B, F>) {
    B::transform_cols(out, f, x, v);
  } else {
    detail::generic_transform_cols<B>(out, f, x, v);
  }
}

}  // namespace ops
}  // namespace v0
}  // namespace rlhf
