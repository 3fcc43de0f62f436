// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// detail::xtensor::dense_tensor<T>: the owning tensor of rlhf::xtensor_backend. The elements
// live in a flat xt::xtensor<T, 1> (xtensor's uvector storage, SIMD-aligned when xtensor is
// built with xsimd); the rank-1..4 rlhf::shape is kept beside it. Copies are deep, moves
// cheap; new tensors are zero-filled; a moved-from tensor is empty (shape (0)). All of that
// is rlhf::detail::basic_owning_tensor (rlhf/core/host_tensor.hpp) on the xtensor_storage
// policy.
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
#include "rlhf/core/host_tensor.hpp"  // rlhf::detail::basic_owning_tensor
#include "rlhf/core/shape.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace detail {
namespace xtensor {

/// The storage policy of dense_tensor (rlhf::detail::basic_owning_tensor): a flat
/// xt::xtensor<T, 1>.
template <class T>
struct xtensor_storage {
  using value_type = T;
  using container = xt::xtensor<T, 1>;  // (numel,) row-major elements

  // A failed allocation (out of memory, or a byte count that does not fit std::size_t) is
  // a backend_error naming the shape and the bytes.
  static container allocate(const rlhf::shape& s) {
    std::size_t bytes = 0;
    if (!rlhf::detail::checked_mul(static_cast<std::size_t>(s.numel()), sizeof(T), bytes)) {
      allocation_failed(s, "the byte count overflows std::size_t");
    }
    try {
      return container(flat_shape(s.numel()), T(0));
    } catch (const std::bad_alloc& e) {
      allocation_failed(s, e.what());
    } catch (const std::length_error& e) {
      allocation_failed(s, e.what());
    }
  }

  static container copy(const container& src, const rlhf::shape& s) {
    try {
      return src;
    } catch (const std::bad_alloc& e) {
      allocation_failed(s, e.what());
    } catch (const std::length_error& e) {
      allocation_failed(s, e.what());
    }
  }

  // Copy first, then take it: dst is unchanged when the copy fails.
  static void assign(container& dst, index_t, const container& src, const rlhf::shape& src_shape) {
    container c = copy(src, src_shape);
    dst = std::move(c);
  }

  static T* data(container& c) noexcept { return c.data(); }
  static const T* data(const container& c) noexcept { return c.data(); }

  static void clear(container& c) noexcept {
    c.resize(flat_shape(0));  // no allocation: moved-from storage is already empty
  }

  static typename container::shape_type flat_shape(index_t n) noexcept {
    return {static_cast<std::size_t>(n)};
  }

 private:
  [[noreturn]] static void allocation_failed(const rlhf::shape& s, const char* why) {
    std::size_t bytes = 0;
    const bool fits = rlhf::detail::checked_mul(static_cast<std::size_t>(s.numel()), sizeof(T),
                                                bytes);
    throw backend_error(rlhf::detail::concat(
        "xtensor_backend: allocating a tensor of shape ", s.str(), " (",
        fits ? std::to_string(bytes) : std::string("more than SIZE_MAX"), " bytes) failed: ", why));
  }
};

template <class T>
class dense_tensor : public rlhf::detail::basic_owning_tensor<xtensor_storage<T>> {
  using base = rlhf::detail::basic_owning_tensor<xtensor_storage<T>>;

 public:
  using value_type = T;
  using storage_type = xt::xtensor<T, 1>;  // (numel,) row-major elements

  dense_tensor() = default;

  // A failed allocation (out of memory, or a byte count that does not fit std::size_t) is
  // a backend_error naming the shape and the bytes.
  explicit dense_tensor(const rlhf::shape& s) : base(s) {}

  [[nodiscard]] std::span<T> span() noexcept {
    return {this->data(), static_cast<std::size_t>(this->size())};
  }
  [[nodiscard]] std::span<const T> span() const noexcept {
    return {this->data(), static_cast<std::size_t>(this->size())};
  }

  /// The elements as an xtensor container of shape (numel,); assign to it, do not resize.
  [[nodiscard]] storage_type& flat() noexcept { return this->container(); }
  [[nodiscard]] const storage_type& flat() const noexcept { return this->container(); }

  /// The (rows, cols) view of the row convention, as an xtensor adaptor (no copy).
  [[nodiscard]] auto matrix() noexcept { return adapt_matrix(this->data()); }
  [[nodiscard]] auto matrix() const noexcept { return adapt_matrix(this->data()); }

 private:
  template <class P>
  auto adapt_matrix(P* p) const noexcept {
    const std::array<std::size_t, 2> s{static_cast<std::size_t>(this->shape().rows()),
                                       static_cast<std::size_t>(this->shape().cols())};
    return xt::adapt(p, static_cast<std::size_t>(this->size()), xt::no_ownership(), s);
  }
};

}  // namespace xtensor
}  // namespace detail
}  // namespace v0
}  // namespace rlhf
