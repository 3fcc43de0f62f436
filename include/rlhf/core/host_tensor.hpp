// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::host_tensor<T>: an owning, 64-byte aligned, dense row-major tensor in host memory.
// The CPU backends use it as their tensor type; third-party CPU backends may too.
// Copies are deep (like std::vector); moves are cheap. New tensors are zero-filled.
//
// rlhf::detail::basic_owning_tensor<S> holds what every owning tensor of this library
// shares (shape beside storage, copies, moves, reshape); host_tensor, the xtensor backend's
// dense_tensor and the Thrust backend's thrust_tensor differ only in their storage policy S.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <utility>

#include "rlhf/core/detail/checked.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/shape.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace detail {

/// The logic shared by the owning tensors (rlhf::host_tensor and the xtensor and Thrust
/// backends' tensors): a rank-1..4 shape beside a container of shape.numel() elements,
/// zero-filled construction, deep copies, noexcept moves that leave the source empty
/// (shape (0)), and reshape. What differs between them, the container and how it is
/// allocated, copied and emptied, is the storage policy S:
///
///   using value_type = T;  using container = ...;
///   static container allocate(const rlhf::shape& s);      // s.numel() zero-filled elements
///   static container copy(const container& src, const rlhf::shape& s);  // deep copy
///   static void assign(container& dst, index_t dst_size, const container& src,
///                      const rlhf::shape& src_shape);     // deep copy assignment
///   static T* data(container&) noexcept;   static const T* data(const container&) noexcept;
///   static void clear(container& moved_from) noexcept;    // leave it empty, no allocation
///
/// Failed allocations are the policy's to report (a backend_error naming the shape).
template <class S>
class basic_owning_tensor {
 public:
  using value_type = typename S::value_type;  ///< The element type.

  /// An empty tensor of shape (0).
  basic_owning_tensor() : basic_owning_tensor(rlhf::shape{0}) {}

  /// A zero-filled tensor of shape s.
  explicit basic_owning_tensor(const rlhf::shape& s) : shape_(s), data_(S::allocate(s)) {}

  /// A deep copy of other.
  basic_owning_tensor(const basic_owning_tensor& other)
      : shape_(other.shape_), data_(S::copy(other.data_, other.shape_)) {}
  /// Copies shape and elements of other.
  basic_owning_tensor& operator=(const basic_owning_tensor& other) {
    if (this != &other) {
      S::assign(data_, size(), other.data_, other.shape_);
      shape_ = other.shape_;
    }
    return *this;
  }
  /// Takes other's storage. A moved-from tensor is empty: shape (0), no elements.
  basic_owning_tensor(basic_owning_tensor&& other) noexcept
      : shape_(other.shape_), data_(std::move(other.data_)) {
    other.make_empty();
  }
  /// Takes other's storage and shape; other is left empty (shape (0)).
  basic_owning_tensor& operator=(basic_owning_tensor&& other) noexcept {
    if (this != &other) {
      shape_ = other.shape_;
      data_ = std::move(other.data_);
      other.make_empty();
    }
    return *this;
  }
  ~basic_owning_tensor() = default;

  /// The shape.
  [[nodiscard]] const rlhf::shape& shape() const noexcept { return shape_; }
  /// The number of elements (shape().numel()).
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

  /// Pointer to the first element.
  [[nodiscard]] value_type* data() noexcept { return S::data(data_); }
  /// Pointer to the first element.
  [[nodiscard]] const value_type* data() const noexcept { return S::data(data_); }

 protected:
  /// The container holding the elements.
  [[nodiscard]] typename S::container& container() noexcept { return data_; }
  /// The container holding the elements.
  [[nodiscard]] const typename S::container& container() const noexcept { return data_; }

 private:
  void make_empty() noexcept {
    shape_ = rlhf::shape{0};  // cannot throw: rank 1, dimension 0
    S::clear(data_);
  }

  rlhf::shape shape_;
  typename S::container data_;
};

/// The storage policy of rlhf::host_tensor: 64-byte aligned memory from std::aligned_alloc,
/// none for zero elements.
template <class T>
struct aligned_host_storage {
  using value_type = T;                         ///< The element type.
  static constexpr std::size_t alignment = 64;  ///< Storage alignment in bytes.

  /// Frees with std::free.
  struct aligned_free {
    /// Frees p.
    void operator()(T* p) const noexcept { std::free(p); }
  };
  using container = std::unique_ptr<T[], aligned_free>;  ///< Owns the elements.

  /// s.numel() zero-filled elements.
  static container allocate(const rlhf::shape& s) {
    container c = allocate_raw(s);
    if (s.numel() > 0) std::memset(c.get(), 0, bytes(s.numel()));
    return c;
  }
  /// A copy of the s.numel() elements of src.
  static container copy(const container& src, const rlhf::shape& s) {
    container c = allocate_raw(s);
    if (s.numel() > 0) std::memcpy(c.get(), src.get(), bytes(s.numel()));
    return c;
  }
  /// dst (dst_size elements) becomes a copy of src, reallocated only when the size differs.
  static void assign(container& dst, index_t dst_size, const container& src,
                     const rlhf::shape& src_shape) {
    if (src_shape.numel() != dst_size) dst = allocate_raw(src_shape);
    if (src_shape.numel() > 0) std::memcpy(dst.get(), src.get(), bytes(src_shape.numel()));
  }
  /// The first element (null when empty).
  static T* data(container& c) noexcept { return c.get(); }
  /// The first element (null when empty).
  static const T* data(const container& c) noexcept { return c.get(); }
  /// A moved-from unique_ptr is already null.
  static void clear(container&) noexcept {}

 private:
  [[nodiscard]] static std::size_t bytes(index_t n) noexcept {
    return static_cast<std::size_t>(n) * sizeof(T);
  }

  // Zero-size shapes hold no storage. Byte counts are checked: numel * sizeof(T), rounded
  // up to the alignment, must fit std::size_t. A failed allocation (out of memory, or a
  // byte count that does not fit std::size_t) is a backend_error naming the shape and the
  // bytes.
  static container allocate_raw(const rlhf::shape& s) {
    const index_t n = s.numel();
    if (n == 0) return container(nullptr);
    std::size_t raw = 0, rounded = 0;
    const bool fits = checked_mul(static_cast<std::size_t>(n), sizeof(T), raw) &&
                      checked_add(raw, alignment - 1, rounded);
    if (!fits) {
      throw backend_error(concat("host_tensor: shape ", s.str(), " needs ", n, " * ", sizeof(T),
                                 " bytes, which overflows std::size_t"));
    }
    rounded = rounded / alignment * alignment;
    void* p = std::aligned_alloc(alignment, rounded);
    if (p == nullptr) {
      throw backend_error(concat("host_tensor: allocating shape ", s.str(), " (", rounded,
                                 " bytes) failed: out of memory"));
    }
    return container(static_cast<T*>(p));
  }
};

}  // namespace detail

/// An owning, contiguous, row-major host tensor of T with 64-byte aligned storage (the
/// storage of the CPU backends). Copies are deep (reallocating on assignment only when the
/// size differs); a moved-from tensor is empty, shape (0), without storage. Besides span(),
/// its members come from the shared owning-tensor base: `shape()`, `size()` (the element
/// count), `reshape(s)` (same element count, else a shape_error) and `data()` (the first
/// element, null when empty).
template <class T>
class host_tensor : public detail::basic_owning_tensor<detail::aligned_host_storage<T>> {
  using base = detail::basic_owning_tensor<detail::aligned_host_storage<T>>;

 public:
  using value_type = T;  ///< The element type.
  /// Storage alignment in bytes.
  static constexpr std::size_t alignment = detail::aligned_host_storage<T>::alignment;

  /// An empty tensor of shape (0), without storage.
  host_tensor() = default;

  /// A zero-filled tensor of shape s. A failed allocation (out of memory, or a byte count
  /// that does not fit std::size_t) is a backend_error naming the shape and the bytes.
  explicit host_tensor(const rlhf::shape& s) : base(s) {}

  /// All elements, in row-major order.
  [[nodiscard]] std::span<T> span() noexcept {
    return {this->data(), static_cast<std::size_t>(this->size())};
  }
  /// All elements, in row-major order.
  [[nodiscard]] std::span<const T> span() const noexcept {
    return {this->data(), static_cast<std::size_t>(this->size())};
  }
};

}  // namespace v0
}  // namespace rlhf
