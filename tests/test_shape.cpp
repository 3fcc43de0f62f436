// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>

#include <rlhf/core/detail/checked.hpp>
#include <rlhf/core/host_tensor.hpp>
#include <rlhf/core/shape.hpp>

using rlhf::index_t;
using rlhf::shape;

TEST_CASE("shape: rank, numel and the row convention") {
  const shape s{2, 3, 5};
  CHECK(s.rank() == 3);
  CHECK(s.numel() == 30);
  CHECK(s.rows() == 6);
  CHECK(s.cols() == 5);
  CHECK(s.back(1) == 3);
  CHECK(s.str() == "(2, 3, 5)");
  CHECK(shape{7}.rows() == 1);
  CHECK(shape{7}.cols() == 7);
  CHECK(shape{0, 4}.numel() == 0);
  CHECK(shape{2, 3} == shape{2, 3});
  CHECK_FALSE(shape{2, 3} == shape{3, 2});
  CHECK_FALSE(shape{6} == shape{6, 1});
}

TEST_CASE("shape: invalid shapes are shape_errors that say why") {
  CHECK_THROWS_WITH_AS(shape({2, -1}), "shape: dimension 1 must be >= 0, got -1",
                       rlhf::shape_error);
  CHECK_THROWS_WITH_AS(shape({1, 2, 3, 4, 5}), "shape: rank must be 1..4, got 5",
                       rlhf::shape_error);
  CHECK_THROWS_AS(shape(std::initializer_list<index_t>{}), rlhf::shape_error);
}

TEST_CASE("host_tensor: zero-filled, aligned, deep copies, empty after move") {
  rlhf::host_tensor<float> t(shape{3, 5});
  for (float v : t.span()) CHECK(v == 0.0f);
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  t.data()[4] = 2.0f;
  rlhf::host_tensor<float> copy = t;
  copy.data()[4] = 3.0f;
  CHECK(t.data()[4] == 2.0f);
  rlhf::host_tensor<float> moved = std::move(t);
  CHECK(moved.data()[4] == 2.0f);
  CHECK(t.size() == 0);  // NOLINT(bugprone-use-after-move): documented state
  CHECK(t.shape() == shape{0});
  copy = moved;
  CHECK(copy.data()[4] == 2.0f);
  CHECK_THROWS_WITH_AS(moved.reshape(shape{4, 4}),
                       "reshape: new shape (4, 4) has 16 elements, tensor of shape (3, 5) has 15",
                       rlhf::shape_error);
}

TEST_CASE("shape: element counts that overflow or exceed max_numel are shape_errors") {
  constexpr index_t two31 = index_t{1} << 31;
  // 2^93 wraps index_t; 2^62 fits it but is above max_numel (2^48).
  CHECK_THROWS_AS(shape({two31, two31, two31}), rlhf::shape_error);
  CHECK_THROWS_WITH_AS(shape({two31, two31}),
                       "shape: (2147483648, 2147483648) has more than max_numel = "
                       "281474976710656 elements",
                       rlhf::shape_error);
  // A zero dimension makes numel() 0, but rows() would still overflow: rejected too.
  CHECK_THROWS_AS(shape({index_t{1} << 62, index_t{1} << 62, 0}), rlhf::shape_error);
  // The largest accepted shapes.
  CHECK(shape{shape::max_numel}.numel() == shape::max_numel);
  CHECK(shape{index_t{1} << 24, index_t{1} << 24}.numel() == shape::max_numel);
  CHECK(shape{shape::max_numel, 0}.numel() == 0);
  CHECK_THROWS_AS(shape({shape::max_numel + 1}), rlhf::shape_error);
}

TEST_CASE("detail::checked_mul and checked_add report overflow") {
  index_t r = 0;
  CHECK(rlhf::detail::checked_mul(index_t{1} << 31, index_t{1} << 31, r));
  CHECK(r == index_t{1} << 62);
  CHECK_FALSE(rlhf::detail::checked_mul(index_t{1} << 32, index_t{1} << 31, r));
  CHECK_FALSE(rlhf::detail::checked_mul(-(index_t{1} << 32), index_t{1} << 32, r));
  CHECK(rlhf::detail::checked_add(index_t{1} << 62, (index_t{1} << 62) - 1, r));
  CHECK_FALSE(rlhf::detail::checked_add(index_t{1} << 62, index_t{1} << 62, r));
  std::size_t u = 0;
  CHECK_FALSE(rlhf::detail::checked_mul(std::size_t{1} << 48, std::size_t{1} << 16, u));
  CHECK_THROWS_WITH_AS(
      (void)rlhf::detail::size_mul(index_t{1} << 40, index_t{1} << 40, "f", "rows * cols"),
      "f: rows * cols = 1099511627776 * 1099511627776 overflows index_t", rlhf::shape_error);
}

namespace {
// 64 KiB elements: 2^48 of them need 2^64 bytes, one more than std::size_t holds.
struct big_element {
  char bytes[std::size_t{1} << 16];
};

// An allocation of 2^50 bytes cannot succeed (x86-64 and AArch64 user address spaces are
// at most 2^48 bytes), but AddressSanitizer aborts on it unless told to return null.
bool huge_allocation_is_safe() {
#if defined(__SANITIZE_ADDRESS__)
  const char* opts = std::getenv("ASAN_OPTIONS");
  return opts != nullptr && std::strstr(opts, "allocator_may_return_null=1") != nullptr;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
  const char* opts = std::getenv("ASAN_OPTIONS");
  return opts != nullptr && std::strstr(opts, "allocator_may_return_null=1") != nullptr;
#else
  return true;
#endif
#else
  return true;
#endif
}
}  // namespace

TEST_CASE("host_tensor: sizes that cannot be allocated are typed errors, not crashes") {
  constexpr index_t two31 = index_t{1} << 31;
  // 2^62 elements: rejected by the shape before any allocation.
  CHECK_THROWS_AS(rlhf::host_tensor<float>(shape({two31, two31})), rlhf::shape_error);
  // numel * sizeof(T) overflows std::size_t: a backend_error naming the shape.
  CHECK_THROWS_WITH_AS(rlhf::host_tensor<big_element>(shape{shape::max_numel}),
                       doctest::Contains("host_tensor: shape (281474976710656)"),
                       rlhf::backend_error);
  // 2^48 floats = 2^50 bytes: representable, but no allocator can provide it.
  if (huge_allocation_is_safe()) {
    CHECK_THROWS_WITH_AS(rlhf::host_tensor<float>(shape({index_t{1} << 24, index_t{1} << 24})),
                         doctest::Contains("(16777216, 16777216) (1125899906842624 bytes)"),
                         rlhf::backend_error);
  } else {
    MESSAGE("skipped the 2^50-byte allocation: run with ASAN_OPTIONS=allocator_may_return_null=1");
  }
}
