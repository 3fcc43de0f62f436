// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

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
