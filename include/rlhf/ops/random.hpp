// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Counter-based random fills (Philox4x32-10, rlhf/core/philox.hpp). Element i of a fill is
// a pure function of (seed, stream, block, i), so every backend draws the same numbers for
// the same random_stream; the stream advances by the blocks a fill used.
#pragma once

#include "rlhf/core/functors.hpp"
#include "rlhf/core/overrides.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/ops/elementwise.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {
namespace detail {

template <class B>
void generic_random_uniform(typename B::tensor& t, std::uint64_t seed, std::uint64_t stream,
                            std::uint64_t first_block) {
  float* p = B::data(t);
  B::parallel_for(t.size(), RLHF_LAMBDA(index_t i) {
    p[i] = philox_uniform(seed, stream, first_block, static_cast<std::uint64_t>(i));
  });
}

template <class B>
void generic_random_normal(typename B::tensor& t, std::uint64_t seed, std::uint64_t stream,
                           std::uint64_t first_block) {
  float* p = B::data(t);
  B::parallel_for(t.size(), RLHF_LAMBDA(index_t i) {
    p[i] = philox_normal(seed, stream, first_block, static_cast<std::uint64_t>(i));
  });
}

}  // namespace detail

/// Uniform [0, 1) floats with 24 random bits each; bit-identical on every backend.
template <class B>
void random_uniform(typename B::tensor& t, random_stream& rs) {
  assert_tensor_backend<B>();
  if constexpr (::rlhf::detail::has_random_uniform_override<B>) {
    B::random_uniform(t, rs.seed, rs.stream, rs.next_block);
  } else {
    detail::generic_random_uniform<B>(t, rs.seed, rs.stream, rs.next_block);
  }
  rs.next_block += random_stream::blocks_for_uniform(static_cast<std::uint64_t>(t.size()));
}

/// Standard normal floats (Box-Muller on Philox bits).
template <class B>
void random_normal(typename B::tensor& t, random_stream& rs, float mean = 0.0f,
                   float stddev = 1.0f) {
  assert_tensor_backend<B>();
  if constexpr (::rlhf::detail::has_random_normal_override<B>) {
    B::random_normal(t, rs.seed, rs.stream, rs.next_block);
  } else {
    detail::generic_random_normal<B>(t, rs.seed, rs.stream, rs.next_block);
  }
  rs.next_block += random_stream::blocks_for_normal(static_cast<std::uint64_t>(t.size()));
  if (mean != 0.0f || stddev != 1.0f) transform<B>(t, fn::affine{stddev, mean}, t);
}

}  // namespace ops
}  // namespace v0
}  // namespace rlhf
