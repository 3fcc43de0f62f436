// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::shape: the dimensions of a dense row-major tensor of rank 1..4.
//
// Row convention used by every row-wise op: a tensor of shape (d0, ..., dk) is seen as a
// matrix of rows() = d0*...*d(k-1) rows and cols() = dk columns, so (B, T, V) logits are
// B*T rows of V.
#pragma once

#include <array>
#include <initializer_list>
#include <string>
#include <string_view>

#include "rlhf/core/config.hpp"
#include "rlhf/core/detail/checked.hpp"
#include "rlhf/core/errors.hpp"

namespace rlhf {
inline namespace v0 {

/// A tensor shape of rank 1 to 4 (row-major); dimensions are >= 0 and the product of the
/// non-zero dimensions is at most max_numel, so numel() and rows() never overflow.
class shape {
 public:
  static constexpr int max_rank = 4;  ///< The largest supported rank.
  /// The largest element count of a shape: 2^48 (256 Ti elements, 1 PiB of float). It
  /// keeps every element count, and every byte count of an element up to 2^15 bytes, well
  /// inside index_t and std::size_t.
  static constexpr index_t max_numel = index_t{1} << 48;

  /// Rank 1, one element.
  constexpr shape() : dims_{1, 1, 1, 1}, rank_(1) {}

  /// The shape with these dimensions, e.g. shape{B, T, V}; throws shape_error on a rank
  /// outside 1..max_rank, a negative dimension, or non-zero dimensions whose product
  /// exceeds max_numel (or overflows index_t).
  shape(std::initializer_list<index_t> dims) : dims_{1, 1, 1, 1}, rank_(0) {
    if (dims.size() == 0 || dims.size() > max_rank) {
      throw shape_error("shape: rank must be 1.." + std::to_string(max_rank) + ", got " +
                        std::to_string(dims.size()));
    }
    index_t product = 1;  // of the non-zero dimensions: bounds numel() and rows()
    bool fits = true;
    for (index_t d : dims) {
      if (d < 0) {
        throw shape_error("shape: dimension " + std::to_string(rank_) +
                          " must be >= 0, got " + std::to_string(d));
      }
      if (fits && d > 0) fits = detail::checked_mul(product, d, product) && product <= max_numel;
      dims_[static_cast<std::size_t>(rank_++)] = d;
    }
    if (!fits) {
      throw shape_error("shape: " + str() +
                        " has more than max_numel = " + std::to_string(max_numel) + " elements");
    }
  }

  /// The number of dimensions (1..max_rank).
  [[nodiscard]] constexpr int rank() const noexcept { return rank_; }
  /// The dimension of `axis` (0 is the first); not checked against rank().
  [[nodiscard]] constexpr index_t operator[](int axis) const noexcept {
    return dims_[static_cast<std::size_t>(axis)];
  }
  /// Dimension from the end: back(0) is the last axis.
  [[nodiscard]] constexpr index_t back(int from_end = 0) const noexcept {
    return dims_[static_cast<std::size_t>(rank_ - 1 - from_end)];
  }
  /// The number of elements: the product of the dimensions.
  [[nodiscard]] constexpr index_t numel() const noexcept {
    index_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }
  /// Number of rows when the tensor is seen as (rows, last dimension).
  [[nodiscard]] constexpr index_t rows() const noexcept {
    index_t n = 1;
    for (int i = 0; i + 1 < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }
  /// The last dimension: the row length when seen as (rows, last dimension).
  [[nodiscard]] constexpr index_t cols() const noexcept { return back(); }

  /// Equal rank and equal dimensions.
  friend constexpr bool operator==(const shape& a, const shape& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i) {
      if (a.dims_[static_cast<std::size_t>(i)] != b.dims_[static_cast<std::size_t>(i)]) {
        return false;
      }
    }
    return true;
  }

  /// "(2, 3, 4)"
  [[nodiscard]] std::string str() const {
    std::string s = "(";
    for (int i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[static_cast<std::size_t>(i)]);
    }
    return s + ")";
  }

 private:
  std::array<index_t, max_rank> dims_;
  int rank_;
};

namespace detail {

/// a * b for a size (element count, offset, length) computed by `fn`; the error type E
/// (shape_error by default) naming `fn` and `what` when it overflows index_t.
template <class E = shape_error>
[[nodiscard]] index_t size_mul(index_t a, index_t b, std::string_view fn, std::string_view what) {
  index_t r = 0;
  if (!checked_mul(a, b, r)) {
    throw E(std::string(fn) + ": " + std::string(what) + " = " + std::to_string(a) + " * " +
            std::to_string(b) + " overflows index_t");
  }
  return r;
}

/// a + b for a size computed by `fn`; the error type E naming `fn` and `what` when it
/// overflows index_t.
template <class E = shape_error>
[[nodiscard]] index_t size_add(index_t a, index_t b, std::string_view fn, std::string_view what) {
  index_t r = 0;
  if (!checked_add(a, b, r)) {
    throw E(std::string(fn) + ": " + std::string(what) + " = " + std::to_string(a) + " + " +
            std::to_string(b) + " overflows index_t");
  }
  return r;
}

}  // namespace detail

}  // namespace v0
}  // namespace rlhf
