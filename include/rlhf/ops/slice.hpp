// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Slices and concatenation along the first two axes, on the backend (no host round trip):
// the chosen and rejected halves of a stacked (2N, ...) batch, and completion-only windows
// of (N, T, ...) prompt + completion tensors.
//
//   slice_rows(t, begin, count)   (R, ...) -> (count, ...): rows begin .. begin+count-1
//   concat_rows(a, b)             (Ra, ...) + (Rb, ...) -> (Ra + Rb, ...), a's rows first
//   slice_cols(t, begin, count)   (N, T, ...) -> (N, count, ...): columns begin .. +count-1
//
// Work for float tensors and index tensors alike (B::tensor, B::index_tensor). A range
// outside the tensor, or concatenated tensors whose other axes differ, is a shape_error
// naming the argument.
#pragma once

#include <string_view>

#include "rlhf/core/config.hpp"
#include "rlhf/core/shape.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {
namespace detail {

/// `s` with axis `axis` set to `d`.
inline shape with_dim(const shape& s, int axis, index_t d) {
  index_t v[shape::max_rank] = {s[0], s[1], s[2], s[3]};
  v[axis] = d;
  switch (s.rank()) {
    case 1: return shape{v[0]};
    case 2: return shape{v[0], v[1]};
    case 3: return shape{v[0], v[1], v[2]};
    default: return shape{v[0], v[1], v[2], v[3]};
  }
}

inline void check_range(std::string_view fn, std::string_view axis, index_t begin, index_t count,
                        index_t size) {
  if (begin < 0 || count < 0 || begin > size || count > size - begin) {
    throw shape_error(rlhf::detail::concat(fn, ": ", axis, " [", begin, ", ", begin, " + ", count,
                                           ") is outside 0..", size));
  }
}

}  // namespace detail

/// Rows [begin, begin + count) of `t` along its first axis, as a new tensor.
template <class B, class T>
T slice_rows(const T& t, index_t begin, index_t count) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "slice_rows";
  const shape& s = t.shape();
  detail::check_range(fn, "rows", begin, count, s[0]);
  T out(detail::with_dim(s, 0, count));
  const index_t row = s[0] == 0 ? 0 : s.numel() / s[0];
  const auto* src = B::data(t) + begin * row;
  auto* dst = B::data(out);
  B::parallel_for(
      out.size(), RLHF_LAMBDA(index_t k) { dst[k] = src[k]; });
  return out;
}

/// `a`'s rows, then `b`'s, along the first axis; every other axis must agree.
template <class B, class T>
T concat_rows(const T& a, const T& b) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "concat_rows";
  const shape& sa = a.shape();
  const shape& sb = b.shape();
  check_same_shape(fn, "a without its first axis", detail::with_dim(sa, 0, 1),
                   "b without its first axis", detail::with_dim(sb, 0, 1));
  T out(detail::with_dim(sa, 0, sa[0] + sb[0]));
  const index_t na = a.size();
  const auto* pa = B::data(a);
  const auto* pb = B::data(b);
  auto* dst = B::data(out);
  B::parallel_for(
      out.size(), RLHF_LAMBDA(index_t k) { dst[k] = k < na ? pa[k] : pb[k - na]; });
  return out;
}

/// Columns [begin, begin + count) of an (N, T, ...) tensor along its second axis.
template <class B, class T>
T slice_cols(const T& t, index_t begin, index_t count) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "slice_cols";
  const shape& s = t.shape();
  check_rank(fn, "t", s, 2, shape::max_rank);
  detail::check_range(fn, "columns", begin, count, s[1]);
  T out(detail::with_dim(s, 1, count));
  const index_t inner = s[1] == 0 ? 0 : (s[0] == 0 ? 0 : s.numel() / (s[0] * s[1]));
  const index_t cols = s[1];
  const auto* src = B::data(t);
  auto* dst = B::data(out);
  B::parallel_for(
      out.size(), RLHF_LAMBDA(index_t k) {
        const index_t per_row = count * inner;
        const index_t n = k / per_row, rest = k % per_row;
        dst[k] = src[(n * cols + begin) * inner + rest];
      });
  return out;
}

}  // namespace ops
}  // namespace v0
}  // namespace rlhf
