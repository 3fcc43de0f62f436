// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Creating tensors and moving them between host and backend memory.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {

namespace detail {
inline void check_host_size(std::string_view fn, std::size_t host_size, index_t tensor_size) {
  if (static_cast<index_t>(host_size) != tensor_size) {
    throw shape_error(rlhf::detail::concat(fn, ": host buffer has ", host_size,
                                           " elements, tensor has ", tensor_size));
  }
}
}  // namespace detail

/// Copies host values into an existing backend tensor (sizes must match).
template <class B>
void copy_from_host(std::span<const float> host, typename B::tensor& t) {
  assert_tensor_backend<B>();
  detail::check_host_size("copy_from_host", host.size(), t.size());
  B::copy_from_host(host, t);
}
/// Copies host token ids into an existing backend index tensor (sizes must match).
template <class B>
void copy_from_host(std::span<const std::int32_t> host, typename B::index_tensor& t) {
  assert_tensor_backend<B>();
  detail::check_host_size("copy_from_host", host.size(), t.size());
  B::copy_from_host(host, t);
}

/// Copies a backend tensor into host memory (sizes must match).
template <class B>
void copy_to_host(const typename B::tensor& t, std::span<float> host) {
  assert_tensor_backend<B>();
  detail::check_host_size("copy_to_host", host.size(), t.size());
  B::copy_to_host(t, host);
}
/// Copies a backend index tensor into host memory (sizes must match).
template <class B>
void copy_to_host(const typename B::index_tensor& t, std::span<std::int32_t> host) {
  assert_tensor_backend<B>();
  detail::check_host_size("copy_to_host", host.size(), t.size());
  B::copy_to_host(t, host);
}

/// A new backend tensor of shape `s` holding `host` (row-major).
template <class B>
typename B::tensor from_host(std::span<const float> host, const shape& s) {
  typename B::tensor t(s);
  copy_from_host<B>(host, t);
  return t;
}
/// A new backend index tensor of shape `s` holding `host` (row-major).
template <class B>
typename B::index_tensor index_from_host(std::span<const std::int32_t> host, const shape& s) {
  typename B::index_tensor t(s);
  copy_from_host<B>(host, t);
  return t;
}

/// The values of a backend tensor as a host vector.
template <class B>
std::vector<float> to_host(const typename B::tensor& t) {
  std::vector<float> out(static_cast<std::size_t>(t.size()));
  copy_to_host<B>(t, std::span<float>(out));
  return out;
}
/// The values of a backend index tensor as a host vector.
template <class B>
std::vector<std::int32_t> to_host(const typename B::index_tensor& t) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(t.size()));
  copy_to_host<B>(t, std::span<std::int32_t>(out));
  return out;
}

}  // namespace ops
}  // namespace v0
}  // namespace rlhf
