// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// xtensor_detail::dense_tensor<T>: the owning tensor of rlhf::xtensor_backend. The elements
// live in a flat xt::xtensor<T, 1> (xtensor's uvector storage, SIMD-aligned when xtensor is
// built with xsimd); the rank-1..4 rlhf::shape is kept beside it. Copies are deep, moves
// cheap; new tensors are zero-filled; a moved-from tensor is empty (shape (0)).
//
// flat() is the storage as an xtensor container and matrix() an (rows, cols) adaptor in
// the row convention of rlhf::shape, so any xtensor expression can run on the tensor.
#pragma once

#include <array>
#include <cstddef>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>

#include "rlhf/core/detail/checked.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/shape.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace xtensor_detail {

template <class T>
class dense_tensor {
 public:
  using value_type = T;
  using storage_type = xt::xtensor<T, 1>;  // (numel,) row-major elements

  dense_tensor() : dense_tensor(rlhf::shape{0}) {}

  // A failed allocation (out of memory, or a byte count that does not fit std::size_t) is
  // a backend_error naming the shape and the bytes.
  explicit dense_tensor(const rlhf::shape& s) : shape_(s), data_(allocate(s)) {}

  dense_tensor(const dense_tensor& other) : shape_(other.shape_), data_(copy_of(other)) {}
  dense_tensor& operator=(const dense_tensor& other) {
    if (this != &other) {
      storage_type copy = copy_of(other);
      shape_ = other.shape_;
      data_ = std::move(copy);
    }
    return *this;
  }

  dense_tensor(dense_tensor&& other) noexcept
      : shape_(other.shape_), data_(std::move(other.data_)) {
    other.reset();
  }
  dense_tensor& operator=(dense_tensor&& other) noexcept {
    if (this != &other) {
      shape_ = other.shape_;
      data_ = std::move(other.data_);
      other.reset();
    }
    return *this;
  }
  ~dense_tensor() = default;

  [[nodiscard]] const rlhf::shape& shape() const noexcept { return shape_; }
  [[nodiscard]] index_t size() const noexcept { return shape_.numel(); }

  /// Reinterpret the same elements with another shape of equal element count.
  void reshape(const rlhf::shape& s) {
    if (s.numel() != size()) {
      throw shape_error(detail::concat("reshape: new shape ", s.str(), " has ", s.numel(),
                                       " elements, tensor of shape ", shape_.str(), " has ",
                                       size()));
    }
    shape_ = s;
  }

  [[nodiscard]] T* data() noexcept { return data_.data(); }
  [[nodiscard]] const T* data() const noexcept { return data_.data(); }
  [[nodiscard]] std::span<T> span() noexcept {
    return {data(), static_cast<std::size_t>(size())};
  }
  [[nodiscard]] std::span<const T> span() const noexcept {
    return {data(), static_cast<std::size_t>(size())};
  }

  /// The elements as an xtensor container of shape (numel,); assign to it, do not resize.
  [[nodiscard]] storage_type& flat() noexcept { return data_; }
  [[nodiscard]] const storage_type& flat() const noexcept { return data_; }

  /// The (rows, cols) view of the row convention, as an xtensor adaptor (no copy).
  [[nodiscard]] auto matrix() noexcept { return adapt_matrix(data()); }
  [[nodiscard]] auto matrix() const noexcept { return adapt_matrix(data()); }

 private:
  using flat_shape_type = typename storage_type::shape_type;

  [[noreturn]] static void allocation_failed(const rlhf::shape& s, const char* why) {
    std::size_t bytes = 0;
    const bool fits = detail::checked_mul(static_cast<std::size_t>(s.numel()), sizeof(T), bytes);
    throw backend_error(rlhf::detail::concat(
        "xtensor_backend: allocating a tensor of shape ", s.str(), " (",
        fits ? std::to_string(bytes) : std::string("more than SIZE_MAX"), " bytes) failed: ", why));
  }

  static storage_type allocate(const rlhf::shape& s) {
    std::size_t bytes = 0;
    if (!detail::checked_mul(static_cast<std::size_t>(s.numel()), sizeof(T), bytes)) {
      allocation_failed(s, "the byte count overflows std::size_t");
    }
    try {
      return storage_type(flat_shape(s.numel()), T(0));
    } catch (const std::bad_alloc& e) {
      allocation_failed(s, e.what());
    } catch (const std::length_error& e) {
      allocation_failed(s, e.what());
    }
  }

  static storage_type copy_of(const dense_tensor& other) {
    try {
      return other.data_;
    } catch (const std::bad_alloc& e) {
      allocation_failed(other.shape_, e.what());
    } catch (const std::length_error& e) {
      allocation_failed(other.shape_, e.what());
    }
  }

  static flat_shape_type flat_shape(index_t n) noexcept {
    return {static_cast<std::size_t>(n)};
  }

  template <class P>
  auto adapt_matrix(P* p) const noexcept {
    const std::array<std::size_t, 2> s{static_cast<std::size_t>(shape_.rows()),
                                       static_cast<std::size_t>(shape_.cols())};
    return xt::adapt(p, static_cast<std::size_t>(size()), xt::no_ownership(), s);
  }

  void reset() noexcept {
    shape_ = rlhf::shape{0};
    data_.resize(flat_shape(0));  // no allocation: moved-from storage is already empty
  }

  rlhf::shape shape_;
  storage_type data_;
};

}  // namespace xtensor_detail
}  // namespace v0
}  // namespace rlhf
