// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::host_tensor<T>: an owning, 64-byte aligned, dense row-major tensor in host memory.
// The CPU backends use it as their tensor type; third-party CPU backends may too.
// Copies are deep (like std::vector); moves are cheap. New tensors are zero-filled.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>

#include "rlhf/core/detail/checked.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/shape.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {

/// An owning, contiguous, row-major host tensor of T with 64-byte aligned storage (the
/// storage of the CPU backends). Copies are deep.
template <class T>
class host_tensor {
 public:
  using value_type = T;                         ///< The element type.
  static constexpr std::size_t alignment = 64;  ///< Storage alignment in bytes.

  host_tensor() : host_tensor(empty_shape()) {}

  /// A zero-filled tensor of shape s. A failed allocation (out of memory, or a byte count
  /// that does not fit std::size_t) is a backend_error naming the shape and the bytes.
  explicit host_tensor(const shape& s) : shape_(s), data_(allocate(s)) {
    if (s.numel() > 0) std::memset(data_.get(), 0, bytes());
  }

  /// A deep copy of other.
  host_tensor(const host_tensor& other) : shape_(other.shape_), data_(allocate(other.shape_)) {
    if (size() > 0) std::memcpy(data_.get(), other.data_.get(), bytes());
  }
  /// Copies shape and elements of other (reallocating only when the size differs).
  host_tensor& operator=(const host_tensor& other) {
    if (this != &other) {
      if (other.size() != size()) data_ = allocate(other.shape_);
      shape_ = other.shape_;
      if (size() > 0) std::memcpy(data_.get(), other.data_.get(), bytes());
    }
    return *this;
  }
  /// Takes other's storage. A moved-from tensor is empty: shape (0), no storage.
  host_tensor(host_tensor&& other) noexcept
      : shape_(other.shape_), data_(std::move(other.data_)) {
    other.shape_ = empty_shape();
  }
  /// Takes other's storage and shape; other is left empty (shape (0)).
  host_tensor& operator=(host_tensor&& other) noexcept {
    if (this != &other) {
      shape_ = other.shape_;
      data_ = std::move(other.data_);
      other.shape_ = empty_shape();
    }
    return *this;
  }
  ~host_tensor() = default;

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

  /// Pointer to the first element (null when empty).
  [[nodiscard]] T* data() noexcept { return data_.get(); }
  /// Pointer to the first element (null when empty).
  [[nodiscard]] const T* data() const noexcept { return data_.get(); }
  /// All elements, in row-major order.
  [[nodiscard]] std::span<T> span() noexcept {
    return {data_.get(), static_cast<std::size_t>(size())};
  }
  /// All elements, in row-major order.
  [[nodiscard]] std::span<const T> span() const noexcept {
    return {data_.get(), static_cast<std::size_t>(size())};
  }

 private:
  static rlhf::shape empty_shape() noexcept {
    return rlhf::shape{0};  // cannot throw: rank 1, dimension 0
  }

  struct aligned_free {
    void operator()(T* p) const noexcept { std::free(p); }
  };
  using storage = std::unique_ptr<T[], aligned_free>;

  [[nodiscard]] std::size_t bytes() const noexcept {
    return static_cast<std::size_t>(size()) * sizeof(T);
  }

  // Zero-size shapes hold no storage. Byte counts are checked: numel * sizeof(T), rounded
  // up to the alignment, must fit std::size_t.
  static storage allocate(const rlhf::shape& s) {
    const index_t n = s.numel();
    if (n == 0) return storage(nullptr);
    std::size_t raw = 0, rounded = 0;
    const bool fits = detail::checked_mul(static_cast<std::size_t>(n), sizeof(T), raw) &&
                      detail::checked_add(raw, alignment - 1, rounded);
    if (!fits) {
      throw backend_error(detail::concat("host_tensor: shape ", s.str(), " needs ", n, " * ",
                                         sizeof(T), " bytes, which overflows std::size_t"));
    }
    rounded = rounded / alignment * alignment;
    void* p = std::aligned_alloc(alignment, rounded);
    if (p == nullptr) {
      throw backend_error(detail::concat("host_tensor: allocating shape ", s.str(), " (", rounded,
                                         " bytes) failed: out of memory"));
    }
    return storage(static_cast<T*>(p));
  }

  rlhf::shape shape_;
  storage data_;
};

}  // namespace v0
}  // namespace rlhf
