// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Input checks on backend tensors, for public entry points: every value finite, masks
// made of finite non-negative weights. On a backend whose memory the host cannot read,
// check_finite runs where the memory is and copies one flag per 4096 values to the host
// (the whole tensor only to name a culprit): it also guards AdamW's (P,) gradient arena
// every step. check_mask (and check_probabilities) copy their (per-example or per-token)
// values to the host.
//
// These are the O(n) data checks: each returns at once unless the validation level
// (rlhf/core/validation.hpp) is full, so the cheap and none levels scan no tensor and copy
// nothing to the host.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/core/validation.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {

namespace detail {
/// True when every value is finite: NaN and ±Inf are the floats whose exponent bits are all
/// set. An OR of integer flags without early exit, so the loop vectorises (the common,
/// valid case costs one streaming pass; the slow path below only runs to name the culprit).
inline bool all_finite(std::span<const float> v) {
  std::uint32_t bad = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto bits = std::bit_cast<std::uint32_t>(v[i]);
    bad |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

/// True when every value is finite and >= 0 (a valid mask of weights; -0 is allowed).
inline bool all_mask_weights(std::span<const float> v) {
  std::uint32_t bad = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto bits = std::bit_cast<std::uint32_t>(v[i]);
    bad |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    bad |= static_cast<std::uint32_t>(bits > 0x80000000u);  // sign set and not -0
  }
  return bad == 0;
}

/// Values per flag (and per work item) of check_finite's pass on a backend the host cannot
/// read.
inline constexpr index_t finite_block = 4096;

/// flags (ceil(n / finite_block),): work item w, where B's memory is, reads t at w,
/// w + flags, w + 2 flags, ... (adjacent items read adjacent values: coalesced on a GPU) and
/// writes 1 if one of them is NaN or ±Inf, else 0. x - x is 0 for every finite x and NaN
/// otherwise: a test without library calls, the same on host and device.
template <class B>
std::vector<float> nonfinite_flags(const typename B::tensor& t) {
  const index_t n = t.size(), items = (n + finite_block - 1) / finite_block;
  typename B::tensor flags(shape{items});
  const float* x = B::data(t);
  float* f = B::data(flags);
  B::parallel_for(items, RLHF_LAMBDA(index_t w) {
    bool bad = false;
    for (index_t i = w; i < n; i += items) {
      const float d = x[i] - x[i];
      bad |= d != d;
    }
    f[w] = bad ? 1.0f : 0.0f;
  });
  return to_host<B>(flags);
}

/// all_finite over t's values in blocks of finite_block, the blocks in B::parallel_for (on
/// the host: B::host_accessible): tensors of a few MB are checked by every thread.
template <class B>
bool all_finite_blocks(const typename B::tensor& t) {
  const index_t n = t.size(), blocks = (n + finite_block - 1) / finite_block;
  std::vector<std::uint8_t> bad(static_cast<std::size_t>(blocks));
  const float* x = B::data(t);
  std::uint8_t* flags = bad.data();
  B::parallel_for(blocks, [=](index_t b) {
    const index_t begin = b * finite_block,
                  len = n - begin < finite_block ? n - begin : finite_block;
    flags[b] = all_finite(std::span<const float>(x + begin, static_cast<std::size_t>(len))) ? 0 : 1;
  });
  return std::ranges::all_of(bad, [](std::uint8_t f) { return f == 0; });
}

/// Calls f(span of t's values) without a copy where the host can read B's memory.
template <class B, class F>
void with_host_values(const typename B::tensor& t, F&& f) {
  if constexpr (B::host_accessible) {
    f(std::span<const float>(B::data(t), static_cast<std::size_t>(t.size())));
  } else {
    const std::vector<float> host = to_host<B>(t);
    f(std::span<const float>(host));
  }
}
}  // namespace detail

/// data_error("fn: arg must be finite, got nan at flat index i") on the first NaN/Inf; a
/// no-op below validation::full (as are the other checks here).
template <class B>
void check_finite(std::string_view fn, std::string_view arg, const typename B::tensor& t) {
  assert_tensor_backend<B>();
  if (!validating(validation::full)) return;
  if constexpr (B::host_accessible) {
    const std::span<const float> v(B::data(t), static_cast<std::size_t>(t.size()));
    // One thread below 16 blocks (64k values); above, every thread takes blocks.
    const bool finite = t.size() < 16 * detail::finite_block ? detail::all_finite(v)
                                                             : detail::all_finite_blocks<B>(t);
    if (!finite) rlhf::check_finite(fn, arg, v);
  } else {
    if (t.size() == 0) return;
    for (const float flag : detail::nonfinite_flags<B>(t)) {
      if (flag != 0.0f) {
        rlhf::check_finite(fn, arg, to_host<B>(t));  // names the first culprit
        return;
      }
    }
  }
}

/// A mask holds finite weights >= 0 (usually 0/1); anything else is a data_error.
template <class B>
void check_mask(std::string_view fn, std::string_view arg, const typename B::tensor& mask) {
  assert_tensor_backend<B>();
  if (!validating(validation::full)) return;
  detail::with_host_values<B>(mask, [&](std::span<const float> v) {
    if (detail::all_mask_weights(v)) return;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!(std::isfinite(v[i]) && v[i] >= 0.0f)) {
        throw data_error(rlhf::detail::concat(fn, ": ", arg,
                                              " must hold finite weights >= 0, got ", v[i],
                                              " at flat index ", i));
      }
    }
  });
}

/// Every value is exactly 0 or 1 (hard labels); anything else is a data_error naming the
/// first culprit. A full-level check (validation.hpp), like check_finite.
template <class B>
void check_binary(std::string_view fn, std::string_view arg, const typename B::tensor& t) {
  assert_tensor_backend<B>();
  if (!validating(validation::full)) return;
  detail::with_host_values<B>(t, [&](std::span<const float> v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!(v[i] == 0.0f || v[i] == 1.0f)) {
        throw data_error(rlhf::detail::concat(fn, ": ", arg, " must be 0 or 1, got ", v[i],
                                              " at flat index ", i));
      }
    }
  });
}

/// Every value is a probability: finite and in [0, 1]; anything else is a data_error naming
/// the first culprit (used for soft labels).
template <class B>
void check_probabilities(std::string_view fn, std::string_view arg, const typename B::tensor& p) {
  assert_tensor_backend<B>();
  if (!validating(validation::full)) return;
  detail::with_host_values<B>(p, [&](std::span<const float> v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!(v[i] >= 0.0f && v[i] <= 1.0f)) {  // NaN fails both
        throw data_error(rlhf::detail::concat(fn, ": ", arg, " must hold values in [0, 1], got ",
                                              v[i], " at index ", i));
      }
    }
  });
}

/// Every row of a (R, C) mask has a positive sum over columns first_col..C-1; otherwise a
/// data_error naming the row (for quantities undefined on an empty row, e.g. a
/// per-sequence mean).
template <class B>
void check_mask_rows_nonempty(std::string_view fn, std::string_view arg,
                              const typename B::tensor& mask, index_t first_col = 0) {
  assert_tensor_backend<B>();
  if (!validating(validation::full)) return;
  const index_t cols = mask.shape().cols();
  detail::with_host_values<B>(mask, [&](std::span<const float> v) {
    for (index_t r = 0; r < mask.shape().rows(); ++r) {
      float s = 0.0f;
      for (index_t c = first_col; c < cols; ++c) s += v[static_cast<std::size_t>(r * cols + c)];
      if (!(s > 0.0f)) {
        throw data_error(rlhf::detail::concat(fn, ": ", arg, " row ", r,
                                              " is all zero; the quantity is undefined for "
                                              "an empty row"));
      }
    }
  });
}

}  // namespace ops
}  // namespace v0
}  // namespace rlhf
